import { SELF, createExecutionContext, env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../src/config";
import { grantedScopes } from "../src/db/consents";
import { devMessagesTo } from "../src/db/dev-mailbox";
import { findUserByEmail } from "../src/db/users";
import type { Env } from "../src/env";
import worker from "../src/index";
import { challengeStoreFor, userSessionsFor } from "../src/objects/locate";
import { parseSessionCookie } from "../src/objects/sessions";
import { devMailbox } from "../src/routes/dev-mailbox";
import { isEmailAddress } from "../src/lib/email-address";
import { sendLoginLink } from "../src/routes/login";
import { sessionCookie } from "../src/routes/support/browser-session";
import {
  Browser,
  ORIGIN,
  REDIRECT_URI,
  authorizeUrl,
  decide,
  followLink,
  followLocal,
  formFields,
  mailbox,
  makeClient,
  pkcePair,
  redeem,
  requestLink,
  responseParams,
  signIn,
  tokenOfLink,
  uniqueAddress,
  uniqueEmail,
} from "./helpers/front-channel";

afterEach(() => vi.useRealTimers());

async function startAuthorization(browser: Browser, clientId: string, extra: Record<string, string> = {}) {
  const { verifier, challenge } = await pkcePair();
  const params = {
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    scope: "openid email",
    state: `st-${crypto.randomUUID()}`,
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...extra,
  };
  const response = await browser.get(authorizeUrl(params));
  return { verifier, params, location: response.headers.get("location")! };
}

function sessionCookieOf(response: Response): string | null {
  const header = response.headers.getAll("set-cookie").find((c) => c.startsWith("oidc_session="));
  return header === undefined ? null : header.slice("oidc_session=".length).split(";")[0]!;
}

/** A form post with cookies and fields exactly as given (for CSRF and session checks). */
function challengeOf(token: string) {
  return challengeStoreFor(env, token)!;
}

describe("the sign-in page and the email link", () => {
  it("the form has an input named email, prefilled from login_hint, escaped, with a CSRF token", async () => {
    const client = await makeClient();
    const browser = new Browser();
    const { location } = await startAuthorization(browser, client.client_id, { login_hint: "Hint@Example.com" });
    const page = await browser.get(location);
    expect(page.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
    const html = await page.text();
    expect(html).toMatch(/<input type="email" id="email" name="email" value="Hint@Example.com"/);
    expect(html).toContain("Front Channel Test App");
    const fields = formFields(html);
    expect(fields.csrf_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(browser.cookies.get("oidc_csrf")).toBe(fields.csrf_token);

    const { location: hostile } = await startAuthorization(browser, client.client_id, { login_hint: '"><script>x()</script>' });
    const hostileHtml = await (await browser.get(hostile)).text();
    expect(hostileHtml).not.toContain("<script>x()");
  });

  it("sends a single-use link; the same page whether or not the address has an account; the link resumes the request", async () => {
    const client = await makeClient({ skip_consent: true });
    const browser = new Browser();
    const { verifier, location } = await startAuthorization(browser, client.client_id);
    const email = uniqueEmail();
    const linkPath = await requestLink(browser, location, email);
    const [message] = await mailbox(email);
    expect(message).toMatchObject({ to: email, subject: "Your sign-in link" });
    expect(message!.text).toContain(message!.link!);
    expect(message!.link!.startsWith(`${ORIGIN}/login/email?token=`)).toBe(true);
    expect(await findUserByEmail(env.DB, email)).toBeNull(); // nothing is created until the link is used

    // Opening the link (GET) does not use it: a mail scanner's prefetch leaves it working.
    const confirm = await browser.get(linkPath);
    expect(confirm.status).toBe(200);
    const confirmHtml = await confirm.text();
    expect(confirmHtml).toContain(email);
    expect(confirmHtml).not.toContain("requested from another browser");
    expect((await challengeOf(tokenOfLink(linkPath)).peek(tokenOfLink(linkPath))).status).toBe("active");
    // Opened in another browser (a phone, or a link someone else sent): allowed, but the page names the account and says so.
    expect(await (await new Browser().get(linkPath)).text()).toContain("requested from another browser");

    const finished = await followLink(browser, linkPath);
    const cookie = sessionCookieOf(finished)!;
    const header = finished.headers.getAll("set-cookie").find((c) => c.startsWith("oidc_session="))!;
    expect(header).toMatch(/; Path=\//);
    expect(header).toMatch(/; HttpOnly/);
    expect(header).toMatch(/; SameSite=Lax/);
    expect(header).not.toMatch(/Secure/); // plain http://localhost
    const user = await findUserByEmail(env.DB, email);
    expect(user).not.toBeNull(); // created on first sign-in
    const parsed = parseSessionCookie(cookie)!;
    expect(parsed.userId).toBe(user!.id);
    const [session] = await userSessionsFor(env, user!.id)!.listSessions();
    expect(session).toMatchObject({ sid: parsed.sid, amr: ["email"], acr: null });
    // The cookie lives exactly as long as the session may: the session lifetime setting.
    const { sessionTtl } = loadConfig(env);
    expect(header).toMatch(new RegExp(`; Max-Age=${sessionTtl}(;|$)`));
    expect(session!.expiresAt - session!.createdAt).toBe(sessionTtl * 1000);
    expect(Math.abs(session!.authTime - Date.now() / 1000)).toBeLessThan(60);

    const done = await followLocal(browser, finished); // skip_consent: straight to the code
    const answer = responseParams(done).params;
    const grant = await redeem(answer.get("code")!, client.client_id, verifier);
    expect(grant.sub).toBe(user!.id);
    // Recorded off the response's path (waitUntil).
    await expect.poll(async () => (await userSessionsFor(env, user!.id)!.listSessions())[0]!.clients, { timeout: 5000, interval: 20 }).toEqual([client.client_id]);

    // A used link is spent: its page says so, and a second POST sets no cookie.
    const reopened = await browser.get(linkPath);
    expect(reopened.status).toBe(400);
    const replay = await browser.post("/login/email", { csrf_token: browser.cookies.get("oidc_csrf")!, token: tokenOfLink(linkPath) });
    expect(replay.status).toBe(400);
    expect(sessionCookieOf(replay)).toBeNull();

    // A second sign-in with the same address is the same user (sub), in a new session.
    const again = new Browser();
    const { location: second } = await startAuthorization(again, client.client_id);
    const secondDone = await followLocal(again, await signIn(again, second, email.toUpperCase()));
    expect(responseParams(secondDone).params.get("code")).toBeTruthy();
    expect(parseSessionCookie(again.cookies.get("oidc_session")!)!.userId).toBe(user!.id);
    expect(await userSessionsFor(env, user!.id)!.listSessions()).toHaveLength(2);
  });

  it("without a sign-in request, the link signs in and says so", async () => {
    const browser = new Browser();
    const email = uniqueEmail();
    const page = await browser.get("/login");
    expect(page.status).toBe(200);
    const fields = formFields(await page.text());
    expect((await browser.post("/login", { ...fields, email })).status).toBe(200);
    const [message] = await mailbox(email);
    const done = await followLink(browser, new URL(message!.link!).pathname + new URL(message!.link!).search);
    expect(done.status).toBe(200);
    expect(await done.text()).toContain("You are signed in");
    expect(sessionCookieOf(done)).not.toBeNull();
  });

  it("a disabled account gets a page and no session", async () => {
    const browser = new Browser();
    const email = uniqueEmail();
    const first = await followLink(browser, await requestLink(browser, "/login", email));
    expect(sessionCookieOf(first)).not.toBeNull();
    const user = await findUserByEmail(env.DB, email);
    await env.DB.prepare("UPDATE users SET disabled = 1 WHERE id = ?").bind(user!.id).run();
    const other = new Browser();
    const refused = await followLink(other, await requestLink(other, "/login", email));
    expect(refused.status).toBe(403);
    expect(sessionCookieOf(refused)).toBeNull();
    expect(await userSessionsFor(env, user!.id)!.listSessions()).toHaveLength(1);
  });

  it("an unknown, malformed or expired link is a page, never a session", async () => {
    const browser = new Browser();
    for (const token of ["", "nope", "0.AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "<script>", "z".repeat(5000)]) {
      expect((await browser.get(`/login/email?token=${encodeURIComponent(token)}`)).status).toBe(400);
    }
    vi.useFakeTimers({ toFake: ["Date"] });
    const t0 = Date.UTC(2031, 0, 1);
    vi.setSystemTime(t0);
    const email = uniqueEmail();
    const page = await browser.get("/login");
    await browser.post("/login", { ...formFields(await page.text()), email });
    const link = (await mailbox(email))[0]!.link!;
    const path = new URL(link).pathname + new URL(link).search;
    const confirm = await browser.get(path);
    vi.setSystemTime(t0 + (loadConfig(env).magicLinkTtl + 1) * 1000);
    const late = await browser.post("/login/email", formFields(await confirm.text()));
    expect(late.status).toBe(400);
    expect(sessionCookieOf(late)).toBeNull();
    expect(await findUserByEmail(env.DB, email)).toBeNull();
  });

  it("an invalid address re-shows the form (400) and sends nothing", async () => {
    const browser = new Browser();
    const page = await browser.get("/login");
    const fields = formFields(await page.text());
    const invalid = ["", "not-an-email", "a@b", "a b@example.com", "x@example.com\r\nBcc: victim@example.com", `${"a".repeat(250)}@example.com`,
      "../../etc/passwd@example.com", ".a@example.com", "a..b@example.com", "a.@example.com", "user%relay@example.com", "a@b@example.com", "a@-x.example"];
    for (const email of invalid) {
      const response = await browser.post("/login", { ...fields, email });
      expect(response.status).toBe(400);
      expect(await response.text()).toContain('name="email"');
    }
    expect(await mailbox("x@example.com")).toEqual([]);
    for (const email of ["first.last+tag@sub.example.co.uk", "o'brien@example.com", "x_y-z@example-mail.org"]) expect(isEmailAddress(email)).toBe(true);
  });

  it("CSRF: a POST without the cookie-bound token is 403 and changes nothing", async () => {
    const client = await makeClient();
    const browser = new Browser();
    const { location } = await startAuthorization(browser, client.client_id);
    const fields = formFields(await (await browser.get(location)).text());
    const email = uniqueEmail();

    const noToken = await browser.post("/login", { interaction: fields.interaction!, email });
    const wrongToken = await browser.post("/login", { ...fields, csrf_token: "A".repeat(43), email });
    const attacker = new Browser(); // has no CSRF cookie at all
    const crossSite = await attacker.post("/login", { ...fields, email });
    for (const response of [noToken, wrongToken, crossSite]) {
      expect(response.status).toBe(403);
      expect(response.headers.get("content-type")).toContain("text/html");
    }
    expect(await mailbox(email)).toEqual([]);

    // The link POST and the consent POST are protected the same way.
    const linkPath = await requestLink(browser, location, email);
    const linkFields = formFields(await (await browser.get(linkPath)).text());
    const forged = await attacker.post("/login/email", linkFields);
    expect(forged.status).toBe(403);
    expect(sessionCookieOf(forged)).toBeNull();
    expect((await challengeOf(linkFields.token!).peek(linkFields.token!)).status).toBe("active");
  });

  it("over the per-address limit: the same 'check your email' page, no new email, no cookie, and the last link still signs in", async () => {
    const limit = loadConfig(env).rateLimitLogin;
    // A frozen clock inside one window, so the counts are exact.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime((Math.floor(Date.now() / 60_000) + 1) * 60_000 + 1000);
    const email = uniqueEmail();
    // For one address, from many client addresses (an attacker's, say): exactly `limit` emails go out under concurrency.
    const browsers = await Promise.all(
      Array.from({ length: limit + 3 }, async () => {
        const browser = new Browser();
        const fields = formFields(await (await browser.get("/login")).text());
        return { browser, fields };
      }),
    );
    const byEmail = await Promise.all(browsers.map(({ browser, fields }) => browser.post("/login", { ...fields, email })));
    // Each page carries its own browser's CSRF token (in its "send again" form); nothing else tells them apart.
    const pages = await Promise.all(byEmail.map(async (r) => (await r.clone().text()).replace(/name="csrf_token" value="[^"]*"/, "")));
    expect(byEmail.map((r) => r.status)).toEqual(byEmail.map(() => 200));
    expect(new Set(pages).size).toBe(1);
    expect(pages[0]).toContain("Check your email");
    expect(byEmail.filter((r) => r.headers.has("set-cookie"))).toHaveLength(limit);
    expect(await mailbox(email)).toHaveLength(limit);

    // The owner, asking once more in the same window, gets the same page and no email: the last link mailed works.
    const owner = new Browser();
    const ownerFields = formFields(await (await owner.get("/login")).text());
    const again = await owner.post("/login", { ...ownerFields, email });
    expect(again.status).toBe(200);
    expect(again.headers.has("set-cookie")).toBe(false);
    expect((await again.text()).replace(/name="csrf_token" value="[^"]*"/, "")).toBe(pages[0]);
    const messages = await mailbox(email);
    expect(messages).toHaveLength(limit);
    const link = new URL(messages[0]!.link!);
    expect(sessionCookieOf(await followLink(owner, `${link.pathname}${link.search}`))).not.toBeNull();

    // The next window mails again.
    vi.setSystemTime(Date.now() + 60_000);
    expect((await owner.post("/login", { ...ownerFields, email })).status).toBe(200);
    expect(await mailbox(email)).toHaveLength(limit + 1);
  });

  it("per client address, POST /login is still 429 with Retry-After", async () => {
    const limit = loadConfig(env).rateLimitLogin;
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime((Math.floor(Date.now() / 60_000) + 1) * 60_000 + 1000);
    const browser = new Browser();
    const fields = formFields(await (await browser.get("/login")).text());
    const responses: Response[] = [];
    for (let i = 0; i <= limit; i++) responses.push(await browser.post("/login", { ...fields, email: uniqueEmail() }));
    expect(responses.slice(0, limit).every((r) => r.status === 200)).toBe(true);
    expect(responses[limit]!.status).toBe(429);
    expect(Number(responses[limit]!.headers.get("retry-after"))).toBeGreaterThan(0);
  });

  it("LOGIN_EMAILS_PER_DAY bounds the emails to one address per day, whatever the windows; the next day mails again", async () => {
    const capped = { ...env, LOGIN_EMAILS_PER_DAY: "3" } as Env;
    const day = Math.floor(Date.now() / 86_400_000) + 1;
    vi.useFakeTimers({ toFake: ["Date"] });
    const email = uniqueEmail();
    const ask = async () => {
      const browser = new Browser();
      const fields = formFields(await (await browser.get("/login")).text());
      const response = await sendLoginLink(
        new Request(`${ORIGIN}/login`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", cookie: `oidc_csrf=${fields.csrf_token}`, "cf-connecting-ip": browser.ip },
          body: new URLSearchParams({ ...fields, email }).toString(),
        }),
        capped,
      );
      expect(response.status).toBe(200);
      expect(await response.text()).toContain("Check your email");
    };
    // One request per window, all day long: three emails, then none.
    for (let minute = 0; minute < 10; minute++) {
      vi.setSystemTime(day * 86_400_000 + minute * 60_000 + 1000);
      await ask();
    }
    expect(await mailbox(email)).toHaveLength(3);
    vi.setSystemTime((day + 1) * 86_400_000 + 1000);
    await ask();
    expect(await mailbox(email)).toHaveLength(4);
  });
});

describe("one link, one session (C11, C12)", () => {
  it("concurrent POSTs of the same link: exactly one response sets a session cookie, and one session exists", async () => {
    const client = await makeClient({ skip_consent: true });
    const browser = new Browser();
    const { location } = await startAuthorization(browser, client.client_id);
    const email = uniqueEmail();
    const linkPath = await requestLink(browser, location, email);
    const fields = formFields(await (await browser.get(linkPath)).text());

    const responses = await Promise.all(Array.from({ length: 12 }, () => browser.post("/login/email", fields)));
    const withCookie = responses.filter((r) => sessionCookieOf(r) !== null);
    expect(withCookie).toHaveLength(1);
    expect(withCookie[0]!.status).toBe(303);
    expect(responses.filter((r) => r.status === 400)).toHaveLength(11);
    const user = await findUserByEmail(env.DB, email);
    const sessions = await userSessionsFor(env, user!.id)!.listSessions();
    expect(sessions).toHaveLength(1);
    expect(parseSessionCookie(sessionCookieOf(withCookie[0]!)!)!.sid).toBe(sessions[0]!.sid);
  });

  it("a failure after the link was used (D1 refuses the user step) lets the same link finish the same session, once", async () => {
    const client = await makeClient({ skip_consent: true });
    const browser = new Browser();
    const { verifier, location } = await startAuthorization(browser, client.client_id);
    const email = uniqueEmail();
    const linkPath = await requestLink(browser, location, email);
    const token = tokenOfLink(linkPath);
    const fields = formFields(await (await browser.get(linkPath)).text());

    // A real failure of the step after the consume: D1 refuses to create the user.
    await env.DB.prepare("CREATE TRIGGER users_offline BEFORE INSERT ON users BEGIN SELECT RAISE(ABORT, 'users offline'); END").run();
    const logged: string[] = [];
    const errors = vi.spyOn(console, "error").mockImplementation((line: unknown) => void logged.push(String(line)));
    let failed: Response;
    try {
      failed = await browser.post("/login/email", fields);
    } finally {
      await env.DB.prepare("DROP TRIGGER users_offline").run();
      errors.mockRestore();
    }
    expect(failed.status).toBe(503);
    // The operator is told, in one line, without the query's values (the email) after its first line.
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0]!)).toMatchObject({ level: "error", event: "sign_in_incomplete" });
    expect(logged[0]).not.toContain(email);
    expect(sessionCookieOf(failed)).toBeNull();
    const tombstone = await challengeOf(token).peek(token);
    expect(tombstone.status).toBe("consumed");
    const recorded = tombstone.status === "consumed" ? tombstone.outcome! : null;
    expect(recorded?.sessionId).toBeTruthy();
    expect(await findUserByEmail(env.DB, email)).toBeNull();

    // The link page still offers the retry, and the retry finishes the session chosen before the failure.
    const retryPage = await browser.get(linkPath);
    expect(retryPage.status).toBe(200);
    const retried = await browser.post("/login/email", formFields(await retryPage.text()));
    expect(retried.status).toBe(303);
    const cookie = parseSessionCookie(sessionCookieOf(retried)!)!;
    expect(cookie.sid).toBe(recorded!.sessionId);
    const user = await findUserByEmail(env.DB, email);
    expect(user!.id).toBe(recorded!.userId);

    const done = await followLocal(browser, retried);
    expect((await redeem(responseParams(done).params.get("code")!, client.client_id, verifier)).sid).toBe(recorded!.sessionId);

    // Now it is spent.
    const third = await browser.post("/login/email", fields);
    expect(third.status).toBe(400);
    expect(sessionCookieOf(third)).toBeNull();
    expect(await userSessionsFor(env, user!.id)!.listSessions()).toHaveLength(1);
  });

  it("a link consumed by a request that died before the session step is finished by the next POST with the recorded ids", async () => {
    const browser = new Browser();
    const email = uniqueEmail();
    const page = await browser.get("/login");
    await browser.post("/login", { ...formFields(await page.text()), email });
    const link = new URL((await mailbox(email))[0]!.link!);
    const token = link.searchParams.get("token")!;
    const fields = formFields(await (await browser.get(link.pathname + link.search)).text());

    // The first request got as far as the atomic consume (its ids recorded with the tombstone) and no further.
    const recorded = { sessionId: "precrash-session-0001", userId: "precrash-user-0001" };
    expect((await challengeOf(token).consume(token, { kind: "magic_link" }, recorded)).status).toBe("ok");

    const finished = await browser.post("/login/email", fields);
    expect(finished.status).toBe(200);
    expect(parseSessionCookie(sessionCookieOf(finished)!)).toMatchObject({ sid: recorded.sessionId, userId: recorded.userId });
    expect((await findUserByEmail(env.DB, email))!.id).toBe(recorded.userId);
    const again = await browser.post("/login/email", fields);
    expect(sessionCookieOf(again)).toBeNull();
  });
});

describe("consent", () => {
  async function toConsent(client: { client_id: string }, extra: Record<string, string> = {}) {
    const browser = new Browser();
    const started = await startAuthorization(browser, client.client_id, extra);
    const email = uniqueEmail();
    const consent = await followLocal(browser, await signIn(browser, started.location, email));
    return { browser, consent, email, ...started };
  }

  it("names the client and the scopes, with allow and deny buttons; allow is remembered per user, client and scopes", async () => {
    const client = await makeClient({ client_name: "Photo <Printer> & Co", scope: "openid email profile offline_access" });
    const { browser, consent, email, verifier } = await toConsent(client, { scope: "openid email offline_access" });
    const html = await consent.clone().text();
    expect(html).toContain("Photo &lt;Printer&gt; &amp; Co");
    expect(html).toContain("(email)");
    expect(html).toContain("(offline_access)");
    expect(html).toContain('name="decision" value="allow"');
    expect(html).toContain('name="decision" value="deny"');
    const done = await decide(browser, consent, "allow");
    expect(await redeem(responseParams(done).params.get("code")!, client.client_id, verifier)).toMatchObject({ scope: "openid email offline_access" });
    const user = await findUserByEmail(env.DB, email);
    expect([...(await grantedScopes(env.DB, user!.id, client.client_id))].sort()).toEqual(["email", "offline_access", "openid"]);

    // Remembered: the same scopes need no page; a new scope does; prompt=consent forces it.
    const same = await startAuthorization(browser, client.client_id, { scope: "openid email" });
    expect(same.location.startsWith(`${REDIRECT_URI}?code=`)).toBe(true);
    const wider = await startAuthorization(browser, client.client_id, { scope: "openid email profile" });
    expect(wider.location).toMatch(/^\/consent\?interaction=/);
    const forced = await startAuthorization(browser, client.client_id, { scope: "openid email", prompt: "consent" });
    expect(forced.location).toMatch(/^\/consent\?interaction=/);
  });

  it("deny sends access_denied with state and iss, and the interaction cannot be allowed afterwards", async () => {
    const client = await makeClient();
    const { browser, consent, params, email } = await toConsent(client);
    const fields = formFields(await consent.clone().text());
    const denied = await browser.post("/consent", { ...fields, decision: "deny" });
    const answer = responseParams(denied).params;
    expect(answer.get("error")).toBe("access_denied");
    expect(answer.get("state")).toBe(params.state);
    expect(answer.get("iss")).toBe(ORIGIN);
    const after = await browser.post("/consent", { ...fields, decision: "allow" });
    expect(after.status).toBe(400);
    expect(after.headers.get("location")).toBeNull();
    const user = await findUserByEmail(env.DB, email);
    expect((await grantedScopes(env.DB, user!.id, client.client_id)).size).toBe(0);
  });

  it("a completed interaction cannot be replayed: concurrent allows give exactly one code, resume afterwards is a page", async () => {
    const client = await makeClient();
    const { browser, consent } = await toConsent(client);
    const fields = formFields(await consent.clone().text());
    const responses = await Promise.all(Array.from({ length: 8 }, () => browser.post("/consent", { ...fields, decision: "allow" })));
    const codes = responses.filter((r) => r.status === 303 && r.headers.get("location")!.includes("code="));
    expect(codes).toHaveLength(1);
    expect(responses.filter((r) => r.status === 400)).toHaveLength(7);
    const resumed = await browser.get(`/authorize/resume?interaction=${encodeURIComponent(fields.interaction!)}`);
    expect(resumed.status).toBe(400);
    expect(resumed.headers.get("location")).toBeNull();
  });

  it("the consent POST needs the session it was shown to, and a CSRF token; failures change nothing", async () => {
    const client = await makeClient();
    const { browser, consent, email } = await toConsent(client);
    const fields = formFields(await consent.clone().text());
    const user = await findUserByEmail(env.DB, email);

    const noCsrf = await browser.post("/consent", { interaction: fields.interaction!, sid: fields.sid!, decision: "allow" });
    expect(noCsrf.status).toBe(403);
    const otherSid = await browser.post("/consent", { ...fields, sid: "x".repeat(22), decision: "allow" });
    expect(otherSid.status).toBe(403);
    const stranger = new Browser();
    stranger.cookies.set("oidc_csrf", fields.csrf_token!);
    const noSession = await stranger.post("/consent", { ...fields, decision: "allow" });
    expect(noSession.status).toBe(403);
    const noDecision = await browser.post("/consent", { ...fields, decision: "maybe" });
    expect(noDecision.status).toBe(400);
    for (const r of [noCsrf, otherSid, noSession, noDecision]) expect(r.headers.get("location")).toBeNull();
    expect((await grantedScopes(env.DB, user!.id, client.client_id)).size).toBe(0);
    expect((await challengeOf(fields.interaction!).peek(fields.interaction!)).status).toBe("active");

    // The real form still works afterwards.
    expect(responseParams(await decide(browser, consent, "allow")).params.get("code")).toBeTruthy();
  });

  it("skip_consent clients never show the page", async () => {
    const client = await makeClient({ skip_consent: true });
    const browser = new Browser();
    const { location } = await startAuthorization(browser, client.client_id);
    const done = await followLocal(browser, await signIn(browser, location, uniqueEmail()));
    expect(responseParams(done).params.get("code")).toBeTruthy();
  });

  it("a public client at a custom-scheme or loopback redirect URI is asked every time (RFC 8252 §8.6); prompt=none is consent_required", async () => {
    const native = ["com.example.app:/oauth2redirect", "http://127.0.0.1:8400/callback"];
    const client = await makeClient({ token_endpoint_auth_method: "none", skip_consent: true, redirect_uris: [...native, REDIRECT_URI] });
    const browser = new Browser();
    const email = uniqueEmail();
    for (const [i, redirectUri] of native.entries()) {
      const first = await startAuthorization(browser, client.client_id, { redirect_uri: redirectUri });
      const consent = await followLocal(browser, i === 0 ? await signIn(browser, first.location, email) : await browser.get(first.location));
      expect(consent.status, redirectUri).toBe(200);
      expect(await consent.clone().text()).toContain('name="decision" value="allow"');
      const allowed = await decide(browser, consent, "allow");
      expect(allowed.headers.get("location")!.startsWith(`${redirectUri}?code=`), redirectUri).toBe(true);
      // Allowed a moment ago, and skip_consent registered: still asked, because another app could be answering here.
      const again = await startAuthorization(browser, client.client_id, { redirect_uri: redirectUri });
      expect(again.location, redirectUri).toMatch(/^\/consent\?interaction=/);
      const silent = await startAuthorization(browser, client.client_id, { redirect_uri: redirectUri, prompt: "none" });
      expect(new URL(silent.location).searchParams.get("error"), redirectUri).toBe("consent_required");
    }
    // The same public client at its https redirect URI keeps skip_consent.
    const https = await startAuthorization(browser, client.client_id);
    expect(https.location.startsWith(`${REDIRECT_URI}?code=`)).toBe(true);
    // A confidential client at a loopback redirect URI keeps its remembered consent.
    const confidential = await makeClient({ redirect_uris: [native[1]!] });
    const asked = await startAuthorization(browser, confidential.client_id, { redirect_uri: native[1]! });
    await decide(browser, await browser.get(asked.location), "allow");
    const remembered = await startAuthorization(browser, confidential.client_id, { redirect_uri: native[1]!, prompt: "none" });
    expect(remembered.location.startsWith(`${native[1]}?code=`)).toBe(true);
  });

  it("GET /consent without a session goes to sign-in; unknown interactions are pages", async () => {
    const client = await makeClient();
    const browser = new Browser();
    const { location } = await startAuthorization(browser, client.client_id);
    const interaction = new URL(location, ORIGIN).searchParams.get("interaction")!;
    const consent = await browser.get(`/consent?interaction=${encodeURIComponent(interaction)}`);
    expect(consent.headers.get("location")).toBe(`/login?interaction=${encodeURIComponent(interaction)}`);
    for (const path of ["/consent", "/consent?interaction=bogus", "/login?interaction=0.AAAAAAAAAAAAAAAAAAAAAAAA", "/authorize/resume?interaction=%FF"]) {
      const response = await browser.get(path);
      expect(response.status).toBe(400);
      expect(response.headers.get("location")).toBeNull();
    }
  });
});

describe("email transports", () => {
  it("the dev mailbox lists newest first, and does not exist in any other transport mode", async () => {
    const browser = new Browser();
    const email = uniqueEmail();
    const fields = formFields(await (await browser.get("/login")).text());
    await browser.post("/login", { ...fields, email });
    await browser.post("/login", { ...fields, email });
    const messages = await mailbox(email);
    expect(messages).toHaveLength(2);
    expect(messages[0]!.sentAt).toBeGreaterThanOrEqual(messages[1]!.sentAt);
    expect(Object.keys(messages[0]!).sort()).toEqual(["from", "html", "link", "sentAt", "subject", "text", "to"]);

    const request = new Request(`${ORIGIN}/dev/mailbox?to=${encodeURIComponent(email)}`);
    expect((await devMailbox(request, env)).status).toBe(200);
    const httpEnv = { ...env, EMAIL_TRANSPORT: "http", EMAIL_API_URL: "https://email-api.example/emails", EMAIL_API_KEY: "k" } as Env;
    expect((await devMailbox(request, httpEnv)).status).toBe(404);
  });

  it("off a loopback issuer the dev mailbox does not exist and the dev transport refuses to send: the user sees 'could not send', nothing is stored", async () => {
    const email = uniqueEmail();
    const query = `/dev/mailbox?to=${encodeURIComponent(email)}`;
    // Loopback issuers (local development, npm start, the e2e tests) keep the mailbox.
    for (const origin of ["http://localhost", "http://127.0.0.1:8787", "http://[::1]:8787", "https://localhost"]) {
      expect((await SELF.fetch(`${origin}${query}`)).status, origin).toBe(200);
    }
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    // A deploy reached on its own host name with ISSUER empty serves nothing at all (tests/config-guard.test.ts) …
    for (const origin of ["https://op.example", "http://op.example", "http://localhost.example", "http://127.0.0.2"]) {
      expect((await SELF.fetch(`${origin}${query}`)).status, origin).toBe(500);
    }
    // … and with ISSUER configured there is no mailbox, whatever the Host header says.
    const opEnv = { ...env, ISSUER: "https://op.example" } as Env;
    expect((await devMailbox(new Request(`${ORIGIN}${query}`), opEnv)).status).toBe(404);

    const op = async (url: string, init?: RequestInit): Promise<Response> =>
      worker.fetch(new Request(url, init) as Parameters<typeof worker.fetch>[0], opEnv, createExecutionContext());
    const ip = uniqueAddress();
    const page = await op("https://op.example/login", { headers: { "cf-connecting-ip": ip } });
    expect(page.status).toBe(200);
    const csrfCookie = page.headers.getAll("set-cookie").find((c) => c.startsWith("__Host-oidc_csrf="))!.split(";")[0]!;
    const sent = await op("https://op.example/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: csrfCookie, "cf-connecting-ip": ip },
      body: new URLSearchParams({ ...formFields(await page.text()), email }).toString(),
    });
    expect(sent.status).toBe(503);
    expect(await sent.text()).toContain("could not send");
    expect(await devMessagesTo(env.DB, email)).toEqual([]);
    // The operator is told what to change.
    const logged = errors.mock.calls.map((args) => String(args[0]));
    errors.mockRestore();
    expect(logged.some((line) => line.includes('"email.dev_transport_refused"') && line.includes("set EMAIL_TRANSPORT=http"))).toBe(true);
  });

  it("http transport failure: the user sees 'could not send' (503) and nothing about the API leaks", async () => {
    const httpEnv = {
      ...env,
      EMAIL_TRANSPORT: "http",
      EMAIL_API_URL: "https://email-api.example/emails",
      EMAIL_API_KEY: "secret-key-that-must-not-leak",
    } as Env;
    // The API refuses, echoing what it got (no network: the email API is this stand-in).
    const fetched = vi.spyOn(globalThis, "fetch").mockImplementation(async () => new Response("bad key secret-key-that-must-not-leak", { status: 401 }));
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const browser = new Browser();
    const fields = formFields(await (await browser.get("/login")).text());
    const request = new Request(`${ORIGIN}/login`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: `oidc_csrf=${fields.csrf_token}`, "cf-connecting-ip": browser.ip },
      body: new URLSearchParams({ ...fields, email: uniqueEmail() }).toString(),
    });
    const response = await sendLoginLink(request, httpEnv);
    expect(fetched).toHaveBeenCalledOnce();
    fetched.mockRestore();
    expect(response.status).toBe(503);
    const html = await response.text();
    expect(html).toContain("could not send");
    expect(html).not.toContain("secret-key");
    expect(html).not.toContain("email-api.example");
    const logged = errors.mock.calls.map((args) => String(args[0]));
    errors.mockRestore();
    expect(logged).toHaveLength(1);
    expect(JSON.parse(logged[0]!)).toMatchObject({ event: "email_delivery_failed", transport: "http", error: "EmailDeliveryError: email delivery through http failed: status 401" });
    expect(logged[0]).not.toContain("secret-key");
  });

  it("the session cookie is __Host- prefixed and Secure on an https issuer, with Max-Age the session lifetime setting", () => {
    const httpsEnv = { ...env, ISSUER: "https://op.example", SESSION_TTL: "7200" } as Env;
    const header = sessionCookie(httpsEnv, new Request("https://op.example/login/email"), "v");
    expect(header).toBe("__Host-oidc_session=v; Path=/; HttpOnly; SameSite=Lax; Secure; Max-Age=7200");
  });
});
