import type { Env } from "../../env";
import { isNavigation, renderError } from "./errors";

/**
 * CORS for the back-channel endpoints that browser apps call directly (token, userinfo, revocation, introspection):
 * any origin, never with cookies — these endpoints authenticate with client credentials or bearer tokens only.
 * Errors get the headers too, so a browser app can read the OAuth error instead of an opaque network failure.
 */

const CORS_HEADERS = {
  "access-control-allow-origin": "*",
  "access-control-expose-headers": "WWW-Authenticate, Retry-After, DPoP-Nonce",
} as const;

type Handler = (request: Request, env: Env, ctx: ExecutionContext) => Promise<Response>;

export function withCors(handler: Handler): Handler {
  return async (request, env, ctx) => {
    let response: Response;
    try {
      response = await handler(request, env, ctx);
    } catch (error) {
      // JSON for every API caller, whatever it accepts (some HTTP libraries send Accept: text/html by default); a
      // page only when a person navigated here (the address bar, a link).
      response = renderError(error, isNavigation(request) ? "browser" : "api");
    }
    for (const [name, value] of Object.entries(CORS_HEADERS)) response.headers.set(name, value);
    return response;
  };
}

/** The preflight (Fetch standard §3.2.2): which methods and request headers the endpoint takes. */
export function preflight(methods: string): Response {
  return new Response(null, {
    status: 204,
    headers: {
      ...CORS_HEADERS,
      "access-control-allow-methods": methods,
      "access-control-allow-headers": "Authorization, Content-Type, DPoP",
      "access-control-max-age": "600",
    },
  });
}

/**
 * CORS with credentials, for the one endpoint a browser app calls with the OP's cookie (the one-time session token,
 * C8): the answer names exactly the one origin the endpoint let in — never `*`, which the Fetch standard refuses with
 * credentials — and says it varies by Origin.
 */
export function credentialedCorsHeaders(origin: string): Record<string, string> {
  return { "access-control-allow-origin": origin, "access-control-allow-credentials": "true", vary: "Origin" };
}

/** An origin as a browser sends it: `http(s)://host[:port]`, nothing else (not "null"). */
export function isWebOrigin(value: string | null): value is string {
  if (value === null || value.length > 512) return false;
  try {
    const url = new URL(value);
    return (url.protocol === "https:" || url.protocol === "http:") && url.origin === value;
  } catch {
    return false;
  }
}

/**
 * The preflight of a credentialed endpoint. The client is not known yet (it is in the body, which a preflight does not
 * carry), so any web origin may send the request; the request itself is refused unless its Origin is registered for
 * the client it names, before anything changes.
 */
export function credentialedPreflight(origin: string | null, methods: string): Response {
  const headers: Record<string, string> = isWebOrigin(origin)
    ? { ...credentialedCorsHeaders(origin), "access-control-allow-methods": methods, "access-control-allow-headers": "Content-Type", "access-control-max-age": "600" }
    : { vary: "Origin" };
  return new Response(null, { status: 204, headers });
}
