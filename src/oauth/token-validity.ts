import type { AccessTokenCheck } from "../objects/token-family";
import type { AccessTokenClaims } from "./tokens";

/**
 * C23: the one rule that decides whether an access token is still good, used by every endpoint that accepts one.
 * The signature, issuer, audience and expiry are checked when the JWT is verified (`verifyAccessToken`); this adds
 * what only storage knows. No I/O: the caller brings the facts.
 */

export interface TokenFacts {
  claims: AccessTokenClaims;
  /** The grant's answer for this token's jti (`TokenFamily.checkAccessToken`): revoked, expired or unknown is inactive. */
  grant: AccessTokenCheck;
  /** Whether the token's client is still registered: deleting a client ends its tokens. */
  clientExists: boolean;
  /** The user the token speaks for; `undefined` when the grant has no user (client_credentials). */
  user?: { disabled: boolean } | null;
}

/** Why the token is not honoured, or null when it is. */
export function whyTokenIsNotGood(facts: TokenFacts): string | null {
  if (!facts.grant.active) return "the grant or the token was revoked, or has expired";
  const grant = facts.grant.grant;
  if (grant.sub !== facts.claims.sub || grant.clientId !== facts.claims.client_id) return "the token does not belong to its grant";
  if (!facts.clientExists) return "the client is no longer registered";
  if (facts.user === null) return "the user no longer exists";
  if (facts.user?.disabled) return "the user is disabled";
  return null;
}

/** Whether a grant speaks for a user (an authorization-code grant) rather than for the client itself. */
export function grantHasUser(grant: { authTime: number | null }): boolean {
  return grant.authTime !== null;
}
