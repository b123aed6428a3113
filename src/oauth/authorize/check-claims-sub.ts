import type { SignInCheck } from "./sign-in";

/**
 * OIDC Core §5.5.1: `claims.id_token.sub.value` asks for an ID token about that one user. Signed in as someone else,
 * they sign in again (under prompt=none: login_required) — the code never speaks for the signed-in user instead.
 */
export const checkClaimsSub: SignInCheck = ({ pending, session }) =>
  typeof pending.claimsSub === "string" && pending.claimsSub !== session.userId ? "claims_sub" : null;
