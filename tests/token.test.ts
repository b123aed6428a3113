import { SELF, createExecutionContext, env, listDurableObjectIds, runInDurableObject } from "cloudflare:test";
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { describe, expect, it, vi } from "vitest";
import { loadConfig } from "../src/config";
import { patchClient } from "./helpers/clients";
import { rateLimiterFor, tokenFamilyFor, userSessionsFor } from "../src/objects/locate";
import { familyIdOfRefreshToken } from "../src/objects/token-family";
import { accessTokenGrantOf } from "../src/oauth/access-token-grant";
import { endGrantsIssuedBefore } from "../src/db/grant-revocations";
import { randomToken, sha256Base64url } from "../src/lib/crypto";
import { newSessionId } from "../src/objects/sessions";
import { JWT_BEARER_ASSERTION_TYPE, hashClientSecret } from "../src/oauth/client-auth";
import type { Env } from "../src/env";
import { token } from "../src/routes/token";
import { grantStorage } from "../src/routes/support/grant-storage";
import { authorizationCodeGrant } from "../src/oauth/grants/authorization-code";
import type { GrantStorage } from "../src/oauth/grants/context";
import { halfHash } from "../src/oauth/tokens";
import {
  ISSUER,
  REDIRECT_URI,
  basic,
  errorOf,
  makeClient,
  makeCode,
  makeUser,
  post,
  postAs,
  redeem,
  userinfoWith,
  verifyIdToken,
  type TestClient,
  type Tokens,
} from "./helpers/back-channel";

const config = loadConfig(env);

async function refresh(c: TestClient, refreshToken: string, extra: Record<string, string> = {}): Promise<Response> {
  return postAs(c, "/token", { grant_type: "refresh_token", refresh_token: refreshToken, ...extra });
}

function decodePayload(jwt: string): Record<string, unknown> {
  return JSON.parse(atob(jwt.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));
}

/** `expires_in` of a token response and the lifetime its access token JWT states (exp − iat): they must agree. */
function accessLifetimes(tokens: Tokens): [number, number] {
  const { exp, iat } = decodePayload(tokens.access_token) as { exp: number; iat: number };
  return [tokens.expires_in, exp - iat];
}

