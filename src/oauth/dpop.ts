import { EmbeddedJWK, calculateJwkThumbprint, decodeProtectedHeader, jwtVerify, type JWK, type JWTPayload, type ProtectedHeaderParameters } from "jose";
import { sha256Base64url } from "../lib/crypto";
import type { NonceWindow } from "./dpop-nonce";
import { OAuthError } from "./errors";
import { ASYMMETRIC_JWS_ALGS } from "./jws-algs";
import { isFapi2, isShortRsaKey, signingAlgsFor } from "./security-profile";

/**
 * DPoP proofs (RFC 9449 §4.3), one small named check per rule, no I/O of its own: `verifyDpopProof` checks every rule
 * but one-time use; `spendDpopProof` then records the proof's jti through the caller's one storage step (C10:
 * accepted once within its window, `JtiStore.recordJti` under the scope `dpop:<jkt>` — one object call, which the
 * endpoints make beside their own first round trip). Any failure is `invalid_dpop_proof`; a missing or stale nonce is
 * `use_dpop_nonce` with the nonce to use. The token endpoint and /par answer them as RFC 6749 §5.2 errors, resource
 * access as `WWW-Authenticate: DPoP` challenges (§7.1, routes/support/access-token.ts).
 */

/** `dpop_signing_alg_values_supported`: asymmetric only (§4.2). */
export const DPOP_SIGNING_ALGS: readonly string[] = ASYMMETRIC_JWS_ALGS;

/**
 * How far ahead of ours a proof's `iat` may be: FAPI 2.0 SP §5.3.2.1 requires 10 s to be accepted and anything beyond
 * 60 s refused; 30 s is the same skew client assertions get.
 */
export const DPOP_FUTURE_SKEW_SECONDS = 30;

/** A proof is a compact JWS with an embedded public key: a few hundred bytes (RSA-4096: under 2 KiB). */
const MAX_PROOF_LENGTH = 8 * 1024;
const MAX_JTI_LENGTH = 256;
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;
/** Members only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

export interface DpopExpectation {
  /** The request's method. */
  htm: string;
  /** The endpoint's URL, origin and path: `${issuer}/token`. */
  htu: string;
  nowSeconds: number;
  /** DPOP_PROOF_WINDOW: how old `iat` may be. */
  windowSeconds: number;
  /** For resource access (§7): the access token the proof must name by `ath`; null at the token endpoint and /par. */
  accessToken: string | null;
  /** The server nonces of now (§8, §9); null when the OP asks for none. */
  nonces: NonceWindow | null;
}

export interface VerifiedDpopProof {
  /** RFC 7638 SHA-256 thumbprint of the proof's key: what tokens and codes are bound to (`cnf.jkt`, `dpop_jkt`). */
  jkt: string;
  alg: string;
  jwk: JWK;
  /** The nonce to hand back in `DPoP-Nonce` because the proof's has rolled over (§8.2), or null. */
  nextNonce: string | null;
  jti: string;
  /** How long the jti must be remembered: as long as the proof could be accepted (the window, plus the skew ahead). */
  jtiWindowSeconds: number;
}

/** Records the jti of a proof of key `jkt` for `windowSeconds`: false when it was already recorded (a replay). */
export type RecordProofJti = (jkt: string, jti: string, windowSeconds: number) => Promise<boolean>;

export function invalidDpopProof(description: string): OAuthError {
  return new OAuthError("invalid_dpop_proof", description);
}

export function useDpopNonce(nonce: string, description: string): OAuthError {
  return new OAuthError("use_dpop_nonce", description, { headers: { "dpop-nonce": nonce } });
}

/**
 * The proof a request carries (`DPoP` header), or null without one. §4.3 item 1: exactly one header — a repeated one
 * arrives joined with ", " and has no JWS shape — holding one well-formed JWT.
 */
export function dpopProofOf(header: string | null): string | null {
  if (header === null) return null;
  const proof = header.trim();
  if (proof.length > MAX_PROOF_LENGTH) throw invalidDpopProof("the DPoP proof is too large");
  if (!COMPACT_JWS.test(proof)) throw invalidDpopProof("the DPoP header must hold exactly one proof, a signed JWT");
  return proof;
}

/** §4.3 items 2–5: `typ` dpop+jwt, an advertised asymmetric `alg`, and a public key in `jwk`. */
function checkProofHeader(proof: string): ProtectedHeaderParameters & { jwk: JWK } {
  let header: ProtectedHeaderParameters;
  try {
    header = decodeProtectedHeader(proof);
  } catch {
    throw invalidDpopProof("the DPoP proof header is not valid JSON");
  }
  if (header.typ !== "dpop+jwt") throw invalidDpopProof("the DPoP proof must have typ dpop+jwt");
  if (typeof header.alg !== "string" || !DPOP_SIGNING_ALGS.includes(header.alg)) {
    throw invalidDpopProof(`the DPoP proof must be signed with one of ${DPOP_SIGNING_ALGS.join(", ")}`);
  }
  const jwk = header.jwk as unknown;
  if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) throw invalidDpopProof("the DPoP proof must carry its public key in jwk");
  if (PRIVATE_MEMBERS.some((member) => member in jwk)) throw invalidDpopProof("the DPoP proof's jwk must be a public key, with no private part");
  return header as ProtectedHeaderParameters & { jwk: JWK };
}

