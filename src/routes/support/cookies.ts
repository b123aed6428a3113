import { randomToken, timingSafeEqualStrings } from "../../lib/crypto";
import { OAuthError } from "../../oauth/errors";

/**
 * Cookies of the OP, and the checks every form POST passes. On https they are `__Host-` prefixed: Secure, Path=/, no
 * Domain (RFC 6265bis §4.1.3.2) — `serializeCookie` refuses to write one that breaks those rules. On plain http (local
 * development) the prefix is impossible, so the plain name is used.
 */

export interface CookieOptions {
  path: string;
  secure: boolean;
  httpOnly: boolean;
  sameSite: "Lax" | "Strict" | "None";
  domain?: string;
  /** Seconds; null: a session cookie. */
  maxAge: number | null;
}

const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const COOKIE_VALUE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;

/** One Set-Cookie value. Throws on a name or value that is not a cookie token, and on a `__Host-` / `__Secure-` cookie that breaks its prefix's rules. */
export function serializeCookie(name: string, value: string, options: CookieOptions): string {
  if (!COOKIE_NAME.test(name)) throw new Error(`cookie name ${name} is not a token`);
  if (!COOKIE_VALUE.test(value)) throw new Error(`cookie ${name}: the value has characters a cookie cannot carry`);
  if (name.startsWith("__Secure-") && !options.secure) throw new Error(`${name} must be Secure`);
  if (name.startsWith("__Host-") && (!options.secure || options.path !== "/" || options.domain !== undefined)) {
    throw new Error(`${name} must be Secure, Path=/ and have no Domain`);
  }
  const parts = [`${name}=${value}`, `Path=${options.path}`];
  if (options.domain !== undefined) parts.push(`Domain=${options.domain}`);
  if (options.httpOnly) parts.push("HttpOnly");
  parts.push(`SameSite=${options.sameSite}`);
  if (options.secure) parts.push("Secure");
  if (options.maxAge !== null) parts.push(`Max-Age=${Math.max(0, Math.floor(options.maxAge))}`);
  return parts.join("; ");
}

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

/** An OP cookie: HttpOnly, SameSite=Lax, Path=/, and `__Host-` + Secure on an https issuer. */
export function setCookie(base: string, value: string, issuer: string, maxAgeSeconds: number | null): string {
  return serializeCookie(cookieName(base, issuer), value, { path: "/", secure: isSecure(issuer), httpOnly: true, sameSite: "Lax", maxAge: maxAgeSeconds });
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

function formExpired(): OAuthError {
  return new OAuthError("invalid_request", "the form has expired or was not sent by this site; go back and try again", { status: 403 });
}

/**
 * Whether a form POST came from one of our own pages, by what the browser says about where it was sent from. Fetch
 * Metadata (`Sec-Fetch-Site`) first: every current browser sends it. Otherwise the Origin header (RFC 6454 §7) — which
 * our pages' `Referrer-Policy: no-referrer` turns into "null" even for our own forms, so "null" proves nothing either
 * way. A client that sends neither (an old browser, a script) is left to the CSRF token alone.
 */
export function isSameOriginPost(request: Request, issuer: string): boolean {
  const site = request.headers.get("sec-fetch-site");
  if (site !== null) return site === "same-origin" || site === "none";
  const origin = request.headers.get("origin");
  return origin === null || origin === "null" || origin === new URL(issuer).origin;
}

/** Every form POST: sent from our own origin, carrying the CSRF token of this browser. */
export async function verifyFormPost(request: Request, issuer: string, submitted: string | undefined): Promise<void> {
  if (!isSameOriginPost(request, issuer)) throw formExpired();
  const cookie = readCookie(request, CSRF_COOKIE, issuer);
  if (!cookie || !submitted || !CSRF_FORMAT.test(cookie) || !(await timingSafeEqualStrings(cookie, submitted))) throw formExpired();
}
