import { issuerOf } from "../config";
import type { Env } from "../env";
import { insufficientScope, invalidToken, tokenRequired } from "../oauth/bearer";
import { filterClaims, releasedClaimNames, storedClaimsRequest, userClaimValues } from "../oauth/claims";
import { parseScope } from "../lib/scope";
import { activeAccessToken, readAccessToken } from "./support/access-token";
import { jsonResponse } from "./support/respond";

/**
 * /userinfo (OIDC Core §5.3), GET and POST. The claims are the user's, read from D1 now, filtered by the token's
 * granted scope (C17): the `claims` request selects among those claims, never adds others (OIDC Core §5.5).
 */
export async function userinfo(request: Request, env: Env): Promise<Response> {
  const issuer = issuerOf(env, request);
  const token = await readAccessToken(request, issuer);
  if (token === null) throw tokenRequired(issuer, "no access token was presented");
  const active = await activeAccessToken(env, issuer, token);
  // RFC 9449 §7.1: a DPoP-bound token is not usable as a Bearer token.
  if (active === null || active.claims.cnf !== undefined) throw invalidToken(issuer, "the access token is invalid, expired or revoked");
  const { claims, grant, user, client } = active;
  const scope = parseScope(claims.scope) ?? [];
  if (!scope.includes("openid")) throw insufficientScope(issuer, "the access token does not carry the openid scope", "openid");
  if (user === null) throw invalidToken(issuer, "the user is no longer active");
  const released = releasedClaimNames(scope.join(" "), storedClaimsRequest(grant.claims), "userinfo", client.id_token_claims, client.extra_claims);
  return jsonResponse(filterClaims(user.id, userClaimValues(user), released));
}
