import { clientAuthParams } from "../client-auth";
import * as z from "zod/mini";
import { param } from "../schema";

/** The one schema of /token (RFC 6749 §4.1.3, §4.4.2, §6): the parameters of every grant, and client authentication. */

export const SUPPORTED_GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"] as const;
export type GrantType = (typeof SUPPORTED_GRANT_TYPES)[number];


export const TokenRequestSchema = z.object({
  grant_type: param(200),
  code: z.optional(param(512)),
  redirect_uri: z.optional(param(2048)),
  code_verifier: z.optional(param(256)),
  refresh_token: z.optional(param(512)),
  scope: z.optional(param(2048)),
  ...clientAuthParams,
});

export type TokenRequest = z.infer<typeof TokenRequestSchema>;

export function isSupportedGrant(value: string): value is GrantType {
  return (SUPPORTED_GRANT_TYPES as readonly string[]).includes(value);
}
