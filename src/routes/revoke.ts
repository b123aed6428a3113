import { z } from "zod";
import { issuerOf } from "../config";
import type { Env } from "../env";
import { tokenFamilyFor } from "../objects/locate";
import { familyIdOfRefreshToken } from "../objects/refresh-tokens";
import { verifyAccessToken } from "../oauth/tokens";
import { verifyWithPublishedKeys } from "../signing-keys";
import { authenticateClient, clientAuthParams } from "./client-auth";
import { param, parseWith, readParams } from "./params";

/**
 * Token revocation (RFC 7009). The caller must authenticate as a client (C14) and can only revoke its own tokens.
 * A refresh token revokes its whole grant — the refresh tokens and every access token issued under it (§2.1).
 * An access token is revoked by its jti until it would have expired. An unknown, invalid, expired or foreign token
 * changes nothing and still answers 200 (§2.2), so the endpoint tells nobody whether a token exists.
 * `token_type_hint` is accepted and not needed: the two token formats cannot be confused (§2.1).
 */

const RevocationRequest = z.object({
  token: param(16 * 1024),
  token_type_hint: param(100).optional(),
  ...clientAuthParams,
});

export async function revoke(request: Request, env: Env): Promise<Response> {
  const params = parseWith(RevocationRequest, await readParams(request, "body"));
  const issuer = issuerOf(env, request);
  const client = await authenticateClient(env, request, params, { issuer, endpointUrl: `${issuer}/revoke` });

  const familyId = familyIdOfRefreshToken(params.token);
  if (familyId !== null) {
    // `wrong_client` and `unknown` are deliberately answered like success (RFC 7009 §2.2).
    await tokenFamilyFor(env, familyId)?.revokeRefreshToken(params.token, client.client_id);
    return revoked();
  }
  const claims = await verifyAccessToken((jwt, options) => verifyWithPublishedKeys(env, jwt, options), issuer, params.token);
  if (claims !== null && claims.client_id === client.client_id) {
    await tokenFamilyFor(env, claims.gid)?.revokeAccessToken(claims.jti, claims.exp * 1000);
  }
  return revoked();
}

function revoked(): Response {
  return new Response(null, { status: 200, headers: { "cache-control": "no-store", pragma: "no-cache" } });
}
