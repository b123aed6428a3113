import { jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { invalidClient } from "./client-auth";
import { ASYMMETRIC_JWS_ALGS } from "./jws-algs";

/**
 * RFC 7523 §3: a `private_key_jwt` client assertion. No I/O of its own: the client's keys come in as a jose key
 * resolver (its registered `jwks`, or its `jwks_uri` fetched by the caller's resolver), and the caller records the
 * returned jti as used for the returned window (C10).
 */

/** Algorithms accepted on client assertions: asymmetric only (never `none`, never an HMAC over a secret we only hold hashed). */
export const CLIENT_ASSERTION_ALGS: string[] = [...ASYMMETRIC_JWS_ALGS];

/** Clock skew tolerated on exp / nbf / iat of assertions. */
export const ASSERTION_CLOCK_TOLERANCE_SECONDS = 30;
const MAX_JTI_LENGTH = 200;

export interface AssertionExpectation {
  clientId: string;
  /** The issuer identifier: the audience an assertion names (draft-ietf-oauth-rfc7523bis). */
  issuer: string;
  /** The token endpoint URL: also accepted as the audience, for clients written to RFC 7523 §3 and OIDC Core §9. */
  tokenEndpoint: string;
  /** Further URLs accepted as the audience: the PAR endpoint's own, at /par (RFC 9126 §2). */
  alsoAccepted?: readonly string[];
  /** The algorithms the client may sign with (a FAPI 2.0 client: PS256, ES256, EdDSA); default all of CLIENT_ASSERTION_ALGS. */
  algorithms?: readonly string[];
  /** The realm of the invalid_client challenge. */
  realm: string;
  nowSeconds: number;
  /**
   * The longest an assertion may live (the `CLIENT_ASSERTION_MAX_LIFETIME` setting; Authlib signs for an hour): its
   * jti is remembered until its exp, so no replay outlives the record (C10).
   */
  maxLifetimeSeconds: number;
}

/**
 * Signed by a key of the client, iss = sub = client_id, aud names this server and nothing else, exp in the future and not too far
 * away, and a jti. Returns the jti and how long (seconds) it must be remembered; any failure is invalid_client.
 */
export async function verifyClientAssertion(assertion: string, keys: JWTVerifyGetKey, expected: AssertionExpectation): Promise<{ jti: string; windowSeconds: number }> {
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(assertion, keys, {
      algorithms: [...(expected.algorithms ?? CLIENT_ASSERTION_ALGS)],
      issuer: expected.clientId,
      subject: expected.clientId,
      requiredClaims: ["exp", "jti"],
      clockTolerance: ASSERTION_CLOCK_TOLERANCE_SECONDS,
      currentDate: new Date(expected.nowSeconds * 1000),
    }));
  } catch {
    throw invalidClient("client_assertion is invalid", expected.realm);
  }
  if (!namesThisServerOnly(payload.aud, expected)) throw invalidClient("client_assertion aud must be the issuer identifier", expected.realm);
  return assertionJtiWindow(payload, expected);
}

/**
 * draft-ietf-oauth-rfc7523bis (the 2025 audience-injection disclosure): an assertion names this server by its issuer
 * identifier. The token endpoint URL is accepted as well, because RFC 7523 §3 and OIDC Core §9 told clients to use it,
 * but nothing else: not the URL of the endpoint being called (/introspect, /revoke — the draft drops endpoint URLs as
 * audiences, and a client that builds the audience from endpoint metadata is the one an attacker's metadata can steer),
 * and not an array with any other value in it (jose's own check accepts an array that merely contains ours).
 */
function namesThisServerOnly(aud: unknown, expected: AssertionExpectation): boolean {
  const values = typeof aud === "string" ? [aud] : Array.isArray(aud) ? aud : [];
  return values.length > 0 && values.every((value) => value === expected.issuer || value === expected.tokenEndpoint || (expected.alsoAccepted ?? []).includes(value));
}

/**
 * RFC 7523 §3 checks on a verified assertion that jose does not do by itself: a jti is present and bounded, and the
 * assertion lives no longer than the maximum — from its iat when it has one, and from now (with the tolerated skew, so
 * a client whose clock runs a little ahead is not refused). Returns how long (seconds) the jti must be remembered.
 */
function assertionJtiWindow(payload: JWTPayload, expected: AssertionExpectation): { jti: string; windowSeconds: number } {
  const { realm, nowSeconds, maxLifetimeSeconds } = expected;
  if (typeof payload.jti !== "string" || payload.jti.length === 0 || payload.jti.length > MAX_JTI_LENGTH) {
    throw invalidClient("client_assertion must carry a jti", realm);
  }
  if (typeof payload.exp !== "number") throw invalidClient("client_assertion must carry exp", realm);
  const remaining = payload.exp - nowSeconds;
  const lifetime = typeof payload.iat === "number" ? payload.exp - payload.iat : remaining;
  if (lifetime > maxLifetimeSeconds || remaining > maxLifetimeSeconds + ASSERTION_CLOCK_TOLERANCE_SECONDS) {
    throw invalidClient(`client_assertion lives longer than ${maxLifetimeSeconds} seconds`, realm);
  }
  // Remembered until it can no longer be accepted (expiry plus the tolerated skew).
  return { jti: payload.jti, windowSeconds: Math.max(1, remaining + ASSERTION_CLOCK_TOLERANCE_SECONDS) };
}
