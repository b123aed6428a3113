import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload, type JWTVerifyGetKey } from "jose";
import { OAuthError } from "./errors";
import { ASYMMETRIC_JWS_ALGS } from "./jws-algs";

/**
 * Signed request objects (RFC 9101, OIDC Core §6.1) passed by value in `request`, at /authorize and at /par. No I/O of
 * its own: the client's keys come in as a jose key resolver and the caller records the object's jti (one use, C10's
 * store, scope `request_object:<client_id>`). RFC 9101 §5: the request object's parameters are the request — those
 * outside it are not used, except `client_id`, which must agree. Every refusal is `invalid_request_object`; the caller
 * delivers it to the redirect URI the object names, in its response mode and with its `state` (OIDC Core §3.1.2.6),
 * read before the signature is checked (`unverifiedRequestParams`).
 */

/** `request_object_signing_alg_values_supported`, besides `none` when ALLOW_UNSIGNED_REQUEST_OBJECTS is on. */
export const REQUEST_OBJECT_ALGS: readonly string[] = ASYMMETRIC_JWS_ALGS;

/** A request object is a few kilobytes at most; anything larger is refused before it is decoded. */
export const MAX_REQUEST_OBJECT_LENGTH = 16 * 1024;
/** The longest a request object may be good for (FAPI 2.0 Message Signing §5.3.1: 60 minutes). */
export const MAX_REQUEST_OBJECT_LIFETIME_SECONDS = 3600;
/** Clock skew tolerated on exp / nbf / iat, as for client assertions and DPoP proofs. */
export const REQUEST_OBJECT_CLOCK_TOLERANCE_SECONDS = 30;
const MAX_JTI_LENGTH = 200;
/** JWT claims of the object itself, not authorization request parameters. */
const JWT_CLAIMS = new Set(["iss", "aud", "exp", "nbf", "iat", "jti", "sub"]);
/** RFC 9101 §10.8: an explicit `typ` must say this is a request object (or the generic JWT). */
const REQUEST_OBJECT_TYPES = new Set(["oauth-authz-req+jwt", "application/oauth-authz-req+jwt", "jwt", "application/jwt"]);
const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function invalidRequestObject(description: string): OAuthError {
  return new OAuthError("invalid_request_object", description);
}

/**
 * The authorization request parameters of a request object's claims: strings as they are, numbers (`max_age`) and
 * booleans as text, the `claims` object as its JSON; the JWT's own claims and anything else (arrays, null) left out,
 * like parameters this OP does not know (OIDC Core §3.1.2.1).
 */
function requestParams(payload: JWTPayload): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [name, value] of Object.entries(payload)) {
    if (JWT_CLAIMS.has(name)) continue;
    if (typeof value === "string") {
      if (value !== "") params[name] = value;
    } else if (typeof value === "number" || typeof value === "boolean") {
      params[name] = String(value);
    } else if (name === "claims" && typeof value === "object" && value !== null && !Array.isArray(value)) {
      params[name] = JSON.stringify(value);
    }
  }
  return params;
}

/**
 * What a request object says, before anything about it is checked: only to know where to send its refusal. Null
 * when it is not a JWT at all (the refusal then goes where the outer parameters say, if they can say it).
 */
export function unverifiedRequestParams(jwt: string): Record<string, string> | null {
  if (jwt.length > MAX_REQUEST_OBJECT_LENGTH || !COMPACT_JWS.test(jwt)) return null;
  try {
    return requestParams(decodeJwt(jwt));
  } catch {
    return null;
  }
}

export interface RequestObjectExpectation {
  /** The client_id of the authorization request (outside the object): the object's `iss`, and its `client_id` if any. */
  clientId: string;
  /** This OP's issuer identifier: the object's `aud` (RFC 9101 §4). */
  issuer: string;
  nowSeconds: number;
  /** The signing algorithms this client may use (its `request_object_signing_alg`, or all, narrowed by a profile). */
  algorithms: readonly string[];
  /** ALLOW_UNSIGNED_REQUEST_OBJECTS for a client that may send `alg: none` (none registered, no profile). */
  allowUnsigned: boolean;
}

/** Records a request object's jti for `windowSeconds`: false when it was already used. */
export type RecordRequestObjectJti = (jti: string, windowSeconds: number) => Promise<boolean>;

