import type { SafeHtml } from "../../ui/html";
import { FORM_POST_SCRIPT_HASH, formPostPage } from "../../ui/form-post";
import type { Translator } from "../../ui/i18n";
import { Page } from "../../ui/layout";
import type { OAuthError } from "../../oauth/errors";

/** Where responses are formatted: JSON, HTML pages, redirects, authorization responses. Errors: errors.ts. */

export const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" } as const;

/** Security headers for every HTML page the OP serves (login, consent, logout, errors, account). */
const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
} as const;

/**
 * The CSP of a page: scripts only from this origin (/passkeys.js, which fetches ceremony options: `connect-src
 * 'self'`), and images from this origin and exactly the origins of the logos the page shows (the operator's, the
 * app's: `Page.imageOrigins`, https only by the settings' and client metadata's rules).
 */
export function contentSecurityPolicy(page: SafeHtml, options: { formAction?: string } = {}): string {
  const images = page instanceof Page ? page.imageOrigins.map((origin) => ` ${origin}`).join("") : "";
  const formAction = options.formAction ?? "'self' http: https:";
  return `default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; connect-src 'self'; img-src 'self' data:${images}; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`;
}

export function jsonResponse(body: unknown, init: { status?: number; headers?: Record<string, string> } = {}): Response {
  return new Response(JSON.stringify(body), {
    status: init.status ?? 200,
    headers: { "content-type": "application/json", ...NO_STORE, ...init.headers },
  });
}

/** Discovery and JWKS: public, cacheable for `maxAge` seconds, and readable from browser apps (SPAs fetch them cross-origin). */
export function publicDocument(body: unknown, maxAge: number): Response {
  return new Response(JSON.stringify(body), {
    headers: {
      "content-type": "application/json",
      "access-control-allow-origin": "*",
      "x-content-type-options": "nosniff",
      "cache-control": `public, max-age=${maxAge}`,
    },
  });
}

/** RFC 6749 §5.2: `{"error", "error_description"}`, no-store, with the error's status and headers. */
export function oauthErrorResponse(error: OAuthError): Response {
  const body: Record<string, string> = { error: error.code };
  if (error.description) body.error_description = error.description;
  return jsonResponse(body, { status: error.status, headers: error.headers });
}

/** A page: only markup made by the `html` template reaches a browser. */
export function htmlResponse(page: SafeHtml, init: { status?: number; headers?: Record<string, string> } = {}): Response {
  return new Response(page.value, {
    status: init.status ?? 200,
    headers: { ...PAGE_HEADERS, "content-security-policy": contentSecurityPolicy(page), ...init.headers },
  });
}

/** A file of ours that never changes at its URL (an icon, a versioned script): public, cacheable for `maxAge` seconds. */
export function staticResponse(body: BodyInit, contentType: string, maxAge: number): Response {
  return new Response(body, {
    headers: { "content-type": contentType, "cache-control": `public, max-age=${maxAge}`, "x-content-type-options": "nosniff" },
  });
}

export function redirectResponse(location: string, headers: Record<string, string> = {}): Response {
  return new Response(null, { status: 303, headers: { location, ...NO_STORE, ...headers } });
}

/** RFC 6749 §4.1.2 and OAuth 2.0 Multiple Response Type Encoding Practices §2: where the authorization response goes. */
export type AuthorizationResponseMode = "query" | "fragment" | "form_post";

/**
 * An authorization response (success or error) to a redirect URI that the caller has checked is registered for the
 * client: `query` and `fragment` are 303 redirects; `form_post` is a page that posts the parameters by itself.
 */
export function authorizationResponse(redirectUri: string, mode: AuthorizationResponseMode, params: Record<string, string>, t?: Translator): Response {
  if (mode === "form_post") {
    return htmlResponse(formPostPage(redirectUri, params, t), {
      headers: {
        "content-security-policy": `default-src 'none'; script-src '${FORM_POST_SCRIPT_HASH}'; form-action http: https:; frame-ancestors 'none'; base-uri 'none'`,
      },
    });
  }
  const encoded = new URLSearchParams(params).toString();
  // RFC 6749 §3.1.2: a registered URI may carry a query, which is kept; it never carries a fragment.
  const hashAt = redirectUri.indexOf("#");
  const base = hashAt === -1 ? redirectUri : redirectUri.slice(0, hashAt);
  const separator = !base.includes("?") ? "?" : base.endsWith("?") || base.endsWith("&") ? "" : "&";
  const location = mode === "fragment" ? `${base}#${encoded}` : `${base}${separator}${encoded}`;
  return redirectResponse(location);
}
