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
  console.error(JSON.stringify({ level: "error", event: "unhandled_error", error: error instanceof Error ? `${error.name}: ${error.message}`.slice(0, 300) : "unknown" }));
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
