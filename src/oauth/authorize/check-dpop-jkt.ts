import { invalidRequest } from "../errors";

/** An RFC 7638 SHA-256 JWK thumbprint, base64url: 43 characters. */
const JKT = /^[A-Za-z0-9_-]{43}$/;

/**
 * RFC 9449 §10: the key the authorization code will be bound to — the `dpop_jkt` parameter, or at /par the key of the
 * request's DPoP proof (§10.1); when both are there they must be the same key. Null: the code is not bound.
 */
export function checkDpopJkt(parameter: string | undefined, proofJkt: string | null): string | null {
  if (parameter !== undefined && !JKT.test(parameter)) throw invalidRequest("dpop_jkt must be a base64url SHA-256 JWK thumbprint");
  if (parameter !== undefined && proofJkt !== null && parameter !== proofJkt) throw invalidRequest("dpop_jkt does not match the key of the DPoP proof");
  return parameter ?? proofJkt;
}
