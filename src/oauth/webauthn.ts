import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from "@simplewebauthn/server";
import * as z from "zod/mini";
import { base64url, base64urlDecode } from "../lib/crypto";
import { errorText } from "../lib/log";
import { param } from "./schema";

/**
 * The rules of passkeys (WebAuthn Level 3) for this OP, with no I/O: who the relying party is, the options of each
 * ceremony, the checks of a response (done by @simplewebauthn/server), what a signature counter must do (C7) and
 * what a passkey sign-in proves (RFC 8176 `amr`).
 *
 * @simplewebauthn/server is loaded on first use (a dynamic import): it is most of the bundle, and its module setup
 * (ASN.1 schemas, root certificates) then runs only in isolates that serve a passkey ceremony.
 */

type WebAuthnLibrary = typeof import("@simplewebauthn/server");
let library: Promise<WebAuthnLibrary> | null = null;
function webauthn(): Promise<WebAuthnLibrary> {
  library ??= import("@simplewebauthn/server");
  return library;
}

export type UserVerification = "preferred" | "required" | "discouraged";

/** The relying party: RP ID = the issuer's host, expected origin = the issuer's origin (one OP, one origin). */
export interface RelyingParty {
  id: string;
  origin: string;
  name: string;
}

export function relyingParty(issuer: string, configuredName: string): RelyingParty {
  const url = new URL(issuer);
  return { id: url.hostname, origin: url.origin, name: configuredName !== "" ? configuredName : url.hostname };
}

/**
 * Whether passkeys can work on this issuer at all: an RP ID is a domain, never an IP address (WebAuthn §5.1.3 via
 * the "valid domain" rule — Chromium refuses `127.0.0.1` with "This is an invalid domain"). On an IP-address issuer
 * (`npm start` opened at 127.0.0.1) the OP shows no passkey controls and offers none; `localhost` works.
 */
export function passkeysPossibleOn(issuer: string): boolean {
  const host = new URL(issuer).hostname;
  return !host.startsWith("[") && !/^\d{1,3}(\.\d{1,3}){3}$/.test(host);
}

/** WebAuthn `user.id`: the user id's UTF-8 bytes (no personal data; WebAuthn §14.6.1), base64url as the browser returns it. */
export function userHandleOf(userId: string): string {
  return base64url(new TextEncoder().encode(userId));
}

/** The transports a browser may report that we keep (WebAuthn §5.8.4); anything else is dropped. */
const TRANSPORTS: readonly string[] = ["ble", "cable", "hybrid", "internal", "nfc", "smart-card", "usb"];

export function knownTransports(reported: readonly string[] | undefined): string[] {
  return [...new Set((reported ?? []).filter((t) => TRANSPORTS.includes(t)))];
}

/** A stored passkey as the ceremonies need it. */
export interface KnownCredential {
  id: string;
  /** COSE public key, base64url. */
  publicKey: string;
  transports: readonly string[];
}

// ── Input: one schema per response type (the JSON a browser sends, RegistrationResponseJSON / AuthenticationResponseJSON) ──

const b64u = (max: number) => z.string().check(z.maxLength(max, `must be at most ${max} characters`), z.regex(/^[A-Za-z0-9_-]*$/, "must be base64url"));
/** A credential id is at most 1023 bytes (WebAuthn §4 "Credential ID"): 1364 base64url characters. */
const CREDENTIAL_ID = b64u(1364).check(z.minLength(16, "is too short"));
const extensionResults = z.optional(z.record(z.string().check(z.maxLength(64)), z.unknown()));
const attachment = z.optional(z.enum(["platform", "cross-platform"]));

const RegistrationResponseSchema = z.object({
  id: CREDENTIAL_ID,
  rawId: CREDENTIAL_ID,
  type: z.literal("public-key"),
  response: z.object({
    clientDataJSON: b64u(4096),
    attestationObject: b64u(24_000),
    transports: z.optional(z.array(z.string().check(z.maxLength(32))).check(z.maxLength(10))),
  }),
  clientExtensionResults: extensionResults,
  authenticatorAttachment: attachment,
});

const AuthenticationResponseSchema = z.object({
  id: CREDENTIAL_ID,
  rawId: CREDENTIAL_ID,
  type: z.literal("public-key"),
  response: z.object({
    clientDataJSON: b64u(4096),
    authenticatorData: b64u(4096),
    signature: b64u(8192),
    userHandle: z.optional(b64u(128)),
  }),
  clientExtensionResults: extensionResults,
  authenticatorAttachment: attachment,
});