/** §4.3 item 6: the signature, by the key in the header. */
async function checkProofSignature(proof: string): Promise<JWTPayload> {
  try {
    const { payload } = await jwtVerify(proof, EmbeddedJWK, { algorithms: [...DPOP_SIGNING_ALGS], typ: "dpop+jwt" });
    return payload;
  } catch {
    throw invalidDpopProof("the DPoP proof's signature does not verify with its jwk");
  }
}

/** An absolute URL without query and fragment (§4.3 item 9), as the URL parser writes it; null when it is none. */
function withoutQueryAndFragment(value: string): string | null {
  try {
    const url = new URL(value);
    return `${url.origin}${url.pathname}`;
  } catch {
    return null;
  }
}

/** §4.3 items 7–9 and 11: jti, htm, htu, iat. */
function checkProofClaims(payload: JWTPayload, expected: DpopExpectation): { jti: string; iat: number } {
  const { jti, htm, htu, iat } = payload as { jti?: unknown; htm?: unknown; htu?: unknown; iat?: unknown };
  if (typeof jti !== "string" || jti.length === 0 || jti.length > MAX_JTI_LENGTH) throw invalidDpopProof("the DPoP proof must carry a jti");
  if (htm !== expected.htm) throw invalidDpopProof(`the DPoP proof is for another method (htm must be ${expected.htm})`);
  if (typeof htu !== "string" || withoutQueryAndFragment(htu) !== withoutQueryAndFragment(expected.htu)) {
    throw invalidDpopProof(`the DPoP proof is for another URL (htu must be ${expected.htu})`);
  }
  if (typeof iat !== "number" || !Number.isFinite(iat)) throw invalidDpopProof("the DPoP proof must carry iat");
  if (iat > expected.nowSeconds + DPOP_FUTURE_SKEW_SECONDS) throw invalidDpopProof("the DPoP proof's iat is in the future");
  if (iat < expected.nowSeconds - expected.windowSeconds) throw invalidDpopProof("the DPoP proof is too old (iat)");
  return { jti, iat };
}

/** §4.3 item 12, §7.1: for resource access, `ath` is the base64url SHA-256 of the access token presented. */
async function checkAccessTokenHash(payload: JWTPayload, accessToken: string | null): Promise<void> {
  if (accessToken === null) return;
  if (typeof payload.ath !== "string" || payload.ath !== (await sha256Base64url(accessToken))) {
    throw invalidDpopProof("the DPoP proof's ath does not match the access token");
  }
}

/** §4.3 item 10, §8, §9: with server nonces on, the proof carries one the OP issued and has not retired. */
function checkNonce(payload: JWTPayload, nonces: NonceWindow | null): string | null {
  if (nonces === null) return null;
  if (payload.nonce === undefined) throw useDpopNonce(nonces.current, "the DPoP proof must carry the server's nonce");
  if (typeof payload.nonce !== "string" || !nonces.accepted.includes(payload.nonce)) {
    throw useDpopNonce(nonces.current, "the DPoP proof's nonce is not one this server issued, or it has expired");
  }
  return payload.nonce === nonces.current ? null : nonces.current;
}

/** Every check of §4.3 but the jti's one use (`spendDpopProof`). No I/O: a bad proof is refused before anything is stored. */
export async function verifyDpopProof(proof: string, expected: DpopExpectation): Promise<VerifiedDpopProof> {
  const header = checkProofHeader(proof);
  const payload = await checkProofSignature(proof);
  const { jti } = checkProofClaims(payload, expected);
  await checkAccessTokenHash(payload, expected.accessToken);
  const nextNonce = checkNonce(payload, expected.nonces);
  const jkt = await calculateJwkThumbprint(header.jwk, "sha256");
  return { jkt, alg: header.alg!, jwk: header.jwk, nextNonce, jti, jtiWindowSeconds: expected.windowSeconds + DPOP_FUTURE_SKEW_SECONDS };
}

/**
 * §11.1, C10: the jti of a verified proof recorded once; a replay within the window is refused. It is remembered for
 * the window plus the tolerated skew, so no proof outlives the record of it.
 */
export async function spendDpopProof(proof: VerifiedDpopProof, recordJti: RecordProofJti): Promise<void> {
  if (!(await recordJti(proof.jkt, proof.jti, proof.jtiWindowSeconds))) throw invalidDpopProof("the DPoP proof was already used (jti)");
}

/** What the client's registration asks of its proofs: a FAPI 2.0 client signs with PS256, ES256 or EdDSA, RSA keys of 2048 bits or more. */
export function checkProofFitsClient(proof: VerifiedDpopProof, client: Parameters<typeof signingAlgsFor>[0]): void {
  if (!signingAlgsFor(client, DPOP_SIGNING_ALGS).includes(proof.alg)) throw invalidDpopProof("this client's DPoP proofs must be signed with PS256, ES256 or EdDSA");
  if (isFapi2(client) && isShortRsaKey(proof.jwk as Record<string, unknown>)) throw invalidDpopProof("this client's DPoP RSA keys must have at least 2048 bits");
}

/** RFC 9449 §5.2 and FAPI 2.0: a client that must use DPoP sent no proof. */
export function dpopProofRequired(): OAuthError {
  return invalidDpopProof("this client must send a DPoP proof (its access tokens are DPoP-bound)");
}
