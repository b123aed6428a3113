import { issuerOf, loadConfig } from "../config";
import { getClient } from "../db/clients";
import { grantedScopes } from "../db/consents";
import type { Env } from "../env";
import { verifyWithPublishedKeys } from "../objects/key-cache";
import type { PendingAuthorization } from "../oauth/authorize/pending";
import { UntrustedRequestError, responseTarget, validateAuthorizationRequest } from "../oauth/authorize/request";
import { OAuthError, invalidRequest } from "../oauth/errors";
import { verifyIdTokenHint } from "../oauth/tokens";
import { answeringClient, continueAuthorization } from "./support/authorization-flow";
import { currentSession, sessionCookieUserId } from "./support/browser-session";
import { frontChannel } from "./support/errors";
import { clientOfPending, loadInteraction } from "./support/interactions";
import { readParams } from "./support/params";
import { clientAddress, enforceRateLimit } from "./support/rate-limit";

/** GET and POST /authorize (RFC 6749 §4.1, OIDC Core §3.1.2), and /authorize/resume, where sign-in returns to. */

export function authorize(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  return frontChannel(async () => {
    const config = loadConfig(env);
    const limited = enforceRateLimit(env, `authorize:ip:${clientAddress(env, request)}`, config.rateLimitAuthorize);
    limited.catch(() => undefined); // awaited below; a request that fails first must not leave it unhandled
    const issuer = issuerOf(env, request);
    // Until the client and redirect URI check out, every problem is a page (OIDC Core §3.1.2.6).
    const params = await readParams(request, "either").catch((error: unknown) => {
      throw error instanceof OAuthError ? new UntrustedRequestError(error.code, error.description, { status: error.status }) : error;
    });
    // Side by side, each one round trip: the rate limit, the client, the browser's session and the consent its user
    // gave this client. What a refusal makes unnecessary is a read wasted, never a write.
    const session = currentSession(env, request);
    const cookieUser = sessionCookieUserId(env, request);
    const rememberedScopes =
      cookieUser !== null && params.client_id !== undefined ? { userId: cookieUser, scopes: grantedScopes(env.DB, cookieUser, params.client_id) } : undefined;
    // Not awaited elsewhere when the request ends early: keep their rejections from going unhandled.
    session.catch(() => undefined);
    rememberedScopes?.scopes.catch(() => undefined);
    const [, client] = await Promise.all([limited, params.client_id === undefined ? null : getClient(env.DB, params.client_id)]);
    const target = responseTarget(params, client);
    return answeringClient(issuer, target, async () => {
      const { idTokenHint, ...rest } = validateAuthorizationRequest(params, client!, target);
      let idTokenHintSub: string | null = null;
      if (idTokenHint !== null) {
        // OIDC Core §3.1.2.1: an ID token we issued (expired is fine) to this client.
        const hint = await verifyIdTokenHint((jwt, opts) => verifyWithPublishedKeys(env, jwt, opts), issuer, idTokenHint);
        if (hint === null || !hint.aud.includes(client!.client_id)) throw invalidRequest("id_token_hint is not an ID token issued to this application");
        idTokenHintSub = hint.sub;
      }
      const pending: PendingAuthorization = { ...rest, idTokenHintSub, startedAt: Date.now() };
      return continueAuthorization(env, ctx, request, client!, pending, null, { consentGiven: false, prefetched: { session, ...(rememberedScopes ? { rememberedScopes } : {}) } });
    });
  });
}

/** GET /authorize/resume?interaction=ID: decides again with the new session. */
export function resumeAuthorization(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  return frontChannel(async () => {
    const id = new URL(request.url).searchParams.get("interaction");
    const pending = await loadInteraction(env, id);
    const client = await clientOfPending(env, pending);
    return answeringClient(issuerOf(env, request), pending, () => continueAuthorization(env, ctx, request, client, pending, id!, { consentGiven: false }));
  });
}
