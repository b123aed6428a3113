import { SELF, env } from "cloudflare:test";
import { decodeProtectedHeader } from "jose";
import { describe, expect, it, vi } from "vitest";
import { clearSigningKeyCache } from "../src/objects/key-cache";
import { keyManager } from "../src/objects/locate";
import { ISSUER, REDIRECT_URI, makeClient, makeCode, makeUser, postAs, redeem, userinfoWith, type TestClient } from "./helpers/back-channel";

/** POST /admin/keys/:kid/withdraw (issue 12): a withdrawn key leaves the JWKS at once and its tokens stop verifying here. */

type Json = Record<string, unknown>;
const AUTH = { authorization: `Bearer ${env.ADMIN_TOKEN}` };

function withdraw(kid: string, body?: unknown, headers: Record<string, string> = AUTH): Promise<Response> {
  return SELF.fetch(`${ISSUER}/admin/keys/${kid}/withdraw`, {
    method: "POST",
    headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

async function jwksKids(): Promise<string[]> {
  const response = await SELF.fetch(`${ISSUER}/jwks.json`);
  return ((await response.json()) as { keys: Array<{ kid: string }> }).keys.map((k) => k.kid);
}

async function signedIn(rp: TestClient) {
  const user = await makeUser();
  const tokens = await redeem(rp, await makeCode(rp.clientId, user.id));
  return { user, tokens };
}

async function active(rp: TestClient, token: string): Promise<boolean> {
  return ((await (await postAs(rp, "/introspect", { token })).json()) as { active: boolean }).active;
}

/** /authorize with an id_token_hint: the error a client gets at its redirect URI, or null when the hint was accepted. */
async function hintError(rp: TestClient, idToken: string): Promise<string | null> {
  const query = new URLSearchParams({ client_id: rp.clientId, redirect_uri: REDIRECT_URI, response_type: "code", scope: "openid", state: "s", id_token_hint: idToken });
  // An accepted hint, with no session, sends the user to sign in: that is logged (info), and kept out of the test's output.
  const info = vi.spyOn(console, "log").mockImplementation(() => {});
  const response = await SELF.fetch(`${ISSUER}/authorize?${query}`, { redirect: "manual" }).finally(() => info.mockRestore());
  const location = new URL(response.headers.get("location")!, ISSUER);
  return location.origin + location.pathname === REDIRECT_URI ? location.searchParams.get("error") : null;
}

describe("withdrawing a signing key", () => {
  it("the current key: out of the JWKS at once, its ID token fails id_token_hint, its access token is 401 at /userinfo; a new key signs", async () => {
    const rp = await makeClient();
    const { tokens } = await signedIn(rp);
    const kid = decodeProtectedHeader(tokens.access_token).kid!;
    expect(decodeProtectedHeader(tokens.id_token!).kid).toBe(kid);
    // Warm this isolate's caches with the key: they must not keep it verifying afterwards.
    expect((await userinfoWith(tokens.access_token)).status).toBe(200);
    expect(await hintError(rp, tokens.id_token!)).toBeNull();
    expect(await jwksKids()).toContain(kid);

    const response = await withdraw(kid, { reason: "key material leaked" });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Json;
    expect(body).toMatchObject({ kid, alg: "RS256", previous_state: "current", withdrawn: true });
    expect(body.new_current_kid).not.toBe(kid);
    expect(body.in_force_everywhere_by).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000));

    expect(await jwksKids()).not.toContain(kid);
    expect(await jwksKids()).toContain(body.new_current_kid);
    expect((await userinfoWith(tokens.access_token)).status).toBe(401);
    expect(await active(rp, tokens.access_token)).toBe(false);
    expect(await hintError(rp, tokens.id_token!)).toBe("invalid_request");
    const listed = ((await (await SELF.fetch(`${ISSUER}/admin/keys`, { headers: AUTH })).json()) as { keys: Json[] }).keys.find((k) => k.kid === kid);
    expect(listed).toMatchObject({ state: "withdrawn", hasPrivateKey: false });

    // Signing goes on with the new key, and its tokens work.
    const fresh = await signedIn(rp);
    expect(decodeProtectedHeader(fresh.tokens.access_token).kid).toBe(body.new_current_kid);
    expect((await userinfoWith(fresh.tokens.access_token)).status).toBe(200);
    expect(await hintError(rp, fresh.tokens.id_token!)).toBeNull();

    // Audited, and a second withdrawal changes nothing.
    await expect
      .poll(async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE type = 'signing_key.withdrawn' AND data LIKE ?").bind(`%${kid}%`).first<{ n: number }>())!.n)
      .toBe(1);
    const again = await withdraw(kid);
    expect(await again.json()).toMatchObject({ kid, previous_state: "withdrawn", withdrawn: false, new_current_kid: null });
  });

  it("a previous key (rotated out, still published for the overlap): withdrawn, its tokens stop verifying, the current key is untouched", async () => {
    const rp = await makeClient();
    const { tokens } = await signedIn(rp);
    const oldKid = decodeProtectedHeader(tokens.access_token).kid!;
    const [rotation] = await keyManager(env).rotateKeys("RS256", "test");
    clearSigningKeyCache(); // rotated behind this isolate's back: its cache would sign with the old key for a while
    const after = await signedIn(rp);
    expect(decodeProtectedHeader(after.tokens.access_token).kid).toBe(rotation!.kid);
    expect((await userinfoWith(tokens.access_token)).status).toBe(200); // the overlap (C19)

    const body = (await (await withdraw(oldKid)).json()) as Json;
    expect(body).toMatchObject({ previous_state: "previous", withdrawn: true, new_current_kid: null });
    expect((await userinfoWith(tokens.access_token)).status).toBe(401);
    expect((await userinfoWith(after.tokens.access_token)).status).toBe(200);
    expect(await jwksKids()).toEqual(expect.arrayContaining([rotation!.kid]));
    expect(await jwksKids()).not.toContain(oldKid);
  });

  it("an unknown kid is 404; no token or a wrong one is 401; a bad body is 400 — nothing changes", async () => {
    const before = await keyManager(env).listKeys();
    const current = before.find((k) => k.state === "current")!.kid;
    for (const kid of ["not-a-kid", "a".repeat(43), "%2e%2e", "x".repeat(300)]) expect((await withdraw(kid)).status, kid).toBe(404);
    expect((await withdraw(current, undefined, {})).status).toBe(401);
    expect((await withdraw(current, undefined, { authorization: "Bearer wrong" })).status).toBe(401);
    expect((await withdraw(current, { reason: 5 })).status).toBe(400);
    expect((await withdraw(current, { why: "x" })).status).toBe(400);
    expect(await keyManager(env).listKeys()).toEqual(before);
  });
});
