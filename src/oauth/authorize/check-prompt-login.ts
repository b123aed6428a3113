import type { SignInCheck } from "./sign-in";

/** OIDC Core §3.1.2.1: prompt=login asks for a new authentication; select_account shows the sign-in page too. */
export const checkPromptLogin: SignInCheck = ({ pending }) =>
  pending.prompt.includes("login") || pending.prompt.includes("select_account") ? "prompt_login" : null;