describe("authorization_code grant", () => {
  it("exchanges a code for an access token, an ID token and a refresh token (client_secret_basic)", async () => {
    const rp = await makeClient();
    const user = await makeUser({ name: "Ada Lovelace" });
    const code = await makeCode(rp.clientId, user.id, { acr: "urn:example:loa:1" });
    const response = await postAs(rp, "/token", {
      grant_type: "authorization_code",
      code: code.code,
      redirect_uri: REDIRECT_URI,
      code_verifier: code.verifier,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const tokens = await response.json<Tokens>();
    expect(tokens.token_type).toBe("Bearer");
    expect(accessLifetimes(tokens)).toEqual([config.accessTokenTtl, config.accessTokenTtl]);
    expect(tokens.scope).toBe("openid profile email offline_access");
    // <grant>.<sub>.<secret>: the user rides along, so a refresh reads them beside the client (one D1 round trip).
    expect(tokens.refresh_token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$/);
    expect(tokens.refresh_token!.split(".")[1]).toBe(user.id);

    // RFC 9068 access token: typ at+jwt, jti, gid.
    const header = JSON.parse(atob(tokens.access_token.split(".")[0]!.replace(/-/g, "+").replace(/_/g, "/")));
    expect(header.typ).toBe("at+jwt");
    const at = decodePayload(tokens.access_token);
    expect(at).toMatchObject({ iss: ISSUER, sub: user.id, client_id: rp.clientId, scope: tokens.scope, auth_time: code.grant.authTime });
    expect(typeof at.jti).toBe("string");

    const { payload, header: idHeader } = await verifyIdToken(tokens.id_token!, rp.clientId);
    expect(idHeader.alg).toBe("RS256");
    expect(typeof idHeader.kid).toBe("string");
    expect(payload).toMatchObject({
      iss: ISSUER,
      sub: user.id,
      aud: rp.clientId,
      azp: rp.clientId,
      nonce: code.grant.nonce,
      auth_time: code.grant.authTime,
      amr: ["email"],
      acr: "urn:example:loa:1",
      at_hash: await halfHash(tokens.access_token),
    });
    expect(payload.exp! - payload.iat!).toBe(config.idTokenTtl);
    // OIDC Core §5.4: the claims of the granted scopes (openid profile email), as userinfo has them.
    expect(payload).toMatchObject({ name: "Ada Lovelace", email: user.email, email_verified: true, updated_at: expect.any(Number) });
    expect(payload.phone_number).toBeUndefined();
  });

  it("the ID token carries the claims of the granted scopes by default; id_token_claims: minimal keeps it to sub and the protocol claims; a refresh follows the registration of now (C5)", async () => {
    const rp = await makeClient({ scope: "openid profile email address phone offline_access" });
    const user = await makeUser({ name: "Katherine Johnson", givenName: "Katherine", phoneNumber: "+1 555 0100", address: { locality: "Hampton", country: "US" } });
    const granted = await redeem(rp, await makeCode(rp.clientId, user.id, { scope: "openid profile email phone offline_access" }));
    const full = (await verifyIdToken(granted.id_token!, rp.clientId)).payload;
    expect(full).toMatchObject({ name: "Katherine Johnson", given_name: "Katherine", email: user.email, email_verified: true, phone_number: "+1 555 0100" });
    // address was not granted, so it is not there, although the user has one.
    expect(full.address).toBeUndefined();
    // The same claims as userinfo gives for the grant's access token.
    const info = await (await SELF.fetch(`${ISSUER}/userinfo`, { headers: { authorization: `Bearer ${granted.access_token}` } })).json<Record<string, unknown>>();
    const userClaims = (claims: Record<string, unknown>) => Object.fromEntries(Object.entries(claims).filter(([name]) => name in info));
    expect(userClaims(full)).toEqual(info);

    const minimal = await makeClient({ scope: "openid profile email offline_access", id_token_claims: "minimal" });
    const bare = await redeem(minimal, await makeCode(minimal.clientId, user.id));
    const bareToken = (await verifyIdToken(bare.id_token!, minimal.clientId)).payload;
    expect(Object.keys(bareToken).sort()).toEqual(["at_hash", "aud", "auth_time", "amr", "azp", "exp", "iat", "iss", "nonce", "sub"].sort());

    // Switched to minimal after the grant was made: the refresh's ID token follows the registration of now.
    await patchClient(rp.clientId, { id_token_claims: "minimal" });
    const refreshed = await (await refresh(rp, granted.refresh_token!)).json<Tokens>();
    const afterSwitch = (await verifyIdToken(refreshed.id_token!, rp.clientId)).payload;
    expect([afterSwitch.name, afterSwitch.email, afterSwitch.phone_number]).toEqual([undefined, undefined, undefined]);
  });

  it("with id_token_claims: minimal, puts the claims asked for in the claims request's id_token member into the ID token, and signs with the registered alg", async () => {
    const rp = await makeClient({ id_token_signed_response_alg: "ES256", token_endpoint_auth_method: "client_secret_post", id_token_claims: "minimal" });
    const user = await makeUser({ name: "Grace Hopper" });
    const code = await makeCode(rp.clientId, user.id, {
      claims: JSON.stringify({ id_token: { email: { essential: true }, name: null } }),
      sid: "sid-abcdefghijkl",
    });
    const tokens = await redeem(rp, code);
    const { payload, header } = await verifyIdToken(tokens.id_token!, rp.clientId);
    expect(header.alg).toBe("ES256");
    expect(payload).toMatchObject({ email: user.email, name: "Grace Hopper", sid: "sid-abcdefghijkl" });
    expect(payload.email_verified).toBeUndefined();
  });

  it("puts only claims of the granted scope into the ID token, whatever the claims request asks for (OIDC Core §5.5, C17)", async () => {
    const rp = await makeClient({ scope: "openid email profile phone offline_access" });
    const user = await makeUser({ name: "Grace Hopper", phoneNumber: "+1 555 0100" });
    const claims = JSON.stringify({ id_token: { email: { essential: true }, name: null, phone_number: null } });
    const bare = await redeem(rp, await makeCode(rp.clientId, user.id, { scope: "openid", claims }));
    const bareToken = (await verifyIdToken(bare.id_token!, rp.clientId)).payload;
    expect([bareToken.email, bareToken.name, bareToken.phone_number]).toEqual([undefined, undefined, undefined]);

    const withEmail = await redeem(rp, await makeCode(rp.clientId, user.id, { scope: "openid email offline_access", claims }));
    const emailToken = (await verifyIdToken(withEmail.id_token!, rp.clientId)).payload;
    expect(emailToken.email).toBe(user.email);
    expect([emailToken.name, emailToken.phone_number]).toEqual([undefined, undefined]);
    // A refresh narrowed to openid: its ID token drops the email too.
    const narrowed = await (await refresh(rp, withEmail.refresh_token!, { scope: "openid" })).json<Tokens>();
    expect((await verifyIdToken(narrowed.id_token!, rp.clientId)).payload.email).toBeUndefined();
  });

  it("issues a refresh token only with offline_access for OpenID requests, and no ID token without openid", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const online = await redeem(rp, await makeCode(rp.clientId, user.id, { scope: "openid email" }));
    expect(online.refresh_token).toBeUndefined();
    expect(online.id_token).toBeDefined();

    const plainOAuth = await redeem(rp, await makeCode(rp.clientId, user.id, { scope: "email" }));
    expect(plainOAuth.id_token).toBeUndefined();
    expect(plainOAuth.refresh_token).toBeDefined();

    const noRefreshGrant = await makeClient({ grant_types: ["authorization_code"] });
    const tokens = await redeem(noRefreshGrant, await makeCode(noRefreshGrant.clientId, user.id));
    expect(tokens.refresh_token).toBeUndefined();
  });

  it("20 parallel redemptions of one code: at most one 200, the rest invalid_grant, and a winner's tokens are revoked (C1)", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const code = await makeCode(rp.clientId, user.id);
    const params = { grant_type: "authorization_code", code: code.code, redirect_uri: REDIRECT_URI, code_verifier: code.verifier };
    const responses = await Promise.all(Array.from({ length: 20 }, () => postAs(rp, "/token", params)));
    const statuses = responses.map((r) => r.status);
    const won = statuses.filter((s) => s === 200).length;
    expect(won).toBeLessThanOrEqual(1);
    expect(statuses.filter((s) => s === 400)).toHaveLength(20 - won);
    const bodies = await Promise.all(responses.map((r) => r.json<Tokens & { error?: string }>()));
    expect(bodies.filter((b) => b.error === "invalid_grant")).toHaveLength(20 - won);
    // A redemption that won before any replay reached its grant got tokens, which the replays then revoked; one whose
    // grant a replay revoked first got invalid_grant like the rest (then no response carries tokens).
    const winner = bodies.find((b) => b.access_token !== undefined);
    if (winner !== undefined) {
      expect((await userinfoWith(winner.access_token)).status).toBe(401);
      expect((await errorOf(await refresh(rp, winner.refresh_token!))).error).toBe("invalid_grant");
    }
  });

  it.each([
    ["with a refresh token (an object per grant)", "openid profile email offline_access"],
    ["without one (the grant lives in its access tokens)", "openid email"],
  ])("a redemption whose grant a replay revoked before it was made answers invalid_grant, with no tokens (RFC 6749 §4.1.2, C1): %s", async (_kind, scope) => {
    const rp = await makeClient();
    const user = await makeUser();
    const code = await makeCode(rp.clientId, user.id, { scope });
    const params = { grant_type: "authorization_code", code: code.code, redirect_uri: REDIRECT_URI, code_verifier: code.verifier };
    const real = grantStorage(env, createExecutionContext());
    let replay: Response | undefined;
    let grantId: string | undefined;
    const storage: GrantStorage = {
      ...real,
      // The replay arrives after this redemption consumed the code and before it creates the grant.
      async redeemCode(value, redemption, outcome) {
        const result = await real.redeemCode(value, redemption, outcome);
        grantId = outcome.grantId;
        replay = await postAs(rp, "/token", params);
        return result;
      },
    };
    const redemption = authorizationCodeGrant({ config, issuer: ISSUER, client: rp.client, params, storage });
    await expect(redemption).rejects.toMatchObject({ code: "invalid_grant", description: "the authorization code was already used" });
    expect(await errorOf(replay!)).toEqual({ status: 400, error: "invalid_grant" });
    // The grant was never made: its object holds only the revocation.
    expect(await tokenFamilyFor(env, grantId!)!.getFamily()).toBeNull();
  });

  it("a replay after a successful redemption revokes the access and refresh tokens (RFC 6749 §4.1.2)", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const code = await makeCode(rp.clientId, user.id);
    const tokens = await redeem(rp, code);
    expect((await userinfoWith(tokens.access_token)).status).toBe(200);
    const replay = await postAs(rp, "/token", { grant_type: "authorization_code", code: code.code, redirect_uri: REDIRECT_URI, code_verifier: code.verifier });
    expect(await errorOf(replay)).toEqual({ status: 400, error: "invalid_grant" });
    expect((await userinfoWith(tokens.access_token)).status).toBe(401);
    expect((await errorOf(await refresh(rp, tokens.refresh_token!))).error).toBe("invalid_grant");
  });

  it("refuses a wrong or missing PKCE verifier, a wrong redirect_uri and another client, without burning the code", async () => {
    const rp = await makeClient();
    const other = await makeClient();
    const user = await makeUser();
    const code = await makeCode(rp.clientId, user.id);
    const base = { grant_type: "authorization_code", code: code.code, redirect_uri: REDIRECT_URI };
    const attempts = [
      postAs(rp, "/token", { ...base, code_verifier: "x".repeat(43) }),
      postAs(rp, "/token", base),
      postAs(rp, "/token", { ...base, code_verifier: code.verifier, redirect_uri: "https://rp.example/other" }),
      postAs(rp, "/token", { ...base, code_verifier: code.verifier, redirect_uri: "" }),
      postAs(other, "/token", { ...base, code_verifier: code.verifier }),
    ];
    for (const response of await Promise.all(attempts)) expect(await errorOf(response)).toEqual({ status: 400, error: "invalid_grant" });
    // None of them consumed the code.
    expect((await redeem(rp, code)).access_token).toBeDefined();
  });

  it("answers invalid_grant for garbage, unknown and expired codes", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    for (const code of ["garbage", "0.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "x".repeat(500), "../../etc/passwd"]) {
      const response = await postAs(rp, "/token", { grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: "a".repeat(43) });
      expect(await errorOf(response)).toEqual({ status: 400, error: "invalid_grant" });
    }
    const expired = await makeCode(rp.clientId, user.id, {}, 0.001);
    await new Promise((resolve) => setTimeout(resolve, 20));
    const response = await postAs(rp, "/token", { grant_type: "authorization_code", code: expired.code, redirect_uri: REDIRECT_URI, code_verifier: expired.verifier });
    expect(await errorOf(response)).toEqual({ status: 400, error: "invalid_grant" });
  });

  it("lets a public client (none) redeem with PKCE and client_id only", async () => {
    const spa = await makeClient({ token_endpoint_auth_method: "none" });
    const user = await makeUser();
    const code = await makeCode(spa.clientId, user.id);
    const noVerifier = await post("/token", { grant_type: "authorization_code", code: code.code, redirect_uri: REDIRECT_URI, client_id: spa.clientId });
    expect(await errorOf(noVerifier)).toEqual({ status: 400, error: "invalid_grant" });
    const tokens = await redeem(spa, code);
    expect(tokens.access_token).toBeDefined();
    // A code without a PKCE challenge is never redeemed by a public client.
    const bare = await makeCode(spa.clientId, user.id, { codeChallenge: null });
    const response = await post("/token", { grant_type: "authorization_code", code: bare.code, redirect_uri: REDIRECT_URI, client_id: spa.clientId });
    expect(await errorOf(response)).toEqual({ status: 400, error: "invalid_grant" });
  });

  it("records the client on the user's session, for logout", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const sessions = userSessionsFor(env, user.id)!;
    const sid = newSessionId();
    const created = await sessions.createSession({ sid, userId: user.id, authTime: Math.floor(Date.now() / 1000), amr: ["email"], acr: null });
    expect(created.created).toBe(true);
    await redeem(rp, await makeCode(rp.clientId, user.id, { sid }));
    // Recorded off the response's path (waitUntil): it lands a moment after the answer.
    await expect.poll(async () => (await sessions.listSessions())[0]?.clients, { timeout: 5000, interval: 20 }).toEqual([rp.clientId]);
  });

  it("refuses a user who was disabled since the code was issued", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const code = await makeCode(rp.clientId, user.id);
    await env.DB.prepare("UPDATE users SET disabled = 1 WHERE id = ?").bind(user.id).run();
    const response = await postAs(rp, "/token", { grant_type: "authorization_code", code: code.code, redirect_uri: REDIRECT_URI, code_verifier: code.verifier });
    expect(await errorOf(response)).toEqual({ status: 400, error: "invalid_grant" });
  });
});

