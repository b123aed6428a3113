import { parseScope } from "../../lib/scope";
import { invalidGrant, invalidRequest, invalidScope } from "../errors";
import { allowedScopes } from "../scope-policy";
import { whyGrantIsNotGood } from "../token-validity";
import type { Grant, TokenResponse } from "./context";
import { issueAccessToken, issueIdToken, tokenTypeOf } from "./issue";

/**
 * RFC 6749 §6: one call to the grant's object rotates the token, detects reuse, refuses a grant of an earlier
 * registration of the client (RFC 9700 §4.14) and narrows the scope to what the client may be granted now (C3, C5),
 * atomically; a refused refresh spends nothing. The user is then judged by the one rule (C23, C22): a grant whose user
 * is gone, disabled or no longer holds it is revoked and yields nothing. With a reuse interval (the client's, else the
 * server's; 0 by default), a rotated token presented again within it, before its successor is used, gets the same
 * successor again: a retry after a lost answer (RFC 9700 §4.14.2).
 */
export const refreshTokenGrant: Grant = async (context) => {
  const { config, client, params, storage, dpop } = context;
  if (params.refresh_token === undefined) throw invalidRequest("refresh_token is required");
  const result = await storage.rotateRefreshToken(params.refresh_token, {
    clientId: client.client_id,
    clientRegisteredAt: client.registered_at,
    scope: params.scope ?? null,
    // RFC 9449 §5: a grant whose refresh tokens are bound to a key rotates only with a proof of that key.
    dpopJkt: dpop?.jkt ?? null,
    allowedScope: allowedScopes(client),
    reuseIntervalSeconds: client.refresh_token_reuse_interval ?? config.refreshTokenReuseInterval,
  });
  switch (result.status) {
    case "invalid_scope":
      throw invalidScope(result.reason ?? "the requested scope exceeds the scope originally granted");
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
  const grant = result.family;
  // Only the authorization-code grant issues refresh tokens, so the grant speaks for a user.
  const holder = await storage.findGrantUser(grant.sub, client.client_id);
  const why = whyGrantIsNotGood({ grant, client, holder });
  if (why !== null) {
    await storage.revokeGrant(grant.familyId, why, client.client_id);
    throw invalidGrant(why);
  }
  const user = holder!.user;
  const accessToken = await issueAccessToken(context, { sub: grant.sub, scope: result.scope, grantId: grant.familyId, authTime: grant.authTime });
  const body: TokenResponse = { access_token: accessToken, token_type: tokenTypeOf(context), expires_in: config.accessTokenTtl, scope: result.scope };
  // OIDC Core §12.2: a new ID token with the original auth_time (and no nonce).
  if ((parseScope(result.scope) ?? []).includes("openid")) {
    body.id_token = await issueIdToken(context, user, {
      scope: result.scope,
      authTime: grant.authTime ?? Math.floor(grant.createdAt / 1000),
      nonce: null,
      sid: grant.sid,
      amr: grant.amr,
      acr: grant.acr,
      claims: grant.claims,
      accessToken,
    });
  }
  body.refresh_token = result.refreshToken;
  return body;
};
