import type { Env } from "./env";
import { isLoopbackHostname, isLoopbackUrl } from "./lib/loopback";

/**
 * Every setting of the OP (defaults and rules: SETTINGS below). The one module that reads settings from the
 * environment: each can be overridden by a wrangler var (or secret) of the same name, and each value is checked —
 * here for the Worker (config-guard.ts) and, by this same code, by `npm start` before it starts anything.
 */
export interface Config {
  /** Issuer identifier; empty means "the origin the request arrived on", for a loopback request only (issuerOf). */
  issuer: string;
  /** "dev" works only on a loopback issuer (see isLocalIssuer); a deployed OP sets "http". */
  emailTransport: "dev" | "http";
  adminToken: string;
  /** A second admin token accepted beside `adminToken` while callers move to it (rotation; docs/operations.md). */
  adminTokenNext: string;
  /** Who may get an account at first sign-in: anyone, addresses of `signupDomains`, or only users an admin created. */
  signupPolicy: "open" | "domains" | "invite";
  /** With `signupPolicy` "domains": the email domains, lower-case, comma-separated ("example.com,example.org"). */
  signupDomains: string;
  /** Dynamic client registration (RFC 7591/7592): off, with the initial access token, or open to anyone. */
  dynamicRegistration: "off" | "token" | "open";
  /** RFC 7591 §3: the initial access token `POST /register` requires when `dynamicRegistration` is "token". */
  initialAccessToken: string;
  /** Lifetimes in seconds. */
  authCodeTtl: number;
  accessTokenTtl: number;
  idTokenTtl: number;
  refreshTokenTtl: number;
  /**
   * Seconds after a rotation within which the rotated refresh token, presented again by the same client (and key), is
   * answered with the same successor: a retry after a lost answer (RFC 9700 §4.14.2 allows the strict 0, the default).
   */
  refreshTokenReuseInterval: number;
  sessionTtl: number;
  sessionIdleTtl: number;
  magicLinkTtl: number;
  /** A pending authorization request while the user signs in and consents: long enough to read the email and follow the link. */
  interactionTtl: number;
  passkeyChallengeTtl: number;
  sessionTokenTtl: number;
  /** How long a pushed authorization request's `request_uri` can be used (RFC 9126 §2.2 `expires_in`). */
  parTtl: number;
  /** How far a DPoP proof's `iat` may lie in the past (RFC 9449 §11.1); its jti is remembered as long (C10). */
  dpopProofWindow: number;
  /**
   * The key of the DPoP server nonces (RFC 9449 §8, §9): a nonce is an HMAC of a minute under it, so every isolate
   * can issue and check nonces without storage. Empty: the OP asks for no nonces.
   */
  dpopNonceSecret: string;
  /** RFC 9126 §5: every client must push its authorization requests (besides clients that require it themselves). */
  requirePushedAuthorizationRequests: boolean;
  /** RFC 9101 / OIDC Core §6.1: accept request objects with `alg: none` (they prove nothing; off by default). */
  allowUnsignedRequestObjects: boolean;
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
  /**
   * Back-channel logout notices (C21): each POST to an RP waits at most `backchannelLogoutTimeout` seconds; a failed
   * one is retried with exponential backoff from base to max; after maxAttempts it is dead-lettered.
   */
  backchannelLogoutTimeout: number;
  backchannelLogoutRetryBase: number;
  backchannelLogoutRetryMax: number;
  backchannelLogoutMaxAttempts: number;
  /** Rate limits: requests per window (seconds). */
  rateLimitWindow: number;
  rateLimitToken: number;
  rateLimitAuthorize: number;
  rateLimitLogin: number;
  rateLimitAdmin: number;
  rateLimitRegistration: number;
  /** HTTP email API used when emailTransport is "http". */
  emailApiUrl: string;
  emailApiKey: string;
  emailFrom: string;
  /** The longest a `private_key_jwt` client assertion may live (exp − iat, and exp − now); its jti is remembered until exp (C10). */
  clientAssertionMaxLifetime: number;
  /**
   * Whether the `CF-Connecting-IP` request header names the caller (Cloudflare's edge sets it on every request). Off:
   * the header is ignored and every caller shares one per-address rate-limit bucket.
   */
  trustCfConnectingIp: boolean;
  /** Sign-in emails sent to one address per day (UTC), on top of `rateLimitLogin` per window. */
  loginEmailsPerDay: number;
  /** What access tokens (RFC 9068) are signed with: RS256, which every resource server verifies, or the cheaper ES256. */
  accessTokenSigningAlg: "RS256" | "ES256";
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
  /** The operator's name on every page and in the email; empty means the issuer's host. */
  brandName: string;
  /** An https image shown beside the name; empty means none. */
  brandLogoUrl: string;
  /** The colour of buttons and links, `#rrggbb`; empty means the default. */
  brandColor: string;
  /** Where users get help: an email address or an https URL, on every page; empty means none. */
  brandSupport: string;
  /** The language of pages and email when neither ui_locales nor Accept-Language names one the OP has. */
  defaultLanguage: "en" | "ja";
}

