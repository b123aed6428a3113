import { checkIdTokenHint } from "./check-id-token-hint";
import { checkMaxAge } from "./check-max-age";
import { checkPromptLogin } from "./check-prompt-login";
import type { PendingAuthorization, SessionFacts } from "./pending";

/**
 * Whether the user must sign in before this request can be answered, and why. Each rule is a small named check that
 * returns its reason, so logs and the audit say why a sign-in was asked for.
 */

export type SignInReason = "no_session" | "prompt_login" | "max_age" | "id_token_hint_subject";

export type SignInCheck = (facts: { pending: PendingAuthorization; session: SessionFacts; now: number }) => SignInReason | null;

const SIGN_IN_CHECKS: readonly SignInCheck[] = [checkPromptLogin, checkMaxAge, checkIdTokenHint];

export function signInRequired(pending: PendingAuthorization, session: SessionFacts | null, now: number): SignInReason | null {
  if (session === null) return "no_session";
  // Signed in after this request arrived: that sign-in answers prompt=login and max_age.
  if (session.createdAt >= pending.startedAt) return null;
  for (const check of SIGN_IN_CHECKS) {
    const reason = check({ pending, session, now });
    if (reason !== null) return reason;
  }
  return null;
}
