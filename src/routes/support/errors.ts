import { EmailDeliveryError } from "../../email";
import type { Env } from "../../env";
import { errorText, log } from "../../lib/log";
import { UntrustedRequestError } from "../../oauth/authorize/request";
import { OAuthError } from "../../oauth/errors";
import { errorPage, type ErrorPageInput } from "../../ui/error-page";
import { translator, type MessageKey } from "../../ui/i18n";
import { en } from "../../ui/i18n/en";
import type { View } from "../../ui/layout";
import { PageContext, viewFor } from "./page-view";
import { htmlResponse, oauthErrorResponse } from "./respond";

/**
 * The one place errors become responses. A browser gets an HTML page in its language — a title that says what
 * happened, the next step, and the OAuth error code under "Technical details" — an API caller JSON (RFC 6749 §5.2,
 * English descriptions); nothing that is not an OAuthError ever shows its detail — that goes to the log as its first
 * line only.
 */

export type Audience = "browser" | "api";

/** The error pages of the catalogues: `problem.NAME.title` and `problem.NAME.message`. */
export type ProblemName = MessageKey extends infer K ? (K extends `problem.${infer N}.title` ? N : never) : never;

/**
 * A problem shown to the user as a page, never sent to the client (OIDC Core §3.1.2.6): which page of the catalogue,
 * and the next step. Its OAuth description (logs, and the JSON of an API caller) is the English message.
 */
export class PageError extends UntrustedRequestError {
  constructor(
    readonly problem: ProblemName,
    status = 400,
    readonly action: { href: string; label: MessageKey } | null = null,
  ) {
    super("invalid_request", en[`problem.${problem}.message` as MessageKey], { status });
  }
}

/** A top-level navigation (an address typed, a link, a form): certainly a person looking at the answer. */
export function isNavigation(request: Request): boolean {
  return request.headers.get("sec-fetch-mode") === "navigate";
}

/** A navigation or anything that asks for HTML is a browser; fetch() and API clients are not. */
export function audienceOf(request: Request): Audience {
  if (isNavigation(request)) return "browser";
  return (request.headers.get("accept") ?? "").includes("text/html") ? "browser" : "api";
}

/** The page for an OAuth error: by its kind and status, never with client_id jargon as the headline. */
function pageFor(view: View, error: OAuthError, status: number): ErrorPageInput {
  const { t } = view;
  const page = (name: ProblemName): Pick<ErrorPageInput, "title" | "message"> => ({
    title: t.text(`problem.${name}.title` as MessageKey),
    message: t.text(`problem.${name}.message` as MessageKey),
  });
  const details = { code: error.code, description: error.description ?? null };
  if (error instanceof PageError) {
    return { ...page(error.problem), action: error.action && { href: error.action.href, label: t.text(error.action.label) } };
  }
  if (error instanceof UntrustedRequestError && status < 500 && status !== 429) {
    // The request's client or redirect URI did not check out (OIDC Core §3.1.2.6): there is nobody to send it back to.
    const app = error.clientName;
    return { title: t.text("problem.invalidApp.title"), message: app === null ? t.text("problem.invalidApp.message") : t.text("problem.invalidNamedApp.message", { app }), details };
  }
  if (status === 429) return { ...page("tooMany"), details };
  if (status === 403) return { ...page("formExpired"), details };
  if (status === 404) return page("notFound");
  if (status >= 500) return { ...page("server"), details };
  return { ...page("bad"), details };
}

/** English and no brand: for the rare page rendered before any route (the router's own errors without settings). */
const PLAIN_VIEW: View = { t: translator("en"), brand: { name: "", logoUrl: null, color: null, support: null } };

export function renderError(error: unknown, audience: Audience = "api", view: View = PLAIN_VIEW): Response {
  if (error instanceof OAuthError) {
    if (audience === "api") return oauthErrorResponse(error);
    // A page has no WWW-Authenticate challenge to go with a 401.
    const status = error.status === 401 ? 400 : error.status;
    const { "www-authenticate": _challenge, ...headers } = error.headers;
    return htmlResponse(errorPage(view, pageFor(view, error, status)), { status, headers });
  }
  if (error instanceof EmailDeliveryError) {
    log("error", "email_delivery_failed", { transport: error.transport, error: errorText(error) });
    const unavailable = new OAuthError("temporarily_unavailable", en["problem.emailFailed.message"], { headers: { "retry-after": "30" } });
    if (audience === "api") return oauthErrorResponse(unavailable);
    const page = errorPage(view, { title: view.t.text("problem.emailFailed.title"), message: view.t.text("problem.emailFailed.message") });
    return htmlResponse(page, { status: 503, headers: unavailable.headers });
  }
  log("error", "unhandled_error", { error: errorText(error) });
  if (audience === "api") return oauthErrorResponse(new OAuthError("server_error", "The server could not complete the request"));
  return htmlResponse(errorPage(view, { title: view.t.text("problem.server.title"), message: view.t.text("problem.server.message") }), { status: 500 });
}

/**
 * The error wrapper of every browser-facing endpoint (authorize, sign-in, consent, logout, account): whatever fails
 * is a page, written with the route's page context (its language and the brand).
 */
export async function frontChannel(request: Request, env: Env, run: (page: PageContext) => Promise<Response>): Promise<Response> {
  const page = new PageContext(env, request);
  try {
    return await run(page);
  } catch (error) {
    return renderError(error, "browser", page.view);
  }
}

/** No route here: a page for a browser, JSON for anything else. */
export function notFound(request: Request, env?: Env): Response {
  return renderError(new OAuthError("not_found", "There is nothing at this address."), audienceOf(request), env === undefined ? undefined : viewFor(env, request));
}

/** Any other method on a back-channel endpoint (RFC 9110 §15.5.6). */
export function methodNotAllowed(allow: string): never {
  throw new OAuthError("invalid_request", `use ${allow}`, { status: 405, headers: { allow } });
}
