import { madeUnderEarlierRegistration } from "../lib/registration";
import type { AccessTokenCheck, FamilyInfo } from "../objects/token-family";
import type { AccessTokenClaims } from "./tokens";

/**
 * C23: the one rule that decides whether a token is still good, used by every endpoint that accepts one — /userinfo
 * and /introspect for access tokens, /introspect and the refresh grant for refresh tokens — and by the code grant.
 * The signature, issuer, audience and expiry of an access token are checked when the JWT is verified
 * (`verifyAccessToken`); whether a grant is revoked or expired, and whether a refresh token is its current one, its
 * object answers. This adds what only the parties know: the client still registered — under the registration the
 * grant was made for — and the user still there, not disabled, and still holding the grant (C22). No I/O: the caller
 * brings the facts.
 */

/** What the rule needs to know of the user a grant speaks for (db/users.ts `userForGrant` reads it in one query). */
export interface GrantHolder {
  user: { disabled: boolean };
  /** C22: the user's grants for the grant's client made at or before this time (ms) were ended; null: none. */
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

/** A grant its object calls live (neither revoked nor expired), and the parties it speaks for as they are now. */
export interface GrantStanding {
  grant: FamilyInfo;
  /** The grant's client as registered now; null when it is no longer registered. */
  client: { registered_at: number } | null;
  /** The user the grant speaks for; `undefined` when it has none (client_credentials), null when it no longer exists. */
  holder?: GrantHolder | null;
}

/** Why a live grant is no longer honoured, or null when it is. */
export function whyGrantIsNotGood(facts: GrantStanding): string | null {
  if (facts.client === null) return "the client is no longer registered";
  // RFC 9700 §4.14: deleting a client ends its grants, and registering the client_id again does not revive them.
  if (madeUnderEarlierRegistration(facts.grant, facts.client.registered_at)) return "the grant belongs to an earlier registration of the client";
  if (facts.holder !== undefined) return whyUserCannotHoldGrant(facts.holder, facts.grant.createdAt);
  return null;
}

export interface TokenFacts {
  claims: AccessTokenClaims;
  /** The grant's answer for this token's jti (`TokenFamily.checkAccessToken`): revoked, expired or unknown is inactive. */
  grant: AccessTokenCheck;
  client: GrantStanding["client"];
  holder?: GrantStanding["holder"];
}

/** Why an access token is not honoured, or null when it is. */
export function whyTokenIsNotGood(facts: TokenFacts): string | null {
  if (!facts.grant.active) return "the grant or the token was revoked, or has expired";
  const grant = facts.grant.grant;
  if (grant.sub !== facts.claims.sub || grant.clientId !== facts.claims.client_id) return "the token does not belong to its grant";
  return whyGrantIsNotGood({ grant, client: facts.client, holder: facts.holder });
}

/** Whether a grant speaks for a user (an authorization-code grant) rather than for the client itself. */
export function grantHasUser(grant: { authTime: number | null }): boolean {
  return grant.authTime !== null;
}

/** How an access token was presented (RFC 9449 §7): as a Bearer token, or with the DPoP scheme and a proof of a key. */
export type Presentation = { scheme: "Bearer" } | { scheme: "DPoP"; jkt: string };

/**
 * RFC 9449 §7.1 and §6.1: a token bound to a key (`cnf.jkt`) is honoured only with a proof of that key — never as a
 * Bearer token — and the DPoP scheme is for bound tokens only. Null when the presentation fits the token.
 */
export function whyPresentationIsNotGood(claims: Pick<AccessTokenClaims, "cnf">, presented: Presentation): string | null {
  const bound = claims.cnf?.jkt ?? null;
  if (presented.scheme === "Bearer") return bound === null ? null : "the access token is DPoP-bound: present it with the DPoP scheme and a proof";
  if (bound === null) return "the access token is not DPoP-bound: present it as a Bearer token";
  return bound === presented.jkt ? null : "the DPoP proof is not signed by the key the access token is bound to";
}