describe("client authentication (C13)", () => {
  const codeParams = (code: { code: string; verifier: string }) => ({
    grant_type: "authorization_code",
    code: code.code,
    redirect_uri: REDIRECT_URI,
    code_verifier: code.verifier,
  });

  it("a wrong secret with client_secret_basic is a 401 with a Basic challenge, and burns nothing", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const code = await makeCode(rp.clientId, user.id);
    const response = await post("/token", codeParams(code), { authorization: basic(rp.clientId, "wrong-secret") });
    expect(await errorOf(response)).toEqual({ status: 401, error: "invalid_client" });
    expect(response.headers.get("www-authenticate")).toMatch(/^Basic realm="http:\/\/localhost"/);
    expect((await redeem(rp, code)).access_token).toBeDefined();
  });

  it("a wrong secret with client_secret_post is invalid_client", async () => {
    const rp = await makeClient({ token_endpoint_auth_method: "client_secret_post" });
    const user = await makeUser();
    const code = await makeCode(rp.clientId, user.id);
    const response = await post("/token", { ...codeParams(code), client_id: rp.clientId, client_secret: `${rp.secret}x` });
    expect(await errorOf(response)).toEqual({ status: 401, error: "invalid_client" });
    // No Basic challenge for a client that authenticated in the body: libraries then surface the OAuth error itself.
    expect(response.headers.get("www-authenticate")).toBeNull();
    expect((await redeem(rp, code)).access_token).toBeDefined();
  });

  it("decodes form-urlencoded credentials inside Basic (RFC 6749 §2.3.1)", async () => {
    const rp = await makeClient();
    const secret = "s3cr+t:/%x y&ü";
    await patchClient(rp.clientId, {}, await hashClientSecret(secret));
    const user = await makeUser();
    const code = await makeCode(rp.clientId, user.id);
    const response = await post("/token", codeParams(code), { authorization: basic(rp.clientId, secret) });
    expect(response.status).toBe(200);
    // Not form-decoding would have compared "s3cr%2Bt..." and failed; a raw "+" means a space.
    const raw = await post("/token", codeParams(await makeCode(rp.clientId, user.id)), {
      authorization: `Basic ${btoa(unescape(encodeURIComponent(`${rp.clientId}:${secret}`)))}`,
    });
    expect(raw.status).toBe(401);
  });

  it("a client with a secret may send it by Basic or in the body; a key or public client only its own method (RFC 6749 §2.3.1)", async () => {
    const basicClient = await makeClient();
    const postClient = await makeClient({ token_endpoint_auth_method: "client_secret_post" });
    const jwtClient = await makeClient({ token_endpoint_auth_method: "private_key_jwt", jwks: { keys: [] } });
    const spa = await makeClient({ token_endpoint_auth_method: "none" });
    const user = await makeUser();
    // Either way of sending the secret works, whichever of the two was registered.
    const viaPost = await post("/token", { ...codeParams(await makeCode(basicClient.clientId, user.id)), client_id: basicClient.clientId, client_secret: basicClient.secret! });
    expect(viaPost.status).toBe(200);
    const viaBasic = await post("/token", codeParams(await makeCode(postClient.clientId, user.id)), { authorization: basic(postClient.clientId, postClient.secret!) });
    expect(viaBasic.status).toBe(200);

    // Any other method is invalid_client, and the description names the registered method (and no secret).
    const code = await makeCode(basicClient.clientId, user.id);
    const refused = async (response: Response, registered: string) => {
      const body = await response.json<{ error: string; error_description: string }>();
      expect({ status: response.status, error: body.error }).toEqual({ status: 401, error: "invalid_client" });
      expect(body.error_description).toContain(registered);
      for (const secret of [basicClient.secret!, postClient.secret!]) expect(body.error_description).not.toContain(secret);
    };
    await refused(await post("/token", { ...codeParams(code), client_id: basicClient.clientId }), "client_secret_basic");
    await refused(await post("/token", { ...codeParams(code), client_id: postClient.clientId }), "client_secret_post");
    await refused(await post("/token", codeParams(code), { authorization: basic(jwtClient.clientId, "a-secret") }), "private_key_jwt");
    await refused(await post("/token", { ...codeParams(code), client_id: jwtClient.clientId }), "private_key_jwt");
    await refused(await post("/token", codeParams(code), { authorization: basic(spa.clientId, "a-secret") }), "none");
    await refused(await post("/token", { ...codeParams(code), client_id: spa.clientId, client_secret: "a-secret" }), "none");

    const both = await post("/token", { ...codeParams(code), client_id: basicClient.clientId, client_secret: basicClient.secret! }, {
      authorization: basic(basicClient.clientId, basicClient.secret!),
    });
    expect(await errorOf(both)).toEqual({ status: 400, error: "invalid_request" });
    const nothing = await post("/token", codeParams(code));
    expect(await errorOf(nothing)).toEqual({ status: 401, error: "invalid_client" });
    const unknown = await post("/token", codeParams(code), { authorization: basic("no-such-client", "x") });
    expect(await errorOf(unknown)).toEqual({ status: 401, error: "invalid_client" });
    const malformed = await post("/token", codeParams(code), { authorization: "Basic %%%not-base64" });
    expect(await errorOf(malformed)).toEqual({ status: 401, error: "invalid_client" });
    // None of the refusals used the code up.
    expect((await redeem(basicClient, code)).access_token).toBeDefined();
  });

  it("sees a secret rotation at once (C5)", async () => {
    const rp = await makeClient();
    await patchClient(rp.clientId, {}, await hashClientSecret("rotated-secret"));
    const user = await makeUser();
    const code = await makeCode(rp.clientId, user.id);
    const old = await post("/token", codeParams(code), { authorization: basic(rp.clientId, rp.secret!) });
    expect(old.status).toBe(401);
    const fresh = await post("/token", codeParams(code), { authorization: basic(rp.clientId, "rotated-secret") });
    expect(fresh.status).toBe(200);
  });

  describe("private_key_jwt (RFC 7523)", () => {
    async function jwtClient() {
      const { publicKey, privateKey } = await generateKeyPair("ES256", { extractable: true });
      const jwk: JWK = { ...(await exportJWK(publicKey)), alg: "ES256", use: "sig" };
      jwk.kid = await calculateJwkThumbprint(jwk);
      const c = await makeClient({
        token_endpoint_auth_method: "private_key_jwt",
        grant_types: ["authorization_code", "refresh_token", "client_credentials"],
        jwks: { keys: [jwk as Record<string, string>] },
      });
      return { ...c, privateKey, kid: jwk.kid };
    }

    function assertion(clientId: string, key: CryptoKey, kid: string, overrides: Record<string, unknown> = {}, lifetime = 60): Promise<string> {
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ jti: crypto.randomUUID(), ...overrides })
        .setProtectedHeader({ alg: "ES256", kid })
        .setIssuer(clientId)
        .setSubject(clientId)
        .setAudience((overrides.aud as string | string[]) ?? ISSUER)
        .setIssuedAt((overrides.iat as number | undefined) ?? now)
        .setExpirationTime(now + lifetime)
        .sign(key);
    }

    const asAssertion = (jwt: string) => ({ client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: jwt });

    it("authenticates with a signed assertion and refuses a replayed jti", async () => {
      const rp = await jwtClient();
      const user = await makeUser();
      const jwt = await assertion(rp.clientId, rp.privateKey, rp.kid);
      const first = await post("/token", { ...codeParams(await makeCode(rp.clientId, user.id)), ...asAssertion(jwt) });
      expect(first.status).toBe(200);
      const code = await makeCode(rp.clientId, user.id);
      const replayed = await post("/token", { ...codeParams(code), ...asAssertion(jwt) });
      expect(await errorOf(replayed)).toEqual({ status: 401, error: "invalid_client" });
      // The token endpoint URL is an accepted audience too; a fresh jti works.
      const fresh = await assertion(rp.clientId, rp.privateKey, rp.kid, { aud: `${ISSUER}/token` });
      expect((await post("/token", { ...codeParams(code), ...asAssertion(fresh), client_id: rp.clientId })).status).toBe(200);
    });

    it("names this server by the issuer identifier, or the token endpoint URL, and nothing else (draft-ietf-oauth-rfc7523bis)", async () => {
      const rp = await jwtClient();
      const user = await makeUser();
      const at = async (path: "/token" | "/introspect", aud: string | string[]) => {
        const jwt = asAssertion(await assertion(rp.clientId, rp.privateKey, rp.kid, { aud }));
        if (path === "/introspect") return (await post(path, { token: "not-a-token", ...jwt })).status;
        return (await post(path, { ...codeParams(await makeCode(rp.clientId, user.id)), ...jwt })).status;
      };
      for (const path of ["/token", "/introspect"] as const) {
        for (const aud of [ISSUER, `${ISSUER}/token`, [ISSUER], [ISSUER, `${ISSUER}/token`]]) expect(await at(path, aud)).toBe(200);
        const refused = [
          `${ISSUER}${path === "/token" ? "/introspect" : path}`,
          [ISSUER, "https://attacker.example"],
          ["https://attacker.example", `${ISSUER}/token`],
          [],
          `${ISSUER}/`,
          "https://elsewhere.example",
        ];
        for (const aud of refused) expect({ path, aud, status: await at(path, aud) }).toEqual({ path, aud, status: 401 });
      }
    });

    it("accepts an assertion that lives an hour, as Authlib signs them, and remembers its jti until it expires (C10)", async () => {
      expect(config.clientAssertionMaxLifetime).toBe(3600);
      const rp = await jwtClient();
      const user = await makeUser();
      const start = Date.now() + 86_400_000;
      vi.useFakeTimers({ toFake: ["Date"] });
      try {
        vi.setSystemTime(start);
        const hourLong = asAssertion(await assertion(rp.clientId, rp.privateKey, rp.kid, {}, 3600));
        expect((await post("/token", { ...codeParams(await makeCode(rp.clientId, user.id)), ...hourLong })).status).toBe(200);
        const longer = asAssertion(await assertion(rp.clientId, rp.privateKey, rp.kid, {}, 3601));
        expect(await errorOf(await post("/token", { ...codeParams(await makeCode(rp.clientId, user.id)), ...longer }))).toEqual({ status: 401, error: "invalid_client" });
        // 58 minutes later the assertion has not expired, and its jti is still known: a replay is refused as one.
        vi.setSystemTime(start + 3480_000);
        const replay = await post("/token", { ...codeParams(await makeCode(rp.clientId, user.id)), ...hourLong });
        expect(replay.status).toBe(401);
        expect((await replay.json<{ error_description: string }>()).error_description).toBe("client_assertion was already used");
      } finally {
        vi.useRealTimers();
      }
    });

    it("with another CLIENT_ASSERTION_MAX_LIFETIME: longer assertions are refused", async () => {
      const rp = await jwtClient();
      const user = await makeUser();
      const settings = { ...env, CLIENT_ASSERTION_MAX_LIFETIME: "120" } as Env;
      const call = async (lifetime: number) => {
        const params = { ...codeParams(await makeCode(rp.clientId, user.id)), ...asAssertion(await assertion(rp.clientId, rp.privateKey, rp.kid, {}, lifetime)) };
        const headers = { "content-type": "application/x-www-form-urlencoded" };
        return token(new Request(`${ISSUER}/token`, { method: "POST", headers, body: new URLSearchParams(params) }), settings, createExecutionContext());
      };
      expect((await call(120)).status).toBe(200);
      // Called without the router: the refusal is the OAuthError the router would render as 401.
      await expect(call(600)).rejects.toMatchObject({ code: "invalid_client", description: "client_assertion lives longer than 120 seconds" });
    });

    it("refuses a wrong audience, a foreign key, a long-lived assertion, a mismatched client_id and a bad assertion type", async () => {
      const rp = await jwtClient();
      const stranger = await generateKeyPair("ES256");
      const user = await makeUser();
      const code = await makeCode(rp.clientId, user.id);
      const bad = [
        asAssertion(await assertion(rp.clientId, rp.privateKey, rp.kid, { aud: "https://elsewhere.example" })),
        asAssertion(await assertion(rp.clientId, stranger.privateKey, rp.kid)),
        asAssertion(await assertion(rp.clientId, rp.privateKey, rp.kid, {}, config.clientAssertionMaxLifetime + 1)),
        asAssertion(await assertion(rp.clientId, rp.privateKey, rp.kid, { iat: Math.floor(Date.now() / 1000) - 7200 }, 60)),
        asAssertion(await assertion(rp.clientId, rp.privateKey, rp.kid, {}, -120)),
        { ...asAssertion(await assertion(rp.clientId, rp.privateKey, rp.kid)), client_id: "someone-else" },
        { client_assertion_type: "urn:example:other", client_assertion: await assertion(rp.clientId, rp.privateKey, rp.kid) },
        asAssertion("not.a.jwt"),
      ];
      for (const extra of bad) {
        const response = await post("/token", { ...codeParams(code), ...extra });
        expect(await errorOf(response)).toEqual({ status: 401, error: "invalid_client" });
      }
      const half = await post("/token", { ...codeParams(code), client_assertion: await assertion(rp.clientId, rp.privateKey, rp.kid) });
      expect(await errorOf(half)).toEqual({ status: 400, error: "invalid_request" });
      expect((await post("/token", { ...codeParams(code), ...asAssertion(await assertion(rp.clientId, rp.privateKey, rp.kid)) })).status).toBe(200);
    });
  });
});

