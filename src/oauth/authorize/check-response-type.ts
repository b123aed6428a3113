import type { Client } from "../../db/clients";
import { OAuthError, invalidRequest } from "../errors";

/** RFC 6749 §3.1.1 and §4.1.1: `code` only, and only for a client registered for the code flow. */
export function checkResponseType(responseType: string | undefined, client: Pick<Client, "response_types" | "grant_types">): void {
  if (responseType === undefined) throw invalidRequest("response_type is missing");
  if (responseType !== "code") throw new OAuthError("unsupported_response_type", "only response_type=code is supported");
  if (!client.response_types.includes("code") || !client.grant_types.includes("authorization_code")) {
    throw new OAuthError("unauthorized_client", "this application may not use the authorization code flow");
  }
}
