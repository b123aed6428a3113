import { acrAttainable, acrMet, type AcrRequest } from "../acr";
import { OAuthError } from "../errors";
import type { SignInCheck } from "./sign-in";

/**
 * OIDC Core §5.5.1.1: an essential `acr` whose values no sign-in method of this OP can meet is a failed
 * authentication. Known before anyone signs in, so the client hears it at once (access_denied).
 */
export function checkAcrAttainable(acr: AcrRequest | null): void {
  if (acr !== null && acr.essential && !acrAttainable(acr)) {
    throw new OAuthError("access_denied", "no sign-in method here meets the essential acr values requested");
  }
}

/**
 * §5.5.1.1: an essential `acr` the session's sign-in did not meet asks for a new sign-in (with a method that meets it);
 * under prompt=none, login_required. A voluntary acr never forces anything: it is asserted only when met.
 */
export const checkEssentialAcr: SignInCheck = ({ pending, session }) => {
  const acr = pending.acr ?? null;
  return acr !== null && acr.essential && !acrMet(acr, session.amr) ? "essential_acr" : null;
};
