import type { Client } from "../../db/clients";
import { isLoopbackUrl } from "../../lib/loopback";
import type { PendingAuthorization } from "./pending";

export type ConsentReason = "prompt_consent" | "native_client" | "scope_not_granted";

/**
 * Whether a redirect URI is one that any app on the device can claim: a private-use URI scheme (RFC 8252 §7.1) or a
 * loopback address (§7.3). A claimed https URI (§7.2) is bound to its domain and is not.
 */
function isClaimableRedirect(redirectUri: string): boolean {
  if (isLoopbackUrl(redirectUri)) return true;
  const scheme = /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(redirectUri)?.[1]?.toLowerCase();
  return scheme !== undefined && scheme !== "https" && scheme !== "http";
}

/**
 * RFC 8252 §8.6, RFC 6749 §10.2: a public client proves nothing about who it is, and another app can register the
 * same custom scheme or listen on the loopback port. So a public client answered at such a redirect URI is never
 * re-authorised silently: neither a remembered consent nor `skip_consent` spares the user the question.
 */
const checkNativeClient = (pending: Pick<PendingAuthorization, "redirectUri">, client: Pick<Client, "token_endpoint_auth_method">): boolean =>
  client.token_endpoint_auth_method === "none" && isClaimableRedirect(pending.redirectUri);

/**
 * Whether the user must be asked (OIDC Core §3.1.2.4), and why: prompt=consent always asks; so does a public native
 * client (above); a first-party client registered with `skip_consent` never does otherwise; else every scope of the
 * request must have been granted before. The remembered consent is read only when it decides (`rememberedScopes`,
 * the caller's lookup).
 */
export async function consentRequired(
  pending: Pick<PendingAuthorization, "prompt" | "redirectUri">,
  client: Pick<Client, "skip_consent" | "token_endpoint_auth_method">,
  scope: string,
  rememberedScopes: () => Promise<ReadonlySet<string>>,
): Promise<ConsentReason | null> {
  if (pending.prompt.includes("consent")) return "prompt_consent";
  if (checkNativeClient(pending, client)) return "native_client";
  if (client.skip_consent) return null;
  const granted = await rememberedScopes();
  return scope.split(" ").every((s) => granted.has(s)) ? null : "scope_not_granted";
}
