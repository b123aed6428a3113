import type { Client } from "../../db/clients";
import type { AppInfo } from "../../ui/pages";

/** What the sign-in and consent pages show of a client: its RFC 7591 name, logo and links (https only, client-metadata.ts). */
export function appInfo(client: Client): AppInfo {
  return { name: client.client_name, logoUri: client.logo_uri, clientUri: client.client_uri, policyUri: client.policy_uri, tosUri: client.tos_uri };
}
