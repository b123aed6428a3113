import { getClient, type StoredClient } from "../../db/clients";
import { userForGrant, type User } from "../../db/users";
import type { Env } from "../../env";
import { verifyWithPublishedKeys } from "../../objects/key-cache";
import { tokenFamilyFor } from "../../objects/locate";
import { familyIdOfRefreshToken, type FamilyInfo, type InspectResult } from "../../objects/token-family";
import { bearerInvalidRequest, bearerTokenOf, presentedToken } from "../../oauth/bearer";
import { OAuthError } from "../../oauth/errors";
import { grantHasUser, whyGrantIsNotGood, whyTokenIsNotGood } from "../../oauth/token-validity";
import { verifyAccessToken, type AccessTokenClaims } from "../../oauth/tokens";
import { mediaTypeOf, readParams } from "./params";

/**
 * Where presented tokens are validated: the access token a request presents (RFC 6750), and whether a token is still
 * good (C23). An access token: signature, issuer, audience and expiry (RFC 9068), then its grant, its own revocation,
 * its client and its user, gathered in one round trip (the grant's object and D1 in parallel) and judged by
 * `whyTokenIsNotGood`. A refresh token at introspection: its grant's object, then its user, judged by `whyGrantIsNotGood`
 * (the refresh grant applies the same rule around its rotation).
 */

export interface ActiveAccessToken {
  claims: AccessTokenClaims;
  grant: FamilyInfo;
  /** The user the token speaks for; null for a client's own token (client_credentials). */
  user: User | null;
  /** The token's client, as registered now (C5). */
  client: StoredClient;
}

/** The access token of a request: `Authorization: Bearer` or, for a POST form, `access_token` (§2.1, §2.2), never both. */
export async function readAccessToken(request: Request, realm: string): Promise<string | null> {
  const fromHeader = bearerTokenOf(request.headers.get("authorization"), realm);
  let fromBody: string | null = null;
  if (request.method === "POST" && mediaTypeOf(request) === "application/x-www-form-urlencoded") {
    let params: Record<string, string>;
    try {
      params = await readParams(request, "body");
    } catch (error) {
      if (error instanceof OAuthError) throw bearerInvalidRequest(realm, error.description ?? "the request is malformed");
      throw error;
    }
    fromBody = params.access_token ?? null;
  }
  return presentedToken(fromHeader, fromBody, realm);
}

/** The token's facts when it is still good, else null. */
export async function activeAccessToken(env: Env, issuer: string, token: string): Promise<ActiveAccessToken | null> {
  const claims = await verifyAccessToken((jwt, options) => verifyWithPublishedKeys(env, jwt, options), issuer, token);
  if (claims === null) return null;
  const family = tokenFamilyFor(env, claims.gid);
  if (family === null) return null;
  // A user's token carries auth_time; a client's own token (client_credentials) does not and has no user to read.
  const userLookup = claims.auth_time !== undefined ? userForGrant(env.DB, claims.sub, claims.client_id) : Promise.resolve(undefined);
  const [grant, client, holder] = await Promise.all([family.checkAccessToken(claims.jti), getClient(env.DB, claims.client_id), userLookup]);
  const facts = { claims, grant, client, holder: grant.active && grantHasUser(grant.grant) ? (holder ?? null) : undefined };
  if (whyTokenIsNotGood(facts) !== null || !grant.active) return null;
  return { claims, grant: grant.grant, user: holder?.user ?? null, client: client! };
}

/**
 * A refresh token's facts when it is the current token of a live grant of `client` and still good (C23), else null.
 * `client` is the caller, already authenticated (and so read from D1 just now): another client's token is never good.
 */
export async function activeRefreshToken(env: Env, token: string, client: StoredClient): Promise<(InspectResult & { active: true }) | null> {
  const familyId = familyIdOfRefreshToken(token);
  const family = familyId === null ? null : tokenFamilyFor(env, familyId);
  if (family === null) return null;
  const inspected = await family.inspectRefreshToken(token);
  if (!inspected.active || inspected.family.clientId !== client.client_id) return null;
  const holder = grantHasUser(inspected.family) ? await userForGrant(env.DB, inspected.family.sub, client.client_id) : undefined;
  return whyGrantIsNotGood({ grant: inspected.family, client, holder }) === null ? inspected : null;
}