/** One setting that breaks its rule. */
export interface SettingProblem {
  /** The var's name, e.g. `AUTH_CODE_TTL`. */
  setting: string;
  /** What is allowed, e.g. `must be a whole number of seconds between 10 and 600`. Never holds the value. */
  rule: string;
  /** The one line for a person: `AUTH_CODE_TTL=abc: must be a whole number of seconds between 10 and 600`. A secret's value is never in it. */
  message: string;
}

/** Thrown by `loadConfig` when a setting breaks its rule: every problem, each with its one-line message. */
export class ConfigError extends Error {
  override readonly name = "ConfigError";

  constructor(readonly problems: readonly SettingProblem[]) {
    super(problems.map((p) => p.message).join("; "));
  }
}

type Parsed<T> = { ok: true; value: T } | { ok: false; rule?: string };

/** A setting: its var name, default, rule (as the docs and messages state it) and parser. */
export interface SettingSpec {
  /** camelCase key in Config. */
  key: keyof Config;
  /** The var (or secret) that sets it: `AUTH_CODE_TTL`. */
  name: string;
  default: string | number | boolean;
  /** Secrets are never shown, in messages, logs or pages. */
  secret: boolean;
  /** What is allowed, starting with "must": `must be a whole number of seconds between 10 and 600`. */
  rule: string;
  parse(text: string): Parsed<string | number | boolean>;
}

/** The rule that a value breaks can be more precise than the setting's whole rule (e.g. "must use https"). */
type Rule = { rule: string; parse(text: string): Parsed<string | number | boolean> };

const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });
const refused = (rule?: string): Parsed<never> => (rule === undefined ? { ok: false } : { ok: false, rule });

/** A whole number in a range; `offAtZero` also allows 0 (meaning "off"). */
function whole(unit: string, min: number, max: number, options: { offAtZero?: string } = {}): Rule {
  const of = unit === "" ? "" : ` of ${unit}`;
  const range = `a whole number${of} between ${min} and ${max}`;
  const rule = options.offAtZero ? `must be 0 (${options.offAtZero}) or ${range}` : `must be ${range}`;
  return {
    rule,
    parse(text) {
      if (!/^[0-9]{1,15}$/.test(text)) return refused();
      const n = Number(text);
      if (options.offAtZero && n === 0) return ok(0);
      return n >= min && n <= max ? ok(n) : refused();
    },
  };
}

/** On or off, written as wrangler vars are: true or false. */
function flag(): Rule {
  return { rule: "must be true or false", parse: (text) => (text === "true" ? ok(true) : text === "false" ? ok(false) : refused()) };
}

function oneOf(...choices: string[]): Rule {
  return { rule: `must be ${choices.slice(0, -1).join(", ")} or ${choices.at(-1)}`, parse: (text) => (choices.includes(text) ? ok(text) : refused()) };
}

/** An absolute https URL (http only on a loopback host), without user info. */
function httpsUrl(): Rule {
  return {
    rule: "must be an absolute https URL (http only on localhost, 127.0.0.1 or [::1]) without user info",
    parse(text) {
      let url: URL;
      try {
        url = new URL(text);
      } catch {
        return refused();
      }
      if (url.protocol !== "https:" && !(url.protocol === "http:" && isLoopbackHostname(url.hostname))) {
        return refused("must use https (http only on localhost, 127.0.0.1 or [::1])");
      }
      if (url.username !== "" || url.password !== "") return refused("must not hold user info (user:password@)");
      return ok(text);
    },
  };
}

