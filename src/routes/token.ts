import { z } from "zod";
import { issuerOf, loadConfig, type Config } from "../config";
import type { StoredClient } from "../db/clients";
import { getUser, type User } from "../db/users";
import type { Env } from "../env";
import { authCodeStoreFor, tokenFamilyFor } from "../objects/locate";
import { familyIdOfRefreshToken, newFamilyId, type FamilyInfo } from "../objects/refresh-tokens";
import { filterClaims, releasedClaimNames } from "../oauth/claims";
import { OAuthError, invalidGrant, invalidRequest, invalidScope } from "../oauth/errors";
import { grantableScope } from "../oauth/authorize-request";
import { clientCredentialsScope, issuesRefreshToken } from "../oauth/grants";
import { isScopeSubset, parseScope } from "../oauth/scopes";
import { mintAccessToken, mintIdToken } from "../oauth/tokens";
import { currentSigningKey } from "../signing-keys";
import { authenticateClient, clientAuthParams } from "./client-auth";
import { param, parseWith, readParams } from "./params";
import { jsonResponse } from "./respond";
import { recordSessionClient } from "./session";
import { storedClaimsRequest, userClaimValues } from "./userinfo";

/**
 * The token endpoint (RFC 6749 §3.2): authorization_code (§4.1.3), refresh_token (§6), client_credentials (§4.4).
 * Every response carries `Cache-Control: no-store` (§5.1). Parameters come from an
 * application/x-www-form-urlencoded body only; a repeated parameter is an invalid_request (§3.2).
 */

export const SUPPORTED_GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"] as const;
type GrantType = (typeof SUPPORTED_GRANT_TYPES)[number];

const TokenRequest = z.object({
  grant_type: param(200),
  code: param(512).optional(),
  redirect_uri: param(2048).optional(),
  code_verifier: param(256).optional(),
  refresh_token: param(512).optional(),
  scope: param(2048).optional(),
  ...clientAuthParams,
});
type TokenRequest = z.infer<typeof TokenRequest>;

function isSupportedGrant(value: string): value is GrantType {
  return (SUPPORTED_GRANT_TYPES as readonly string[]).includes(value);
}

export async function token(request: Request, env: Env): Promise<Response> {
  const params = parseWith(TokenRequest, await readParams(request, "body"));
  if (!isSupportedGrant(params.grant_type)) throw new OAuthError("unsupported_grant_type", "grant_type is not supported");
  const config = loadConfig(env);
  const issuer = issuerOf(env, request);
  const client = await authenticateClient(env, request, params, {
    issuer,
    endpointUrl: `${issuer}/token`,
    rateLimit: { name: "token", limit: config.rateLimitToken },
  });
  if (!client.grant_types.includes(params.grant_type)) {
    throw new OAuthError("unauthorized_client", `the client is not registered for the ${params.grant_type} grant`);
  }
  const context: GrantContext = { env, config, issuer, client, params };
  switch (params.grant_type) {
    case "authorization_code":
      return authorizationCode(context);
    case "refresh_token":
      return refreshToken(context);
    case "client_credentials":
      return clientCredentials(context);
  }
}

interface GrantContext {
  env: Env;
  config: Config;
  issuer: string;
  client: StoredClient;
  params: TokenRequest;
}

interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  scope?: string;
  id_token?: string;
  refresh_token?: string;
}

