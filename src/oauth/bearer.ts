import { OAuthError } from "./errors";

/** RFC 6750: reading a Bearer token from a request's parts, and the one `WWW-Authenticate: Bearer` challenge. No I/O. */

/** A quoted-string parameter value: no quotes, backslashes or non-printable characters. */
function quoted(value: string): string {
  return value.replace(/["\\]/g, "").replace(/[^\x20-\x7e]/g, "");
}

/** RFC 6750 §3: the challenge; no error attribute when the request carried no token at all (§3.1). */
export function bearerChallenge(realm: string, error?: string, description?: string, scope?: string): Record<string, string> {
  let value = `Bearer realm="${quoted(realm)}"`;
  if (error) value += `, error="${error}"`;
  if (error && description) value += `, error_description="${quoted(description)}"`;
  if (scope) value += `, scope="${quoted(scope)}"`;
  return { "www-authenticate": value };
}

/** 401 with the challenge naming why. */
export function invalidToken(realm: string, description: string): OAuthError {
  return new OAuthError("invalid_token", description, { status: 401, headers: bearerChallenge(realm, "invalid_token", description) });
}

/** 401 with the bare challenge: no token was presented (§3.1). */
export function tokenRequired(realm: string, description: string): OAuthError {
  return new OAuthError("invalid_token", description, { status: 401, headers: bearerChallenge(realm) });
}

export function bearerInvalidRequest(realm: string, description: string): OAuthError {
  return new OAuthError("invalid_request", description, { status: 400, headers: bearerChallenge(realm, "invalid_request", description) });
}

export function insufficientScope(realm: string, description: string, scope: string): OAuthError {
  return new OAuthError("insufficient_scope", description, { status: 403, headers: bearerChallenge(realm, "insufficient_scope", description, scope) });
}

/** §2.1 b64token. */
const BEARER = /^Bearer +([A-Za-z0-9\-._~+/]+=*) *$/i;

/**
 * The token an `Authorization` header carries: null when there is none or it uses another scheme; a Bearer header
 * that is malformed is invalid_token.
 */
export function bearerTokenOf(header: string | null, realm: string): string | null {
  if (header === null) return null;
  const match = BEARER.exec(header.trim());
  if (match) return match[1]!;
  if (/^Bearer(\s|$)/i.test(header.trim())) throw invalidToken(realm, "malformed Bearer credentials");
  return null;
}

/** RFC 6750 §2: the token from the header or the form body (§2.2), never both. */
export function presentedToken(fromHeader: string | null, fromBody: string | null, realm: string): string | null {
  if (fromHeader !== null && fromBody !== null) throw bearerInvalidRequest(realm, "the access token was sent in more than one way");
  return fromHeader ?? fromBody;
}
