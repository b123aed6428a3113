import type { Client } from "../../db/clients";
import type { PendingAuthorization } from "./pending";

export type ConsentReason = "prompt_consent" | "scope_not_granted";

/**
 * Whether the user must be asked (OIDC Core §3.1.2.4): prompt=consent always asks; a first-party client registered
 * with `skip_consent` never does; otherwise every scope of the request must have been granted before. The remembered
 * consent is read only when it decides (`rememberedScopes`, the caller's lookup).
 */
export async function consentRequired(
  pending: Pick<PendingAuthorization, "prompt">,
  client: Pick<Client, "skip_consent">,
  scope: string,
  rememberedScopes: () => Promise<ReadonlySet<string>>,
): Promise<ConsentReason | null> {
  if (pending.prompt.includes("consent")) return "prompt_consent";
  if (client.skip_consent) return null;
  const granted = await rememberedScopes();
  return scope.split(" ").every((s) => granted.has(s)) ? null : "scope_not_granted";
}
