import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi, type MockInstance } from "vitest";
import { getPasskey, listPasskeys } from "../src/db/passkeys";
import { findUserByEmail } from "../src/db/users";
import type { Env } from "../src/env";
import { challengeStoreFor, userSessionsFor } from "../src/objects/locate";
import { parseSessionCookie } from "../src/objects/sessions";
import { finishPasskeyRegistration, finishPasskeySignIn } from "../src/routes/passkeys";
import { SoftAuthenticator } from "./helpers/authenticator";
import { makeClient as makeConfidentialClient, redeem as redeemAtToken, verifyIdToken } from "./helpers/back-channel";
import { Browser, ORIGIN, authorizeParams, authorizeUrl, followLocal, formFields, responseParams, uniqueEmail } from "./helpers/front-channel";
import {
  addPasskey,
  auditEvents,
  emailSignIn,
  passkeySignIn,
  registrationOptions,
  sessionCookieOf,
  signInOptions,
  signInPageFields,
  submitAssertion,
  submitRegistration,
  userWithPasskey,
} from "./helpers/passkeys";

// Every test runs whole ceremonies (and the first loads @simplewebauthn/server); the concurrent ones send 20 to 50.
vi.setConfig({ testTimeout: 30_000 });

// Refusals are logged as warnings (passkey.sign_in_refused, passkey.counter_regression): expected here, kept off the output.
let warnings: MockInstance<typeof console.warn>;
beforeEach(() => {
  warnings = vi.spyOn(console, "warn").mockImplementation(() => undefined);
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});


/** A request as the Worker receives it from the browser, for calling a handler with a stand-in binding. */
function postOf(browser: Browser, path: string, form: Record<string, string>): Request {
  return new Request(new URL(path, ORIGIN), {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      cookie: [...browser.cookies].map(([name, value]) => `${name}=${value}`).join("; "),
      "cf-connecting-ip": browser.ip,
    },
    body: new URLSearchParams(form).toString(),
  });
}

async function sessionsOf(userId: string) {
  return userSessionsFor(env, userId)!.listSessions();
}

