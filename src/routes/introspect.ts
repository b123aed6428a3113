import { issuerOf } from "../config";
import { userForGrant } from "../db/users";
import type { Env } from "../env";
import { tokenFamilyFor } from "../objects/locate";
import { familyIdOfRefreshToken } from "../objects/token-family";
import { clientAuthParams } from "../oauth/client-auth";
import * as z from "zod/mini";
import { param, parseWith } from "../oauth/schema";
import { grantHasUser, whyUserCannotHoldGrant } from "../oauth/token-validity";
import { activeAccessToken } from "./support/access-token";
import { authenticateClient } from "./support/client-authentication";
import { readParams } from "./support/params";
import { jsonResponse } from "./support/respond";

/**
 * Token introspection (RFC 7662). The caller must authenticate as a confidential client (C14; §2.1: the protected
 * resource must be authorized, which a public client's client_id alone does not do) and only ever learns about its own
 * tokens: another client's token, like an unknown, expired or revoked one, is `{"active": false}` (§2.2).
 * Refresh tokens (`<grant>.<secret>`) and access tokens (JWTs) cannot be confused, so `token_type_hint` is
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
  const client = await authenticateClient(env, request, params, { issuer, endpointUrl: `${issuer}/introspect`, confidentialOnly: true });

  const familyId = familyIdOfRefreshToken(params.token);
  if (familyId !== null) {
    const family = tokenFamilyFor(env, familyId);
    const inspected = family === null ? null : await family.inspectRefreshToken(params.token);
    if (inspected === null || !inspected.active || inspected.family.clientId !== client.client_id) return jsonResponse(INACTIVE);
    const grant = inspected.family;
    // C23: the same rule as for access tokens — the user exists, is not disabled, and still holds this grant (C22).
    if (grantHasUser(grant)) {
      const holder = await userForGrant(env.DB, grant.sub, grant.clientId);
      if (whyUserCannotHoldGrant(holder, grant.createdAt) !== null) return jsonResponse(INACTIVE);
    }
    return jsonResponse({
      active: true,
      scope: grant.scope,
      client_id: grant.clientId,
      sub: grant.sub,
      exp: Math.floor(inspected.expiresAt / 1000),
      iss: issuer,
      token_type: "refresh_token",
      ...(grant.authTime !== null ? { auth_time: grant.authTime } : {}),
    });
  }

  const claims = (await activeAccessToken(env, issuer, params.token))?.claims ?? null;
  if (claims === null || claims.client_id !== client.client_id) return jsonResponse(INACTIVE);
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
