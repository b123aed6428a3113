import { SingleUseResourceStore } from "./single-use-store";

/** `interaction`: a pending authorization request, kept while the user signs in and consents; consumed when the code is issued. */
export type ChallengeKind = "magic_link" | "passkey_registration" | "passkey_authentication" | "session_token" | "interaction";

/** A login challenge: what was asked, of whom, and the authorization request to resume afterwards. */
export interface Challenge {
  kind: ChallengeKind;
  /** The user it is for, when known (passkey registration, session token). */
  userId?: string | null;
  /** The client it was issued to (session token, C8): only that client may use it. */
  clientId?: string | null;
  email?: string | null;
  /** WebAuthn challenge bytes (base64url) for passkey kinds. */
  webauthnChallenge?: string | null;
  /** Opaque reference to the interaction to resume (the pending authorization request). */
  interaction?: string | null;
  data?: Record<string, string | number | boolean | null> | null;
}

/** What finishing a challenge produced: the session it created, so a retry after a later failure finishes the same one (C12). */
export interface ChallengeOutcome {
  sessionId?: string;
  userId?: string;
}

/** Magic links, WebAuthn challenges and one-time session tokens: single use, even under concurrent submission (C8, C11). */
export interface ChallengeExpectation {
  kind: ChallengeKind;
  /** The client using it: a challenge issued to a client is refused to any other, in the same step (and not used up). */
  clientId?: string;
}

export class ChallengeStore extends SingleUseResourceStore<Challenge, ChallengeExpectation, ChallengeExpectation, ChallengeOutcome> {
  protected readonly source = "challenge";

  protected override verify(challenge: Challenge, expectation: ChallengeExpectation): string | null {
    if (challenge.kind !== expectation.kind) return "challenge is of another kind";
    if ((challenge.clientId ?? null) !== null && challenge.clientId !== expectation.clientId) return "issued to another client";
    return null;
  }

  protected override describe(challenge: Challenge) {
    return { subject: challenge.userId ?? null, clientId: challenge.clientId ?? null };
  }
}
