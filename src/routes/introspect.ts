import { issuerOf } from "../config";
import type { Env } from "../env";
import { familyIdOfRefreshToken } from "../objects/token-family";
import { clientAuthParams } from "../oauth/client-auth";
import * as z from "zod/mini";
import { param, parseWith } from "../oauth/schema";
import { activeRefreshToken, introspectedAccessToken } from "./support/access-token";
import { authenticateClient, failedClientAuthentication } from "./support/client-authentication";
import { readParams } from "./support/params";
import { jsonResponse } from "./support/respond";

/**
 * Token introspection (RFC 7662). The caller must authenticate as a confidential client (C14; §2.1: the protected
 * resource must be authorized, which a public client's client_id alone does not do) and only ever learns about its own
 * tokens: another client's token, like an unknown, expired or revoked one, or one whose user was disabled or whose
 * client was registered again since, is `{"active": false}` (§2.2) — by the one rule of C23.
 * Refresh tokens (`<grant>.<sub>.<secret>`, a 43-character secret) and access tokens (JWTs, RS256 or ES256 signatures of 342 or 86 characters) cannot be confused, so `token_type_hint` is
 * accepted and not needed (§2.1: the server may ignore it).
 */

const IntrospectionRequest = z.object({
  token: param(16 * 1024),
  token_type_hint: z.optional(param(100)),
  ...clientAuthParams,
});

const INACTIVE = { active: false } as const;

export async function introspect(request: Request, env: Env): Promise<Response> {
  const params = parseWith(IntrospectionRequest, await readParams(request, "body"));
  const issuer = issuerOf(env, request);
  const authentication = { issuer, endpointUrl: `${issuer}/introspect`, rateLimit: failedClientAuthentication(env), confidentialOnly: true };

  if (familyIdOfRefreshToken(params.token) !== null) {
    const client = await authenticateClient(env, request, params, authentication);
    const inspected = await activeRefreshToken(env, params.token, client);
    if (inspected === null) return jsonResponse(INACTIVE);
    const grant = inspected.family;
    return jsonResponse({
      active: true,
      scope: grant.scope,
      client_id: grant.clientId,
      sub: grant.sub,
      exp: Math.floor(inspected.expiresAt / 1000),
      iat: Math.floor(inspected.issuedAt / 1000),
      iss: issuer,
      // No token_type: RFC 7662 §2.2 means the RFC 6749 §7.1 access-token types, and a refresh token has none.
      ...(grant.authTime !== null ? { auth_time: grant.authTime } : {}),
    });
  }

  // The caller's row and the token's lookups in one round trip; another client's token is inactive for the caller.
  const active = await introspectedAccessToken(env, issuer, params.token, (readClient) => authenticateClient(env, request, params, { ...authentication, readClient }));
  const claims = active?.claims ?? null;
  if (claims === null) return jsonResponse(INACTIVE);
  return jsonResponse({
    active: true,
    scope: claims.scope,
    client_id: claims.client_id,
    sub: claims.sub,
    exp: claims.exp,
    iat: claims.iat,
    iss: claims.iss,
    aud: claims.aud,
    jti: claims.jti,
    token_type: claims.cnf ? "DPoP" : "Bearer",
    ...(claims.auth_time !== undefined ? { auth_time: claims.auth_time } : {}),
    ...(claims.cnf ? { cnf: claims.cnf } : {}),
  });
}