describe("adding a passkey after an email sign-in", () => {
  it("offers it to a browser that can make passkeys; the passkey is stored, audited, and the request resumes", async () => {
    const client = await makeConfidentialClient({ skip_consent: true });
    const browser = new Browser();
    const { verifier, params } = await authorizeParams(client.clientId);
    const start = await browser.get(authorizeUrl(params));
    const loginPath = start.headers.get("location")!;
    const interaction = new URL(loginPath, ORIGIN).searchParams.get("interaction")!;

    // The sign-in page carries the passkey button (hidden until the script shows it) and the autofill hint.
    const page = await (await browser.get(loginPath)).text();
    expect(page).toContain('action="/login/passkey"');
    expect(page).toContain('autocomplete="username webauthn"');
    expect(page).toContain('<script src="/passkeys.js" defer></script>');

    const email = uniqueEmail("offer");
    const signedIn = await emailSignIn(browser, loginPath, email);
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get("location")).toBe(`/passkeys/offer?interaction=${encodeURIComponent(interaction)}`);
    expect(sessionCookieOf(signedIn)).not.toBeNull();

    const offer = await browser.get(signedIn.headers.get("location")!);
    expect(offer.status).toBe(200);
    const offerHtml = await offer.text();
    expect(offerHtml).toContain("Sign in faster next time");
    expect(offerHtml).toContain("Not now");
    const fields = formFields(offerHtml);

    const authenticator = new SoftAuthenticator(ORIGIN);
    const options = await registrationOptions(browser, fields);
    const user = (await findUserByEmail(env.DB, email))!;
    expect(options.publicKey.rp).toEqual({ id: "localhost", name: "localhost" });
    expect(options.publicKey.user.name).toBe(email);
    expect(options.publicKey.authenticatorSelection).toMatchObject({ residentKey: "required", userVerification: "preferred" });
    expect(options.publicKey.attestation).toBe("none");
    const created = await submitRegistration(browser, { ...fields, from: "offer" } as never, options.challenge, await authenticator.create(options.publicKey));
    expect(created.status, await created.clone().text()).toBe(303);
    expect(created.headers.get("location")).toBe(`/authorize/resume?interaction=${encodeURIComponent(interaction)}`);

    const [stored] = await listPasskeys(env.DB, user.id);
    expect(stored).toMatchObject({ id: authenticator.credential().id, userId: user.id, counter: 0, transports: ["internal", "hybrid"], deviceType: "singleDevice" });
    expect(await auditEvents("passkey.registered", user.id)).toHaveLength(1);

    const done = await followLocal(browser, created);
    const code = responseParams(done).params.get("code")!;
    const tokens = await redeemAtToken(client, { code, verifier, grant: {} as never });
    const { payload } = await verifyIdToken(tokens.id_token!, client.clientId);
    expect(payload.amr).toEqual(["email"]);
  });

  it("is not offered without the script's word, after 'Not now', or where a passkey was added", async () => {
    const client = await makeConfidentialClient({ skip_consent: true });
    const email = uniqueEmail("declines");

    // No script (passkey_capable absent): straight back to the request, as before.
    const plain = new Browser();
    const start = await plain.get(authorizeUrl((await authorizeParams(client.clientId)).params));
    const direct = await emailSignIn(plain, start.headers.get("location")!, email, false);
    expect(direct.headers.get("location")).toMatch(/^\/authorize\/resume\?interaction=/);

    // "Not now" goes on to the request and is remembered in this browser.
    const browser = new Browser();
    const first = await browser.get(authorizeUrl((await authorizeParams(client.clientId)).params));
    const offered = await emailSignIn(browser, first.headers.get("location")!, email);
    const offerPage = await browser.get(offered.headers.get("location")!);
    const declined = await browser.post("/passkeys/offer", { ...formFields(await offerPage.text()), decision: "later" });
    expect(declined.status).toBe(303);
    expect(declined.headers.get("location")).toMatch(/^\/authorize\/resume\?interaction=/);
    const again = await browser.get(authorizeUrl((await authorizeParams(client.clientId, { prompt: "login" })).params));
    const second = await emailSignIn(browser, again.headers.get("location")!, email);
    expect(second.headers.get("location")).toMatch(/^\/authorize\/resume\?interaction=/);
    expect((await listPasskeys(env.DB, (await findUserByEmail(env.DB, email))!.id)).length).toBe(0);
  });
});

describe("signing in with a passkey", () => {
  it("needs no email: the request resumes, and the ID token's amr is hwk, user and mfa (user verified)", async () => {
    const { authenticator, user, passkey } = await userWithPasskey(uniqueEmail("pk"));
    const client = await makeConfidentialClient({ skip_consent: true });
    const browser = new Browser();
    const { verifier, params } = await authorizeParams(client.clientId);
    const start = await browser.get(authorizeUrl(params));
    const signedIn = await passkeySignIn(browser, authenticator, start.headers.get("location")!);
    expect(signedIn.status, await signedIn.clone().text()).toBe(303);
    expect(signedIn.headers.get("location")).toMatch(/^\/authorize\/resume\?interaction=/);
    const cookie = parseSessionCookie(sessionCookieOf(signedIn)!)!;
    expect(cookie.userId).toBe(user.id);

    const code = responseParams(await followLocal(browser, signedIn)).params.get("code")!;
    const tokens = await redeemAtToken(client, { code, verifier, grant: {} as never });
    const { payload } = await verifyIdToken(tokens.id_token!, client.clientId);
    expect(payload.sub).toBe(user.id);
    expect(payload.amr).toEqual(["hwk", "user", "mfa"]);
    expect(payload.sid).toBe(cookie.sid);

    const after = (await getPasskey(env.DB, passkey.id))!;
    expect(after.counter).toBe(1);
    expect(after.lastUsedAt).toBeGreaterThan(0);
  });

  it("without user verification (allowed by the default 'preferred') the amr has no mfa", async () => {
    const { authenticator, user } = await userWithPasskey(uniqueEmail("nouv"), { userVerified: false });
    const browser = new Browser();
    const signedIn = await passkeySignIn(browser, authenticator);
    expect(signedIn.status).toBe(303);
    expect(signedIn.headers.get("location")).toBe("/account");
    const [session] = await sessionsOf(user.id);
    expect((await sessionsOf(user.id)).find((s) => s.sid === parseSessionCookie(sessionCookieOf(signedIn)!)!.sid)!.amr).toEqual(["hwk", "user"]);
    expect(session).toBeDefined();
  });

  it("PASSKEY_USER_VERIFICATION=required refuses an assertion without user verification", async () => {
    const { authenticator, user } = await userWithPasskey(uniqueEmail("requv"), { userVerified: false });
    const strict = { ...env, PASSKEY_USER_VERIFICATION: "required" } as unknown as Env;
    const browser = new Browser();
    const fields = await signInPageFields(browser);
    const options = await signInOptions(browser, fields);
    const request = postOf(browser, "/login/passkey", { ...fields, challenge: options.challenge, response: JSON.stringify(await authenticator.get(options.publicKey)) });
    const refused = await finishPasskeySignIn(request, strict);
    expect(refused.status).toBe(400);
    expect(sessionCookieOf(refused)).toBeNull();
    expect(await sessionsOf(user.id)).toHaveLength(1); // the email session the helper made, only
  });
});