/** The header's `alg` and `typ`, checked against what this client may use. */
function checkHeader(jwt: string, expected: RequestObjectExpectation): "signed" | "unsigned" {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(jwt);
  } catch {
    throw invalidRequestObject("the request object is not a JWT");
  }
  if (typeof header.typ === "string" && !REQUEST_OBJECT_TYPES.has(header.typ.toLowerCase())) throw invalidRequestObject("the request object's typ is not oauth-authz-req+jwt");
  if (header.alg === "none") {
    if (!expected.allowUnsigned) throw invalidRequestObject("unsigned request objects (alg none) are not accepted");
    return "unsigned";
  }
  if (typeof header.alg !== "string" || !expected.algorithms.includes(header.alg)) {
    throw invalidRequestObject(`the request object must be signed with ${expected.algorithms.join(", ")}`);
  }
  return "signed";
}

/** RFC 9101 §4 / §6.3: iss and aud, and a bounded lifetime; jose has checked exp and nbf against the clock. */
function checkClaims(payload: JWTPayload, expected: RequestObjectExpectation): { jti: string; windowSeconds: number } {
  if (payload.iss !== expected.clientId) throw invalidRequestObject("the request object's iss must be the client_id");
  const aud = typeof payload.aud === "string" ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
  if (!aud.includes(expected.issuer)) throw invalidRequestObject("the request object's aud must be this server's issuer identifier");
  if (typeof payload.exp !== "number") throw invalidRequestObject("the request object must carry exp");
  const now = expected.nowSeconds;
  const start = typeof payload.nbf === "number" ? payload.nbf : typeof payload.iat === "number" ? payload.iat : now;
  if (payload.exp - start > MAX_REQUEST_OBJECT_LIFETIME_SECONDS || payload.exp - now > MAX_REQUEST_OBJECT_LIFETIME_SECONDS + REQUEST_OBJECT_CLOCK_TOLERANCE_SECONDS) {
    throw invalidRequestObject(`the request object lives longer than ${MAX_REQUEST_OBJECT_LIFETIME_SECONDS} seconds`);
  }
  if (typeof payload.nbf === "number" && now - payload.nbf > MAX_REQUEST_OBJECT_LIFETIME_SECONDS) throw invalidRequestObject("the request object's nbf is too far in the past");
  if (typeof payload.jti !== "string" || payload.jti.length === 0 || payload.jti.length > MAX_JTI_LENGTH) throw invalidRequestObject("the request object must carry a jti");
  return { jti: payload.jti, windowSeconds: Math.max(1, payload.exp - now + REQUEST_OBJECT_CLOCK_TOLERANCE_SECONDS) };
}

/** RFC 9101 §5: the parameters are the object's; its client_id, if any, is the request's; no object inside an object. */
function checkParams(params: Record<string, string>, expected: RequestObjectExpectation): Record<string, string> {
  if (params.client_id !== undefined && params.client_id !== expected.clientId) throw invalidRequestObject("the request object's client_id is not the request's");
  if (params.request !== undefined || params.request_uri !== undefined) throw invalidRequestObject("a request object must not hold request or request_uri");
  return { ...params, client_id: expected.clientId };
}

/**
 * Verifies a request object of the client and returns the authorization request it holds. Signed: by one of the
 * client's keys with an allowed alg, iss = client_id, aud naming this server, exp (and nbf, if any) in force, at most
 * an hour long, and a jti used once. Unsigned (only where allowed): it proves nothing, so only its shape and its
 * client_id are checked.
 */
export async function verifyRequestObject(
  jwt: string,
  keys: JWTVerifyGetKey | null,
  expected: RequestObjectExpectation,
  recordJti: RecordRequestObjectJti,
): Promise<Record<string, string>> {
  if (jwt.length > MAX_REQUEST_OBJECT_LENGTH) throw invalidRequestObject("the request object is too large");
  if (!COMPACT_JWS.test(jwt)) throw invalidRequestObject("the request object is not a JWT");
  if (checkHeader(jwt, expected) === "unsigned") {
    const params = unverifiedRequestParams(jwt);
    if (params === null) throw invalidRequestObject("the request object is not a JWT");
    return checkParams(params, expected);
  }
  if (keys === null) throw invalidRequestObject("the client has no keys registered (jwks or jwks_uri) to check its request object with");
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(jwt, keys, {
      algorithms: [...expected.algorithms],
      clockTolerance: REQUEST_OBJECT_CLOCK_TOLERANCE_SECONDS,
      currentDate: new Date(expected.nowSeconds * 1000),
    }));
  } catch (error) {
    const expired = error instanceof Error && "code" in error && (error as { code?: string }).code === "ERR_JWT_EXPIRED";
    throw invalidRequestObject(expired ? "the request object has expired" : "the request object's signature or timestamps do not verify");
  }
  const { jti, windowSeconds } = checkClaims(payload, expected);
  const params = checkParams(requestParams(payload), expected);
  if (!(await recordJti(jti, windowSeconds))) throw invalidRequestObject("the request object was already used (jti)");
  return params;
}
