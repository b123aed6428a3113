import { isLocalIssuer, issuerOf, loadConfig } from "../config";
import { devMessagesTo } from "../db/dev-mailbox";
import { normalizeEmail } from "../db/users";
import type { Env } from "../env";
import { OAuthError } from "../oauth/errors";
import { notFound } from "./support/errors";
import { jsonResponse, oauthErrorResponse } from "./support/respond";

/**
 * GET /dev/mailbox?to=ADDRESS: the messages the `dev` email transport stored for an address, newest first, as JSON
 * `[{to, subject, text, link, sentAt}]`. It exists only with the `dev` transport on a loopback issuer (local
 * development and tests): it is unauthenticated, so anywhere else it would hand anyone's sign-in link to anyone.
 * Otherwise the route does not exist (the same 404 as any unknown path).
 */
export async function devMailbox(request: Request, env: Env): Promise<Response> {
  if (loadConfig(env).emailTransport !== "dev" || !isLocalIssuer(issuerOf(env, request))) return notFound(request);
  const to = new URL(request.url).searchParams.get("to");
  if (to === null || to.trim() === "" || to.length > 320) return oauthErrorResponse(new OAuthError("invalid_request", "to: an email address is required"));
  return jsonResponse(await devMessagesTo(env.DB, normalizeEmail(to)));
}