describe("the signature counter only moves forward (C7)", () => {
  it("a counter set back is refused as a possible clone: a clear page, no session, audited in D1, the counter stays", async () => {
    const { authenticator, user, passkey } = await userWithPasskey(uniqueEmail("clone"));
    const browser = new Browser();
    expect((await passkeySignIn(browser, authenticator)).status).toBe(303); // counter 1
    expect((await passkeySignIn(browser, authenticator)).status).toBe(303); // counter 2
    const before = (await sessionsOf(user.id)).length;

    // A copy of the key that has been used less: its counter is behind the one we saw last.
    const other = new Browser();
    const refused = await passkeySignIn(other, authenticator, "/login", { counter: 1 });
    expect(refused.status).toBe(403);
    const page = await refused.text();
    expect(page).toContain("This passkey was not accepted");
    expect(page).toContain("copied");
    expect(sessionCookieOf(refused)).toBeNull();
    expect(await sessionsOf(user.id)).toHaveLength(before);
    expect((await getPasskey(env.DB, passkey.id))!.counter).toBe(2);
    const events = await auditEvents("passkey.counter_regression", user.id);
    expect(events).toHaveLength(1);
    expect(JSON.parse(events[0]!.data!)).toMatchObject({ credential_id: passkey.id, presented_counter: 1 });
    expect(warnings.mock.calls.some(([line]) => String(line).includes('"event":"passkey.counter_regression"'))).toBe(true);

    // The same value again, and zero after counting: refused the same way.
    expect((await passkeySignIn(other, authenticator, "/login", { counter: 2 })).status).toBe(403);
    expect((await passkeySignIn(other, authenticator, "/login", { counter: 0 })).status).toBe(403);
    expect(await auditEvents("passkey.counter_regression", user.id)).toHaveLength(3);
    // The real authenticator, one ahead, still works.
    expect((await passkeySignIn(browser, authenticator, "/login", { counter: 3 })).status).toBe(303);
  });

  it("20 concurrent sign-ins presenting the same counter: at most one succeeds, every other is refused and audited", async () => {
    const { authenticator, user, passkey } = await userWithPasskey(uniqueEmail("race"));
    const browser = new Browser();
    const fields = await signInPageFields(browser);
    // Twenty ceremonies (twenty challenges), each answered with counter 7: one authenticator and its copies.
    const ceremonies = await Promise.all(
      Array.from({ length: 20 }, async () => {
        const options = await signInOptions(browser, fields);
        return { challenge: options.challenge, response: await authenticator.get(options.publicKey, { counter: 7 }) };
      }),
    );
    const before = (await sessionsOf(user.id)).length;
    const answers = await Promise.all(ceremonies.map((c) => submitAssertion(browser, fields, c.challenge, c.response)));
    const succeeded = answers.filter((a) => a.status === 303 && sessionCookieOf(a) !== null);
    expect(succeeded.length).toBeLessThanOrEqual(1);
    expect(succeeded).toHaveLength(1);
    expect(answers.filter((a) => a.status === 403)).toHaveLength(19);
    expect(await sessionsOf(user.id)).toHaveLength(before + 1);
    expect((await getPasskey(env.DB, passkey.id))!.counter).toBe(7);
    expect(await auditEvents("passkey.counter_regression", user.id)).toHaveLength(19);
  });

  it("an authenticator that keeps no counter (always 0) signs in again and again", async () => {
    const { authenticator, passkey } = await userWithPasskey(uniqueEmail("nocounter"), { counts: false, synced: true });
    const browser = new Browser();
    for (let i = 0; i < 3; i++) expect((await passkeySignIn(browser, authenticator)).status).toBe(303);
    const after = (await getPasskey(env.DB, passkey.id))!;
    expect(after.counter).toBe(0);
    expect(after.deviceType).toBe("multiDevice");
    expect(after.backedUp).toBe(true);
  });

  it("a replayed assertion is refused: its challenge was used, and nothing is audited as a clone", async () => {
    const { authenticator, user } = await userWithPasskey(uniqueEmail("replay"));
    const browser = new Browser();
    const fields = await signInPageFields(browser);
    const options = await signInOptions(browser, fields);
    const response = await authenticator.get(options.publicKey);
    expect((await submitAssertion(browser, fields, options.challenge, response)).status).toBe(303);
    const sessions = (await sessionsOf(user.id)).length;
    const replayed = await submitAssertion(browser, fields, options.challenge, response);
    expect(replayed.status).toBe(400);
    expect(sessionCookieOf(replayed)).toBeNull();
    // With a new challenge, the old assertion signs the wrong one.
    const fresh = await signInOptions(browser, fields);
    const wrongChallenge = await submitAssertion(browser, fields, fresh.challenge, response);
    expect(wrongChallenge.status).toBe(400);
    expect(await sessionsOf(user.id)).toHaveLength(sessions);
    expect(await auditEvents("passkey.counter_regression", user.id)).toHaveLength(0);
  });
});