describe("refresh_token grant", () => {
  it("rotates: new tokens, the old refresh token is spent, a new ID token keeps the original auth_time (OIDC Core §12.2)", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const code = await makeCode(rp.clientId, user.id, { authTime: 1_700_000_000, sid: "sid-zyxwvutsrqpo" });
    const first = await redeem(rp, code);
    const response = await refresh(rp, first.refresh_token!);
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const second = await response.json<Tokens>();
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.scope).toBe(first.scope);
    expect(accessLifetimes(second)).toEqual([config.accessTokenTtl, config.accessTokenTtl]);
    const { payload } = await verifyIdToken(second.id_token!, rp.clientId);
    expect(payload).toMatchObject({ sub: user.id, auth_time: 1_700_000_000, sid: "sid-zyxwvutsrqpo", at_hash: await halfHash(second.access_token) });
    expect(payload.nonce).toBeUndefined();
    expect((await userinfoWith(second.access_token)).status).toBe(200);
  });

  it("with the client's reuse interval, a retry of a rotated token gets the same refresh token and a fresh access token; without, it revokes the grant", async () => {
    const retrying = await makeClient({ refresh_token_reuse_interval: 30 });
    const user = await makeUser();
    const first = await redeem(retrying, await makeCode(retrying.clientId, user.id));
    const answers = await Promise.all([refresh(retrying, first.refresh_token!), refresh(retrying, first.refresh_token!)]);
    const [a, b] = await Promise.all(answers.map((r) => r.json<Tokens>()));
    expect(answers.map((r) => r.status)).toEqual([200, 200]);
    expect(a!.refresh_token).toBe(b!.refresh_token);
    expect(a!.access_token).not.toBe(b!.access_token);
    expect((await refresh(retrying, a!.refresh_token!)).status).toBe(200);

    const strict = await makeClient();
    const second = await redeem(strict, await makeCode(strict.clientId, user.id));
    expect((await refresh(strict, second.refresh_token!)).status).toBe(200);
    expect(await errorOf(await refresh(strict, second.refresh_token!))).toEqual({ status: 400, error: "invalid_grant" });
  });

  it("may narrow the scope, never widen it", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const first = await redeem(rp, await makeCode(rp.clientId, user.id, { scope: "openid email offline_access" }));
    const wider = await refresh(rp, first.refresh_token!, { scope: "openid email profile offline_access" });
    expect(await errorOf(wider)).toEqual({ status: 400, error: "invalid_scope" });
    // The refused request changed nothing: the same token still rotates, to a narrower scope.
    const narrow = await refresh(rp, first.refresh_token!, { scope: "email" });
    expect(narrow.status).toBe(200);
    const tokens = await narrow.json<Tokens>();
    expect(tokens.scope).toBe("email");
    expect(tokens.id_token).toBeUndefined();
    expect(decodePayload(tokens.access_token).scope).toBe("email");
    // The grant keeps what was granted: the next refresh without scope gets all of it again.
    const again = await (await refresh(rp, tokens.refresh_token!)).json<Tokens>();
    expect(again.scope).toBe("openid email offline_access");
  });

  it("10 parallel refreshes of one token: exactly one 200, and the family is revoked (C3)", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const first = await redeem(rp, await makeCode(rp.clientId, user.id));
    const responses = await Promise.all(Array.from({ length: 10 }, () => refresh(rp, first.refresh_token!)));
    expect(responses.filter((r) => r.status === 200)).toHaveLength(1);
    const bodies = await Promise.all(responses.map((r) => r.json<Tokens & { error?: string }>()));
    expect(bodies.filter((b) => b.error === "invalid_grant")).toHaveLength(9);
    const winner = bodies.find((b) => b.access_token !== undefined)!;
    expect((await errorOf(await refresh(rp, winner.refresh_token!))).error).toBe("invalid_grant");
    expect((await userinfoWith(winner.access_token)).status).toBe(401);
    expect((await userinfoWith(first.access_token)).status).toBe(401);
  });

  it("still rotates a refresh token of the older form (<grant>.<secret>, before the user rode along), keeping its form", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const first = await redeem(rp, await makeCode(rp.clientId, user.id));
    const [grant] = first.refresh_token!.split(".");
    // What a release before the user part stored: the same grant, its token without the user.
    const older = `${grant}.${randomToken(32)}`;
    await runInDurableObject(tokenFamilyFor(env, grant!)!, async (_object, state) => {
      state.storage.sql.exec(`UPDATE refresh_tokens SET token_hash = ? WHERE generation = 1`, await sha256Base64url(older));
    });
    const rotated = await refresh(rp, older);
    expect(rotated.status).toBe(200);
    const next = (await rotated.json<Tokens>()).refresh_token!;
    expect(next).toMatch(new RegExp(`^${grant}\\.[A-Za-z0-9_-]{43}$`));
    expect((await refresh(rp, next)).status).toBe(200);
    // The user was read after the rotation, as before: disabling them ends the older-form chain too (C22).
    await env.DB.prepare("UPDATE users SET disabled = 1 WHERE id = ?").bind(user.id).run();
    expect((await errorOf(await refresh(rp, older))).error).toBe("invalid_grant");
  });

  it("never takes an access token for a refresh token: RS256 and ES256 JWTs name no grant object", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const rs = await redeem(rp, await makeCode(rp.clientId, user.id));
    expect(familyIdOfRefreshToken(rs.access_token)).toBeNull();
    expect(familyIdOfRefreshToken(rs.id_token!)).toBeNull();
    const es = await makeClient({ id_token_signed_response_alg: "ES256" });
    const esTokens = await redeem(es, await makeCode(es.clientId, user.id));
    expect(familyIdOfRefreshToken(esTokens.id_token!)).toBeNull();
  });

  it("refuses another client's refresh token without harming the grant, and garbage tokens", async () => {
    const rp = await makeClient();
    const other = await makeClient();
    const user = await makeUser();
    const first = await redeem(rp, await makeCode(rp.clientId, user.id));
    expect((await errorOf(await refresh(other, first.refresh_token!))).error).toBe("invalid_grant");
    const [grant, , secret] = first.refresh_token!.split(".");
    // The user part is only a hint: naming another user (or none) with the real secret is not the token.
    const otherUser = await makeUser();
    for (const garbage of ["x", `${grant}.${"A".repeat(43)}`, `${grant}.${secret}`, `${grant}.${otherUser.id}.${secret}`, "a.b.c", "€".repeat(100)]) {
      expect(await errorOf(await refresh(rp, garbage))).toEqual({ status: 400, error: "invalid_grant" });
    }
    expect((await refresh(rp, first.refresh_token!)).status).toBe(200);
  });

  it("follows the client's registered scope of now, at refresh and at code redemption (C5)", async () => {
    const rp = await makeClient();
    const user = await makeUser({ name: "Ada Lovelace" });
    const first = await redeem(rp, await makeCode(rp.clientId, user.id, { scope: "openid profile email offline_access" }));
    const pendingCode = await makeCode(rp.clientId, user.id, { scope: "openid profile email offline_access" });
    await patchClient(rp.clientId, { scope: "openid email offline_access" });

    const refreshed = await refresh(rp, first.refresh_token!);
    expect(refreshed.status).toBe(200);
    const second = await refreshed.json<Tokens>();
    expect(second.scope).toBe("openid email offline_access");
    expect(decodePayload(second.access_token).scope).toBe("openid email offline_access");
    expect((await (await userinfoWith(second.access_token)).json<Record<string, unknown>>()).name).toBeUndefined();
    // A code issued before the change yields no more than the registration allows now.
    const redeemed = await redeem(rp, pendingCode);
    expect(redeemed.scope).toBe("openid email offline_access");
    expect(decodePayload(redeemed.access_token).scope).toBe("openid email offline_access");

    // Asking only for a scope the client lost: invalid_scope, and the refresh token is not spent.
    expect(await errorOf(await refresh(rp, second.refresh_token!, { scope: "profile" }))).toEqual({ status: 400, error: "invalid_scope" });
    // Nothing for a resource left (offline_access alone), or an OpenID grant without offline_access: invalid_scope, nothing spent.
    await patchClient(rp.clientId, { scope: "offline_access" });
    expect(await errorOf(await refresh(rp, second.refresh_token!))).toEqual({ status: 400, error: "invalid_scope" });
    await patchClient(rp.clientId, { scope: "openid email" });
    expect(await errorOf(await refresh(rp, second.refresh_token!))).toEqual({ status: 400, error: "invalid_scope" });
    // The registration restored, the same refresh token works, with the whole grant again.
    await patchClient(rp.clientId, { scope: "openid profile email offline_access" });
    const restored = await refresh(rp, second.refresh_token!);
    expect(restored.status).toBe(200);
    expect((await restored.json<Tokens>()).scope).toBe("openid profile email offline_access");
  });

  it("refuses a user who was disabled since (invalid_grant) and revokes the grant", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const first = await redeem(rp, await makeCode(rp.clientId, user.id));
    await env.DB.prepare("UPDATE users SET disabled = 1 WHERE id = ?").bind(user.id).run();
    expect(await errorOf(await refresh(rp, first.refresh_token!))).toEqual({ status: 400, error: "invalid_grant" });
    const family = tokenFamilyFor(env, decodePayload(first.access_token).gid as string)!;
    expect((await family.getFamily())!.status).toBe("revoked");
  });

  it("a client not registered for refresh_token is unauthorized_client", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const first = await redeem(rp, await makeCode(rp.clientId, user.id));
    await patchClient(rp.clientId, { grant_types: ["authorization_code"] });
    expect(await errorOf(await refresh(rp, first.refresh_token!))).toEqual({ status: 400, error: "unauthorized_client" });
  });
});