/** RFC 6749 §4.1.3 and §4.1.2: the code is consumed once, with client, redirect URI and PKCE checked in the same step (C1). */
async function authorizationCode({ env, config, issuer, client, params }: GrantContext): Promise<Response> {
  if (params.code === undefined) throw invalidRequest("code is required");
  const store = authCodeStoreFor(env, params.code);
  if (store === null) throw invalidGrant("the authorization code is invalid");
  // The grant id is fixed before the code is consumed and stored with it, so a replay can find and revoke the grant.
  const grantId = newFamilyId();
  const result = await store.consume(
    params.code,
    { clientId: client.client_id, redirectUri: params.redirect_uri ?? null, codeVerifier: params.code_verifier ?? null },
    { grantId },
  );
  switch (result.status) {
    case "consumed": {
      // RFC 6749 §4.1.2: a code used twice revokes what it produced (C1), even if that grant is still being created.
      const replayed = result.outcome === null ? null : tokenFamilyFor(env, result.outcome.grantId);
      if (replayed !== null) await replayed.revokeFamily("authorization code replay", client.client_id);
      throw invalidGrant("the authorization code was already used");
    }
    case "rejected":
      throw invalidGrant(result.reason);
    case "expired":
      throw invalidGrant("the authorization code has expired");
    case "unknown":
      throw invalidGrant("the authorization code is invalid");
    case "ok":
      break;
  }
  const grant = result.value;
  // RFC 9700 §2.1.1: a public client proves nothing but PKCE. /authorize requires a challenge from public clients;
  // a code without one (a client that was confidential when the code was issued, say) is not redeemed by it.
  if (client.token_endpoint_auth_method === "none" && grant.codeChallenge === null) throw invalidGrant("PKCE is required for public clients");
  // RFC 9449 §10: a code bound to a DPoP key needs a proof from that key; this endpoint does not take DPoP proofs yet.
  if (grant.dpopJkt !== null) throw invalidGrant("the authorization code is bound to a DPoP key");
  const user = await getUser(env.DB, grant.sub);
  if (user === null || user.disabled) throw invalidGrant("the user is no longer active");

  // C5: the code was issued under the registration of then; what it yields is bounded by the registration of now.
  const scope = scopeStillGrantable(grant.scope, client);
  const scopes = parseScope(scope) ?? [];
  const issueRefresh = issuesRefreshToken(client.grant_types, scopes);
  const family = tokenFamilyFor(env, grantId)!;
  const created = await family.createFamily({
    familyId: grantId,
    clientId: client.client_id,
    sub: grant.sub,
    scope,
    sid: grant.sid,
    authTime: grant.authTime,
    amr: grant.amr,
    acr: grant.acr,
    claims: grant.claims,
    dpopJkt: null,
    issueRefreshToken: issueRefresh,
    // Without a refresh token the grant only anchors the access token: it lives as long as that token.
    ...(issueRefresh ? {} : { lifetimeSeconds: config.accessTokenTtl + 60 }),
  });
  if (created.status === "exists") throw new Error("a fresh grant id was already taken");
  // `revoked`: a concurrent replay of this code got to the grant first (C1). The redemption that consumed the code
  // still answers 200, exactly as if the replay had come a moment later: the tokens below belong to a revoked grant
  // and are refused everywhere (no refresh token exists for it).
  const refresh = created.status === "created" ? created.refreshToken : null;

  if (grant.sid !== null) await recordSessionClient(env, grant.sub, grant.sid, client.client_id);

  const access = await mintAccessToken(await currentSigningKey(env), {
    issuer,
    clientId: client.client_id,
    sub: grant.sub,
    scope,
    grantId,
    authTime: grant.authTime,
    ttlSeconds: config.accessTokenTtl,
  });
  const body: TokenResponse = { access_token: access.token, token_type: "Bearer", expires_in: config.accessTokenTtl, scope };
  if (scopes.includes("openid")) {
    body.id_token = await idToken(env, config, issuer, client, user, {
      scope,
      authTime: grant.authTime,
      nonce: grant.nonce,
      sid: grant.sid,
      amr: grant.amr,
      acr: grant.acr,
      claims: grant.claims,
      accessToken: access.token,
    });
  }
  if (refresh !== null) body.refresh_token = refresh;
  return jsonResponse(body);
}

