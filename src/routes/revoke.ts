import { issuerOf } from "../config";
import type { Env } from "../env";
import { verifyWithPublishedKeys } from "../objects/key-cache";
import { clientTokensFor, tokenFamilyFor } from "../objects/locate";
import { familyIdOfRefreshToken } from "../objects/token-family";
import { clientAuthParams } from "../oauth/client-auth";
import { accessTokenGrantOf } from "../oauth/access-token-grant";
import { registrationOfClientGrant } from "../oauth/client-grant";
import * as z from "zod/mini";
import { param, parseWith } from "../oauth/schema";
import { verifyAccessToken } from "../oauth/tokens";
import { authenticateClient, failedClientAuthentication } from "./support/client-authentication";
import { readParams } from "./support/params";
import { NO_STORE } from "./support/respond";

/**
 * Token revocation (RFC 7009). The caller must authenticate as a client (C14) and can only revoke its own tokens.
 * A refresh token revokes its whole grant — the refresh tokens and every access token issued under it (§2.1).
 * An access token is revoked by its jti until it would have expired. An unknown, invalid, expired or foreign token
 * changes nothing and still answers 200 (§2.2), so the endpoint tells nobody whether a token exists.
 * `token_type_hint` is accepted and not needed: the two token formats cannot be confused (§2.1).
 */

const RevocationRequest = z.object({
  token: param(16 * 1024),
  token_type_hint: z.optional(param(100)),
  ...clientAuthParams,
});

export async function revoke(request: Request, env: Env): Promise<Response> {
  const params = parseWith(RevocationRequest, await readParams(request, "body"));
  const issuer = issuerOf(env, request);
  const client = await authenticateClient(env, request, params, {
    issuer,
    endpointUrl: `${issuer}/revoke`,
    rateLimit: failedClientAuthentication(env),
  });

  const familyId = familyIdOfRefreshToken(params.token);
  if (familyId !== null) {
    // `wrong_client` and `unknown` are deliberately answered like success (RFC 7009 §2.2).
    await tokenFamilyFor(env, familyId)?.revokeRefreshToken(params.token, client.client_id);
    return revoked();
  }
  const claims = await verifyAccessToken((jwt, options) => verifyWithPublishedKeys(env, jwt, options), issuer, params.token);
  if (claims !== null && claims.client_id === client.client_id) {
    // A client's own token has no family: its revocation goes to the client's list (oauth/client-grant.ts). A grant
    // that lives in its tokens (oauth/access-token-grant.ts) keeps its list in the object of its grant id.
    const inTokens = accessTokenGrantOf(claims.gid);
    const holder =
      registrationOfClientGrant(claims.gid) !== null
        ? clientTokensFor(env, claims.client_id)
        : tokenFamilyFor(env, inTokens !== null ? inTokens.grantId : claims.gid);
    await holder?.revokeAccessToken(claims.jti, claims.exp * 1000, { subject: claims.sub, clientId: claims.client_id });
  }
  return revoked();
}

function revoked(): Response {
  return new Response(null, { status: 200, headers: NO_STORE });
}
