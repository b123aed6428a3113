import type { AuditData } from "../db/audit";
import { isValidCodeVerifier, s256Challenge } from "../lib/pkce";
import { SingleUseResourceStore } from "./single-use-store";

/** What an authorization code stands for: everything the token endpoint needs to mint tokens. */
export interface AuthorizationCodeGrant {
  clientId: string;
  redirectUri: string;
  sub: string;
  scope: string;
  /** PKCE S256 challenge; `plain` is never accepted. */
  codeChallenge: string | null;
  nonce: string | null;
  sid: string | null;
  authTime: number;
  amr: string[];
  acr: string | null;
  /** The `claims` request parameter (OIDC Core §5.5), as validated JSON text (plain text keeps the RPC types shallow). */
  claims: string | null;
  /** RFC 9449 §10: the DPoP key the code is bound to, if any. */
  dpopJkt: string | null;
  /** When the code was issued (ms): a code issued before the user's grants were ended is refused (C22). */
  issuedAt?: number;
}

export interface CodeRedemption {
  clientId: string;
  redirectUri: string | null;
  codeVerifier: string | null;
  /** Thumbprint of the key of the request's DPoP proof; null or absent without one. */
  dpopJkt?: string | null;
}

interface PreparedRedemption extends CodeRedemption {
  verifierChallenge: string | null;
}

/** What a code produced, recorded with its tombstone so a replay can revoke it (RFC 6749 §4.1.2, C1). */
export interface CodeOutcome {
  grantId: string;
}

export class AuthCodeStore extends SingleUseResourceStore<AuthorizationCodeGrant, CodeRedemption, PreparedRedemption, CodeOutcome> {
  protected readonly source = "auth_code";

  protected override async prepare(r: CodeRedemption): Promise<PreparedRedemption> {
    const verifierChallenge = r.codeVerifier !== null && isValidCodeVerifier(r.codeVerifier) ? await s256Challenge(r.codeVerifier) : null;
    return { ...r, verifierChallenge };
  }

  /** The code, the client, the redirect URI and the PKCE proof are checked in the same atomic step as the consume. */
  protected override verify(grant: AuthorizationCodeGrant, r: PreparedRedemption): string | null {
    if (grant.clientId !== r.clientId) return "code was issued to another client";
    // RFC 6749 §4.1.3: redirect_uri must be present and identical when it was in the authorization request (always, here).
    if (r.redirectUri !== grant.redirectUri) return "redirect_uri does not match the authorization request";
    if (grant.codeChallenge !== null) {
      if (r.codeVerifier === null) return "code_verifier is required";
      if (r.verifierChallenge === null || r.verifierChallenge !== grant.codeChallenge) return "PKCE verification failed";
    } else if (r.codeVerifier !== null) {
      // RFC 9700 §2.1.1: a verifier without a challenge is a downgrade attempt.
      return "code_verifier sent but no code_challenge was used";
    }
    // RFC 9449 §10: a code bound to a DPoP key (dpop_jkt) is redeemed only with a proof of that key.
    if (grant.dpopJkt !== null && (r.dpopJkt ?? null) !== grant.dpopJkt) {
      return r.dpopJkt ? "the DPoP proof is not signed by the key the authorization code is bound to" : "the authorization code is bound to a DPoP key: send a DPoP proof of it";
    }
    return null;
  }

  protected override describe(grant: AuthorizationCodeGrant) {
    return { subject: grant.sub, clientId: grant.clientId };
  }

  /**
   * Every redemption is audited with the grant it makes (`auth_code.redeemed`): a grant that lives in its access tokens
   * (oauth/access-token-grant.ts) has no object to record its creation, so this is the event that says tokens were
   * issued to the client for the user (and what /admin/metrics counts as an authorization-code grant).
   */
  protected override redeemedEvent(grant: AuthorizationCodeGrant, outcome: CodeOutcome | undefined): AuditData {
    return { grantId: outcome?.grantId ?? null, scope: grant.scope };
  }
}
