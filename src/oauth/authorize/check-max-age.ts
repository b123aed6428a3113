import type { SignInCheck } from "./sign-in";

/** C16, OIDC Core §3.1.2.1: an authentication older than max_age seconds does not count; max_age=0 is prompt=login. */
export const checkMaxAge: SignInCheck = ({ pending, session, now }) => {
  if (pending.maxAge === null) return null;
  return pending.maxAge === 0 || Math.floor(now / 1000) - session.authTime > pending.maxAge ? "max_age" : null;
};
