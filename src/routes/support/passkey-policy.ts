import { issuerOf, loadConfig } from "../../config";
import { listPasskeys } from "../../db/passkeys";
import type { Env } from "../../env";
import { emailLinkMeets } from "../../oauth/acr";
import type { PendingAuthorization } from "../../oauth/authorize/pending";
import { emailLinkAllowed, passkeysPossibleOn } from "../../oauth/webauthn";
import { readCookie, setCookie } from "./cookies";

/**
 * What the sign-in routes (email and passkey) share about passkeys: whether to offer one after an email sign-in, where
 * the user goes after a passkey step, and whether email-link sign-in is still open to a user.
 *
 * The offer is shown only to a browser that can create passkeys (the confirmation page's script says so in
 * `passkey_capable`), and not when this browser already holds a passkey for the user or the user said "Not now"
 * recently: a cookie `oidc_passkey_offer` = `added.<userId>` (set when a passkey is added or used here, a year) or
 * `declined.<userId>` (30 days).
 */

const OFFER_COOKIE = "oidc_passkey_offer";
const ADDED_FOR = 365 * 86400;
const DECLINED_FOR = 30 * 86400;

/** Where the user continues after a passkey step: the authorization request they came with, or their account page. */
export function continueTo(interaction: string | null | undefined): string {
  return interaction ? `/authorize/resume?interaction=${encodeURIComponent(interaction)}` : "/account";
}

export function offerPath(interaction: string | null | undefined): string {
  return interaction ? `/passkeys/offer?interaction=${encodeURIComponent(interaction)}` : "/passkeys/offer";
}

/** The offer page to show after an email sign-in, or null to go on as before. */
export function passkeyOfferLocation(env: Env, request: Request, userId: string, interaction: string | null, passkeyCapable: boolean): string | null {
  if (!passkeyCapable || !passkeysPossibleOn(issuerOf(env, request))) return null;
  const mark = readCookie(request, OFFER_COOKIE, issuerOf(env, request));
  if (mark === `added.${userId}` || mark === `declined.${userId}`) return null;
  return offerPath(interaction);
}

/** The Set-Cookie that remembers this browser holds a passkey of the user, or that they declined the offer. */
export function offerCookie(env: Env, request: Request, state: "added" | "declined", userId: string): string {
  return setCookie(OFFER_COOKIE, `${state}.${userId}`, issuerOf(env, request), state === "added" ? ADDED_FOR : DECLINED_FOR);
}

/** Whether EMAIL_LINK_SIGN_IN keeps email-link sign-in open to this user (only read from D1 when the setting needs it). */
export async function emailLinkOpenTo(env: Env, userId: string): Promise<boolean> {
  const setting = loadConfig(env).emailLinkSignIn;
  if (setting === "always") return true;
  return emailLinkAllowed(setting, (await listPasskeys(env.DB, userId)).length);
}

/**
 * The sign-in methods the sign-in page offers for a request: both; the passkey first, when the client asked (voluntarily)
 * for a class only a passkey meets (`acr_values=phr`); only the passkey, when that class is essential (OIDC Core
 * §5.5.1.1) — an email link could never answer it, so none is sent.
 */
export type SignInMethods = "either" | "passkey_first" | "passkey_only";

export function signInMethodsFor(pending: PendingAuthorization | null): SignInMethods {
  const acr = pending?.acr ?? null;
  if (emailLinkMeets(acr)) return "either";
  return acr!.essential ? "passkey_only" : "passkey_first";
}
