import { issuerOf, loadConfig } from "../config";
import { getClient, type Client } from "../db/clients";
import { grantedScopes, rememberConsent } from "../db/consents";
import type { Env } from "../env";
import type { AuthorizationCodeGrant } from "../objects/auth-codes";
import { authCodeStoreFor, challengeStoreFor, newAuthCodeId, newChallengeId } from "../objects/locate";
import {
  UntrustedRequestError,
  grantableScope,
  responseTarget,
  validateAuthorizationRequest,
  type AuthorizationRequest,
  type ResponseTarget,
} from "../oauth/authorize-request";
import { OAuthError, invalidRequest } from "../oauth/errors";
import { verifyIdTokenHint } from "../oauth/tokens";
import { verifyWithPublishedKeys } from "../signing-keys";
import { readParams } from "./params";
import { frontChannel } from "./front-channel";
import { authorizationResponse, redirectResponse } from "./respond";
import { currentSession, recordSessionClient, type CurrentSession } from "./session";
import { clientAddress, enforceRateLimit } from "./rate-limit";

/**
 * GET and POST /authorize (RFC 6749 §4.1, OIDC Core §3.1.2), and what it shares with the sign-in and consent
 * pages: page errors and "interactions" — pending authorization requests kept in
 * the challenge store while the user signs in and consents, consumed when the code is issued (so a completed
 * interaction cannot be replayed).
 */

// ── Page errors ──────────────────────────────────────────────────────────────────

/** A problem that must be shown to the user, never sent to the client (OIDC Core §3.1.2.6). */
export function pageError(description: string, status = 400): UntrustedRequestError {
  return new UntrustedRequestError("invalid_request", description, { status });
}

// ── Interactions ─────────────────────────────────────────────────────────────────

/** An authorization request waiting for the user to sign in or consent. */
export interface PendingAuthorization extends Omit<AuthorizationRequest, "idTokenHint"> {
  /** The subject named by a verified id_token_hint. */
  idTokenHintSub: string | null;
  /** When the request arrived (ms): a session created after it counts as a fresh sign-in for prompt=login and max_age. */
  startedAt: number;
}

/** Never shorter than the link it waits for, plus time to consent. */
function interactionTtl(env: Env): number {
  const config = loadConfig(env);
  return Math.max(config.interactionTtl, config.magicLinkTtl + 10 * 60);
}

async function createInteraction(env: Env, pending: PendingAuthorization): Promise<string> {
  const id = newChallengeId(env);
  const { stored } = await challengeStoreFor(env, id)!.put(
    id,
    { kind: "interaction", interaction: null, data: { request: JSON.stringify(pending) } },
    interactionTtl(env),
  );
  if (!stored) throw new Error("interaction id collision");
  return id;
}

/** The pending request of a live interaction; anything else (unknown, expired, completed, another kind) is a page. */
export async function loadInteraction(env: Env, id: string | undefined): Promise<PendingAuthorization> {
  const store = id === undefined ? null : challengeStoreFor(env, id);
  if (id === undefined || store === null) throw pageError("This sign-in request is not valid. Start again from the application.");
  const found = await store.peek(id);
  if (found.status === "consumed") throw pageError("This sign-in request was already completed. Start again from the application.");
  if (found.status !== "active" || found.value.kind !== "interaction") {
    throw pageError("This sign-in request has expired or is not valid. Start again from the application.");
  }
  const raw = found.value.data?.request;
  if (typeof raw !== "string") throw pageError("This sign-in request is not valid. Start again from the application.");
  return JSON.parse(raw) as PendingAuthorization;
}

/**
 * The client and redirect URI of a pending request, read again now (C5): a client deleted or a redirect URI removed
 * since the request arrived means there is nobody to answer to any more.
 */
export async function clientOfPending(env: Env, pending: PendingAuthorization): Promise<Client> {
  const client = await getClient(env.DB, pending.clientId);
  if (client === null || !client.redirect_uris.includes(pending.redirectUri)) {
    throw pageError("The application that started this sign-in is no longer registered here.");
  }
  return client;
}

// ── Authorization responses ─────────────────────────────────────────────────────

/** RFC 6749 §4.1.2.1 error_description: printable ASCII except `"` and `\`. */
function safeDescription(text: string): string {
  return text.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, "").slice(0, 200);
}

/** An error for the client, at its registered redirect URI, with state and iss (RFC 9207). */
export function authorizationError(issuer: string, target: ResponseTarget, error: OAuthError): Response {
  const params: Record<string, string> = { error: error.code };
  if (error.description) params.error_description = safeDescription(error.description);
  if (target.state !== null) params.state = target.state;
  params.iss = issuer;
  return authorizationResponse(target.redirectUri, target.responseMode, params);
}

/** Runs `step`; OAuth errors go to the client's redirect URI, except those that must only be shown to the user. */
export async function answeringClient<T>(issuer: string, target: ResponseTarget, step: () => Promise<T>): Promise<T | Response> {
  try {
    return await step();
  } catch (error) {
    if (error instanceof OAuthError && !(error instanceof UntrustedRequestError) && error.code !== "rate_limited") {
      return authorizationError(issuer, target, error);
    }
    throw error;
  }
}

// ── The endpoint ─────────────────────────────────────────────────────────────────