describe("client_credentials grant", () => {
  it("issues a revocable access token for the client itself, with no ID token, no refresh token and no object of its own", async () => {
    const api = await makeClient({ grant_types: ["client_credentials"], scope: "openid reports:read reports:write" });
    const familiesBefore = (await listDurableObjectIds(env.TOKEN_FAMILIES)).length;
    const response = await postAs(api, "/token", { grant_type: "client_credentials" });
    expect(response.status).toBe(200);
    const tokens = await response.json<Tokens>();
    expect(tokens.scope).toBe("reports:read reports:write");
    expect(accessLifetimes(tokens)).toEqual([config.accessTokenTtl, config.accessTokenTtl]);
    expect(tokens.id_token).toBeUndefined();
    expect(tokens.refresh_token).toBeUndefined();
    const claims = decodePayload(tokens.access_token);
    expect(claims).toMatchObject({ sub: api.clientId, client_id: api.clientId, scope: "reports:read reports:write" });
    expect(claims.auth_time).toBeUndefined();
    // Its grant is the client's registration: no object was made for it, nothing was stored.
    expect(claims.gid).toBe(`client.${api.client.registered_at}`);
    expect(await listDurableObjectIds(env.TOKEN_FAMILIES).then((ids) => ids.length)).toBe(familiesBefore);

    const narrow = await (await postAs(api, "/token", { grant_type: "client_credentials", scope: "reports:read" })).json<Tokens>();
    expect(narrow.scope).toBe("reports:read");
    // Revocable one by one (RFC 7009): the revoked token is inactive, the client's other token is not.
    const active = async (t: string) => ((await (await postAs(api, "/introspect", { token: t })).json()) as { active: boolean }).active;
    expect([await active(tokens.access_token), await active(narrow.access_token)]).toEqual([true, true]);
    expect((await postAs(api, "/revoke", { token: tokens.access_token })).status).toBe(200);
    expect([await active(tokens.access_token), await active(narrow.access_token)]).toEqual([false, true]);
  });

  it("refuses user scopes, unregistered scopes, public clients and clients without the grant", async () => {
    const api = await makeClient({ grant_types: ["client_credentials"], scope: "openid reports:read" });
    for (const scope of ["openid", "reports:read profile", "reports:write", "bad\"scope"]) {
      expect(await errorOf(await postAs(api, "/token", { grant_type: "client_credentials", scope }))).toEqual({ status: 400, error: "invalid_scope" });
    }
    const spa = await makeClient({ token_endpoint_auth_method: "none", grant_types: ["client_credentials"] });
    expect((await errorOf(await postAs(spa, "/token", { grant_type: "client_credentials" }))).error).toBe("unauthorized_client");
    const rp = await makeClient();
    expect((await errorOf(await postAs(rp, "/token", { grant_type: "client_credentials" }))).error).toBe("unauthorized_client");
  });
});