/**
 * The issuer identifier (OIDC Core §2, RFC 8414 §2): the routes are served at the root, so it is an origin, written
 * exactly as the browser and every RP will compare it — `https://id.example.com`, no trailing slash.
 */
function issuerRule(): Rule {
  const url = httpsUrl();
  return {
    rule: "must be an https origin such as https://id.example.com (http only on localhost, 127.0.0.1 or [::1]): no path, no trailing /, no query, fragment or user info",
    parse(text) {
      const checked = url.parse(text);
      if (!checked.ok) return checked.rule === undefined ? refused() : checked;
      const origin = new URL(text).origin;
      if (text === origin) return ok(text);
      const { pathname, search, hash } = new URL(text);
      if (pathname !== "/" || search !== "" || hash !== "" || /[?#]/.test(text)) {
        return refused(`must be an origin only, with no path, query or fragment: ${origin}`);
      }
      return refused(`must be written as its bare origin, ${origin} (no trailing /, default port or capitals)`);
    },
  };
}

/**
 * A bearer secret: RFC 6750 b64token characters, which is also what a dotenv file and a header carry unchanged, and
 * at least 32 of them (`openssl rand -base64 32` gives 44): long enough that guessing it is hopeless even at the
 * rate limit.
 */
function bearerSecretRule(empty: string): Rule {
  return {
    rule: `must be empty (${empty}) or 32 to 512 characters of A-Z a-z 0-9 - . _ ~ + / =`,
    parse: (text) => (/^[A-Za-z0-9._~+/=-]{32,512}$/.test(text) ? ok(text) : refused()),
  };
}

/** Email domains, comma-separated: each a domain name with at least one dot; stored lower-case, without spaces. */
const domainListRule: Rule = {
  rule: "must be a comma-separated list of email domains such as example.com,example.org; required when SIGNUP_POLICY=domains",
  parse(text) {
    const domains = text.split(",").map((d) => d.trim().toLowerCase());
    const label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
    const domain = new RegExp(`^${label}(?:\\.${label})+$`);
    if (domains.length > 100 || !domains.every((d) => d.length <= 253 && domain.test(d))) return refused();
    return ok([...new Set(domains)].join(","));
  },
};

/** A MAC key: at least 32 characters (`openssl rand -base64 32` gives 44), as a dotenv file and a secret carry them. */
const macSecretRule: Rule = {
  rule: "must be empty (no DPoP server nonces) or 32 to 512 characters of A-Z a-z 0-9 - . _ ~ + / =",
  parse: (text) => (/^[A-Za-z0-9._~+/=-]{32,512}$/.test(text) ? ok(text) : refused()),
};

const apiKeyRule: Rule = {
  rule: "must be at most 1024 visible ASCII characters (no spaces)",
  parse: (text) => (/^[\x21-\x7e]{1,1024}$/.test(text) ? ok(text) : refused()),
};

/** `name@example.com` or `Display Name <name@example.com>`: one line, nothing that could add a header. */
const ADDRESS = /[^\s@<>()",;:\\[\]]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*/.source;
const PLAIN_ADDRESS = new RegExp(`^${ADDRESS}$`);
const NAMED_ADDRESS = new RegExp(`^[^<>"\\x00-\\x1f\\x7f]{1,100} <${ADDRESS}>$`);
const emailFromRule: Rule = {
  rule: "must be an email address (name@example.com) or Name <name@example.com>",
  parse: (text) => (text.length <= 320 && (PLAIN_ADDRESS.test(text) || NAMED_ADDRESS.test(text)) ? ok(text) : refused()),
};

/** What authenticators show as the OP's name: one line of visible text. */
const rpNameRule: Rule = {
  rule: "must be at most 64 characters of one line of text",
  parse: (text) => (text.length <= 64 && !/[\x00-\x1f\x7f]/.test(text) ? ok(text) : refused()),
};

/** `#rrggbb`: the only form the style sheet is given (it is written into the page's CSS). */
const colorRule: Rule = {
  rule: "must be a colour written #rrggbb",
  parse: (text) => (/^#[0-9a-fA-F]{6}$/.test(text) ? ok(text.toLowerCase()) : refused()),
};

/** A support contact: an address (a mailto: link) or an https page. */
const supportRule: Rule = {
  rule: "must be an email address (name@example.com) or an https URL",
  parse(text) {
    if (text.length <= 320 && PLAIN_ADDRESS.test(text)) return ok(text);
    const url = httpsUrl().parse(text);
    return url.ok && text.startsWith("https://") ? url : refused();
  },
};

const DAY = 86400;

/**
 * Every setting of the OP: var name, default, rule. Bounds are what makes sense for an OP, not what the code could
 * survive: a lifetime of 0 or of years is a typo, and is refused before anything runs (`npm start`) and on every
 * request of a deployed Worker (see config-guard.ts).
 */
const SPECS: ReadonlyArray<Omit<SettingSpec, "name" | "rule" | "parse" | "secret"> & Rule & { secret?: boolean }> = [
  { key: "issuer", default: "", ...issuerRule() },
  { key: "emailTransport", default: "dev", ...oneOf("dev", "http") },
  { key: "adminToken", default: "", secret: true, ...bearerSecretRule("admin API off") },
  { key: "adminTokenNext", default: "", secret: true, ...bearerSecretRule("no second token"), rule: `${bearerSecretRule("no second token").rule}; only with ADMIN_TOKEN set` },
  { key: "signupPolicy", default: "open", ...oneOf("open", "domains", "invite") },
  { key: "signupDomains", default: "", ...domainListRule },
  { key: "dynamicRegistration", default: "off", ...oneOf("off", "token", "open") },
  { key: "initialAccessToken", default: "", secret: true, ...bearerSecretRule("none"), rule: `${bearerSecretRule("none").rule}; required when DYNAMIC_REGISTRATION=token` },
  { key: "authCodeTtl", default: 60, ...whole("seconds", 10, 600) },
  { key: "accessTokenTtl", default: 600, ...whole("seconds", 60, DAY) },
  { key: "idTokenTtl", default: 3600, ...whole("seconds", 60, DAY) },
  { key: "refreshTokenTtl", default: 30 * DAY, ...whole("seconds", 3600, 365 * DAY) },
  { key: "refreshTokenReuseInterval", default: 0, ...whole("seconds", 0, 300) },
  { key: "clientAssertionMaxLifetime", default: 3600, ...whole("seconds", 60, 86400) },
  { key: "sessionTtl", default: 14 * DAY, ...whole("seconds", 300, 365 * DAY) },
  { key: "sessionIdleTtl", default: 3 * DAY, ...whole("seconds", 300, 365 * DAY) },
  { key: "magicLinkTtl", default: 900, ...whole("seconds", 60, 3600) },
  { key: "interactionTtl", default: 30 * 60, ...whole("seconds", 300, DAY) },
  { key: "passkeyChallengeTtl", default: 300, ...whole("seconds", 30, 600) },
  { key: "sessionTokenTtl", default: 60, ...whole("seconds", 10, 600) },
  { key: "parTtl", default: 60, ...whole("seconds", 10, 600) },
  { key: "dpopProofWindow", default: 300, ...whole("seconds", 10, 600) },
  { key: "dpopNonceSecret", default: "", secret: true, ...macSecretRule },
  { key: "requirePushedAuthorizationRequests", default: false, ...flag() },
  { key: "allowUnsignedRequestObjects", default: false, ...flag() },
  { key: "keyRotationInterval", default: 30 * DAY, ...whole("seconds", 3600, 365 * DAY, { offAtZero: "no automatic rotation" }) },
  { key: "keyOverlap", default: 7 * DAY, ...whole("seconds", 0, 365 * DAY) },
  { key: "keyCacheTtl", default: 60, ...whole("seconds", 0, 3600) },
  { key: "defaultSigningAlg", default: "RS256", ...oneOf("RS256", "ES256") },
  { key: "shardCount", default: 16, ...whole("", 1, 1024) },
  { key: "auditRetryBase", default: 5, ...whole("seconds", 1, 3600) },
  { key: "auditRetryMax", default: 3600, ...whole("seconds", 1, DAY) },
  { key: "auditMaxAttempts", default: 12, ...whole("attempts", 1, 100) },
  { key: "auditRetentionDays", default: 400, ...whole("days", 1, 3650) },
  { key: "backchannelLogoutTimeout", default: 5, ...whole("seconds", 1, 30) },
  { key: "backchannelLogoutRetryBase", default: 5, ...whole("seconds", 1, 3600) },
  { key: "backchannelLogoutRetryMax", default: 3600, ...whole("seconds", 1, DAY) },
  { key: "backchannelLogoutMaxAttempts", default: 12, ...whole("attempts", 1, 100) },
  { key: "rateLimitWindow", default: 60, ...whole("seconds", 1, 3600) },
  { key: "rateLimitToken", default: 300, ...whole("requests", 0, 1_000_000) },
  { key: "rateLimitAuthorize", default: 120, ...whole("requests", 0, 1_000_000) },
  { key: "rateLimitLogin", default: 10, ...whole("requests", 0, 1_000_000) },
  { key: "rateLimitAdmin", default: 300, ...whole("requests", 0, 1_000_000) },
  { key: "rateLimitRegistration", default: 20, ...whole("requests", 0, 1_000_000) },
  { key: "emailApiUrl", default: "", ...httpsUrl(), rule: `${httpsUrl().rule}; required when EMAIL_TRANSPORT=http` },
  { key: "emailApiKey", default: "", secret: true, ...apiKeyRule, rule: `${apiKeyRule.rule}; required when EMAIL_TRANSPORT=http` },
  { key: "emailFrom", default: "no-reply@localhost", ...emailFromRule },
  { key: "trustCfConnectingIp", default: true, ...flag() },
  { key: "loginEmailsPerDay", default: 20, ...whole("emails", 1, 1000) },
  { key: "accessTokenSigningAlg", default: "RS256", ...oneOf("RS256", "ES256") },
  { key: "passkeyRpName", default: "", ...rpNameRule },
  { key: "passkeyUserVerification", default: "preferred", ...oneOf("preferred", "required", "discouraged") },
  { key: "passkeyAttestation", default: "none", ...oneOf("none", "direct") },
  { key: "emailLinkSignIn", default: "always", ...oneOf("always", "without_passkey") },
  { key: "rateLimitPasskey", default: 60, ...whole("requests", 0, 1_000_000) },
  { key: "brandName", default: "", ...rpNameRule },
  { key: "brandLogoUrl", default: "", ...httpsUrl() },
  { key: "brandColor", default: "", ...colorRule },
  { key: "brandSupport", default: "", ...supportRule },
  { key: "defaultLanguage", default: "en", ...oneOf("en", "ja") },
];

/** camelCase setting name → the env var that overrides it (`authCodeTtl` → `AUTH_CODE_TTL`). */
function varName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase();
}

/** Every setting, in the order of the docs' table (docs/deployment.md): name, default, secret or not, rule. */
export const SETTINGS: readonly SettingSpec[] = SPECS.map((spec) => ({ secret: false, ...spec, name: varName(spec.key) }));

/** A var as a string: wrangler passes JSON vars (numbers, booleans) through as JSON values. */
function textOf(raw: unknown): string {
  return typeof raw === "string" ? raw : typeof raw === "number" ? String(raw) : JSON.stringify(raw);
}

/** The value as a message shows it: a secret never; anything odd (spaces at the ends, control characters) quoted. */
function shown(spec: SettingSpec, text: string): string {
  if (text === "") return "";
  if (spec.secret) return `(hidden, ${text.length} characters)`;
  if (spec.key === "emailApiUrl" || spec.key === "issuer") text = withoutCredentials(text);
  const cut = text.length > 100 ? `${text.slice(0, 100)}…` : text;
  return /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(text) ? cut : JSON.stringify(cut);
}

/** A URL as it may be shown: a password in its user info or a key in its query is not. */
function withoutCredentials(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return text.replace(/\/\/[^/]*@/, "//***@").replace(/\?.*/, "?***");
  }
  if (url.username === "" && url.password === "" && url.search === "") return text;
  const userinfo = url.username !== "" || url.password !== "" ? "***@" : "";
  return `${url.protocol}//${userinfo}${url.host}${url.pathname}${url.search === "" ? "" : "?***"}${url.hash}`;
}

function problem(spec: SettingSpec, text: string, rule: string): SettingProblem {
  return { setting: spec.name, rule, message: `${spec.name}=${shown(spec, text)}: ${rule}` };
}

/**
 * Reads every setting from `vars` (the Worker's env, or what `npm start` will hand it): each one's value (the
 * default where unset or empty) and the problems of those that break their rule. `scripts/start.mjs` runs this
 * very function before it starts anything.
 */
export function readSettings(vars: Record<string, unknown>): { config: Config; problems: SettingProblem[] } {
  const config: Record<string, unknown> = {};
  const problems: SettingProblem[] = [];
  const texts = new Map<string, string>();
  for (const spec of SETTINGS) {
    const raw = vars[spec.name];
    config[spec.key] = spec.default;
    if (raw === undefined || raw === null || raw === "") continue;
    const text = textOf(raw);
    texts.set(spec.name, text);
    const parsed = spec.parse(text);
    if (parsed.ok) config[spec.key] = parsed.value;
    else problems.push(problem(spec, text, parsed.rule ?? spec.rule));
  }
  const result = config as unknown as Config;
  const spec = (key: keyof Config) => SETTINGS.find((s) => s.key === key)!;
  const requires = (when: boolean, condition: string, ...keys: (keyof Config)[]) => {
    for (const key of keys) if (when && !texts.has(spec(key).name)) problems.push(problem(spec(key), "", `must be set when ${condition}`));
  };
  requires(result.emailTransport === "http", "EMAIL_TRANSPORT=http", "emailApiUrl", "emailApiKey");
  requires(result.signupPolicy === "domains", "SIGNUP_POLICY=domains", "signupDomains");
  requires(result.dynamicRegistration === "token", "DYNAMIC_REGISTRATION=token", "initialAccessToken");
  if (texts.has(spec("adminTokenNext").name) && !texts.has(spec("adminToken").name)) {
    problems.push(problem(spec("adminTokenNext"), texts.get(spec("adminTokenNext").name)!, "must be empty while ADMIN_TOKEN is empty (it is the token that comes next)"));
  }
  return { config: result, problems };
}

const cache = new WeakMap<object, Config>();

/** The settings of this Worker; throws a ConfigError (every broken rule, no secret in it) when one is invalid. */
export function loadConfig(env: Env): Config {
  const cached = cache.get(env);
  if (cached) return cached;
  const { config, problems } = readSettings(env as unknown as Record<string, unknown>);
  if (problems.length > 0) throw new ConfigError(problems);
  cache.set(env, config);
  return config;
}

const ISSUER_REQUIRED_RULE = "must be set (the https origin this OP is served on) to serve a host other than localhost, 127.0.0.1 or [::1]";

/** ISSUER unset, and a request arrived on a host that is not loopback: the OP refuses to serve it. */
export const ISSUER_REQUIRED: SettingProblem = { setting: "ISSUER", rule: ISSUER_REQUIRED_RULE, message: `ISSUER=: ${ISSUER_REQUIRED_RULE}` };

/**
 * The issuer identifier for a request: the configured one, or — only for a request that arrived on a loopback
 * origin (local development) — that origin. The issuer never comes from the Host header anywhere else: a forged
 * Host would otherwise put an attacker's origin into sign-in links and tokens.
 */
export function issuerOf(env: Env, request: Request): string {
  const configured = loadConfig(env).issuer;
  if (configured !== "") return configured;
  if (!isLoopbackUrl(request.url)) throw new ConfigError([ISSUER_REQUIRED]);
  return new URL(request.url).origin;
}

/**
 * Whether an issuer is a loopback origin (http or https on localhost, 127.0.0.1 or [::1]): local development and
 * tests. Only there do the `dev` email transport and its unauthenticated mailbox work — anywhere else the mailbox
 * would hand anyone's sign-in link to anyone.
 */
export function isLocalIssuer(issuer: string): boolean {
  return isLoopbackUrl(issuer);
}