/** The most a form field carrying one response may hold (an attestation with a certificate chain fits easily). */
export const MAX_RESPONSE_FIELD = 32 * 1024;

/** The form that finishes a ceremony: the challenge id the options came with and the browser's response as JSON. */
export const CeremonyForm = z.object({
  csrf_token: z.optional(param(64)),
  challenge: param(200),
  response: param(MAX_RESPONSE_FIELD),
  interaction: z.optional(param(200)),
  from: z.optional(z.enum(["offer", "account"])),
});

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/** The browser's registration response, or null when it is not one (malformed JSON, wrong shape, oversized members). */
export function parseRegistrationResponse(text: string): RegistrationResponseJSON | null {
  const parsed = RegistrationResponseSchema.safeParse(parseJson(text));
  if (!parsed.success) return null;
  return { ...parsed.data, clientExtensionResults: parsed.data.clientExtensionResults ?? {} } as RegistrationResponseJSON;
}

/** The browser's authentication response, or null when it is not one. */
export function parseAuthenticationResponse(text: string): AuthenticationResponseJSON | null {
  const parsed = AuthenticationResponseSchema.safeParse(parseJson(text));
  if (!parsed.success) return null;
  return { ...parsed.data, clientExtensionResults: parsed.data.clientExtensionResults ?? {} } as AuthenticationResponseJSON;
}

// ── Options ──

/** Sign-in options for a discoverable credential: no allowCredentials, so no email has to be typed first. */
export async function signInOptions(rp: RelyingParty, userVerification: UserVerification, timeoutSeconds: number): Promise<PublicKeyCredentialRequestOptionsJSON> {
  const { generateAuthenticationOptions } = await webauthn();
  return generateAuthenticationOptions({ rpID: rp.id, userVerification, timeout: timeoutSeconds * 1000 });
}

/**
 * Registration options: a discoverable credential (a passkey, residentKey required) for this user, excluding the
 * credentials they already have, so one authenticator is never registered twice.
 */
export async function registrationOptions(
  rp: RelyingParty,
  user: { id: string; email: string; name: string | null },
  existing: readonly KnownCredential[],
  settings: { userVerification: UserVerification; attestation: "none" | "direct"; timeoutSeconds: number },
): Promise<PublicKeyCredentialCreationOptionsJSON> {
  const { generateRegistrationOptions } = await webauthn();
  return generateRegistrationOptions({
    rpName: rp.name,
    rpID: rp.id,
    userName: user.email,
    userID: new Uint8Array(new TextEncoder().encode(user.id)),
    userDisplayName: user.name ?? user.email,
    timeout: settings.timeoutSeconds * 1000,
    attestationType: settings.attestation,
    excludeCredentials: existing.map((c) => ({ id: c.id, transports: knownTransports(c.transports) })),
    authenticatorSelection: { residentKey: "required", userVerification: settings.userVerification },
  });
}

// ── Verification ──

/** Why a response was refused, for the log; the user is told only that it could not be verified. */
export type Refusal = { ok: false; reason: string };

export interface VerifiedRegistration {
  ok: true;
  credential: { id: string; publicKey: string; counter: number; transports: string[] };
  deviceType: "singleDevice" | "multiDevice";
  backedUp: boolean;
  userVerified: boolean;
  fmt: string;
  aaguid: string;
}

/** A registration response checked against the challenge, the origin and the RP ID (and the attestation, by its format). */
export async function verifyRegistration(
  response: RegistrationResponseJSON,
  expected: { challenge: string; rp: RelyingParty; requireUserVerification: boolean },
): Promise<VerifiedRegistration | Refusal> {
  const { verifyRegistrationResponse } = await webauthn();
  try {
    const result = await verifyRegistrationResponse({
      response,
      expectedChallenge: expected.challenge,
      expectedOrigin: expected.rp.origin,
      expectedRPID: expected.rp.id,
      requireUserVerification: expected.requireUserVerification,
    });
    if (!result.verified) return { ok: false, reason: "the attestation statement did not verify" };
    const info = result.registrationInfo;
    return {
      ok: true,
      credential: {
        id: info.credential.id,
        publicKey: base64url(info.credential.publicKey),
        counter: info.credential.counter,
        transports: knownTransports(response.response.transports),
      },
      deviceType: info.credentialDeviceType,
      backedUp: info.credentialBackedUp,
      userVerified: info.userVerified,
      fmt: info.fmt,
      aaguid: info.aaguid,
    };
  } catch (error) {
    return { ok: false, reason: errorText(error) };
  }
}

