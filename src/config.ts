import type { Env } from "./env";
import { isLoopbackUrl } from "./lib/loopback";

/**
 * Every setting of the OP, with its default. The one module that reads settings from the environment:
 * each can be overridden by a wrangler var (or secret) of the same name.
 */
export interface Config {
  /** Issuer identifier; empty means "the origin the request arrived on" (local development). */
  issuer: string;
  /** "dev" works only on a loopback issuer (see isLocalIssuer); a deployed OP sets "http". */
  emailTransport: "dev" | "http";
  adminToken: string;
  /** Lifetimes in seconds. */
  authCodeTtl: number;
  accessTokenTtl: number;
  idTokenTtl: number;
  refreshTokenTtl: number;
  sessionTtl: number;
  sessionIdleTtl: number;
  magicLinkTtl: number;
  /** A pending authorization request while the user signs in and consents: long enough to read the email and follow the link. */
  interactionTtl: number;
  passkeyChallengeTtl: number;
  sessionTokenTtl: number;
  parTtl: number;
  dpopProofWindow: number;
  /** Signing keys: a key signs for `keyRotationInterval`, then stays published for `keyOverlap` so its tokens still verify (C19). */
  keyRotationInterval: number;
  keyOverlap: number;
  /** How long the Worker keeps JWKS and the current key in isolate memory. */
  keyCacheTtl: number;
  defaultSigningAlg: "RS256" | "ES256";
  /** Number of objects a kind of single-use value is spread over. A value's shard is part of its identifier. */
  shardCount: number;
  /** Audit outbox delivery: exponential backoff from base to max; after maxAttempts an event is dead-lettered (C4). */
  auditRetryBase: number;
  auditRetryMax: number;
  auditMaxAttempts: number;
  auditRetentionDays: number;
  /** Rate limits: requests per window (seconds). */
  rateLimitWindow: number;
  rateLimitToken: number;
  rateLimitAuthorize: number;
  rateLimitLogin: number;
  rateLimitAdmin: number;
  /** HTTP email API used when emailTransport is "http". */
  emailApiUrl: string;
  emailApiKey: string;
  emailFrom: string;
  /** Passkeys (WebAuthn): the name authenticators show for this OP; empty means the issuer's host. */
  passkeyRpName: string;
  /** WebAuthn user verification asked of authenticators; "required" refuses a passkey sign-in without it. */
  passkeyUserVerification: "preferred" | "required" | "discouraged";
  /** WebAuthn attestation conveyance at registration: "none" (the default) or "direct" (verified, recorded in the audit). */
  passkeyAttestation: "none" | "direct";
  /** Email-link sign-in: "always", or "without_passkey" — only for users who have no passkey yet. */
  emailLinkSignIn: "always" | "without_passkey";
  /** Passkey ceremonies started (challenges created) per client address per window. */
  rateLimitPasskey: number;
}

const DEFAULTS: Config = {
  issuer: "",
  emailTransport: "dev",
  adminToken: "",
  authCodeTtl: 60,
  accessTokenTtl: 600,
  idTokenTtl: 3600,
  refreshTokenTtl: 30 * 86400,
  sessionTtl: 14 * 86400,
  sessionIdleTtl: 3 * 86400,
  magicLinkTtl: 900,
  interactionTtl: 30 * 60,
  passkeyChallengeTtl: 300,
  sessionTokenTtl: 60,
  parTtl: 60,
  dpopProofWindow: 300,
  keyRotationInterval: 30 * 86400,
  keyOverlap: 7 * 86400,
  keyCacheTtl: 60,
  defaultSigningAlg: "RS256",
  shardCount: 16,
  auditRetryBase: 5,
  auditRetryMax: 3600,
  auditMaxAttempts: 12,
  auditRetentionDays: 400,
  rateLimitWindow: 60,
  rateLimitToken: 300,
  rateLimitAuthorize: 120,
  rateLimitLogin: 10,
  rateLimitAdmin: 300,
  emailApiUrl: "",
  emailApiKey: "",
  emailFrom: "no-reply@localhost",
  passkeyRpName: "",
  passkeyUserVerification: "preferred",
  passkeyAttestation: "none",
  emailLinkSignIn: "always",
  rateLimitPasskey: 60,
};

/** camelCase setting name → the env var that overrides it (`authCodeTtl` → `AUTH_CODE_TTL`). */
function varName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

const cache = new WeakMap<object, Config>();

export function loadConfig(env: Env): Config {
  const cached = cache.get(env);
  if (cached) return cached;
  const vars = env as unknown as Record<string, unknown>;
  const config = { ...DEFAULTS } as Record<string, unknown>;
  for (const [key, fallback] of Object.entries(DEFAULTS)) {
    const raw = vars[varName(key)];
    if (raw === undefined || raw === null || raw === "") continue;
    if (typeof fallback === "number") {
      const n = Number(raw);
      // Lifetimes, limits and counts are whole numbers of seconds or items.
      if (!Number.isSafeInteger(n) || n < 0) throw new Error(`setting ${varName(key)} must be a non-negative integer`);
      config[key] = n;
    } else {
      config[key] = String(raw);
    }
  }
  const result = config as unknown as Config;
  if (result.emailTransport !== "dev" && result.emailTransport !== "http") {
    throw new Error("setting EMAIL_TRANSPORT must be dev or http");
  }
  if (result.defaultSigningAlg !== "RS256" && result.defaultSigningAlg !== "ES256") {
    throw new Error("setting DEFAULT_SIGNING_ALG must be RS256 or ES256");
  }
  if (!["preferred", "required", "discouraged"].includes(result.passkeyUserVerification)) {
    throw new Error("setting PASSKEY_USER_VERIFICATION must be preferred, required or discouraged");
  }
  if (result.passkeyAttestation !== "none" && result.passkeyAttestation !== "direct") {
    throw new Error("setting PASSKEY_ATTESTATION must be none or direct");
  }
  if (result.emailLinkSignIn !== "always" && result.emailLinkSignIn !== "without_passkey") {
    throw new Error("setting EMAIL_LINK_SIGN_IN must be always or without_passkey");
  }
  if (result.passkeyRpName.length > 64) throw new Error("setting PASSKEY_RP_NAME must be at most 64 characters");
  cache.set(env, result);
  return result;
}

/** The issuer identifier for a request: the configured one, or (local development) the origin the request came to. */
export function issuerOf(env: Env, request: Request): string {
  const configured = loadConfig(env).issuer;
  return configured !== "" ? configured.replace(/\/$/, "") : new URL(request.url).origin;
}

/**
 * Whether an issuer is a loopback origin (http or https on localhost, 127.0.0.1 or [::1]): local development and
 * tests. Only there do the `dev` email transport and its unauthenticated mailbox work — anywhere else the mailbox
 * would hand anyone's sign-in link to anyone.
 */
export function isLocalIssuer(issuer: string): boolean {
  return isLoopbackUrl(issuer);
}
