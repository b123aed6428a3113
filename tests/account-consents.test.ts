import { env } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { grantedScopes, rememberConsent } from "../src/db/consents";
import { findUserByEmail } from "../src/db/users";
import { makeClient, makeCode, postAs, redeem } from "./helpers/back-channel";
import { Browser, formFields, signIn, uniqueEmail } from "./helpers/front-channel";

/** The account page shows the apps the user gave access to, and takes it back (issue 12, consents; C22). */

vi.setConfig({ testTimeout: 30_000 });

async function signedInUser() {
  const browser = new Browser();
  const email = uniqueEmail("consents");
  const finished = await signIn(browser, "/login", email);
  expect(finished.status).toBe(200);
  return { browser, user: (await findUserByEmail(env.DB, email))! };
}

/** The fields of the account page's form that revokes `clientId`'s access. */
function revokeForm(html: string, clientId: string): Record<string, string> | null {
  for (const match of html.matchAll(/<form method="post" action="\/account\/consents\/revoke">([\s\S]*?)<\/form>/g)) {
    const fields = formFields(match[1]!);
    if (fields.client_id === clientId) return fields;
  }
  return null;
}

describe("the account page: apps with access", () => {
  it("lists the apps the user consented to, and removing one ends its grants at once; the others keep theirs", async () => {
    const { browser, user } = await signedInUser();
    const [app, other] = [await makeClient({ client_name: "Photo Printer" }), await makeClient({ client_name: "Calendar" })];
    await rememberConsent(env.DB, user.id, app.clientId, ["openid", "profile", "email"]);
    await rememberConsent(env.DB, user.id, other.clientId, ["openid"]);
    const tokens = await redeem(app, await makeCode(app.clientId, user.id, { issuedAt: Date.now() }));
    const kept = await redeem(other, await makeCode(other.clientId, user.id, { issuedAt: Date.now() }));

    const page = await (await browser.get("/account")).text();
    expect(page).toContain("Apps with access");
    expect(page).toContain("Photo Printer");
    expect(page).toContain("email, profile"); // the scopes granted, openid aside
    const fields = revokeForm(page, app.clientId);
    expect(fields).not.toBeNull();
    expect(fields!.csrf_token).toBe(browser.cookies.get("oidc_csrf"));

    const removed = await browser.post("/account/consents/revoke", fields!);
    expect(removed.status).toBe(303);
    expect(removed.headers.get("location")).toBe("/account?done=revoked");
    expect(await grantedScopes(env.DB, user.id, app.clientId)).toEqual(new Set());
    const active = async (c: typeof app, token: string) => ((await (await postAs(c, "/introspect", { token })).json()) as { active: boolean }).active;
    expect(await active(app, tokens.access_token)).toBe(false);
    expect(await active(app, tokens.refresh_token!)).toBe(false);
    expect(await active(other, kept.access_token)).toBe(true);
    const after = await (await browser.get("/account?done=revoked")).text();
    expect(after).toContain("The app no longer has access");
    expect(revokeForm(after, app.clientId)).toBeNull();
    expect(revokeForm(after, other.clientId)).not.toBeNull();
    const events = await env.DB.prepare("SELECT type, source, actor, client_id FROM audit_log WHERE subject = ? AND type = 'user.consent.revoked'").bind(user.id).all();
    expect(events.results).toEqual([{ type: "user.consent.revoked", source: "account", actor: "user", client_id: app.clientId }]);
  });

  it("refuses a form without its CSRF token, an app without access, and a made-up client — and changes nothing", async () => {
    const { browser, user } = await signedInUser();
    const app = await makeClient({ client_name: "Kept" });
    await rememberConsent(env.DB, user.id, app.clientId, ["openid"]);
    const stranger = await makeClient();
    const csrf = browser.cookies.get("oidc_csrf") ?? formFields(await (await browser.get("/account")).text()).csrf_token!;

    expect((await browser.post("/account/consents/revoke", { client_id: app.clientId })).status).toBe(403);
    expect((await browser.post("/account/consents/revoke", { csrf_token: csrf, client_id: stranger.clientId })).status).toBe(404);
    expect((await browser.post("/account/consents/revoke", { csrf_token: csrf, client_id: "../../etc/passwd" })).status).toBe(404);
    expect((await new Browser().post("/account/consents/revoke", { csrf_token: csrf, client_id: app.clientId })).status).toBe(403);
    expect(await grantedScopes(env.DB, user.id, app.clientId)).toEqual(new Set(["openid"]));
    const revocations = await env.DB.prepare("SELECT COUNT(*) AS n FROM grant_revocations WHERE user_id = ?").bind(user.id).first<{ n: number }>();
    expect(revocations!.n).toBe(0);
  });
});
