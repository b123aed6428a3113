import { issuerOf } from "../config";
import { clientSummaries, getClient, type StoredClient } from "../db/clients";
import type { Env } from "../env";
import { verifyWithPublishedKeys } from "../objects/key-cache";
import { userSessionsFor } from "../objects/locate";
import { invalidRequest } from "../oauth/errors";
import * as z from "zod/mini";
import { param, parseWith } from "../oauth/schema";
import { verifyIdTokenHint } from "../oauth/tokens";
import type { SafeHtml } from "../ui/html";
import { NO_APPS, logoutConfirmPage, notSignedInPage, signedOutEverywherePage, signedOutPage, stillSignedInPage, type SessionApps } from "../ui/logout";
import { currentSession, sessionCookie, type CurrentSession } from "./support/browser-session";
import { csrfTokenFor, isSameOriginPost, verifyFormPost } from "./support/cookies";
import { frontChannel } from "./support/errors";
import type { PageContext } from "./support/page-view";
import { readParams } from "./support/params";
import { htmlResponse, redirectResponse } from "./support/respond";
import { signOutEverywhere } from "./support/sign-out";


/**
 * OpenID Connect RP-Initiated Logout 1.0 at /logout (GET and POST, §2). A request tied to a valid ID token of the
 * signed-in user ends the session at once; any other request that would end a session asks the user first, and only
 * the confirmed, CSRF-checked POST to /logout/confirm ends it. The post-logout redirect goes only to a URI registered
 * for the client the request identifies (§3), with `state` echoed; otherwise the user gets a page, never a redirect.
 * The session cookie changes only when a session is ended that way (never on a request that was not confirmed); a
 * cross-site POST, which arrives without the SameSite=Lax cookie, is sent on as the same GET, where the cookie is seen.
 * Ending the session queues a Back-Channel Logout notice for every client it signed in to (UserSessions, C21), sent
 * after the answer, never before it; the pages name those apps. Grants outlive a plain logout (Back-Channel Logout
 * §2.7); the confirmation page also offers "sign out everywhere", which ends them too (C22).
 */

const LogoutRequest = z.object({
  id_token_hint: z.optional(param(16 * 1024)),
  client_id: z.optional(param(256)),
  post_logout_redirect_uri: z.optional(param(2048)),
  state: z.optional(param(1024)),
  // §2: the languages of the pages shown here (the logout pages speak the first the OP has).
  ui_locales: z.optional(param(256)),
  // Accepted and not used: the session is identified by its cookie.
  logout_hint: z.optional(param(1024)),
});

const LogoutConfirmation = z.object({
  csrf_token: z.optional(param(64)),
  decision: z.enum(["yes", "no", "everywhere"]),
  client_id: z.optional(param(256)),
  post_logout_redirect_uri: z.optional(param(2048)),
  state: z.optional(param(1024)),
  ui_locales: z.optional(param(256)),
});

interface LogoutTarget {
  client: StoredClient | null;
  /** A post-logout redirect URI registered for `client`, or null (then the "signed out" page). */
  redirectUri: string | null;
  state: string | null;
  /** The valid ID token hint's subject, when one was sent. */
  hintSub: string | null;
}

/**
 * §2–§3: the client is named by `client_id` and/or the hint's audience (which must agree); a post-logout redirect
 * URI must be one registered for that client, and without an identified client none is accepted.
 */
async function resolveTarget(
  env: Env,
  request: Request,
  params: { id_token_hint?: string; client_id?: string; post_logout_redirect_uri?: string; state?: string },
): Promise<LogoutTarget> {
  const issuer = issuerOf(env, request);
  let hint: Awaited<ReturnType<typeof verifyIdTokenHint>> = null;
  if (params.id_token_hint !== undefined) {
    hint = await verifyIdTokenHint((jwt, options) => verifyWithPublishedKeys(env, jwt, options), issuer, params.id_token_hint);
    if (hint === null) throw invalidRequest("the id_token_hint is not an ID token issued by this provider");
  }
  let clientId = params.client_id ?? null;
  if (hint !== null) {
    if (clientId !== null && !hint.aud.includes(clientId)) throw invalidRequest("client_id does not match the audience of the id_token_hint");
    if (clientId === null && hint.aud.length === 1) clientId = hint.aud[0]!;
  }
  const client = clientId === null ? null : await getClient(env.DB, clientId);
  if (params.client_id !== undefined && client === null) throw invalidRequest("the client_id is not a registered client");

  const redirectUri = params.post_logout_redirect_uri ?? null;
  if (redirectUri !== null) {
    if (client === null) throw invalidRequest("a post_logout_redirect_uri needs a client_id or an id_token_hint that identifies the client");
    // Exact string comparison with the registered values (§3), read from D1 on this request (C5).
    if (!client.post_logout_redirect_uris.includes(redirectUri)) {
      throw invalidRequest("the post_logout_redirect_uri is not registered for this client");
    }
  }
  return { client, redirectUri, state: params.state ?? null, hintSub: hint?.sub ?? null };
}

