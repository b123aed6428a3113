import type { FamilyInfo } from "../objects/token-family";
import type { AccessTokenClaims } from "./tokens";

/**
 * A client_credentials token speaks for the client itself (RFC 6749 §4.4, RFC 9068 §2.2): its grant is the client's
 * registration, so it needs no object of its own. Its `gid` names that registration — `client.<registered_at>` —
 * which the one token rule (C23) compares with the client's registration of now: deleting the client, or registering
 * its client_id again, ends every such token at once (RFC 9700 §4.14). A single token is revoked by its jti in the
 * client's own revocation list (`clientTokensFor`), which exists only once something was revoked.
 */

const CLIENT_GRANT = /^client\.([0-9]{1,16})$/;

export function clientGrantId(registeredAt: number): string {
  return `client.${registeredAt}`;
}

/** The registration a client grant id names (ms), or null when `gid` is a token family's id. */
export function registrationOfClientGrant(gid: string): number | null {
  const match = CLIENT_GRANT.exec(gid);
  return match ? Number(match[1]) : null;
}

/** The grant a client's own token stands for, as the token rule sees a grant. */
export function clientGrantOf(claims: AccessTokenClaims, registeredAt: number): FamilyInfo {
  return {
    familyId: claims.gid,
    clientId: claims.client_id,
    clientRegisteredAt: registeredAt,
    sub: claims.sub,
    scope: claims.scope,
    sid: null,
    authTime: null,
    amr: [],
    acr: null,
    claims: null,
    dpopJkt: claims.cnf?.jkt ?? null,
    createdAt: claims.iat * 1000,
    expiresAt: claims.exp * 1000,
    status: "active",
  };
}
