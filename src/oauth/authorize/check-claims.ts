import { parseClaimsRequest } from "../claims";

/** OIDC Core §5.5: the `claims` parameter must be well-formed; it is kept as the validated JSON text. */
export function checkClaimsParameter(raw: string | undefined): string | null {
  const claims = raw ?? null;
  parseClaimsRequest(claims); // throws invalid_request when malformed
  return claims;
}
