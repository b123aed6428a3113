import { EmailDeliveryError } from "../email";
import { OAuthError } from "../oauth/errors";
import { errorPage } from "../ui/pages";
import { errorText, log } from "../lib/log";
import { htmlResponse } from "./respond";

/**
 * The one error wrapper of every browser-facing endpoint (authorize, sign-in, consent, logout): whatever fails, the
 * browser gets an HTML page — never JSON, never a stack trace. Back-channel endpoints use the router's renderError.
 */
export async function frontChannel(run: () => Promise<Response>): Promise<Response> {
  try {
    return await run();
  } catch (error) {
    return errorPageFor(error);
  }
}

export function errorPageFor(error: unknown): Response {
  if (error instanceof OAuthError) {
    // A page has no WWW-Authenticate challenge to go with a 401.
    const status = error.status === 401 ? 400 : error.status;
    const title =
      status === 429 ? "Too many attempts" : status === 403 ? "Please try again" : status >= 500 ? "Something went wrong" : "This request cannot be completed";
    return htmlResponse(errorPage(title, error.description ?? "", error.code), { status, headers: error.headers });
  }
  if (error instanceof EmailDeliveryError) {
    log("error", "email_delivery_failed", { transport: error.transport, error: errorText(error) });
    return htmlResponse(errorPage("We could not send the email", "Sending the sign-in email failed. Try again in a moment."), { status: 503, headers: { "retry-after": "30" } });
  }
  log("error", "unhandled_error", { error: errorText(error) });
  return htmlResponse(errorPage("Something went wrong", "The server could not complete the request. Try again in a moment."), { status: 500 });
}
