import type { User } from "../../db/users";
import { filterClaims, releasedClaimNames, storedClaimsRequest, userClaimValues } from "../claims";
import { accessTokenAlgFor } from "../security-profile";
import { mintAccessToken, mintIdToken } from "../tokens";
import type { GrantContext, TokenResponse } from "./context";

/** The tokens every grant issues, minted the same way whichever grant asked. */

export interface AccessTokenFacts {
  sub: string;
  scope: string;
  grantId: string;
  authTime: number | null;
}

/**
 * RFC 9068: signed with the current key of ACCESS_TOKEN_SIGNING_ALG (ES256 for a FAPI 2.0 client); the JWT `exp` and
 * `expires_in` come from one lifetime. With a DPoP proof the token is bound to its key (`cnf.jkt`, RFC 9449 §6.1).
 */
export async function issueAccessToken({ config, issuer, client, storage, dpop }: GrantContext, facts: AccessTokenFacts): Promise<string> {
  const access = await mintAccessToken(await storage.signingKey(accessTokenAlgFor(client, config.accessTokenSigningAlg)), {
    issuer,
    clientId: client.client_id,
    sub: facts.sub,
    scope: facts.scope,
    grantId: facts.grantId,
    authTime: facts.authTime,
    ttlSeconds: config.accessTokenTtl,
    dpopJkt: dpop?.jkt ?? null,
  });
  return access.token;
}

/** RFC 9449 §5: the token_type of the access token `issueAccessToken` made. */
export function tokenTypeOf({ dpop }: GrantContext): TokenResponse["token_type"] {
  return dpop ? "DPoP" : "Bearer";
}

export interface IdTokenFacts {
  /** The scope granted to this token response: it bounds the user claims the ID token may carry (C17). */
  scope: string;
  authTime: number;
  nonce: string | null;
  sid: string | null;
  amr: string[];
  acr: string | null;
  claims: string | null;
  accessToken: string;
}

/**
 * OIDC Core §3.1.3.6 / §2. Signed with the client's registered `id_token_signed_response_alg` or the default. The
 * user claims are those of the granted scope (§5.4), or for a client registered with `id_token_claims: "minimal"`
 * only those the `claims` request's id_token member names (§5.5) within it — the client's registration of now (C5).
 */
export async function issueIdToken({ config, issuer, client, storage }: GrantContext, user: User, facts: IdTokenFacts): Promise<string> {
  const alg = client.id_token_signed_response_alg ?? config.defaultSigningAlg;
  const released = releasedClaimNames(facts.scope, storedClaimsRequest(facts.claims), "id_token", client.id_token_claims, client.extra_claims);
  const { sub: _sub, ...claims } = filterClaims(user.id, userClaimValues(user), released);
  return mintIdToken(await storage.signingKey(alg), {
    issuer,
    clientId: client.client_id,
    sub: user.id,
    authTime: facts.authTime,
    nonce: facts.nonce,
    sid: facts.sid,
    amr: facts.amr,
    acr: facts.acr,
    accessToken: facts.accessToken,
    ttlSeconds: config.idTokenTtl,
    claims,
  });
}
