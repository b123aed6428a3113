import { DPOP_SIGNING_ALGS } from "./dpop";
import { OAuthError } from "./errors";

/**
 * How an access token is presented to a resource (/userinfo): RFC 6750 Bearer, or RFC 9449 §7.1 DPoP — reading the
 * token from a request's parts, and the one `WWW-Authenticate` challenge of each scheme. No I/O.
 */

/** The two schemes: a Bearer token (RFC 6750), or a DPoP-bound one with its proof (RFC 9449 §7.1). */
export type AuthScheme = "Bearer" | "DPoP";

/** A quoted-string parameter value: no quotes, backslashes or non-printable characters. */
function quoted(value: string): string {
  return value.replace(/["\\]/g, "").replace(/[^\x20-\x7e]/g, "");
}

/**
 * RFC 6750 §3 and RFC 9449 §7.1: the challenge of `scheme`; no error attribute when the request carried no token at
 * all (RFC 6750 §3.1). A DPoP challenge names the proof algorithms accepted (`algs`).
 */
export function authChallenge(scheme: AuthScheme, realm: string, error?: string, description?: string, scope?: string): Record<string, string> {
  let value = `${scheme} realm="${quoted(realm)}"`;
  if (error) value += `, error="${error}"`;
  if (error && description) value += `, error_description="${quoted(description)}"`;
  if (scope) value += `, scope="${quoted(scope)}"`;
  if (scheme === "DPoP") value += `, algs="${DPOP_SIGNING_ALGS.join(" ")}"`;
  return { "www-authenticate": value };
}

/** RFC 6750 §3: the Bearer challenge (also the admin API's). */
export function bearerChallenge(realm: string, error?: string, description?: string, scope?: string): Record<string, string> {
  return authChallenge("Bearer", realm, error, description, scope);
}

/** 401 with the challenge naming why. */
export function invalidToken(realm: string, description: string, scheme: AuthScheme = "Bearer"): OAuthError {
  return new OAuthError("invalid_token", description, { status: 401, headers: authChallenge(scheme, realm, "invalid_token", description) });
}

/** 401 with the bare challenge: no token was presented (§3.1). */
export function tokenRequired(realm: string, description: string): OAuthError {
  return new OAuthError("invalid_token", description, { status: 401, headers: bearerChallenge(realm) });
}

export function bearerInvalidRequest(realm: string, description: string, scheme: AuthScheme = "Bearer"): OAuthError {
  return new OAuthError("invalid_request", description, { status: 400, headers: authChallenge(scheme, realm, "invalid_request", description) });
}

export function insufficientScope(realm: string, description: string, scope: string, scheme: AuthScheme = "Bearer"): OAuthError {
  return new OAuthError("insufficient_scope", description, { status: 403, headers: authChallenge(scheme, realm, "insufficient_scope", description, scope) });
}

/**
 * RFC 9449 §7.1: a refused DPoP proof at a resource is a 401 with the DPoP challenge (`invalid_dpop_proof`, or
 * `use_dpop_nonce` with the `DPoP-Nonce` header the proof check put on the error).
 */
export function resourceProofError(realm: string, error: OAuthError): OAuthError {
  const description = error.description ?? "the DPoP proof is not valid";
  return new OAuthError(error.code, description, { status: 401, headers: { ...error.headers, ...authChallenge("DPoP", realm, error.code, description) } });
}

/** RFC 6750 §2.1 b64token, which is also RFC 9449 §7.1's token68. */
const CREDENTIALS = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * The token an `Authorization` header carries and its scheme: null when there is none or it uses another scheme; a
 * Bearer or DPoP header that is malformed is invalid_token.
 */
export function accessTokenOf(header: string | null, realm: string): { scheme: AuthScheme; token: string } | null {
  if (header === null) return null;
  const match = CREDENTIALS.exec(header.trim());
  if (match) return { scheme: match[1]!.toLowerCase() === "dpop" ? "DPoP" : "Bearer", token: match[2]! };
  const scheme = /^(Bearer|DPoP)(\s|$)/i.exec(header.trim())?.[1];
  if (scheme !== undefined) {
    const named: AuthScheme = scheme.toLowerCase() === "dpop" ? "DPoP" : "Bearer";
    throw invalidToken(realm, `malformed ${named} credentials`, named);
  }
  return null;
}

/** RFC 6750 §2: the token from the header or the form body (§2.2), never both. */
export function presentedToken(fromHeader: string | null, fromBody: string | null, realm: string, scheme: AuthScheme = "Bearer"): string | null {
  if (fromHeader !== null && fromBody !== null) throw bearerInvalidRequest(realm, "the access token was sent in more than one way", scheme);
  return fromHeader ?? fromBody;
}