/** RFC 6749 §6: rotation, reuse detection and scope narrowing all happen inside the grant's object, atomically (C3). */
async function refreshToken({ env, config, issuer, client, params }: GrantContext): Promise<Response> {
  if (params.refresh_token === undefined) throw invalidRequest("refresh_token is required");
  const familyId = familyIdOfRefreshToken(params.refresh_token);
  const family = familyId === null ? null : tokenFamilyFor(env, familyId);
  if (family === null) throw invalidGrant("the refresh token is invalid");
  const scope = await refreshScope(family, params.refresh_token, params.scope ?? null, client);
  const result = await family.rotateRefreshToken(params.refresh_token, { clientId: client.client_id, scope, dpopJkt: null });
  switch (result.status) {
    case "invalid_scope":
      throw invalidScope("the requested scope exceeds the scope originally granted");
    case "reused":
      throw invalidGrant("the refresh token was already used; the grant is revoked");
    case "revoked":
      throw invalidGrant("the grant was revoked");
    case "expired":
      throw invalidGrant("the refresh token has expired");
    case "rejected":
      throw invalidGrant(result.reason);
    case "unknown":
      throw invalidGrant("the refresh token is invalid");
    case "ok":
      break;
  }
  const grant: FamilyInfo = result.family;
  const user = await getUser(env.DB, grant.sub);
  if (user === null || user.disabled) {
    await family.revokeFamily("user no longer active", client.client_id);
    throw invalidGrant("the user is no longer active");
  }
  const access = await mintAccessToken(await currentSigningKey(env), {
    issuer,
    clientId: client.client_id,
    sub: grant.sub,
    scope: result.scope,
    grantId: grant.familyId,
    authTime: grant.authTime,
    ttlSeconds: config.accessTokenTtl,
  });
  const body: TokenResponse = { access_token: access.token, token_type: "Bearer", expires_in: config.accessTokenTtl, scope: result.scope };
  // OIDC Core §12.2: a new ID token with the original auth_time (and no nonce).
  if ((parseScope(result.scope) ?? []).includes("openid")) {
    body.id_token = await idToken(env, config, issuer, client, user, {
      scope: result.scope,
      authTime: grant.authTime ?? Math.floor(grant.createdAt / 1000),
      nonce: null,
      sid: grant.sid,
      amr: grant.amr,
      acr: grant.acr,
      claims: grant.claims,
      accessToken: access.token,
    });
  }
  body.refresh_token = result.refreshToken;
  return jsonResponse(body);
}

type TokenFamilyObject = NonNullable<ReturnType<typeof tokenFamilyFor>>;

/**
 * The scope a refresh is to carry, settled before the token is rotated so that a refused refresh spends nothing.
 * C5: the grant yields only what the client may be granted under its registration now (RFC 6749 §6: an absent
 * `scope` means the grant's scope, which is then narrowed to that). A requested scope beyond the grant is passed on
 * as it is, for the grant's object to refuse (invalid_scope); a token that is not current is left to it as well
 * (reuse detection, C3).
 */
async function refreshScope(family: TokenFamilyObject, presented: string, requested: string | null, client: StoredClient): Promise<string | null> {
  const inspected = await family.inspectRefreshToken(presented);
  if (!inspected.active || inspected.family.clientId !== client.client_id) return requested;
  const granted = inspected.family.scope;
  if (requested !== null && !isScopeSubset(requested, granted)) return requested;
  const grantedNow = scopeStillGrantable(granted, client);
  // OIDC Core §11: an OpenID grant is refreshed on the authority of offline_access; without it registered, no more.
  if (!issuesRefreshToken(client.grant_types, parseScope(grantedNow) ?? [])) {
    throw invalidScope("offline_access is no longer registered for this client, so this grant cannot be refreshed");
  }
  if (requested === null) return grantedNow;
  const allowed = parseScope(grantedNow) ?? [];
  const narrowed = (parseScope(requested) ?? []).filter((s) => allowed.includes(s));
  if (narrowed.length === 0) throw invalidScope("none of the requested scopes is registered for this client any more");
  return narrowed.join(" ");
}

