import { errorText, log } from "../lib/log";
import { OAuthError } from "../oauth/errors";

/** Where responses are formatted: OAuth errors, JSON, HTML pages, redirects. Every OAuth error is rendered here. */

const NO_STORE = { "cache-control": "no-store", pragma: "no-cache" } as const;

/** Security headers for every HTML page the OP serves (login, consent, logout, errors). */
const PAGE_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; script-src 'self'; img-src 'self' data:; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
} as const;

export function jsonResponse(body: unknown, init: { status?: number; headers?: Record<string, string> } = {}): Response {
  return new Response(JSON.stringify(body), {
    status: init.status ?? 200,
    headers: { "content-type": "application/json", ...NO_STORE, ...init.headers },
  });
}

/** RFC 6749 §5.2: `{"error", "error_description"}`, no-store, with the error's status and headers. */
export function oauthErrorResponse(error: OAuthError): Response {
  const body: Record<string, string> = { error: error.code };
  if (error.description) body.error_description = error.description;
  return jsonResponse(body, { status: error.status, headers: error.headers });
}

/**
 * The catch-all of the router: an OAuthError is rendered as such; anything else becomes a generic server_error
 * with no detail in the response (the detail goes to the log, without request data).
 */
export function renderError(error: unknown): Response {
  if (error instanceof OAuthError) return oauthErrorResponse(error);
  log("error", "unhandled_error", { error: errorText(error) });
  return oauthErrorResponse(new OAuthError("server_error", "The server could not complete the request"));
}

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
}

export function htmlResponse(html: string, init: { status?: number; headers?: Record<string, string> } = {}): Response {
  return new Response(html, { status: init.status ?? 200, headers: { ...PAGE_HEADERS, ...init.headers } });
}

export function redirectResponse(location: string, headers: Record<string, string> = {}): Response {
  return new Response(null, { status: 303, headers: { location, ...NO_STORE, ...headers } });
}

/** RFC 6749 §4.1.2 and OAuth 2.0 Multiple Response Type Encoding Practices §2: where the authorization response goes. */
export type AuthorizationResponseMode = "query" | "fragment" | "form_post";

/** The one inline script of the form_post page, allowed by its hash and nothing else. */
const FORM_POST_SCRIPT = "document.forms[0].submit();";
/** base64(sha256(FORM_POST_SCRIPT)); tests check it against the script. */
export const FORM_POST_SCRIPT_HASH = "sha256-8lDeP0UDwCO6/RhblgeH/ctdBzjVpJxrXizsnIk3cEQ=";

/**
 * An authorization response (success or error) to a redirect URI that the caller has checked is registered for the
 * client: `query` and `fragment` are 303 redirects; `form_post` (OAuth 2.0 Form Post Response Mode) is a page that
 * posts the parameters to the redirect URI by itself. The parameters are encoded, never interpolated raw.
 */
export function authorizationResponse(redirectUri: string, mode: AuthorizationResponseMode, params: Record<string, string>): Response {
  if (mode === "form_post") {
    const fields = Object.entries(params)
      .map(([name, value]) => `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`)
      .join("\n");
    const html = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Submit this form</title></head>
<body>
<form method="post" action="${escapeHtml(redirectUri)}">
${fields}
<noscript><p>JavaScript is off: press the button to continue.</p><button type="submit">Continue</button></noscript>
</form>
<script>${FORM_POST_SCRIPT}</script>
</body></html>`;
    return htmlResponse(html, {
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