describe("WebAuthn challenges are single-use (C11)", () => {
  it("50 concurrent submissions of one authentication response: exactly one session", async () => {
    const { authenticator, user, passkey } = await userWithPasskey(uniqueEmail("c11"));
    const browser = new Browser();
    const fields = await signInPageFields(browser);
    const options = await signInOptions(browser, fields);
    const response = await authenticator.get(options.publicKey);
    const before = await sessionsOf(user.id);

    const answers = await Promise.all(Array.from({ length: 50 }, () => submitAssertion(browser, fields, options.challenge, response)));
    const withCookie = answers.filter((a) => sessionCookieOf(a) !== null);
    expect(withCookie).toHaveLength(1);
    expect(withCookie[0]!.status).toBe(303);
    expect(answers.filter((a) => a.status === 400)).toHaveLength(49);
    expect(answers.every((a) => a.status < 500)).toBe(true);
    const after = await sessionsOf(user.id);
    expect(after).toHaveLength(before.length + 1);
    expect(after.map((s) => s.sid)).toContain(parseSessionCookie(sessionCookieOf(withCookie[0]!)!)!.sid);
    // One ceremony moved the counter once, and a duplicate is no clone.
    expect((await getPasskey(env.DB, passkey.id))!.counter).toBe(1);
    expect(await auditEvents("passkey.counter_regression", user.id)).toHaveLength(0);
    const peeked = await challengeStoreFor(env, options.challenge)!.peek(options.challenge);
    expect(peeked.status).toBe("consumed");
  });

  it("50 concurrent submissions of one registration response: one passkey", async () => {
    const { browser, authenticator, user, csrf } = await userWithPasskey(uniqueEmail("c11reg"));
    const options = await registrationOptions(browser, { csrf_token: csrf });
    const response = await authenticator.create(options.publicKey);
    const answers = await Promise.all(Array.from({ length: 50 }, () => submitRegistration(browser, { csrf_token: csrf }, options.challenge, response)));
    expect(answers.filter((a) => a.status === 303)).toHaveLength(1);
    expect(answers.every((a) => a.status < 500)).toBe(true);
    expect(await listPasskeys(env.DB, user.id)).toHaveLength(2);
    expect(await auditEvents("passkey.registered", user.id)).toHaveLength(2);
  });
});

