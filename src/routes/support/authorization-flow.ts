import { issuerOf, loadConfig } from "../../config";
import type { Client } from "../../db/clients";
import { grantedScopes, rememberConsent } from "../../db/consents";
import type { Env } from "../../env";
import { log } from "../../lib/log";
import type { AuthorizationCodeGrant } from "../../objects/auth-codes";
import { authCodeStoreFor, newAuthCodeId } from "../../objects/locate";
import { assertedAcr } from "../../oauth/acr";
import { consentRequired } from "../../oauth/authorize/check-consent";
import type { PendingAuthorization } from "../../oauth/authorize/pending";
import { UntrustedRequestError, type ResponseTarget } from "../../oauth/authorize/request";
import { signInFailure, signInRequired, signedInForThisRequest } from "../../oauth/authorize/sign-in";
import { OAuthError } from "../../oauth/errors";
import { grantableScope } from "../../oauth/scope-policy";
import { codeLifetime } from "../../oauth/security-profile";
import { currentSession, recordSessionClient, type CurrentSession } from "./browser-session";
import { completeInteraction, startInteraction } from "./interactions";
import { viewFor } from "./page-view";
import { authorizationResponse, redirectResponse } from "./respond";

/**
 * The authorization decision (OIDC Core §3.1.2), taken after a valid /authorize request and again after each step the
 * user takes (sign-in, consent): sign in if the checks say so, consent if needed, else the code. prompt=none turns
 * each needed step into its error (§3.1.2.6).
 */

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

/** What the caller may already have in flight, read beside its own lookups instead of after them. */
export interface Prefetched {
  /** The browser's session (`currentSession`), already being checked. */
  session?: Promise<CurrentSession | null>;
  /** The consent the cookie's user gave this client (`grantedScopes`), for that user id. */
  rememberedScopes?: { userId: string; scopes: Promise<Set<string>> };
}

export async function continueAuthorization(
  env: Env,
  ctx: ExecutionContext,
  request: Request,
  client: Client,
  pending: PendingAuthorization,
  interactionId: string | null,
  options: { consentGiven: boolean; prefetched?: Prefetched },
): Promise<Response> {
  const scope = grantableScope(pending.scope, client); // the client's registration now, not when the request arrived (C5)
  const session = await (options.prefetched?.session ?? currentSession(env, request));
  const promptNone = pending.prompt.includes("none");

  const facts = session && { userId: session.userId, createdAt: session.session.createdAt, authTime: session.session.authTime, amr: session.session.amr };
  const signIn = signInRequired(pending, facts, Date.now());
  if (signIn !== null) {
    log("info", "authorize.sign_in_required", { reason: signIn, client_id: client.client_id, prompt_none: promptNone });
    // Signed in just now, and still not the user or the method the request names: that sign-in failed.
    if (facts !== null && signedInForThisRequest(pending, facts)) throw signInFailure(signIn);
    if (promptNone) throw new OAuthError("login_required", "the user must sign in");
    const id = interactionId ?? (await startInteraction(env, pending));
    return redirectResponse(`/login?interaction=${encodeURIComponent(id)}`);
  }
  const user = session!;

  if (!options.consentGiven) {
    const remembered = options.prefetched?.rememberedScopes;
    const consent = await consentRequired(pending, client, scope, () =>
      remembered !== undefined && remembered.userId === user.userId ? remembered.scopes : grantedScopes(env.DB, user.userId, client.client_id),
    );
    if (consent !== null) {
      log("info", "authorize.consent_required", { reason: consent, client_id: client.client_id, prompt_none: promptNone });
      if (promptNone) throw new OAuthError("consent_required", "the user must consent");
      const id = interactionId ?? (await startInteraction(env, pending));
      return redirectResponse(`/consent?interaction=${encodeURIComponent(id)}`);
    }
  }
  return issueCode(env, ctx, request, client, { ...pending, scope }, user, interactionId, options.consentGiven);
}

async function issueCode(
  env: Env,
  ctx: ExecutionContext,
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
    // Asserted only when the request asked for one and the sign-in met it (OIDC Core §3.1.2.1, §5.5.1.1).
    acr: assertedAcr(pending.acr ?? null, user.session.amr),
    claims: pending.claims,
    // RFC 9449 §10: dpop_jkt, or the key of the DPoP proof the request was pushed with. (Absent in a request stored before.)
    dpopJkt: pending.dpopJkt ?? null,
    issuedAt: Date.now(),
  };
  // C12: the code is stored before the interaction is used up, so a failure here leaves the request open for a retry.
  // A stored code whose interaction another submission used first is never sent anywhere; it just expires.
  const code = newAuthCodeId(env);
  const { stored } = await authCodeStoreFor(env, code)!.put(code, grant, codeLifetime(client, config.authCodeTtl));
  if (!stored) throw new Error("authorization code collision");
  if (interactionId !== null) await completeInteraction(env, interactionId, { sessionId: user.sid, userId: user.userId });
  const issuer = issuerOf(env, request);
  // A client the session already knows is recorded again when its code is redeemed (with the grant and the issuer);
  // telling the session again here would be a write for nothing.
  if (!user.session.clients.includes(client.client_id)) recordSessionClient(env, ctx, user.userId, user.sid, client.client_id, { issuer });
  const params: Record<string, string> = { code };
  if (pending.state !== null) params.state = pending.state;
  params.iss = issuer;
  return authorizationResponse(pending.redirectUri, pending.responseMode, params, viewFor(env, request, pending.uiLocales).t);
}
