import type { Client } from "../../db/clients";
import { invalidRequest } from "../errors";
import { isValidS256Challenge } from "../../lib/pkce";
import { requiresPkce } from "../security-profile";

/**
 * RFC 7636 §4.3, RFC 9700 §2.1.1: S256 only; required for public clients (no client authentication at /token) and
 * for FAPI 2.0 clients (§5.3.2.2). Returns the challenge to bind to the code, or null when none was sent by a
 * confidential client that may do without.
 */
export function checkPkce(challenge: string | undefined, method: string | undefined, client: Pick<Client, "token_endpoint_auth_method" | "security_profile">): string | null {
  if (challenge !== undefined) {
    // An absent method means `plain` (RFC 7636 §4.3), which is refused like an explicit one.
    if (method !== "S256") throw invalidRequest("code_challenge_method must be S256");
    if (!isValidS256Challenge(challenge)) throw invalidRequest("code_challenge is not a valid S256 challenge");
    return challenge;
  }
  if (method !== undefined) throw invalidRequest("code_challenge_method was sent without code_challenge");
  if (requiresPkce(client)) throw invalidRequest("code_challenge is required (PKCE with S256) for this application");
  return null;
}
