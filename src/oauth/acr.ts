/**
 * Authentication Context Class References (OIDC Core §2 `acr`): which classes a sign-in meets, which ones the OP
 * advertises, and which one an ID token asserts. Pure rules, no I/O.
 *
 * Only values defined elsewhere, none invented:
 * - `0` (OIDC Core §2): the authentication does not meet ISO/IEC 29115 level 1. The email link is here: it proves
 *   access to a mailbox, not possession of a device (NIST SP 800-63B §5.1.3.1 does not accept email as an
 *   out-of-band authenticator), so it claims no level above the baseline.
 * - `phr` (phishing-resistant) and `phrh` (phishing-resistant, hardware-protected), from OpenID Enhanced
 *   Authentication Profile (EAP) ACR Values 1.0. A passkey sign-in meets `phr`: the signature is bound to this
 *   origin, so nothing can be phished. A device-bound passkey (RFC 8176 `hwk`: its key never leaves the
 *   authenticator) also meets `phrh`; a synced one (`swk`: the key is copied between devices by its provider) does not
 *   (oauth/webauthn.ts passkeyAmr says which a sign-in was).
 * A method lists every class it meets, the baseline included, so a request for `0` is met by a passkey too.
 */

export const ACR = {
  /** OIDC Core §2: below ISO/IEC 29115 level 1. */
  baseline: "0",
  /** OpenID EAP ACR Values: phishing-resistant. */
  phishingResistant: "phr",
  /** OpenID EAP ACR Values: phishing-resistant and hardware-protected. */
  phishingResistantHardware: "phrh",
} as const;

/** The amr of an email-link sign-in: RFC 8176 has no value for it ("otp" means HOTP/TOTP), so `email` says what was proven. */
export const EMAIL_LINK_AMR = "email";

/** Strongest first: the order in which a request without values is answered. */
const STRENGTH: readonly string[] = [ACR.phishingResistantHardware, ACR.phishingResistant, ACR.baseline];

/** The classes each sign-in method meets, by the amr value the session records for it. */
const CLASSES_MET_BY_METHOD: Readonly<Record<string, readonly string[]>> = {
  [EMAIL_LINK_AMR]: [ACR.baseline],
  hwk: [ACR.phishingResistantHardware, ACR.phishingResistant, ACR.baseline],
  swk: [ACR.phishingResistant, ACR.baseline],
};

/** `acr_values_supported` (OIDC Discovery §3): exactly the classes a sign-in method of this OP can meet. */
export const SUPPORTED_ACR_VALUES: readonly string[] = STRENGTH.filter((acr) => Object.values(CLASSES_MET_BY_METHOD).some((met) => met.includes(acr)));

/** What a request asks for: classes in order of preference (none: "an acr, whichever"), and whether it must be met. */
export interface AcrRequest {
  values: string[];
  essential: boolean;
}

/**
 * The acr a request asks for: the `claims` parameter's `id_token.acr` (§5.5.1.1, essential or voluntary) when
 * present, else `acr_values` (§3.1.2.1, always voluntary). Null: nothing asked, nothing asserted.
 */
export function requestedAcr(claimsAcr: AcrRequest | null, acrValues: string | undefined): AcrRequest | null {
  if (claimsAcr !== null) return claimsAcr;
  const values = (acrValues ?? "").split(" ").filter((v) => v !== "");
  return values.length === 0 ? null : { values, essential: false };
}

/** The classes an authentication by these methods (its amr) meets, strongest first. */
export function classesMet(amr: readonly string[]): string[] {
  const met = new Set(amr.flatMap((method) => CLASSES_MET_BY_METHOD[method] ?? []));
  return STRENGTH.filter((acr) => met.has(acr));
}

/** Whether some sign-in method of this OP can meet one of the requested classes (any, when none is named). */
export function acrAttainable(request: AcrRequest): boolean {
  return request.values.length === 0 || request.values.some((acr) => SUPPORTED_ACR_VALUES.includes(acr));
}

/** Whether an authentication by these methods meets the request. */
export function acrMet(request: AcrRequest, amr: readonly string[]): boolean {
  return assertedAcr(request, amr) !== null;
}

/**
 * The `acr` an ID token asserts: the first requested class the authentication met (§3.1.2.1, §5.5.1.1), or without
 * named values the strongest it met. Null when nothing was asked or nothing asked was met: an acr is never claimed
 * for a class the request did not name.
 */
export function assertedAcr(request: AcrRequest | null, amr: readonly string[]): string | null {
  if (request === null) return null;
  const met = classesMet(amr);
  if (request.values.length === 0) return met[0] ?? null;
  return request.values.find((acr) => met.includes(acr)) ?? null;
}

/**
 * Whether an email-link sign-in can answer this request's acr: nothing asked, or a requested class the link meets.
 * When it cannot, the sign-in page leads with the passkey (voluntary) or offers only it (essential), and no link is sent
 * for an essential request (routes/support/passkey-policy.ts).
 */
export function emailLinkMeets(request: AcrRequest | null): boolean {
  return request === null || acrMet(request, [EMAIL_LINK_AMR]);
}
