import { issuerOf } from "../config";
import type { Env } from "../env";
import { insufficientScope, invalidToken } from "../oauth/bearer";
import { filterClaims, releasedClaimNames, storedClaimsRequest, userClaimValues } from "../oauth/claims";
import { parseScope } from "../lib/scope";
import { authorizedAccess } from "./support/access-token";
import { jsonResponse } from "./support/respond";

/**
 * /userinfo (OIDC Core §5.3), GET and POST, with a Bearer token or a DPoP-bound one and its proof (RFC 9449 §7; a
 * bound token is never taken as Bearer). The claims are the user's, read from D1 now, filtered by the token's granted
 * scope (C17): the `claims` request selects among those claims, never adds others (OIDC Core §5.5).
 */
export async function userinfo(request: Request, env: Env): Promise<Response> {
  const issuer = issuerOf(env, request);
  const { claims, grant, user, client, scheme, headers } = await authorizedAccess(env, request, issuer, "/userinfo");
  const scope = parseScope(claims.scope) ?? [];
  if (!scope.includes("openid")) throw insufficientScope(issuer, "the access token does not carry the openid scope", "openid", scheme);
  if (user === null) throw invalidToken(issuer, "the user is no longer active", scheme);
  const released = releasedClaimNames(scope.join(" "), storedClaimsRequest(grant.claims), "userinfo", client.id_token_claims, client.extra_claims);
  return jsonResponse(filterClaims(user.id, userClaimValues(user), released), { headers });
}
