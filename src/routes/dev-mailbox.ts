import { isLocalIssuer, issuerOf, loadConfig } from "../config";
import { devMessagesTo } from "../db/dev-mailbox";
import { normalizeEmail } from "../db/users";
import type { Env } from "../env";
import { OAuthError } from "../oauth/errors";
import { mailboxPage } from "../ui/mailbox";
import { audienceOf, notFound, renderError } from "./support/errors";
import { viewFor } from "./support/page-view";
import { htmlResponse, jsonResponse } from "./support/respond";

/**
 * GET /dev/mailbox?to=ADDRESS: the messages the `dev` email transport stored for an address, newest first — as JSON
 * `[{to, from, subject, text, html, link, sentAt}]` for scripts and tests, and as a page with clickable links for a browser
 * (without `to`, a form that asks for the address). It exists only with the `dev` transport on a loopback issuer
 * (local development and tests): it is unauthenticated, so anywhere else it would hand anyone's sign-in link to anyone.
 * Otherwise the route does not exist (the same 404 as any unknown path).
 */
export async function devMailbox(request: Request, env: Env): Promise<Response> {
  if (loadConfig(env).emailTransport !== "dev" || !isLocalIssuer(issuerOf(env, request))) return notFound(request, env);
  const audience = audienceOf(request);
  const view = viewFor(env, request);
  const raw = new URL(request.url).searchParams.get("to");
  const to = raw === null || raw.trim() === "" ? null : raw.trim();
  if (to === null && audience === "browser") return htmlResponse(mailboxPage(view, null, []));
  if (to === null || raw!.length > 320) return renderError(new OAuthError("invalid_request", "to: an email address is required"), audience, view);
  const messages = await devMessagesTo(env.DB, normalizeEmail(to));
  return audience === "browser" ? htmlResponse(mailboxPage(view, to, messages)) : jsonResponse(messages);
}
