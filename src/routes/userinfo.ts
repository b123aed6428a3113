import { issuerOf } from "../config";
import { getClient } from "../db/clients";
import { getUser, type User } from "../db/users";
import type { Env } from "../env";
import { tokenFamilyFor } from "../objects/locate";
import type { FamilyInfo } from "../objects/refresh-tokens";
import { filterClaims, parseClaimsRequest, releasedClaimNames, type ClaimsRequest } from "../oauth/claims";
import { OAuthError } from "../oauth/errors";
import { parseScope } from "../oauth/scopes";
import { verifyAccessToken, type AccessTokenClaims } from "../oauth/tokens";
import { verifyWithPublishedKeys } from "../signing-keys";
import { readParams } from "./params";
import { jsonResponse } from "./respond";

/**
 * /userinfo (OIDC Core §5.3), GET and POST. The access token comes as `Authorization: Bearer` or, for POST, as the
 * `access_token` form parameter (RFC 6750 §2.1, §2.2), never both. The claims are the user's, read from D1 now,
 * filtered by the token's granted scope (C17): the `claims` request selects among those claims, never adds others (OIDC Core §5.5).
 */

export type ClaimValue = string | number | boolean | Record<string, string>;

const ADDRESS_MEMBERS = ["formatted", "street_address", "locality", "region", "postal_code", "country"] as const;

/** A D1 user in OIDC Core §5.1 claim names. Absent values are null (and never released). */
export function userClaimValues(user: User): Record<string, ClaimValue | null> {
  let address: Record<string, string> | null = null;
  if (user.address && typeof user.address === "object") {
    address = {};
    for (const member of ADDRESS_MEMBERS) {
      const value = (user.address as Record<string, unknown>)[member];
      if (typeof value === "string" && value !== "") address[member] = value;
    }
    if (Object.keys(address).length === 0) address = null;
  }
  return {
    name: user.name,
    given_name: user.givenName,
    family_name: user.familyName,
    preferred_username: user.preferredUsername,
    picture: user.picture,
    locale: user.locale,
    zoneinfo: user.zoneinfo,
    // §5.1: seconds since the epoch.
    updated_at: Math.floor(user.updatedAt / 1000),
    email: user.email,
    email_verified: user.emailVerified,
    phone_number: user.phoneNumber,
    phone_number_verified: user.phoneNumber ? user.phoneNumberVerified : null,
    address,
  };
}

/** The validated `claims` request stored with a grant; a stored value that no longer parses releases nothing extra. */
export function storedClaimsRequest(raw: string | null): ClaimsRequest | null {
  try {
    return parseClaimsRequest(raw);
  } catch {
    return null;
  }
}

function quoted(value: string): string {
  return value.replace(/["\\]/g, "").replace(/[^\x20-\x7e]/g, "");
}

/** RFC 6750 §3: the challenge; no error attribute when the request carried no token at all (§3.1). */
function bearerChallenge(realm: string, error?: string, description?: string, scope?: string): Record<string, string> {
  let value = `Bearer realm="${quoted(realm)}"`;
  if (error) value += `, error="${error}"`;
  if (error && description) value += `, error_description="${quoted(description)}"`;
  if (scope) value += `, scope="${scope}"`;
  return { "www-authenticate": value };
}

export function invalidToken(realm: string, description: string): OAuthError {
  return new OAuthError("invalid_token", description, { status: 401, headers: bearerChallenge(realm, "invalid_token", description) });
}

const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/** The token the request presents (RFC 6750 §2.1 header or §2.2 form body), or null when none. */
async function presentedToken(request: Request, realm: string): Promise<string | null> {
  const header = request.headers.get("authorization");
  let fromHeader: string | null = null;
  if (header !== null) {
    const match = BEARER.exec(header.trim());
    if (match) fromHeader = match[1]!;
    else if (/^Bearer(\s|$)/i.test(header.trim())) throw invalidToken(realm, "malformed Bearer credentials");
    // Any other scheme (DPoP is not offered) is no Bearer token at all.
  }
  let fromBody: string | null = null;
  const type = (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
  if (request.method === "POST" && type === "application/x-www-form-urlencoded") {
    let params: Record<string, string>;
    try {
      params = await readParams(request, "body");
    } catch (error) {
      if (error instanceof OAuthError) {
        throw new OAuthError("invalid_request", error.description, { status: 400, headers: bearerChallenge(realm, "invalid_request", error.description) });
      }
      throw error;
    }
    fromBody = params.access_token ?? null;
  }
  if (fromHeader !== null && fromBody !== null) {
    // RFC 6750 §2: a client MUST NOT use more than one method to transmit the token in each request.
    const description = "the access token was sent in more than one way";
    throw new OAuthError("invalid_request", description, { status: 400, headers: bearerChallenge(realm, "invalid_request", description) });
  }
  return fromHeader ?? fromBody;
}

/**
 * Checks an access token the way every protected endpoint must: signature, issuer, audience, expiry (RFC 9068), then
 * the grant it belongs to, its own revocation (TokenFamily.checkAccessToken), and that its client still exists
 * (deleting a client ends its tokens). Null when it is not honoured.
 */
export async function activeAccessToken(env: Env, issuer: string, token: string): Promise<{ claims: AccessTokenClaims; grant: FamilyInfo } | null> {
  const claims = await verifyAccessToken((jwt, options) => verifyWithPublishedKeys(env, jwt, options), issuer, token);
  if (claims === null) return null;
  const family = tokenFamilyFor(env, claims.gid);
  if (family === null) return null;
  const [check, grant, client] = await Promise.all([family.checkAccessToken(claims.jti), family.getFamily(), getClient(env.DB, claims.client_id)]);
  if (!check.active || grant === null || client === null || grant.sub !== claims.sub || grant.clientId !== claims.client_id) return null;
  return { claims, grant };
}

export async function userinfo(request: Request, env: Env): Promise<Response> {
  const issuer = issuerOf(env, request);
  const token = await presentedToken(request, issuer);
  if (token === null) {
    throw new OAuthError("invalid_token", "no access token was presented", { status: 401, headers: bearerChallenge(issuer) });
  }
  const active = await activeAccessToken(env, issuer, token);
  // RFC 9449 §7.1: a DPoP-bound token is not usable as a Bearer token.
  if (active === null || active.claims.cnf !== undefined) throw invalidToken(issuer, "the access token is invalid, expired or revoked");
  const { claims, grant } = active;
  const scope = parseScope(claims.scope) ?? [];
  if (!scope.includes("openid")) {
    const description = "the access token does not carry the openid scope";
    throw new OAuthError("insufficient_scope", description, { status: 403, headers: bearerChallenge(issuer, "insufficient_scope", description, "openid") });
  }
  const user = await getUser(env.DB, claims.sub);
  if (user === null || user.disabled) throw invalidToken(issuer, "the user is no longer active");
  const released = releasedClaimNames(scope.join(" "), storedClaimsRequest(grant.claims), "userinfo");
  return jsonResponse(filterClaims(user.id, userClaimValues(user), released));
}
