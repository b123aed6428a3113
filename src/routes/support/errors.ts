import { EmailDeliveryError } from "../../email";
import { errorText, log } from "../../lib/log";
import { OAuthError } from "../../oauth/errors";
import { errorPage } from "../../ui/error-page";
import { htmlResponse, oauthErrorResponse } from "./respond";

/**
 * The one place errors become responses. A browser gets an HTML page, an API caller JSON (RFC 6749 §5.2); nothing
 * that is not an OAuthError ever shows its detail — that goes to the log as its first line only.
 */

export type Audience = "browser" | "api";

/** A top-level navigation (an address typed, a link, a form): certainly a person looking at the answer. */
export function isNavigation(request: Request): boolean {
  return request.headers.get("sec-fetch-mode") === "navigate";
}

/** A navigation or anything that asks for HTML is a browser; fetch() and API clients are not. */
export function audienceOf(request: Request): Audience {
  if (isNavigation(request)) return "browser";
  return (request.headers.get("accept") ?? "").includes("text/html") ? "browser" : "api";
}

function pageTitle(status: number): string {
  if (status === 429) return "Too many attempts";
  if (status === 403) return "Please try again";
  if (status === 404) return "Page not found";
  if (status >= 500) return "Something went wrong";
  return "This request cannot be completed";
}

export function renderError(error: unknown, audience: Audience = "api"): Response {
  if (error instanceof OAuthError) {
    if (audience === "api") return oauthErrorResponse(error);
    // A page has no WWW-Authenticate challenge to go with a 401.
    const status = error.status === 401 ? 400 : error.status;
    const { "www-authenticate": _challenge, ...headers } = error.headers;
    return htmlResponse(errorPage(pageTitle(status), error.description ?? "", error.code), { status, headers });
  }
  if (error instanceof EmailDeliveryError) {
    log("error", "email_delivery_failed", { transport: error.transport, error: errorText(error) });
    const unavailable = new OAuthError("temporarily_unavailable", "Sending the sign-in email failed. Try again in a moment.", { headers: { "retry-after": "30" } });
    if (audience === "api") return oauthErrorResponse(unavailable);
    return htmlResponse(errorPage("We could not send the email", unavailable.description!), { status: 503, headers: unavailable.headers });
  }
  log("error", "unhandled_error", { error: errorText(error) });
  if (audience === "api") return oauthErrorResponse(new OAuthError("server_error", "The server could not complete the request"));
  return htmlResponse(errorPage("Something went wrong", "The server could not complete the request. Try again in a moment."), { status: 500 });
}

/** The error wrapper of every browser-facing endpoint (authorize, sign-in, consent, logout): whatever fails is a page. */
export async function frontChannel(run: () => Promise<Response>): Promise<Response> {
  try {
    return await run();
  } catch (error) {
    return renderError(error, "browser");
  }
}

/** No route here: a page for a browser, JSON for anything else. */
export function notFound(request: Request): Response {
  return renderError(new OAuthError("not_found", "There is nothing at this address."), audienceOf(request));
}

/** Any other method on a back-channel endpoint (RFC 9110 §15.5.6). */
export function methodNotAllowed(allow: string): never {
  throw new OAuthError("invalid_request", `use ${allow}`, { status: 405, headers: { allow } });
}
