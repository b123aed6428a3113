import type { AccessTokenCheck } from "../objects/token-family";
import type { AccessTokenClaims } from "./tokens";

/**
 * C23: the one rule that decides whether a token is still good, used by every endpoint that accepts one and by the
 * grants. The signature, issuer, audience and expiry are checked when the JWT is verified (`verifyAccessToken`); this
 * adds what only storage knows. No I/O: the caller brings the facts.
 */

/** What the rule needs to know of the user a grant speaks for (db/users.ts `userForGrant` reads it in one query). */
export interface GrantHolder {
  user: { disabled: boolean };
  /** C22: the user's grants for the token's client made at or before this time (ms) were ended; null: none. */
  grantsRevokedBefore: number | null;
}

/** Why a user can no longer hold a grant made at `grantCreatedAt` (ms), or null when they can. */
export function whyUserCannotHoldGrant(holder: GrantHolder | null, grantCreatedAt: number): string | null {
  if (holder === null) return "the user no longer exists";
  if (holder.user.disabled) return "the user is disabled";
  // C22: revoke-all, a revoked consent: every grant made before then ended with it.
  if (holder.grantsRevokedBefore !== null && grantCreatedAt <= holder.grantsRevokedBefore) return "the user's grants for this client were ended";
  return null;
}

export interface TokenFacts {
  claims: AccessTokenClaims;
  /** The grant's answer for this token's jti (`TokenFamily.checkAccessToken`): revoked, expired or unknown is inactive. */
  grant: AccessTokenCheck;
  /** Whether the token's client is still registered: deleting a client ends its tokens. */
  clientExists: boolean;
  /** The user the token speaks for; `undefined` when the grant has no user (client_credentials). */
  user?: GrantHolder | null;
}

/** Why the token is not honoured, or null when it is. */
export function whyTokenIsNotGood(facts: TokenFacts): string | null {
  if (!facts.grant.active) return "the grant or the token was revoked, or has expired";
  const grant = facts.grant.grant;
  if (grant.sub !== facts.claims.sub || grant.clientId !== facts.claims.client_id) return "the token does not belong to its grant";
  if (!facts.clientExists) return "the client is no longer registered";
  if (facts.user !== undefined) return whyUserCannotHoldGrant(facts.user, grant.createdAt);
  return null;
}

/** Whether a grant speaks for a user (an authorization-code grant) rather than for the client itself. */
export function grantHasUser(grant: { authTime: number | null }): boolean {
  return grant.authTime !== null;
}
