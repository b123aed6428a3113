import { randomToken, timingSafeEqualStrings } from "../oauth/crypto";
import { OAuthError } from "../oauth/errors";

/**
 * Cookies of the OP. On https they are `__Host-` prefixed and Secure (no Domain, Path=/); on plain http
 * (local development) the prefix is impossible, so the plain name is used.
 */

export function parseCookies(request: Request): Map<string, string> {
  const out = new Map<string, string>();
  const header = request.headers.get("cookie");
  if (!header || header.length > 8192) return out;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (!out.has(name)) out.set(name, value);
  }
  return out;
}

function isSecure(issuer: string): boolean {
  return issuer.startsWith("https://");
}

export function cookieName(base: string, issuer: string): string {
  return isSecure(issuer) ? `__Host-${base}` : base;
}

export function readCookie(request: Request, base: string, issuer: string): string | null {
  return parseCookies(request).get(cookieName(base, issuer)) ?? null;
}

export function setCookie(base: string, value: string, issuer: string, maxAgeSeconds: number | null): string {
  const parts = [`${cookieName(base, issuer)}=${value}`, "Path=/", "HttpOnly", "SameSite=Lax"];
  if (isSecure(issuer)) parts.push("Secure");
  if (maxAgeSeconds !== null) parts.push(`Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`);
  return parts.join("; ");
}

export function clearCookie(base: string, issuer: string): string {
  return setCookie(base, "", issuer, 0);
}

export const SESSION_COOKIE = "oidc_session";
const CSRF_COOKIE = "oidc_csrf";
const CSRF_FORMAT = /^[A-Za-z0-9_-]{43}$/;

/**
 * CSRF protection for every form: a double-submit token. The page gets the token from the cookie (or a new one,
 * whose Set-Cookie the caller must send); the POST must carry the same value in `csrf_token`.
 */
export function csrfTokenFor(request: Request, issuer: string): { token: string; setCookie: string | null } {
  const existing = readCookie(request, CSRF_COOKIE, issuer);
  if (existing && CSRF_FORMAT.test(existing)) return { token: existing, setCookie: null };
  const token = randomToken(32);
  return { token, setCookie: setCookie(CSRF_COOKIE, token, issuer, null) };
}

export async function verifyCsrf(request: Request, issuer: string, submitted: string | undefined): Promise<void> {
  const cookie = readCookie(request, CSRF_COOKIE, issuer);
  if (!cookie || !submitted || !CSRF_FORMAT.test(cookie) || !(await timingSafeEqualStrings(cookie, submitted))) {
    throw new OAuthError("invalid_request", "the form has expired or was not sent by this site; go back and try again", { status: 403 });
  }
}