describe("a grant without a refresh token lives in its access tokens (C15, C1, C22)", () => {
  const introspected = async (c: TestClient, accessToken: string) => ((await (await postAs(c, "/introspect", { token: accessToken })).json()) as { active: boolean }).active;
  /** The tables of the object of a grant id (the runtime's own aside), and its alarm: what the grant stores. */
  const storageOf = (grantId: string) =>
    runInDurableObject(tokenFamilyFor(env, grantId)!, async (_object, state) => ({
      tables: state.storage.sql.exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'`).toArray().length,
      alarm: await state.storage.getAlarm(),
    }));

  /** The audit events about `subject` delivered to D1 so far, as `type client_id`. */
  const auditedAbout = async (subject: string) =>
    (await env.DB.prepare("SELECT type, client_id FROM audit_log WHERE subject = ? ORDER BY occurred_at").bind(subject).all<{ type: string; client_id: string | null }>()).results.map(
      (r) => `${r.type} ${r.client_id}`,
    );

  it("stores nothing: its gid names the grant, the client's registration and when it was made, and the token is good everywhere", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const code = await makeCode(rp.clientId, user.id, { scope: "openid email" }); // no offline_access
    const online = await redeem(rp, code);
    expect(online.refresh_token).toBeUndefined();
    const gid = decodePayload(online.access_token).gid as string;
    const made = accessTokenGrantOf(gid);
    expect(made).toMatchObject({ clientRegisteredAt: rp.client.registered_at });
    expect(Math.abs(made!.createdAt - Date.now())).toBeLessThan(60_000);
    expect((await userinfoWith(online.access_token)).status).toBe(200);
    expect(await introspected(rp, online.access_token)).toBe(true);
    expect(await storageOf(made!.grantId)).toEqual({ tables: 0, alarm: null });
    // The redemption is the audit event that says tokens were issued (and what /admin/metrics counts).
    await vi.waitFor(async () => expect(await auditedAbout(user.id)).toContain(`auth_code.redeemed ${rp.clientId}`), { timeout: 5000 });
    // A code with a claims request keeps its grant in an object (userinfo answers by the request).
    const withClaims = await redeem(rp, await makeCode(rp.clientId, user.id, { scope: "openid email", claims: JSON.stringify({ userinfo: { email: null } }) }));
    const familyId = decodePayload(withClaims.access_token).gid as string;
    expect(accessTokenGrantOf(familyId)).toBeNull();
    expect((await storageOf(familyId)).tables).toBeGreaterThan(0);
  });

  it("a replay of its code revokes it (RFC 6749 §4.1.2, C1), and RFC 7009 revokes one token of it", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const code = await makeCode(rp.clientId, user.id, { scope: "openid email" });
    const online = await redeem(rp, code);
    expect(await introspected(rp, online.access_token)).toBe(true);
    const replay = await postAs(rp, "/token", { grant_type: "authorization_code", code: code.code, redirect_uri: REDIRECT_URI, code_verifier: code.verifier });
    expect((await errorOf(replay)).error).toBe("invalid_grant");
    expect(await introspected(rp, online.access_token)).toBe(false);
    expect((await userinfoWith(online.access_token)).status).toBe(401);
    // The revocation's audit event names whose grant it was, though the grant had no object.
    await vi.waitFor(async () => expect(await auditedAbout(user.id)).toContain(`token_family.revoked ${rp.clientId}`), { timeout: 5000 });

    const other = await redeem(rp, await makeCode(rp.clientId, user.id, { scope: "openid email" }));
    const second = await redeem(rp, await makeCode(rp.clientId, user.id, { scope: "openid email" }));
    expect((await postAs(rp, "/revoke", { token: other.access_token })).status).toBe(200);
    expect(await introspected(rp, other.access_token)).toBe(false);
    await vi.waitFor(async () => expect(await auditedAbout(user.id)).toContain(`access_token.revoked ${rp.clientId}`), { timeout: 5000 });
    expect(await introspected(rp, second.access_token)).toBe(true);
    // Another client cannot revoke it (C14).
    const stranger = await makeClient();
    expect((await postAs(stranger, "/revoke", { token: second.access_token })).status).toBe(200);
    expect(await introspected(rp, second.access_token)).toBe(true);
  });

  it("ends with the user's grants, the user, and the client's registration (C22, RFC 9700 §4.14)", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    const online = async () => (await redeem(rp, await makeCode(rp.clientId, user.id, { scope: "openid email", issuedAt: Date.now() }))).access_token;
    const ended = await online();
    await endGrantsIssuedBefore(env.DB, user.id, "*", Date.now(), { actor: "test", type: "admin.user.grants_ended", subject: user.id, clientId: null, data: {} });
    expect(await introspected(rp, ended)).toBe(false);
    expect((await userinfoWith(ended)).status).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 5));
    const after = await online();
    expect(await introspected(rp, after)).toBe(true);

    await env.DB.prepare("UPDATE users SET disabled = 1 WHERE id = ?").bind(user.id).run();
    expect(await introspected(rp, after)).toBe(false);
    await env.DB.prepare("UPDATE users SET disabled = 0 WHERE id = ?").bind(user.id).run();
    expect(await introspected(rp, after)).toBe(true);

    // The same client_id registered again: the grant named the earlier registration.
    await env.DB.prepare("UPDATE clients SET created_at = created_at + 1000 WHERE id = ?").bind(rp.clientId).run();
    expect(await introspected({ ...rp }, after)).toBe(false);
    expect((await userinfoWith(after)).status).toBe(401);
  });

  it("with another ACCESS_TOKEN_TTL: expires_in and exp − iat follow it", async () => {
    const rp = await makeClient();
    const api = await makeClient({ grant_types: ["client_credentials"], scope: "reports:read" });
    const user = await makeUser();
    const settings = { ...env, ACCESS_TOKEN_TTL: "120" } as Env;
    const call = (c: TestClient, params: Record<string, string>) => {
      const headers = { "content-type": "application/x-www-form-urlencoded", authorization: basic(c.clientId, c.secret!) };
      return token(new Request(`${ISSUER}/token`, { method: "POST", headers, body: new URLSearchParams(params) }), settings, createExecutionContext());
    };
    const code = await makeCode(rp.clientId, user.id, { scope: "openid email" });
    const online = await (await call(rp, { grant_type: "authorization_code", code: code.code, redirect_uri: REDIRECT_URI, code_verifier: code.verifier })).json<Tokens>();
    const service = await (await call(api, { grant_type: "client_credentials" })).json<Tokens>();
    for (const tokens of [online, service]) expect(accessLifetimes(tokens)).toEqual([120, 120]);
  });
});

