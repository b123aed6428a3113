import type { FamilyInfo } from "../objects/token-family";
import type { AccessTokenClaims } from "./tokens";

/**
 * A code grant that issues no refresh token (no `offline_access`) and carries no `claims` request has nothing to keep
 * but what its access token already says — who, for which client, what scope, when the user authenticated — so it
 * needs no object of its own, as a client's own grant needs none (client-grant.ts). Its `gid` names the grant id, the
 * client registration it was made under and when it was made — `code.<grantId>.<registered_at>.<created_at>` (ms) —
 * which the one token rule (C23) judges like any grant's: the client of now, under that registration (RFC 9700
 * §4.14), the user not disabled and their grants not ended since (C22). What revokes it — a replay of its code
 * (RFC 6749 §4.1.2, C1) or RFC 7009 revocation of one token — goes to the object of its grant id, which exists only
 * once something was revoked (`TokenFamily.isAccessTokenRevoked`). Making an object per sign-in was most of what a
 * code exchange cost (`npm run bench -- --phases`, "do-create-grant").
 */

const ACCESS_TOKEN_GRANT = /^code\.([A-Za-z0-9_-]{8,128})\.([0-9]{1,16})\.([0-9]{1,16})$/;

export interface AccessTokenGrant {
  grantId: string;
  /** The `registered_at` of the client the grant was made for (ms). */
  clientRegisteredAt: number;
  /** When the grant was made (ms): C22's revocations by time compare with it. */
  createdAt: number;
}

export function accessTokenGrantId(grant: AccessTokenGrant): string {
  return `code.${grant.grantId}.${grant.clientRegisteredAt}.${grant.createdAt}`;
}

/** The grant an access token's `gid` names when the grant lives in its tokens, else null (a family's or a client's gid). */
export function accessTokenGrantOf(gid: string): AccessTokenGrant | null {
  const match = ACCESS_TOKEN_GRANT.exec(gid);
  return match ? { grantId: match[1]!, clientRegisteredAt: Number(match[2]), createdAt: Number(match[3]) } : null;
}

/**
 * The grant such a token stands for, as the token rule sees a grant: every fact from the signed token. What the token
 * does not carry — the session id, amr, acr — is not known here (null or empty): nothing that judges or answers for an
 * access token reads them, and a grant with a `claims` request keeps an object instead.
 */
export function accessTokenGrantFacts(claims: AccessTokenClaims, grant: AccessTokenGrant): FamilyInfo {
  return {
    familyId: grant.grantId,
    clientId: claims.client_id,
    clientRegisteredAt: grant.clientRegisteredAt,
    sub: claims.sub,
    scope: claims.scope,
    sid: null,
    authTime: claims.auth_time ?? null,
    amr: [],
    acr: null,
    claims: null,
    dpopJkt: claims.cnf?.jkt ?? null,
    createdAt: grant.createdAt,
    expiresAt: claims.exp * 1000,
    status: "active",
  };
}