describe("a step failing half-way through (C12)", () => {
  /** D1 as the Worker sees it, except that every batch (the passkey's insert and its audit event) fails. */
  function d1BatchFailing(): Env {
    const DB = new Proxy(env.DB, {
      get: (target, name) =>
        name === "batch" ? () => Promise.reject(new Error("D1_ERROR: storage unavailable")) : Reflect.get(target, name, target).bind?.(target) ?? Reflect.get(target, name, target),
    });
    return { ...env, DB } as unknown as Env;
  }

  it("D1 failing while a new passkey is stored: no credential, still signed in, and a retry with a new challenge stores it", async () => {
    const browser = new Browser();
    const email = uniqueEmail("c12reg");
    await emailSignIn(browser, "/login", email, false);
    const user = (await findUserByEmail(env.DB, email))!;
    const csrf = browser.cookies.get("oidc_csrf")!;
    const authenticator = new SoftAuthenticator(ORIGIN);
    const options = await registrationOptions(browser, { csrf_token: csrf });
    const response = await authenticator.create(options.publicKey);

    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const failed = await finishPasskeyRegistration(
      postOf(browser, "/passkeys/register", { csrf_token: csrf, from: "account", challenge: options.challenge, response: JSON.stringify(response) }),
      d1BatchFailing(),
    );
    logged.mockRestore();
    expect(failed.status).toBe(503);
    expect(await failed.text()).toContain("You are still signed in");
    expect(await listPasskeys(env.DB, user.id)).toHaveLength(0);
    expect(await auditEvents("passkey.registered", user.id)).toHaveLength(0);

    // Still signed in where they were.
    const account = await browser.get("/account");
    expect(account.status).toBe(200);
    expect(await account.text()).toContain(email);

    // The used challenge cannot be replayed into a second credential; a new ceremony works.
    expect((await submitRegistration(browser, { csrf_token: csrf }, options.challenge, response)).status).toBe(400);
    const retried = await addPasskey(browser, authenticator, csrf);
    expect(retried.status).toBe(303);
    expect(await listPasskeys(env.DB, user.id)).toHaveLength(1);
  });

  it("a failure after the challenge was used (the session step) lets the same response finish the same session, once", async () => {
    const { authenticator, user, passkey } = await userWithPasskey(uniqueEmail("c12signin"));
    const browser = new Browser();
    const fields = await signInPageFields(browser);
    const options = await signInOptions(browser, fields);
    const form = { ...fields, challenge: options.challenge, response: JSON.stringify(await authenticator.get(options.publicKey)) };
    const sessionsDown = {
      ...env,
      SESSIONS: {
        idFromName: (name: string) => env.SESSIONS.idFromName(name),
        get: () => ({ createSession: () => Promise.reject(new Error("Durable Object reset")) }),
      },
    } as unknown as Env;
    const before = (await sessionsOf(user.id)).length;

    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const failed = await finishPasskeySignIn(postOf(browser, "/login/passkey", form), sessionsDown);
    logged.mockRestore();
    expect(failed.status).toBe(503);
    expect(sessionCookieOf(failed)).toBeNull();
    const tombstone = await challengeStoreFor(env, options.challenge)!.peek(options.challenge);
    expect(tombstone.status).toBe("consumed");
    const recorded = tombstone.status === "consumed" ? tombstone.outcome! : null;
    expect((await getPasskey(env.DB, passkey.id))!.counter).toBe(1);

    // The browser submits the same form again (a reload): the recorded session, and the counter is not a clone.
    const retried = await browser.post("/login/passkey", form);
    expect(retried.status).toBe(303);
    expect(parseSessionCookie(sessionCookieOf(retried)!)!.sid).toBe(recorded!.sessionId);
    expect(await auditEvents("passkey.counter_regression", user.id)).toHaveLength(0);
    // And then it is spent.
    const third = await browser.post("/login/passkey", form);
    expect(third.status).toBe(400);
    expect(sessionCookieOf(third)).toBeNull();
    expect(await sessionsOf(user.id)).toHaveLength(before + 1);
  });
});