/** GET and POST /authorize. */
export function authorize(request: Request, env: Env): Promise<Response> {
  return frontChannel(async () => {
    const config = loadConfig(env);
    await enforceRateLimit(env, `authorize:ip:${clientAddress(request)}`, config.rateLimitAuthorize);
    const issuer = issuerOf(env, request);
    // Until the client and redirect URI check out, every problem is a page (OIDC Core §3.1.2.6).
    const params = await readParams(request, "either").catch((error: unknown) => {
      throw error instanceof OAuthError ? new UntrustedRequestError(error.code, error.description, { status: error.status }) : error;
    });
    const client = params.client_id === undefined ? null : await getClient(env.DB, params.client_id);
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
      return continueAuthorization(env, request, client!, pending, null, { consentGiven: false });
    });
  });
}

/** GET /authorize/resume?interaction=ID: where sign-in returns to; decides again with the new session. */
export function resumeAuthorization(request: Request, env: Env): Promise<Response> {
  return frontChannel(async () => {
    const id = new URL(request.url).searchParams.get("interaction") ?? undefined;
    const pending = await loadInteraction(env, id);
    const client = await clientOfPending(env, pending);
    return answeringClient(issuerOf(env, request), pending, () => continueAuthorization(env, request, client, pending, id!, { consentGiven: false }));
  });
}

/**
 * The decision after a valid request, and again after each step the user takes: sign in if there is no usable
 * session (or prompt=login, max_age, a different user than id_token_hint names), consent if needed, else the code.
 * prompt=none turns each needed step into its error (OIDC Core §3.1.2.6).
 */
export async function continueAuthorization(
  env: Env,
  request: Request,
  client: Client,
  pending: PendingAuthorization,
  interactionId: string | null,
  options: { consentGiven: boolean },
): Promise<Response> {
  const scope = grantableScope(pending.scope, client); // the client's registration now, not when the request arrived (C5)
  const session = await currentSession(env, request);
  const promptNone = pending.prompt.includes("none");

  if (needsSignIn(pending, session)) {
    if (promptNone) throw new OAuthError("login_required", "the user must sign in");
    const id = interactionId ?? (await createInteraction(env, pending));
    return redirectResponse(`/login?interaction=${encodeURIComponent(id)}`);
  }
  const user = session!;
  if (pending.idTokenHintSub !== null && pending.idTokenHintSub !== user.userId) {
    // Signed in just now, as someone else than the hint names (OIDC Core §3.1.2.1).
    throw new OAuthError("login_required", "the signed-in user is not the one id_token_hint names");
  }

  if (!options.consentGiven && (await needsConsent(env, client, pending, scope, user.userId))) {
    if (promptNone) throw new OAuthError("consent_required", "the user must consent");
    const id = interactionId ?? (await createInteraction(env, pending));
    return redirectResponse(`/consent?interaction=${encodeURIComponent(id)}`);
  }
  return issueCode(env, request, client, { ...pending, scope }, user, interactionId, options.consentGiven);
}


function needsSignIn(pending: PendingAuthorization, session: CurrentSession | null): boolean {
  if (session === null) return true;
  // Signed in after this request arrived: that sign-in answers prompt=login and max_age.
  if (session.session.createdAt >= pending.startedAt) return false;
  if (pending.prompt.includes("login") || pending.prompt.includes("select_account")) return true;
  // C16, OIDC Core §3.1.2.1: an authentication older than max_age seconds does not count; max_age=0 is prompt=login.
  if (pending.maxAge !== null && (pending.maxAge === 0 || Math.floor(Date.now() / 1000) - session.session.authTime > pending.maxAge)) return true;
  if (pending.idTokenHintSub !== null && pending.idTokenHintSub !== session.userId) return true;
  return false;
}

async function needsConsent(env: Env, client: Client, pending: PendingAuthorization, scope: string, userId: string): Promise<boolean> {
  if (pending.prompt.includes("consent")) return true;
  if (client.skip_consent) return false;
  const granted = await grantedScopes(env.DB, userId, client.client_id);
  return !scope.split(" ").every((s) => granted.has(s));
}

async function issueCode(
  env: Env,
  request: Request,
  client: Client,
  pending: PendingAuthorization,
  user: CurrentSession,
  interactionId: string | null,
  consentGiven: boolean,
): Promise<Response> {
  const config = loadConfig(env);
  if (consentGiven) await rememberConsent(env.DB, user.userId, client.client_id, pending.scope.split(" "));
  const grant: AuthorizationCodeGrant = {
    clientId: client.client_id,
    redirectUri: pending.redirectUri,
    sub: user.userId,
    scope: pending.scope,
    codeChallenge: pending.codeChallenge,
    nonce: pending.nonce,
    sid: user.sid,
    authTime: user.session.authTime,
    amr: user.session.amr,
    // One authentication level, no acr values defined: nothing requested in acr_values is claimed as satisfied.
    acr: user.session.acr,
    claims: pending.claims,
    dpopJkt: null,
  };
  // C12: the code is stored before the interaction is used up, so a failure here leaves the request open for a retry.
  // A stored code whose interaction another submission used first is never sent anywhere; it just expires.
  const code = newAuthCodeId(env);
  const { stored } = await authCodeStoreFor(env, code)!.put(code, grant, config.authCodeTtl);
  if (!stored) throw new Error("authorization code collision");
  if (interactionId !== null) {
    // The interaction is used once: of two submissions, one gets the code, the other a page.
    const result = await challengeStoreFor(env, interactionId)!.consume(interactionId, { kind: "interaction" }, { sessionId: user.sid, userId: user.userId });
    if (result.status !== "ok") throw pageError("This sign-in request was already completed. Start again from the application.");
  }
  await recordSessionClient(env, user.userId, user.sid, client.client_id);
  const params: Record<string, string> = { code };
  if (pending.state !== null) params.state = pending.state;
  params.iss = issuerOf(env, request);
  return authorizationResponse(pending.redirectUri, pending.responseMode, params);
}
