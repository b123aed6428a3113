import type { Client } from "../../db/clients";
import { invalidRequest } from "../errors";
import { requiresPushedRequests } from "../security-profile";

/**
 * RFC 9126 §5 and §6, FAPI 2.0 SP §5.3.2.2: when the server or the client requires pushed authorization requests, a
 * request that did not come through /par is refused (at the registered redirect URI, like any other request error).
 */
export function checkPushedRequest(
  pushed: boolean,
  client: Pick<Client, "require_pushed_authorization_requests" | "security_profile">,
  serverRequires: boolean,
): void {
  if (!pushed && requiresPushedRequests(client, serverRequires)) {
    throw invalidRequest("this application must push its authorization requests to the pushed authorization request endpoint (PAR, RFC 9126)");
  }
}