/** Ends the session (its logout notices are queued with it); returns the clients it had signed in to. */
async function endSession(env: Env, session: CurrentSession | null, reason: string): Promise<string[]> {
  if (session === null) return [];
  return (await userSessionsFor(env, session.userId)?.revokeSession(session.sid, reason))?.clients ?? [];
}

/** The apps of a session by name, split by whether they are told of the logout (one D1 query, none without clients). */
async function appsOf(env: Env, clientIds: string[]): Promise<SessionApps> {
  if (clientIds.length === 0) return NO_APPS;
  const clients = await clientSummaries(env.DB, clientIds);
  return { told: clients.filter((c) => c.backchannel_logout).map((c) => c.client_name), notTold: clients.filter((c) => !c.backchannel_logout).map((c) => c.client_name) };
}

/**
 * After logout: the registered redirect with `state` (§3), or `html` ("signed out" by default; "not signed in" when
 * there was no session to end). The session cookie is cleared only when `confirmed` — a session was ended on the
 * user's word or by a hint naming them — never on a request that merely arrived without it.
 */
function finish(env: Env, request: Request, page: PageContext, target: LogoutTarget, confirmed: boolean, html?: SafeHtml): Response {
  const headers: Record<string, string> = confirmed ? { "set-cookie": sessionCookie(env, request, null) } : {};
  if (target.redirectUri !== null) {
    // Registered URIs carry no fragment (client-metadata.ts), so a query parameter can be appended as is.
    const location =
      target.state === null ? target.redirectUri : `${target.redirectUri}${target.redirectUri.includes("?") ? "&" : "?"}state=${encodeURIComponent(target.state)}`;
    return redirectResponse(location, headers);
  }
  return htmlResponse(html ?? signedOutPage(page.view), { headers });
}

function queryOf(params: Record<string, string | undefined>): URLSearchParams {
  return new URLSearchParams(Object.entries(params).filter((entry): entry is [string, string] => entry[1] !== undefined));
}

/** GET and POST /logout (RP-Initiated Logout §2). */
export function logout(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async (page) => {
    const params = parseWith(LogoutRequest, await readParams(request, "either"));
    page.use(params.ui_locales);
    const target = await resolveTarget(env, request, params);
    const session = await currentSession(env, request);
    if (session === null && request.method === "POST" && !isSameOriginPost(request, issuerOf(env, request))) {
      // A cross-site POST carries no SameSite=Lax cookie, so "no session" is unknown here. The same request as a GET is
      // a top-level navigation, which does carry it: there the session is seen and the user asked (or the hint honoured).
      return redirectResponse(`/logout?${queryOf(params)}`);
    }
    if (session === null) return finish(env, request, page, target, false, notSignedInPage(page.view)); // nothing to end, nothing to ask
    // Tied to a valid ID token of the signed-in user: no question to ask.
    if (target.hintSub !== null && target.hintSub === session.userId) {
      const clients = await endSession(env, session, "rp_initiated_logout");
      return finish(env, request, page, target, true, target.redirectUri === null ? signedOutPage(page.view, await appsOf(env, clients)) : undefined);
    }
    const csrf = csrfTokenFor(request, issuerOf(env, request));
    const html = logoutConfirmPage(page.view, {
      clientName: target.client?.client_name ?? null,
      csrfToken: csrf.token,
      clientId: target.client?.client_id ?? null,
      postLogoutRedirectUri: target.redirectUri,
      state: target.state,
      uiLocales: params.ui_locales ?? null,
      apps: await appsOf(env, session.session.clients),
    });
    return htmlResponse(html, { headers: csrf.setCookie === null ? {} : { "set-cookie": csrf.setCookie } });
  });
}

/** POST /logout/confirm: the user's answer to "Sign out?". Only "yes" with a valid CSRF token ends the session. */
export function logoutConfirm(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async (page) => {
    const params = parseWith(LogoutConfirmation, await readParams(request, "body"));
    page.use(params.ui_locales);
    await verifyFormPost(request, issuerOf(env, request), params.csrf_token);
    // The form's values are checked again: a hidden field is as untrusted as a query parameter.
    const target = await resolveTarget(env, request, params);
    if (params.decision === "no") return htmlResponse(stillSignedInPage(page.view));
    const session = await currentSession(env, request);
    // "Signed out" only when a session was ended; a confirmation that finds none says so.
    if (session === null) return finish(env, request, page, target, true, notSignedInPage(page.view));
    if (params.decision === "everywhere") {
      // The user's own "sign out everywhere": every session and every grant (C22), each app told (C21).
      const ended = (await signOutEverywhere(env, session.userId, { actor: session.userId, auditType: "user.grants_ended", reason: "user_signed_out_everywhere" })).sessions;
      return finish(env, request, page, target, true, signedOutEverywherePage(page.view, ended));
    }
    const clients = await endSession(env, session, "rp_initiated_logout");
    return finish(env, request, page, target, true, target.redirectUri === null ? signedOutPage(page.view, await appsOf(env, clients)) : undefined);
  });
}
