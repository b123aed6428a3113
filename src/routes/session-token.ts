import { issuerOf, loadConfig } from "../config";
import { getClient, type StoredClient } from "../db/clients";
import { getUser } from "../db/users";
import type { Env } from "../env";
import { challengeStoreFor, newChallengeId, userSessionsFor } from "../objects/locate";
import { clientAuthParams } from "../oauth/client-auth";
import { OAuthError, invalidGrant, invalidRequest } from "../oauth/errors";
import * as z from "zod/mini";
import { param, parseWith } from "../oauth/schema";
import { canRedeemSessionTokens, registeredOrigins, sessionTokenAnswer } from "../oauth/session-token";
import { currentSession, recordSessionClient, type CurrentSession } from "./support/browser-session";
import { authenticateClient } from "./support/client-authentication";
import { credentialedCorsHeaders, credentialedPreflight } from "./support/cors";
import { frontChannel, renderError } from "./support/errors";
import { readParams } from "./support/params";
import { authorizationResponse, jsonResponse } from "./support/respond";

/**
 * The one-time session token (C8), for apps whose browser blocks third-party cookies (Safari ITP): the app cannot
 * read the OP's session from its own pages, so the OP, reached first-party, hands the browser a token that the app's
 * backend redeems once, with client authentication, for the session's sub, sid, auth_time and amr.
 *
 * - `GET /session-token?client_id&redirect_uri&state` — a top-level navigation to the OP (the session cookie is
 *   first-party there): back to the client's registered `redirect_uri` with `session_token` (or `error=login_required`),
 *   `state` and `iss`, like an authorization response. Works across sites.
 * - `POST /session-token` (`client_id` in the form body) — a credentialed CORS request (`fetch(…, {credentials:
 *   "include"})`) from an origin of one of the client's registered redirect URIs: JSON. The cookie is SameSite=Lax,
 *   so browsers send it only from the same site (app.example.com ↔ id.example.com).
 * - `POST /session-token/redeem` (`session_token`, client authentication) — the app's backend: once, by the client the
 *   token was issued to (a wrong client is refused and uses nothing up), while the session lasts.
 * Flow, sequence and curl: docs/session-token.md.
 */

const PageRequest = z.object({
  client_id: param(256),
  redirect_uri: param(2048),
  state: z.optional(param(1024)),
});

const FetchRequest = z.object({ client_id: param(256) });

const Redemption = z.object({ session_token: param(512), ...clientAuthParams });

/** The token, bound to the client and the session; single-use in the challenge store (C11 machinery). */
async function issueSessionToken(env: Env, session: CurrentSession, client: StoredClient): Promise<{ token: string; expiresIn: number }> {
  const ttl = loadConfig(env).sessionTokenTtl;
  const token = newChallengeId(env);
  const { stored } = await challengeStoreFor(env, token)!.put(token, { kind: "session_token", userId: session.userId, clientId: client.client_id, data: { sid: session.sid } }, ttl);
  if (!stored) throw new Error("session token collision");
  return { token, expiresIn: ttl };
}

function unredeemable(): OAuthError {
  return new OAuthError("unauthorized_client", "a client without client authentication cannot redeem session tokens");
}

/** GET /session-token: a page of the OP in the signed-in browser, answering to the client's registered redirect URI. */
export function sessionTokenPage(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async () => {
    const params = parseWith(PageRequest, await readParams(request, "query"));
    const client = await getClient(env.DB, params.client_id);
    if (client === null) throw invalidRequest("the client_id is not a registered client");
    // Exact comparison with the registered values, read now (C5); never a redirect anywhere else.
    if (!client.redirect_uris.includes(params.redirect_uri)) throw invalidRequest("the redirect_uri is not registered for this client");
    const issuer = issuerOf(env, request);
    const answer = (fields: Record<string, string>) =>
      authorizationResponse(params.redirect_uri, "query", { ...fields, ...(params.state === undefined ? {} : { state: params.state }), iss: issuer });
    if (!canRedeemSessionTokens(client)) return answer({ error: "unauthorized_client", error_description: unredeemable().description! });
    const session = await currentSession(env, request);
    if (session === null) return answer({ error: "login_required" });
    const { token } = await issueSessionToken(env, session, client);
    return answer({ session_token: token });
  });
}

/** POST /session-token: a credentialed CORS request from an origin registered for the client. */
export async function sessionTokenFetch(request: Request, env: Env): Promise<Response> {
  const origin = request.headers.get("origin");
  // Set once the Origin is known to be the client's: only then may the browser let the page read the answer.
  let allowed: string | null = null;
  let response: Response;
  try {
    const params = parseWith(FetchRequest, await readParams(request, "body"));
    const client = await getClient(env.DB, params.client_id);
    if (client === null) throw invalidRequest("the client_id is not a registered client");
    if (origin === null || !registeredOrigins(client).includes(origin)) {
      throw new OAuthError("access_denied", "the request's Origin is not the origin of a redirect URI registered for this client", { status: 403 });
    }
    allowed = origin;
    if (!canRedeemSessionTokens(client)) throw unredeemable();
    const session = await currentSession(env, request);
    if (session === null) throw new OAuthError("login_required", "the browser has no session at this provider");
    const { token, expiresIn } = await issueSessionToken(env, session, client);
    response = jsonResponse({ session_token: token, expires_in: expiresIn });
  } catch (error) {
    response = renderError(error);
  }
  response.headers.set("vary", "Origin");
  if (allowed !== null) for (const [name, value] of Object.entries(credentialedCorsHeaders(allowed))) response.headers.set(name, value);
  return response;
}

export function sessionTokenPreflight(request: Request): Response {
  return credentialedPreflight(request.headers.get("origin"), "POST");
}

/**
 * POST /session-token/redeem: the client's backend. Consumed in one step with the client check (C8: exactly once,
 * even under concurrent redemption; another client's attempt is refused and leaves the token usable), then the
 * session must still be usable and the user still enabled. The client is remembered by the session, so it is told
 * when the session ends (C21).
 */
export async function redeemSessionToken(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const params = parseWith(Redemption, await readParams(request, "body"));
  const config = loadConfig(env);
  const issuer = issuerOf(env, request);
  const client = await authenticateClient(env, request, params, {
    issuer,
    endpointUrl: `${issuer}/session-token/redeem`,
    rateLimit: { name: "session_token", limit: config.rateLimitToken, counts: "requests" },
    confidentialOnly: true,
  });
  const store = challengeStoreFor(env, params.session_token);
  if (store === null) throw invalidGrant("the session token is invalid");
  const result = await store.consume(params.session_token, { kind: "session_token", clientId: client.client_id });
  switch (result.status) {
    case "consumed":
      throw invalidGrant("the session token was already used");
    case "rejected":
      throw invalidGrant(result.reason === "issued to another client" ? "the session token was issued to another client" : "the session token is invalid");
    case "expired":
      throw invalidGrant("the session token has expired");
    case "unknown":
      throw invalidGrant("the session token is invalid");
    case "ok":
      break;
  }
  const { userId } = result.value;
  const sid = result.value.data?.sid;
  if (typeof userId !== "string" || typeof sid !== "string") throw invalidGrant("the session token is invalid");
  const [user, session] = await Promise.all([getUser(env.DB, userId), userSessionsFor(env, userId)?.activeSession(sid) ?? null]);
  if (user === null || user.disabled || session === null) throw invalidGrant("the session has ended");
  recordSessionClient(env, ctx, userId, sid, client.client_id, { issuer });
  return jsonResponse(sessionTokenAnswer(issuer, client.client_id, session));
}