describe("bad input is a clear page or JSON error, never a 5xx, and changes nothing", () => {
  it("at sign-in: malformed, mismatched or forged responses are refused and the challenge stays usable", async () => {
    const { authenticator, user, passkey } = await userWithPasskey(uniqueEmail("badsignin"));
    const other = await userWithPasskey(uniqueEmail("badsignin-other"));
    const browser = new Browser();
    const fields = await signInPageFields(browser);
    const options = await signInOptions(browser, fields);
    const good = async (tamper = {}) => authenticator.get(options.publicKey, { counter: 0, ...tamper });
    const sessionsBefore = (await sessionsOf(user.id)).length;

    const cases: Array<[string, () => Promise<unknown>]> = [
      ["clientDataJSON is not base64url", async () => ({ ...(await good()), response: { ...(await good()).response, clientDataJSON: "%%%not-base64url" } })],
      ["clientDataJSON is not JSON", async () => good({ clientDataJSON: "bm90IGpzb24" })],
      ["wrong origin", async () => good({ origin: "https://evil.example" })],
      ["wrong RP ID", async () => good({ rpId: "evil.example" })],
      ["wrong challenge", async () => good({ challenge: "bm90LXRoZS1jaGFsbGVuZ2U" })],
      ["wrong type", async () => good({ type: "webauthn.create" })],
      ["forged signature", async () => good({ counter: 5, forgeSignature: true })],
      ["another user's handle", async () => good({ userHandle: other.passkey.userId })],
      ["unknown credential", async () => ({ ...(await good()), id: "dW5rbm93bi1jcmVkZW50aWFsLWlk", rawId: "dW5rbm93bi1jcmVkZW50aWFsLWlk" })],
      ["not JSON", async () => "{"],
      ["the wrong shape", async () => ({ id: 1, response: [] })],
      ["an oversized member", async () => ({ ...(await good()), response: { ...(await good()).response, signature: "A".repeat(9000) } })],
    ];
    for (const [name, make] of cases) {
      const answer = await submitAssertion(browser, fields, options.challenge, await make());
      expect(answer.status, name).toBe(400);
      expect(answer.headers.get("content-type"), name).toContain("text/html");
      expect(sessionCookieOf(answer), name).toBeNull();
    }
    const raw = [
      ["no response", { ...fields, challenge: options.challenge }],
      ["no challenge", { ...fields, response: JSON.stringify(await good()) }],
      ["a challenge id that is not ours", { ...fields, challenge: "not-a-challenge", response: JSON.stringify(await good()) }],
    ] as const;
    for (const [name, form] of raw) expect((await browser.post("/login/passkey", form)).status, name).toBe(400);
    const noCsrf = await browser.post("/login/passkey", { challenge: options.challenge, response: JSON.stringify(await good()) });
    expect(noCsrf.status).toBe(403);
    const oversized = await browser.post("/login/passkey", { ...fields, challenge: options.challenge, response: "x".repeat(70 * 1024) });
    expect(oversized.status).toBe(413);

    // Another browser cannot use this browser's challenge (its CSRF cookie differs).
    const stranger = new Browser();
    const strangerFields = await signInPageFields(stranger);
    expect((await submitAssertion(stranger, strangerFields, options.challenge, await good({ counter: 9 }))).status).toBe(400);
    // A registration challenge is not a sign-in challenge.
    const registration = await registrationOptions(other.browser, { csrf_token: other.csrf });
    expect((await submitAssertion(other.browser, { csrf_token: other.csrf }, registration.challenge, await good({ counter: 10 }))).status).toBe(400);

    // Nothing changed: no session, no counter move, no clone verdict — and the challenge still works.
    expect(await sessionsOf(user.id)).toHaveLength(sessionsBefore);
    expect((await getPasskey(env.DB, passkey.id))!.counter).toBe(0);
    expect(await auditEvents("passkey.counter_regression", user.id)).toHaveLength(0);
    expect((await challengeStoreFor(env, options.challenge)!.peek(options.challenge)).status).toBe("active");
    const genuine = await submitAssertion(browser, fields, options.challenge, await good({ counter: 11 }));
    expect(genuine.status).toBe(303);
  });

  it("at registration: mismatched responses, another user's credential, another session's challenge are refused; nothing is stored", async () => {
    const owner = await userWithPasskey(uniqueEmail("owner"));
    const { browser, user, csrf } = await userWithPasskey(uniqueEmail("badreg"));
    const authenticator = new SoftAuthenticator(ORIGIN);
    const options = await registrationOptions(browser, { csrf_token: csrf });
    const submit = async (response: unknown) => submitRegistration(browser, { csrf_token: csrf }, options.challenge, response);
    const make = (tamper = {}) => authenticator.create(options.publicKey, tamper);

    const cases: Array<[string, () => Promise<unknown>]> = [
      ["wrong origin", () => make({ origin: "https://evil.example" })],
      ["wrong RP ID", () => make({ rpId: "evil.example" })],
      ["wrong challenge", () => make({ challenge: "bm90LXRoZS1jaGFsbGVuZ2U" })],
      ["wrong type", () => make({ type: "webauthn.get" })],
      ["malformed clientDataJSON", () => make({ clientDataJSON: "bm90IGpzb24" })],
      ["malformed attestationObject", async () => ({ ...(await make()), response: { ...(await make()).response, attestationObject: "AAAA" } })],
      ["not JSON", async () => "[["],
      ["another user's credential id", () => make({ credentialId: owner.passkey.id })],
    ];
    for (const [name, response] of cases) {
      const answer = await submit(await response());
      expect(answer.status, name).toBe(400);
      expect(answer.headers.get("content-type"), name).toContain("text/html");
    }
    // The other user's passkey is untouched.
    expect(await getPasskey(env.DB, owner.passkey.id)).toEqual(owner.passkey);

    // This session's challenge, submitted by another signed-in browser: refused.
    expect((await submitRegistration(owner.browser, { csrf_token: owner.csrf }, options.challenge, await make())).status).toBe(400);
    // Not signed in: refused, at the options and at the finish.
    const anonymous = new Browser();
    const anonymousFields = await signInPageFields(anonymous);
    const noOptions = await anonymous.post("/passkeys/register/options", { csrf_token: anonymousFields.csrf_token });
    expect(noOptions.status).toBe(403);
    expect(await noOptions.json()).toMatchObject({ error: "login_required" });
    expect((await submitRegistration(anonymous, anonymousFields, options.challenge, await make())).status).toBe(403);

    expect(await listPasskeys(env.DB, user.id)).toHaveLength(1);
    expect(await auditEvents("passkey.registered", user.id)).toHaveLength(1);
    // The challenge was never used up by a refusal.
    expect((await submit(await make())).status).toBe(303);
    expect(await listPasskeys(env.DB, user.id)).toHaveLength(2);
  });

  it("the options endpoints answer JSON errors: no CSRF token, a cross-site post, an unknown interaction", async () => {
    const browser = new Browser();
    const fields = await signInPageFields(browser);
    const noToken = await browser.post("/login/passkey/options", {});
    expect(noToken.status).toBe(403);
    expect(noToken.headers.get("content-type")).toBe("application/json");
    const crossSite = await browser.fetch("/login/passkey/options", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "cross-site" },
      body: new URLSearchParams(fields).toString(),
    });
    expect(crossSite.status).toBe(403);
    const unknownInteraction = await browser.post("/login/passkey/options", { ...fields, interaction: "0.doesnotexistdoesnotexist" });
    expect(unknownInteraction.status).toBe(400);
    expect(await unknownInteraction.json()).toMatchObject({ error: "invalid_request" });
    const wrongType = await browser.fetch("/login/passkey/options", { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(wrongType.status).toBe(400);
  });
});

