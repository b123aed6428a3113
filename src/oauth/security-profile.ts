import type { Client, ClientFields } from "../db/clients";
import { base64urlDecode } from "../lib/crypto";
import { FAPI2_JWS_ALGS } from "./jws-algs";

/**
 * The per-client FAPI 2.0 Security Profile switch (registration `"security_profile": "fapi2"`): every rule it adds,
 * in one place, with no I/O. What it covers and what it cannot (mTLS) is docs/fapi2.md.
 *
 * At registration (`fapi2RegistrationProblem`): confidential with `private_key_jwt` only, DPoP-bound access tokens and
 * pushed requests required, ID tokens signed with ES256, request objects with PS256, ES256 or EdDSA, RSA keys of at
 * least 2048 bits, a retry interval for refresh-token rotation. At run time (the helpers below, each called where its
 * rule applies): PKCE S256 even for a confidential client, PAR only, DPoP at /token, the profile's algorithms for
 * everything the client signs, access tokens signed with ES256, codes living at most 60 s and request URIs under 600 s.
 */

export const SECURITY_PROFILES = ["fapi2"] as const;
export type SecurityProfile = (typeof SECURITY_PROFILES)[number];

type Profiled = Pick<Client, "security_profile">;

export function isFapi2(client: Profiled): boolean {
  return client.security_profile === "fapi2";
}

/** FAPI 2.0 SP §5.3.2.1: "shall issue authorization codes with a maximum lifetime of 60 seconds". */
export const FAPI2_MAX_CODE_LIFETIME = 60;
/** FAPI 2.0 SP §5.3.2.2: request_uri `expires_in` "of less than 600 seconds". */
export const FAPI2_MAX_REQUEST_URI_LIFETIME = 599;
/**
 * FAPI 2.0 SP §5.3.2.1 and its Note 2: refresh tokens rotate here, so a client that lost the answer must be able to
 * retry with the previous token — the reuse interval (docs/consistency.md, C3) is that retry. Used when none is registered.
 */
export const FAPI2_REFRESH_RETRY_INTERVAL = 60;
/** FAPI 2.0 SP §5.4.1: RSA keys of at least 2048 bits. */
const MIN_RSA_BITS = 2048;

/** The algorithms a client may sign with: `algs` narrowed to the profile's (PS256, ES256, EdDSA) for a FAPI 2.0 client. */
export function signingAlgsFor(client: Profiled, algs: readonly string[]): string[] {
  return isFapi2(client) ? algs.filter((alg) => (FAPI2_JWS_ALGS as readonly string[]).includes(alg)) : [...algs];
}

/** How long a new authorization code lives. */
export function codeLifetime(client: Profiled, configured: number): number {
  return isFapi2(client) ? Math.min(configured, FAPI2_MAX_CODE_LIFETIME) : configured;
}

/** How long a pushed request's request_uri lives. */
export function requestUriLifetime(client: Profiled, configured: number): number {
  return isFapi2(client) ? Math.min(configured, FAPI2_MAX_REQUEST_URI_LIFETIME) : configured;
}

/** The key that signs the client's access tokens: ES256 for a FAPI 2.0 client (RS256 is not among its algorithms). */
export function accessTokenAlgFor(client: Profiled, defaultAlg: "RS256" | "ES256"): "RS256" | "ES256" {
  return isFapi2(client) ? "ES256" : defaultAlg;
}

/** RFC 7636 / RFC 9700 §2.1.1 for public clients; FAPI 2.0 SP §5.3.2.2 for every client of the profile. */
export function requiresPkce(client: Profiled & Pick<Client, "token_endpoint_auth_method">): boolean {
  return client.token_endpoint_auth_method === "none" || isFapi2(client);
}

/** RFC 9126 §5 and §6: the server's setting, or the client's registration (FAPI 2.0 SP §5.3.2.2 sets it). */
export function requiresPushedRequests(client: Profiled & Pick<Client, "require_pushed_authorization_requests">, serverRequires: boolean): boolean {
  return serverRequires || client.require_pushed_authorization_requests || isFapi2(client);
}

/** RFC 9449 §5.2 `dpop_bound_access_tokens`; FAPI 2.0 SP §5.3.1: sender-constrained access tokens only. */
export function requiresDpop(client: Profiled & Pick<Client, "dpop_bound_access_tokens">): boolean {
  return client.dpop_bound_access_tokens || isFapi2(client);
}

/** Whether a JWK is an RSA key shorter than the profile allows (a key of another type is not). */
export function isShortRsaKey(jwk: Record<string, unknown>): boolean {
  if (jwk.kty !== "RSA") return false;
  if (typeof jwk.n !== "string") return true;
  try {
    const modulus = base64urlDecode(jwk.n);
    let start = 0;
    while (start < modulus.length && modulus[start] === 0) start++;
    return (modulus.length - start) * 8 < MIN_RSA_BITS;
  } catch {
    return true;
  }
}

/** The registration rules of the profile: why `fields` break it, or null. */
export function fapi2RegistrationProblem(fields: ClientFields): string | null {
  if (fields.security_profile !== "fapi2") return null;
  // §5.3.1: confidential clients only, authenticated with private_key_jwt (mTLS is not offered on Workers).
  if (fields.token_endpoint_auth_method !== "private_key_jwt") return "security_profile fapi2 requires token_endpoint_auth_method private_key_jwt";
  if (!fields.dpop_bound_access_tokens) return "security_profile fapi2 requires dpop_bound_access_tokens: true (sender-constrained access tokens)";
  if (!fields.require_pushed_authorization_requests) return "security_profile fapi2 requires require_pushed_authorization_requests: true";
  if (fields.id_token_signed_response_alg !== "ES256") return "security_profile fapi2 requires id_token_signed_response_alg ES256 (PS256, ES256 or EdDSA; this OP signs ES256)";
  if (fields.request_object_signing_alg !== null && !(FAPI2_JWS_ALGS as readonly string[]).includes(fields.request_object_signing_alg)) {
    return "security_profile fapi2 requires request_object_signing_alg PS256, ES256 or EdDSA";
  }
  if (fields.jwks !== null && fields.jwks.keys.some((jwk) => isShortRsaKey(jwk))) return "security_profile fapi2 requires RSA keys of at least 2048 bits";
  if (fields.grant_types.includes("refresh_token") && fields.refresh_token_reuse_interval === 0) {
    return "security_profile fapi2 requires a refresh_token_reuse_interval above 0 (a client that lost a rotated token must be able to retry)";
  }
  return null;
}
