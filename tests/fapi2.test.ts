import { SELF, createExecutionContext, env } from "cloudflare:test";
import { decodeProtectedHeader } from "jose";
import { describe, expect, it } from "vitest";
import type { Env } from "../src/env";
import { authCodeStoreFor } from "../src/objects/locate";
import { authorize } from "../src/routes/authorize";
import { pushedAuthorizationRequest } from "../src/routes/par";
import { renderError } from "../src/routes/support/errors";
import { ISSUER, REDIRECT_URI, errorOf, makeClient, post, type TestClient, type Tokens } from "./helpers/back-channel";
import { ClientKey } from "./helpers/client-keys";
import { DpopKey, decodePayload } from "./helpers/dpop";
import { Browser, authorizeParams, authorizeUrl, followLocal, responseParams, signIn, uniqueAddress, uniqueEmail } from "./helpers/front-channel";

/**
 * The per-client FAPI 2.0 Security Profile switch (`"security_profile": "fapi2"`): what registration requires, and
 * what the profile changes at /authorize, /par and /token. docs/fapi2.md says what it covers and what it cannot.
 */

const ADMIN = { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" };

function register(metadata: Record<string, unknown>): Promise<Response> {
  return SELF.fetch(`${ISSUER}/admin/clients`, { method: "POST", headers: ADMIN, body: JSON.stringify(metadata) });
}

async function fapiClient(): Promise<TestClient & { key: ClientKey }> {
  const key = await ClientKey.generate("ES256");
  const c = await makeClient({
    security_profile: "fapi2",
    token_endpoint_auth_method: "private_key_jwt",
    jwks: key.jwks,
    dpop_bound_access_tokens: true,
    require_pushed_authorization_requests: true,
    id_token_signed_response_alg: "ES256",
    refresh_token_reuse_interval: 60,
    skip_consent: true,
  });
  return { ...c, key };
}


/** FAPI 2.0 requests here ask for a refresh token too. */
const requestParams = (clientId: string, extra: Record<string, string> = {}) => authorizeParams(clientId, { scope: "openid email offline_access", ...extra });

describe("registering a FAPI 2.0 client", () => {
  it("takes security_profile fapi2 with private_key_jwt and fills in what the profile requires", async () => {
    const key = await ClientKey.generate("PS256");
    const response = await register({
      client_name: "Bank app",
      redirect_uris: [REDIRECT_URI],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "private_key_jwt",
      jwks: key.jwks,
      security_profile: "fapi2",
    });
    expect(response.status).toBe(201);
    expect(await response.json()).toMatchObject({
      security_profile: "fapi2",
      dpop_bound_access_tokens: true,
      require_pushed_authorization_requests: true,
      id_token_signed_response_alg: "ES256",
      refresh_token_reuse_interval: 60,
      request_object_signing_alg: null,
    });
  });

  it("refuses what the profile forbids, with invalid_client_metadata naming the rule", async () => {
    const key = await ClientKey.generate("ES256");
    // A 1024-bit modulus (jose will not even make one): registration reads the length, nothing more.
    const modulus = crypto.getRandomValues(new Uint8Array(128));
    modulus[0] = 0xc1;
    const n = btoa(String.fromCharCode(...modulus)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    const shortRsa = { jwks: { keys: [{ kty: "RSA", e: "AQAB", n, kid: "short", alg: "PS256" }] } };
    const base = { redirect_uris: [REDIRECT_URI], grant_types: ["authorization_code", "refresh_token"], token_endpoint_auth_method: "private_key_jwt", jwks: key.jwks, security_profile: "fapi2" };
    const cases: Record<string, Record<string, unknown>> = {
      "a client secret": { ...base, token_endpoint_auth_method: "client_secret_basic", jwks: undefined },
      "a public client": { ...base, token_endpoint_auth_method: "none", jwks: undefined },
      "bearer access tokens": { ...base, dpop_bound_access_tokens: false },
      "authorization requests without PAR": { ...base, require_pushed_authorization_requests: false },
      "RS256 ID tokens": { ...base, id_token_signed_response_alg: "RS256" },
      "RS256 request objects": { ...base, request_object_signing_alg: "RS256" },
      "unsigned request objects": { ...base, request_object_signing_alg: "none" },
      "an RSA key of 1024 bits": { ...base, jwks: shortRsa.jwks },
      "strict refresh rotation": { ...base, refresh_token_reuse_interval: 0 },
    };
    for (const [name, metadata] of Object.entries(cases)) {
      const response = await register(metadata);
      const body = await response.json<{ error: string; error_description: string }>();
      expect({ name, status: response.status, error: body.error }).toEqual({ name, status: 400, error: "invalid_client_metadata" });
      expect(body.error_description, name).toMatch(/fapi2/);
    }
  });
});

describe("a FAPI 2.0 client at the endpoints", () => {
  it("must push its requests, with PKCE, authenticated by PS256/ES256/EdDSA assertions", async () => {
    const rp = await fapiClient();
    const { params } = await requestParams(rp.clientId);
    // A plain request: refused at the redirect URI.
    expect(responseParams(await new Browser().get(authorizeUrl(params))).params.get("error")).toBe("invalid_request");
    // A pushed request without PKCE, although the client is confidential.
    const { code_challenge: _c, code_challenge_method: _m, ...noPkce } = params;
    expect(await errorOf(await post("/par", { ...noPkce, ...(await rp.key.assertionParams(rp.clientId)) }))).toEqual({ status: 400, error: "invalid_request" });
    // An RS256 assertion from a key it registered: RS256 is not among the profile's algorithms.
    const rsa = await ClientKey.generate("RS256");
    const both = await makeClient({ ...rp.client, security_profile: "fapi2", jwks: { keys: [...rp.key.jwks.keys, ...rsa.jwks.keys] } });
    const { params: bothParams } = await requestParams(both.clientId);
    expect(await errorOf(await post("/par", { ...bothParams, ...(await rsa.assertionParams(both.clientId)) }))).toEqual({ status: 401, error: "invalid_client" });
    expect((await post("/par", { ...bothParams, ...(await rp.key.assertionParams(both.clientId)) })).status).toBe(201);
  });

  it("codes live at most 60 s and request URIs under 600 s, whatever the settings; tokens need DPoP (ES256, not RS256) and are signed ES256", async () => {
    const long = { ...env, AUTH_CODE_TTL: "600", PAR_TTL: "600" } as Env;
    const rp = await fapiClient();
    const key = await DpopKey.generate("ES256");
    const ip = uniqueAddress();
    const par = async (params: Record<string, string>) => {
      const request = new Request(`${ISSUER}/par`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "cf-connecting-ip": ip, dpop: await key.proof("POST", `${ISSUER}/par`) },
        body: new URLSearchParams({ ...params, ...(await rp.key.assertionParams(rp.clientId)) }).toString(),
      });
      return pushedAuthorizationRequest(request, long).catch((e: unknown) => renderError(e));
    };
    const browser = new Browser();
    const authorizeAt = (requestUri: string) =>
      authorize(
        new Request(`${ISSUER}${authorizeUrl({ client_id: rp.clientId, request_uri: requestUri })}`, { headers: { "cf-connecting-ip": ip, cookie: [...browser.cookies].map(([k, v]) => `${k}=${v}`).join("; ") } }),
        long,
        createExecutionContext(),
      );

    // Sign in once (through a pushed request), then the next request gets a code straight away.
    const first = await (await par((await requestParams(rp.clientId)).params)).json<{ request_uri: string; expires_in: number }>();
    expect(first.expires_in).toBe(599);
    const start = await browser.get(authorizeUrl({ client_id: rp.clientId, request_uri: first.request_uri }));
    await followLocal(browser, await signIn(browser, start.headers.get("location")!, uniqueEmail("fapi")));

    const { verifier, params } = await requestParams(rp.clientId);
    const { request_uri } = await (await par(params)).json<{ request_uri: string }>();
    const code = responseParams(await authorizeAt(request_uri)).params.get("code")!;
    const stored = await authCodeStoreFor(env, code)!.peek(code);
    expect(stored.status).toBe("active");
    if (stored.status === "active") expect(stored.expiresAt - Date.now()).toBeLessThanOrEqual(60_000);

    const redeem = async (headers: Record<string, string>) =>
      post("/token", { grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier, ...(await rp.key.assertionParams(rp.clientId)) }, headers);
    expect(await errorOf(await redeem({}))).toEqual({ status: 400, error: "invalid_dpop_proof" });
    const rsaKey = await DpopKey.generate("RS256");
    expect(await errorOf(await redeem({ dpop: await rsaKey.proof("POST", `${ISSUER}/token`) }))).toEqual({ status: 400, error: "invalid_dpop_proof" });
    const ok = await redeem({ dpop: await key.proof("POST", `${ISSUER}/token`) });
    expect(ok.status).toBe(200);
    const tokens = await ok.json<Tokens>();
    expect(tokens.token_type).toBe("DPoP");
    expect(decodePayload(tokens.access_token).cnf).toEqual({ jkt: key.jkt });
    expect(decodeProtectedHeader(tokens.access_token).alg).toBe("ES256");
    expect(decodeProtectedHeader(tokens.id_token!).alg).toBe("ES256");
  });
});