describe("the access token's signing algorithm (ACCESS_TOKEN_SIGNING_ALG)", () => {
  it("is RS256 by default and ES256 when set; either verifies at /userinfo and /introspect", async () => {
    const rp = await makeClient();
    const user = await makeUser();
    for (const alg of ["RS256", "ES256"] as const) {
      const settings = { ...env, ACCESS_TOKEN_SIGNING_ALG: alg } as Env;
      const code = await makeCode(rp.clientId, user.id);
      const headers = { "content-type": "application/x-www-form-urlencoded", authorization: basic(rp.clientId, rp.secret!) };
      const body = new URLSearchParams({ grant_type: "authorization_code", code: code.code, redirect_uri: REDIRECT_URI, code_verifier: code.verifier });
      const response = await token(new Request(`${ISSUER}/token`, { method: "POST", headers, body }), settings, createExecutionContext());
      expect(response.status).toBe(200);
      const tokens = await response.json<Tokens>();
      expect(JSON.parse(atob(tokens.access_token.split(".")[0]!.replace(/-/g, "+").replace(/_/g, "/")))).toMatchObject({ alg, typ: "at+jwt" });
      expect((await userinfoWith(tokens.access_token)).status).toBe(200);
      expect(((await (await postAs(rp, "/introspect", { token: tokens.access_token })).json()) as { active: boolean }).active).toBe(true);
    }
  });
});

