import type { AuthorizationRequest } from "./request";

/** An authorization request waiting for the user to sign in or consent (kept as an `interaction` challenge). */
export interface PendingAuthorization extends Omit<AuthorizationRequest, "idTokenHint"> {
  /** The subject named by a verified id_token_hint. */
  idTokenHintSub: string | null;
  /** When the request arrived (ms): a session created after it counts as a fresh sign-in for prompt=login and max_age. */
  startedAt: number;
}

/** What the sign-in and consent checks need to know about the browser's session. */
export interface SessionFacts {
  userId: string;
  /** ms since the epoch. */
  createdAt: number;
  /** OIDC `auth_time`, seconds since the epoch. */
  authTime: number;
  /** How the user signed in (RFC 8176 `amr`): the acr classes it meets follow from it (oauth/acr.ts). */
  amr: string[];
}
