import type { SignInCheck } from "./sign-in";

/** OIDC Core §3.1.2.1: id_token_hint names the user expected; signed in as someone else, they sign in again. */
export const checkIdTokenHint: SignInCheck = ({ pending, session }) =>
  pending.idTokenHintSub !== null && pending.idTokenHintSub !== session.userId ? "id_token_hint_subject" : null;