export interface VerifiedAssertion {
  ok: true;
  /** The authenticator's signature counter in this assertion; judged by the compare-and-swap in D1 (C7). */
  counter: number;
  userVerified: boolean;
  deviceType: "singleDevice" | "multiDevice";
  backedUp: boolean;
}

/**
 * An authentication response checked against the challenge, origin, RP ID, user verification and the stored public
 * key; the user handle, when sent, must name the credential's owner.
 *
 * The counter is not judged here: the library is given 0 as the stored counter, so it never refuses on the counter,
 * and it checks the counter before the signature. The one counter rule is applied after the signature is known to be
 * good, by the compare-and-swap in D1 (db/passkeys.ts) — so a forged assertion can never be taken for a clone.
 */
export async function verifyAssertion(
  response: AuthenticationResponseJSON,
  expected: { challenge: string; rp: RelyingParty; requireUserVerification: boolean; credential: KnownCredential; userId: string },
): Promise<VerifiedAssertion | Refusal> {
  if (response.id !== expected.credential.id) return { ok: false, reason: "the response is for another credential" };
  const handle = response.response.userHandle;
  if (handle !== undefined && handle !== "" && handle !== userHandleOf(expected.userId)) {
    return { ok: false, reason: "the user handle does not name the credential's owner" };
  }
  const { verifyAuthenticationResponse } = await webauthn();
  try {
    const result = await verifyAuthenticationResponse({
      response,
      expectedChallenge: expected.challenge,
      expectedOrigin: expected.rp.origin,
      expectedRPID: expected.rp.id,
      requireUserVerification: expected.requireUserVerification,
      credential: {
        id: expected.credential.id,
        publicKey: new Uint8Array(base64urlDecode(expected.credential.publicKey)),
        counter: 0,
        transports: knownTransports(expected.credential.transports),
      },
    });
    if (!result.verified) return { ok: false, reason: "the signature did not verify" };
    const info = result.authenticationInfo;
    return { ok: true, counter: info.newCounter, userVerified: info.userVerified, deviceType: info.credentialDeviceType, backedUp: info.credentialBackedUp };
  } catch (error) {
    return { ok: false, reason: errorText(error) };
  }
}

/**
 * RFC 8176 §2 `amr` of a passkey sign-in: proof of possession of a key — `hwk` (hardware-secured) for a device-bound
 * passkey, `swk` (software-secured) for one its provider syncs between devices (backup eligible, WebAuthn §6.1.3:
 * the key exists outside any one piece of hardware) — and `user` (user presence, which WebAuthn always tests), plus
 * `mfa` when the authenticator verified the user (PIN or biometric): the key and that verification are two factors.
 * The acr classes each meets are in oauth/acr.ts.
 */
export function passkeyAmr(assertion: { userVerified: boolean; deviceType: "singleDevice" | "multiDevice" }): string[] {
  const key = assertion.deviceType === "multiDevice" ? "swk" : "hwk";
  return assertion.userVerified ? [key, "user", "mfa"] : [key, "user"];
}

/** Whether email-link sign-in is open to a user, by the EMAIL_LINK_SIGN_IN setting and how many passkeys they have. */
export function emailLinkAllowed(setting: "always" | "without_passkey", passkeyCount: number): boolean {
  return setting === "always" || passkeyCount === 0;
}

/**
 * Whether a user may delete one of their passkeys: always while email-link sign-in is open to everyone; with
 * EMAIL_LINK_SIGN_IN=without_passkey their last passkey is their last way in, so it stays (an admin can still remove it).
 */
export function mayDeletePasskey(setting: "always" | "without_passkey", passkeyCount: number): boolean {
  return !keepsLastPasskey(setting) || passkeyCount > 1;
}

/** Whether a user's last passkey is kept from deletion (the count is checked in the deleting statement itself). */
export function keepsLastPasskey(setting: "always" | "without_passkey"): boolean {
  return setting === "without_passkey";
}

/** A passkey's name as the user types it: trimmed, control characters out, at most 64 characters; empty means unnamed. */
export function passkeyName(input: string | undefined): string | null {
  const cleaned = (input ?? "").replace(/[\u0000-\u001f\u007f]/g, " ").trim().slice(0, 64);
  return cleaned === "" ? null : cleaned;
}
