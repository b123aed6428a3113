import { OAuthError } from "../errors";
import { checkEssentialAcr } from "./check-acr";
import { checkClaimsSub } from "./check-claims-sub";
import { checkIdTokenHint } from "./check-id-token-hint";
import { checkMaxAge } from "./check-max-age";
import { checkPromptLogin } from "./check-prompt-login";
import type { PendingAuthorization, SessionFacts } from "./pending";

/**
 * Whether the user must sign in before this request can be answered, and why. Each rule is a small named check that
 * returns its reason, so logs and the audit say why a sign-in was asked for.
 */

export type SignInReason = "no_session" | "prompt_login" | "max_age" | "id_token_hint_subject" | "claims_sub" | "essential_acr";

export type SignInCheck = (facts: { pending: PendingAuthorization; session: SessionFacts; now: number }) => SignInReason | null;

/** Rules a sign-in made for this very request answers by being new: prompt=login, max_age. */
const FRESHNESS_CHECKS: readonly SignInCheck[] = [checkPromptLogin, checkMaxAge];
/** Rules about who signed in and how: a new sign-in answers them only by being that user, by such a method. */
const IDENTITY_CHECKS: readonly SignInCheck[] = [checkIdTokenHint, checkClaimsSub, checkEssentialAcr];

/** Whether the session was made after this request arrived: a sign-in for this request. */
export function signedInForThisRequest(pending: PendingAuthorization, session: SessionFacts): boolean {
  return session.createdAt >= pending.startedAt;
}

export function signInRequired(pending: PendingAuthorization, session: SessionFacts | null, now: number): SignInReason | null {
  if (session === null) return "no_session";
  const checks = signedInForThisRequest(pending, session) ? IDENTITY_CHECKS : [...FRESHNESS_CHECKS, ...IDENTITY_CHECKS];
  for (const check of checks) {
    const reason = check({ pending, session, now });
    if (reason !== null) return reason;
  }
  return null;
}

/**
 * A sign-in made for this request that still does not answer it: the error for the client (OIDC Core §3.1.2.6), not
 * another round of sign-in. Signed in as another user than the request names: login_required. Signed in by a method
 * that does not meet the essential acr: a failed authentication (§5.5.1.1), access_denied.
 */
export function signInFailure(reason: SignInReason): OAuthError {
  switch (reason) {
    case "essential_acr":
      return new OAuthError("access_denied", "the sign-in does not meet the essential acr values requested");
    case "id_token_hint_subject":
      return new OAuthError("login_required", "the signed-in user is not the one id_token_hint names");
    case "claims_sub":
      return new OAuthError("login_required", "the signed-in user is not the one the claims request names");
    default:
      return new OAuthError("login_required", "the user must sign in");
  }
}
