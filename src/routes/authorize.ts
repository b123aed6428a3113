import { issuerOf, loadConfig } from "../config";
import { authorizationParties } from "../db/token-parties";
import type { Env } from "../env";
import { requestForm, type RequestForm } from "../oauth/authorize/check-request-object";
import { UntrustedRequestError, responseTarget, validateAuthorizationRequest } from "../oauth/authorize/request";
import { OAuthError } from "../oauth/errors";
import { invalidRequestObject, unverifiedRequestParams } from "../oauth/request-object";
import { answeringClient, continueAuthorization } from "./support/authorization-flow";
import { currentSession, sessionCookieUserId } from "./support/browser-session";
import { pendingAuthorization, takePushedRequest, verifiedRequestObject } from "./support/authorization-request";
import { frontChannel } from "./support/errors";
import { clientOfPending, loadInteraction } from "./support/interactions";
import { readParams } from "./support/params";
import { clientAddress, enforceRateLimit } from "./support/rate-limit";

/**
 * GET and POST /authorize (RFC 6749 §4.1, OIDC Core §3.1.2), and /authorize/resume, where sign-in returns to.
 *
 * A request comes in one of three forms (oauth/authorize/check-request-object.ts): plain parameters; a pushed
 * request's `request_uri` (RFC 9126 §4), whose parameters alone count — taken once, by the client that pushed it (C9),
 * in the same round trip as the client lookup; or a request object in `request` (RFC 9101), whose parameters alone
 * count and whose refusal goes to the redirect URI it names, in its response mode, with its state, read before its
 * signature is checked (OIDC Core §3.1.2.6). Then the one validator of authorize/request.ts, as at /par.
 */

export function authorize(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  return frontChannel(request, env, async (page) => {
    const config = loadConfig(env);
    const limited = enforceRateLimit(env, `authorize:ip:${clientAddress(env, request)}`, config.rateLimitAuthorize);
    limited.catch(() => undefined); // awaited below; a request that fails first must not leave it unhandled
    const issuer = issuerOf(env, request);
    // Until the client and redirect URI check out, every problem is a page (OIDC Core §3.1.2.6).
    const params = await readParams(request, "either").catch((error: unknown) => {
      throw error instanceof OAuthError ? new UntrustedRequestError(error.code, error.description, { status: error.status }) : error;
    });
    page.use(params.ui_locales); // an error page for this request speaks the user's language too
    let form: RequestForm = { form: "plain" };
    let formError: OAuthError | null = null;
    try {
      form = requestForm(params, "authorize");
    } catch (error) {
      if (!(error instanceof OAuthError)) throw error;
      formError = error; // reported at the redirect URI the outer parameters name, if they name a registered one
    }
    const clientId = params.client_id;
    // Side by side: the rate limit, and one D1 batch of the client, the user the session cookie names and the consent
    // that user gave this client; then the session object checks the cookie, if the user is there. A pushed request is
    // taken (a write) only once the rate limit let the request in. What a refusal makes unnecessary is a read wasted,
    // never a write.
    const cookieUser = sessionCookieUserId(env, request);
    const parties = authorizationParties(env.DB, { clientId: clientId ?? null, userId: cookieUser });
    const namedUser = parties.then((p) => p.user);
    const session = currentSession(env, request, namedUser);
    const rememberedScopes = cookieUser !== null && clientId !== undefined ? { userId: cookieUser, scopes: parties.then((p) => p.grantedScopes) } : undefined;
    // Not awaited elsewhere when the request ends early: keep their rejections from going unhandled.
    namedUser.catch(() => undefined);
    session.catch(() => undefined);
    rememberedScopes?.scopes.catch(() => undefined);
    const [, client, pushed] = await Promise.all([
      limited,
      parties.then((p) => p.client),
      form.form === "pushed" && clientId !== undefined ? limited.then(() => takePushedRequest(env, form.requestUri, clientId)) : null,
    ]);
    // Where an error may go: the pushed request's redirect URI; the request object's, read from its payload before
    // anything about it is checked; otherwise (no object, or one that names no redirect URI) the parameters' own.
    const inner = form.form === "object" ? unverifiedRequestParams(form.jwt) : null;
    const innerTarget = inner !== null && inner.redirect_uri !== undefined;
    const targetParams = pushed ?? (innerTarget ? { ...inner, client_id: clientId! } : params);
    const target = responseTarget(targetParams, client);
    return answeringClient(issuer, target, async () => {
      if (formError !== null) throw formError;
      let requestParams = targetParams;
      if (form.form === "object") {
        requestParams = await verifiedRequestObject(env, issuer, client!, form.jwt, `${issuer}/authorize`);
        // RFC 9101 §5: only the object's parameters count, so it must name the redirect URI itself.
        if (!innerTarget) throw invalidRequestObject("the request object must hold redirect_uri");
      }
      const validated = validateAuthorizationRequest(requestParams, client!, target, {
        pushed: pushed !== null,
        serverRequiresPushed: config.requirePushedAuthorizationRequests,
        proofJkt: null,
      });
      const pending = await pendingAuthorization(env, issuer, client!, validated);
      return continueAuthorization(env, ctx, request, client!, pending, null, { consentGiven: false, prefetched: { session, ...(rememberedScopes ? { rememberedScopes } : {}) } });
    });
  });
}

/** GET /authorize/resume?interaction=ID: decides again with the new session. */
export function resumeAuthorization(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  return frontChannel(request, env, async (page) => {
    const id = new URL(request.url).searchParams.get("interaction");
    const pending = await loadInteraction(env, id);
    page.use(pending.uiLocales);
    const client = await clientOfPending(env, pending);
    return answeringClient(issuerOf(env, request), pending, () => continueAuthorization(env, ctx, request, client, pending, id!, { consentGiven: false }));
  });
}