describe("acr: a client that asks for a phishing-resistant sign-in gets a passkey ceremony, not an email link", () => {
  const essential = (values: string[]) => JSON.stringify({ id_token: { acr: { essential: true, values } } });

  async function idTokenOf(client: Awaited<ReturnType<typeof makeConfidentialClient>>, browser: Browser, signedIn: Response, verifier: string) {
    const code = responseParams(await followLocal(browser, signedIn)).params.get("code")!;
    const tokens = await redeemAtToken(client, { code, verifier, grant: {} as never });
    return (await verifyIdToken(tokens.id_token!, client.clientId)).payload;
  }

  it("essential phr: the sign-in page offers only the passkey, no link is sent, and the ID token says acr phr", async () => {
    const { authenticator, user } = await userWithPasskey(uniqueEmail("phr"));
    const client = await makeConfidentialClient({ skip_consent: true });
    const browser = new Browser();
    const { verifier, params } = await authorizeParams(client.clientId, { claims: essential(["phr"]) });
    const loginPath = (await browser.get(authorizeUrl(params))).headers.get("location")!;
    const page = await (await browser.get(loginPath)).text();
    expect(page).toContain("asks you to sign in with a passkey");
    expect(page).toContain('action="/login/passkey"');
    expect(page).not.toContain('action="/login"');

    // A link asked for anyway (a form from elsewhere) is refused, and no email goes out.
    const fields = formFields(page);
    const refused = await browser.post("/login", { ...fields, email: user.email });
    expect(refused.status).toBe(403);
    expect(await (await browser.get(`/dev/mailbox?to=${encodeURIComponent(user.email)}`)).json()).toHaveLength(1); // the helper's own

    const payload = await idTokenOf(client, browser, await passkeySignIn(browser, authenticator, loginPath), verifier);
    expect(payload).toMatchObject({ sub: user.id, acr: "phr", amr: ["hwk", "user", "mfa"] });
  });

  it("a device-bound passkey meets phrh; a synced one does not, so an essential phrh is access_denied after its sign-in", async () => {
    const client = await makeConfidentialClient({ skip_consent: true });
    const bound = await userWithPasskey(uniqueEmail("phrh"));
    const browser = new Browser();
    const first = await authorizeParams(client.clientId, { claims: essential(["phrh"]) });
    const loginPath = (await browser.get(authorizeUrl(first.params))).headers.get("location")!;
    expect(await idTokenOf(client, browser, await passkeySignIn(browser, bound.authenticator, loginPath), first.verifier)).toMatchObject({ acr: "phrh", amr: ["hwk", "user", "mfa"] });

    const synced = await userWithPasskey(uniqueEmail("synced"), { synced: true, counts: false });
    const other = new Browser();
    const second = await authorizeParams(client.clientId, { claims: essential(["phrh"]) });
    const path = (await other.get(authorizeUrl(second.params))).headers.get("location")!;
    const answer = responseParams(await followLocal(other, await passkeySignIn(other, synced.authenticator, path))).params;
    expect(answer.get("error")).toBe("access_denied");
    // Asked for either, the synced passkey meets phr.
    const third = await authorizeParams(client.clientId, { claims: essential(["phrh", "phr"]) });
    const again = (await other.get(authorizeUrl({ ...third.params, prompt: "login" }))).headers.get("location")!;
    expect(await idTokenOf(client, other, await passkeySignIn(other, synced.authenticator, again), third.verifier)).toMatchObject({ acr: "phr", amr: ["swk", "user", "mfa"] });
  });

  it("acr_values=phr (voluntary): the passkey comes first, the email link still works and then no acr is claimed", async () => {
    const client = await makeConfidentialClient({ skip_consent: true });
    const browser = new Browser();
    const { verifier, params } = await authorizeParams(client.clientId, { acr_values: "phr" });
    const loginPath = (await browser.get(authorizeUrl(params))).headers.get("location")!;
    const page = await (await browser.get(loginPath)).text();
    expect(page).toContain("asks you to sign in with a passkey");
    expect(page.indexOf('action="/login/passkey"')).toBeLessThan(page.indexOf('action="/login"'));
    const payload = await idTokenOf(client, browser, await emailSignIn(browser, loginPath, uniqueEmail("voluntary"), false), verifier);
    expect(payload.amr).toEqual(["email"]);
    expect(payload.acr).toBeUndefined();
  });

  it("an email session does not answer an essential phr: prompt=none is login_required, otherwise the passkey sign-in page", async () => {
    const { browser } = await userWithPasskey(uniqueEmail("upgrade"));
    const client = await makeConfidentialClient({ skip_consent: true });
    const none = await authorizeParams(client.clientId, { claims: essential(["phr"]), prompt: "none" });
    expect(responseParams(await browser.get(authorizeUrl(none.params))).params.get("error")).toBe("login_required");
    const asked = await authorizeParams(client.clientId, { claims: essential(["phr"]) });
    const start = await browser.get(authorizeUrl(asked.params));
    expect(start.headers.get("location")).toMatch(/^\/login\?interaction=/);
    expect(await (await browser.get(start.headers.get("location")!)).text()).not.toContain('action="/login"');
  });
});