describe("bad input at /token", () => {
  it("answers with the spec's errors, never a 5xx", async () => {
    const rp = await makeClient();
    const cases: [Promise<Response>, number, string][] = [
      [postAs(rp, "/token", { grant_type: "password", username: "a", password: "b" }), 400, "unsupported_grant_type"],
      [postAs(rp, "/token", { grant_type: "urn:ietf:params:oauth:grant-type:device_code" }), 400, "unsupported_grant_type"],
      [postAs(rp, "/token", {}), 400, "invalid_request"],
      [postAs(rp, "/token", { grant_type: "authorization_code" }), 400, "invalid_request"],
      [postAs(rp, "/token", { grant_type: "refresh_token" }), 400, "invalid_request"],
      [postAs(rp, "/token", { grant_type: "x".repeat(5000) }), 400, "invalid_request"],
      [
        SELF.fetch(`${ISSUER}/token`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ grant_type: "client_credentials" }) }),
        400,
        "invalid_request",
      ],
      [
        SELF.fetch(`${ISSUER}/token`, {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", authorization: basic(rp.clientId, rp.secret!) },
          body: "grant_type=authorization_code&grant_type=refresh_token",
        }),
        400,
        "invalid_request",
      ],
      [
        SELF.fetch(`${ISSUER}/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: `grant_type=client_credentials&pad=${"a".repeat(100_000)}` }),
        413,
        "invalid_request",
      ],
      [
        SELF.fetch(`${ISSUER}/token`, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new Uint8Array([0x67, 0x3d, 0xff, 0xfe]) }),
        400,
        "invalid_request",
      ],
      [SELF.fetch(`${ISSUER}/token?grant_type=client_credentials`), 405, "invalid_request"],
      [post("/token", { grant_type: "authorization_code", code: "x" }, { authorization: "Bearer abc" }), 401, "invalid_client"],
    ];
    for (const [pending, status, error] of cases) {
      const response = await pending;
      expect({ status: response.status, error: (await response.json<{ error: string }>()).error }).toEqual({ status, error });
      expect(response.headers.get("cache-control")).toBe("no-store");
    }
  });

  it("counts a request against the limit before the client is looked up: an invented client_id is limited too, and costs no D1 read once over (C6)", async () => {
    const n = config.rateLimitToken;
    const attacker = "203.0.113.8";
    let d1Calls = 0;
    const db = new Proxy(env.DB, {
      get(target, prop) {
        const value = Reflect.get(target, prop);
        if (typeof value !== "function") return value;
        return (...args: unknown[]) => {
          d1Calls++;
          return (value as (...a: unknown[]) => unknown).apply(target, args);
        };
      },
    });
    const settings = { ...env, DB: db } as Env;
    const guess = (clientId: string) => {
      const headers = { "content-type": "application/x-www-form-urlencoded", authorization: basic(clientId, "guess"), "cf-connecting-ip": attacker };
      return token(new Request(`${ISSUER}/token`, { method: "POST", headers, body: "grant_type=client_credentials" }), settings, createExecutionContext());
    };
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime((Math.floor(Date.now() / 60_000) + 1) * 60_000 + 1000);
      const invented = `made-up-${crypto.randomUUID()}`;
      const limiter = rateLimiterFor(env, `token:ip:${attacker}:client:${invented}`);
      // An invented client_id is counted like a real one (then refused as unknown, after one D1 read)…
      await expect(guess(invented)).rejects.toMatchObject({ code: "invalid_client" });
      expect((await limiter.peekUsage(config.rateLimitWindow)).count).toBe(1);
      expect(d1Calls).toBe(1);
      // …and once over the limit it is refused with 429 before anything is read from D1.
      await limiter.hit(n, config.rateLimitWindow, n - 1);
      d1Calls = 0;
      await expect(guess(invented)).rejects.toMatchObject({ code: "rate_limited", status: 429 });
      expect(d1Calls).toBe(0);
    } finally {
      vi.useRealTimers();
    }
  });

  it("rate-limits per client and caller address: with a limit of N, exactly N concurrent requests pass (C6), the next gets 429 + Retry-After", async () => {
    const rp = await makeClient({ grant_types: ["client_credentials"], scope: "api" });
    const other = await makeClient({ grant_types: ["client_credentials"], scope: "api" });
    const n = config.rateLimitToken;
    const attacker = "203.0.113.7";
    const from = (address: string, c: TestClient, secret = c.secret!) =>
      post("/token", { grant_type: "client_credentials" }, { authorization: basic(c.clientId, secret), "cf-connecting-ip": address });
    // Counted before the secret is checked, so guessing secrets is limited too; wrong secrets keep the burst cheap.
    const guess = () => from(attacker, rp, "guess");
    // A frozen clock inside one window, so the count is exact.
    vi.useFakeTimers({ toFake: ["Date"] });
    try {
      vi.setSystemTime((Math.floor(Date.now() / 60_000) + 1) * 60_000 + 1000);
      // Most of the window is used up directly on the limiter, so the burst through the Worker stays small.
      const used = await rateLimiterFor(env, `token:ip:${attacker}:client:${rp.clientId}`).hit(n, config.rateLimitWindow, n - 8);
      expect(used.allowed).toBe(true);
      const responses = await Promise.all(Array.from({ length: 9 }, guess));
      expect(responses.filter((r) => r.status === 401)).toHaveLength(8);
      const limited = responses.filter((r) => r.status === 429);
      expect(limited).toHaveLength(1);
      expect((await limited[0]!.json<{ error: string }>()).error).toBe("rate_limited");
      expect(Number(limited[0]!.headers.get("retry-after"))).toBeGreaterThanOrEqual(1);
      // From the exhausted address even the right secret waits for the next window...
      expect((await from(attacker, rp)).status).toBe(429);
      // ...but the real client, calling from its own address, is not locked out; nor is another client.
      expect((await from("198.51.100.2", rp)).status).toBe(200);
      expect((await postAs(rp, "/token", { grant_type: "client_credentials" })).status).toBe(200);
      expect((await from(attacker, other)).status).toBe(200);
      vi.setSystemTime(Date.now() + 60_000);
      expect((await from(attacker, rp)).status).toBe(200);
    } finally {
      vi.useRealTimers();
    }
  });
});
