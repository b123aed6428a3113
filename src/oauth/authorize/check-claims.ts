import { parseClaimsRequest, type ClaimsRequest } from "../claims";

/** OIDC Core §5.5: the `claims` parameter must be well-formed; it is kept as the validated JSON text, and parsed. */
export function checkClaimsParameter(raw: string | undefined): { claims: string | null; parsed: ClaimsRequest | null } {
  const claims = raw ?? null;
  return { claims, parsed: parseClaimsRequest(claims) }; // throws invalid_request when malformed
}
