import { SELF, env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { getPasskey, listPasskeys } from "../src/db/passkeys";
import { findUserByEmail } from "../src/db/users";
import type { Env } from "../src/env";
import { userSessionsFor } from "../src/objects/locate";
import { account, deleteAccountPasskey } from "../src/routes/account";
import { finishEmailLogin } from "../src/routes/login";
import { SoftAuthenticator } from "./helpers/authenticator";
import { makeClient, makeCode, postAs, redeem } from "./helpers/back-channel";
import { Browser, ORIGIN, formFields, requestLink, uniqueEmail } from "./helpers/front-channel";
import { addPasskey, auditEvents, passkeySignIn, sessionCookieOf, userWithPasskey } from "./helpers/passkeys";

vi.setConfig({ testTimeout: 30_000 });
afterEach(() => vi.restoreAllMocks());

/** A request as the Worker receives it from the browser, for calling a handler with other settings. */
function requestOf(browser: Browser, path: string, form?: Record<string, string>): Request {
  const headers: Record<string, string> = {
    cookie: [...browser.cookies].map(([name, value]) => `${name}=${value}`).join("; "),
    "cf-connecting-ip": browser.ip,
  };
  if (form === undefined) return new Request(new URL(path, ORIGIN), { headers });
  return new Request(new URL(path, ORIGIN), {
    method: "POST",
    headers: { ...headers, "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(form).toString(),
  });
}

const passkeysOnly = { ...env, EMAIL_LINK_SIGN_IN: "without_passkey" } as unknown as Env;

describe("the account page", () => {
  it("shows the user and their passkeys (name, added, last used, how they connect), with CSRF on every form", async () => {
    const { browser, user, authenticator, passkey } = await userWithPasskey(uniqueEmail("acct"));
    expect((await passkeySignIn(new Browser(), authenticator)).status).toBe(303);
    const page = await browser.get("/account");
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain("Your account");
    expect(html).toContain(user.email);
    expect(html).toContain("Device-bound passkey");
    expect(html).toContain("via built into a device, phone");
    // Dates in the page's language (here English), to the minute, in UTC.
    expect(html).toMatch(/Added [A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d\s[AP]M UTC · last used [A-Z][a-z]{2} \d{1,2}, \d{4}, \d{1,2}:\d\d\s[AP]M UTC/);
    expect(html).toContain('action="/account/passkeys/rename"');
    expect(html).toContain('action="/account/passkeys/delete"');
    expect(html).toContain('action="/account/sign-out-everywhere"');
    expect(html).toContain('data-options="/passkeys/register/options"');
    for (const form of html.matchAll(/<form method="post"[^>]*>([\s\S]*?)<\/form>/g)) {
      expect(form[1]).toContain(`name="csrf_token" value="${browser.cookies.get("oidc_csrf")}"`);
    }
    expect(html).toContain(passkey.id);
  });

  it("without a session it asks to sign in", async () => {
    const page = await new Browser().get("/account");
    expect(page.status).toBe(200);
    expect(await page.text()).toContain('<a class="button" href="/login">Sign in</a>');
  });

  it("renames a passkey (escaped, trimmed, audited) and deletes one (audited); another user's passkey is out of reach", async () => {
    const { browser, user, passkey, csrf } = await userWithPasskey(uniqueEmail("rename"));
    const other = await userWithPasskey(uniqueEmail("rename-other"));

    const renamed = await browser.post("/account/passkeys/rename", { csrf_token: csrf, id: passkey.id, name: '  <b>Work</b> "laptop"\u0007 ' });
    expect(renamed.status).toBe(303);
    expect(renamed.headers.get("location")).toBe("/account?done=renamed");
    expect((await getPasskey(env.DB, passkey.id))!.name).toBe('<b>Work</b> "laptop"');
    const html = await (await browser.get("/account?done=renamed")).text();
    expect(html).toContain("&lt;b&gt;Work&lt;/b&gt; &quot;laptop&quot;");
    expect(html).toContain("The passkey was renamed.");
    expect(html).not.toContain("<b>Work</b>");
    expect(await auditEvents("passkey.renamed", user.id)).toHaveLength(1);

    // Someone else's passkey: 404, unchanged.
    expect((await browser.post("/account/passkeys/rename", { csrf_token: csrf, id: other.passkey.id, name: "mine now" })).status).toBe(404);
    expect((await browser.post("/account/passkeys/delete", { csrf_token: csrf, id: other.passkey.id })).status).toBe(404);
    expect(await getPasskey(env.DB, other.passkey.id)).toEqual(other.passkey);
    // Without the CSRF token, or sent from another site: refused, unchanged.
    expect((await browser.post("/account/passkeys/delete", { id: passkey.id })).status).toBe(403);
    const crossSite = await browser.fetch("/account/passkeys/delete", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "cross-site" },
      body: new URLSearchParams({ csrf_token: csrf, id: passkey.id }).toString(),
    });
    expect(crossSite.status).toBe(403);
    expect(await getPasskey(env.DB, passkey.id)).not.toBeNull();

    const deleted = await browser.post("/account/passkeys/delete", { csrf_token: csrf, id: passkey.id });
    expect(deleted.status).toBe(303);
    expect(await getPasskey(env.DB, passkey.id)).toBeNull();
    expect(await auditEvents("passkey.deleted", user.id)).toHaveLength(1);
    expect((await browser.post("/account/passkeys/delete", { csrf_token: csrf, id: passkey.id })).status).toBe(404);
    // Malformed ids and names are a page, never a 5xx.
    expect((await browser.post("/account/passkeys/rename", { csrf_token: csrf, id: "x".repeat(5000), name: "n" })).status).toBe(400);
    expect((await browser.post("/account/passkeys/rename", { csrf_token: csrf, id: "%%%", name: "n" })).status).toBe(404);
  });

  it("'Sign out everywhere' ends every grant (C22) and every session of the user in one call (C18), and clears the cookie", async () => {
    const { browser, user, authenticator, csrf } = await userWithPasskey(uniqueEmail("everywhere"));
    expect((await passkeySignIn(new Browser(), authenticator)).status).toBe(303);
    const app = await makeClient();
    const tokens = await redeem(app, await makeCode(app.clientId, user.id));
    expect((await userSessionsFor(env, user.id)!.listSessions()).length).toBe(2);
    const out = await browser.post("/account/sign-out-everywhere", { csrf_token: csrf });
    expect(out.status).toBe(200);
    expect(await out.text()).toContain("Signed out");
    expect(out.headers.getAll("set-cookie").some((c) => c.startsWith("oidc_session=;") && /Max-Age=0/.test(c))).toBe(true);
    expect(await userSessionsFor(env, user.id)!.listSessions()).toHaveLength(0);
    const refreshed = await postAs(app, "/token", { grant_type: "refresh_token", refresh_token: tokens.refresh_token! });
    expect(refreshed.status).toBe(400);
    expect(await refreshed.json()).toMatchObject({ error: "invalid_grant" });
    expect(await auditEvents("user.grants_ended", user.id)).toHaveLength(1);
    expect((await browser.get("/account")).status).toBe(200);
    expect(await (await browser.get("/account")).text()).toContain("Sign in to see your account");
  });
});

describe("EMAIL_LINK_SIGN_IN=without_passkey", () => {
  it("a user with a passkey cannot sign in by email link, and cannot delete their last passkey", async () => {
    const { browser, user, passkey, authenticator, csrf } = await userWithPasskey(uniqueEmail("pkonly"));

    // The link is sent (the same answer for every address), but it does not sign this user in.
    const stranger = new Browser();
    const link = await requestLink(stranger, "/login", user.email);
    const fields = formFields(await (await stranger.get(link)).text());
    const refused = await finishEmailLogin(requestOf(stranger, "/login/email", fields), passkeysOnly);
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("This account signs in with a passkey");
    expect(sessionCookieOf(refused)).toBeNull();

    // The account page says the passkey is the only way in, and the delete is refused.
    const page = await account(requestOf(browser, "/account"), passkeysOnly);
    expect(await page.text()).toContain("This is your only way to sign in");
    const kept = await deleteAccountPasskey(requestOf(browser, "/account/passkeys/delete", { csrf_token: csrf, id: passkey.id }), passkeysOnly);
    expect(kept.status).toBe(409);
    expect(await getPasskey(env.DB, passkey.id)).not.toBeNull();

    // With two, one may go — and two concurrent deletions still leave one.
    expect((await addPasskey(browser, new SoftAuthenticator(ORIGIN), csrf)).status).toBe(303);
    const [first, second] = await listPasskeys(env.DB, user.id);
    const both = await Promise.all(
      [first!, second!].map((p) => deleteAccountPasskey(requestOf(browser, "/account/passkeys/delete", { csrf_token: csrf, id: p.id }), passkeysOnly)),
    );
    expect(both.map((r) => r.status).sort()).toEqual([303, 409]);
    expect(await listPasskeys(env.DB, user.id)).toHaveLength(1);
    void authenticator;
  });

  it("a user without a passkey still signs in by email", async () => {
    const stranger = new Browser();
    const email = uniqueEmail("emailonly");
    const link = await requestLink(stranger, "/login", email);
    const fields = formFields(await (await stranger.get(link)).text());
    const signedIn = await finishEmailLogin(requestOf(stranger, "/login/email", fields), passkeysOnly);
    expect(signedIn.status).toBe(200);
    expect(sessionCookieOf(signedIn)).not.toBeNull();
    expect(await findUserByEmail(env.DB, email)).not.toBeNull();
  });
});

describe("admin API: a user's passkeys", () => {
  const admin = (method: string, path: string, token = env.ADMIN_TOKEN!) =>
    SELF.fetch(`${ORIGIN}${path}`, { method, headers: { authorization: `Bearer ${token}`, "cf-connecting-ip": `203.0.113.${Math.floor(Math.random() * 200)}` } });

  it("lists them without key material and deletes one, each audited", async () => {
    const { user, passkey } = await userWithPasskey(uniqueEmail("admin"));
    const listed = await admin("GET", `/admin/users/${user.id}/passkeys`);
    expect(listed.status).toBe(200);
    const body = await listed.json<{ passkeys: Record<string, unknown>[] }>();
    expect(body.passkeys).toEqual([
      {
        id: passkey.id,
        name: null,
        counter: 0,
        transports: ["internal", "hybrid"],
        device_type: "singleDevice",
        backed_up: false,
        created_at: Math.floor(passkey.createdAt / 1000),
        last_used_at: null,
      },
    ]);
    expect(JSON.stringify(body)).not.toContain(passkey.publicKey);
    expect(await auditEvents("admin.passkeys.listed", user.id)).toHaveLength(1);

    const removed = await admin("DELETE", `/admin/users/${user.id}/passkeys/${passkey.id}`);
    expect(removed.status).toBe(204);
    expect(await getPasskey(env.DB, passkey.id)).toBeNull();
    const events = await auditEvents("passkey.deleted", user.id);
    expect(events).toHaveLength(1);
    expect(events[0]!.actor).toBe("admin-api");
  });

  it("answers 404 for an unknown user or passkey, 401 without the token, and changes nothing", async () => {
    const { user, passkey } = await userWithPasskey(uniqueEmail("admin404"));
    const other = await userWithPasskey(uniqueEmail("admin404-other"));
    expect((await admin("GET", "/admin/users/nosuchuser0000/passkeys")).status).toBe(404);
    expect((await admin("DELETE", `/admin/users/${user.id}/passkeys/nosuchcredential0000`)).status).toBe(404);
    expect((await admin("DELETE", `/admin/users/${user.id}/passkeys/%25%25`)).status).toBe(404);
    // Another user's passkey through this user's path: not found, not deleted.
    expect((await admin("DELETE", `/admin/users/${user.id}/passkeys/${other.passkey.id}`)).status).toBe(404);
    expect((await admin("DELETE", `/admin/users/${user.id}/passkeys/${passkey.id}`, "wrong")).status).toBe(401);
    expect(await getPasskey(env.DB, passkey.id)).not.toBeNull();
    expect(await getPasskey(env.DB, other.passkey.id)).not.toBeNull();
  });
});

describe("passkeys need a domain", () => {
  it("on an IP-address issuer the sign-in page has no passkey controls and an email sign-in offers none", async () => {
    const page = await (await SELF.fetch("http://127.0.0.1/login")).text();
    expect(page).not.toContain("/login/passkey");
    expect(page).toContain('autocomplete="email"');

    const browser = new Browser();
    const link = await requestLink(browser, "/login", uniqueEmail("ipissuer"));
    const fields = formFields(await (await browser.get(link)).text());
    const request = requestOf(browser, "/login/email", { ...fields, passkey_capable: "1" });
    const signedIn = await finishEmailLogin(new Request(request.url.replace("http://localhost", "http://127.0.0.1"), request), env);
    expect(signedIn.status).toBe(200);
    expect(signedIn.headers.get("location")).toBeNull();
    expect(await signedIn.text()).toContain("You are signed in");
  });
});

describe("the passkey script", () => {
  it("is served from the OP as JavaScript, and the pages allow it and its fetch to this origin only", async () => {
    const script = await SELF.fetch(`${ORIGIN}/passkeys.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(script.headers.get("x-content-type-options")).toBe("nosniff");
    expect(await script.text()).toContain("navigator.credentials.get");
    const page = await SELF.fetch(`${ORIGIN}/login`);
    const csp = page.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("default-src 'none'");
  });
});