/**
 * C5: a grant's scope narrowed to what the client may be granted now (the /authorize rule, `grantableScope`).
 * RFC 6749 §5.2 invalid_scope when nothing the user granted for a resource remains (offline_access alone only
 * keeps a refresh token alive): the grant's scope exceeds what the client may now be given.
 */
function scopeStillGrantable(granted: string, client: StoredClient): string {
  const now = grantableScope(granted, client);
  const forResources = (scope: string) => scope.split(" ").some((s) => s !== "" && s !== "offline_access");
  if (forResources(granted) && !forResources(now)) {
    throw invalidScope("none of the granted scopes is registered for this client any more");
  }
  return now;
}

/** RFC 6749 §4.4: confidential clients only; the token speaks for the client itself (RFC 9068 §2.2: sub = client_id). */
async function clientCredentials({ env, config, issuer, client, params }: GrantContext): Promise<Response> {
  if (client.token_endpoint_auth_method === "none") throw new OAuthError("unauthorized_client", "client_credentials requires a confidential client");
  const scope = clientCredentialsScope(client.scope, params.scope ?? null);
  if (scope === null) throw invalidScope("the requested scope is not registered for this client, or is a user scope");
  const grantId = newFamilyId();
  // A grant without a refresh token, so the access token can be revoked like any other (by its grant or its jti).
  const created = await tokenFamilyFor(env, grantId)!.createFamily({
    familyId: grantId,
    clientId: client.client_id,
    sub: client.client_id,
    scope,
    sid: null,
    authTime: null,
    amr: [],
    acr: null,
    claims: null,
    dpopJkt: null,
    issueRefreshToken: false,
    lifetimeSeconds: config.accessTokenTtl + 60,
  });
  if (created.status !== "created") throw new Error("a fresh grant id was already taken");
  const access = await mintAccessToken(await currentSigningKey(env), {
    issuer,
    clientId: client.client_id,
    sub: client.client_id,
    scope,
    grantId,
    authTime: null,
    ttlSeconds: config.accessTokenTtl,
  });
  const body: TokenResponse = { access_token: access.token, token_type: "Bearer", expires_in: config.accessTokenTtl };
  if (scope !== "") body.scope = scope;
  return jsonResponse(body);
}

interface IdTokenFacts {
  /** The scope granted to this token response: it bounds the user claims the ID token may carry (C17). */
  scope: string;
  authTime: number;
  nonce: string | null;
  sid: string | null;
  amr: string[];
  acr: string | null;
  claims: string | null;
  accessToken: string;
}

/**
 * OIDC Core §3.1.3.6 / §2. Signed with the client's registered `id_token_signed_response_alg` or the default.
 * Per §5.4, the scope claims go to userinfo (an access token is always issued here); the ID token carries only
 * the user claims asked for in the `claims` request's id_token member (§5.5) that the granted scope covers.
 */
async function idToken(env: Env, config: Config, issuer: string, client: StoredClient, user: User, facts: IdTokenFacts): Promise<string> {
  const alg = client.id_token_signed_response_alg ?? config.defaultSigningAlg;
  const released = releasedClaimNames(facts.scope, storedClaimsRequest(facts.claims), "id_token");
  const { sub: _sub, ...claims } = filterClaims(user.id, userClaimValues(user), released);
  return mintIdToken(await currentSigningKey(env, alg), {
    issuer,
    clientId: client.client_id,
    sub: user.id,
    authTime: facts.authTime,
    nonce: facts.nonce,
    sid: facts.sid,
    amr: facts.amr,
    acr: facts.acr,
    accessToken: facts.accessToken,
    ttlSeconds: config.idTokenTtl,
    claims,
  });
}

/** Any other method on a back-channel endpoint (RFC 9110 §15.5.6). */
export function methodNotAllowed(allow: string): never {
  throw new OAuthError("invalid_request", `use ${allow}`, { status: 405, headers: { allow } });
}
