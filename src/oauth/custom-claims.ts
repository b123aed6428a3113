/**
 * The rules of the claims an admin adds to a user (groups and custom claims) and of a client's registration for them
 * (`extra_claims`). Pure. A custom claim can never take the place of a claim with a meaning of its own: registered
 * names are refused, whatever their case.
 */

/** 1 to 100 characters, starting with a letter: `department`, `employee_id`, `https://example.com/roles`. */
export const CUSTOM_CLAIM_NAME = /^[A-Za-z][A-Za-z0-9_.:/-]{0,99}$/;

/**
 * Names with a meaning of their own: the IANA JSON Web Token Claims registry (RFC 7519 §4.1, OIDC Core §2 and §5.1,
 * RFC 8693, RFC 9068, RFC 9449, RFC 8176 …), the OIDC aggregated-claims members, and the members of this OP's own
 * access tokens. Compared in lower case.
 */
const RESERVED = new Set([
  // RFC 7519 §4.1
  "iss", "sub", "aud", "exp", "nbf", "iat", "jti",
  // OIDC Core §2, §3.3.2.11, §5.1, §5.6.2; Front-/Back-Channel Logout
  "auth_time", "nonce", "acr", "amr", "azp", "at_hash", "c_hash", "s_hash", "sid", "sub_jwk", "_claim_names", "_claim_sources",
  "name", "given_name", "family_name", "middle_name", "nickname", "preferred_username", "profile", "picture", "website", "email",
  "email_verified", "gender", "birthdate", "zoneinfo", "locale", "phone_number", "phone_number_verified", "address", "updated_at",
  "events",
  // RFC 7800, RFC 8693, RFC 9068 (with RFC 7643's groups, roles, entitlements), RFC 9449, RFC 7662
  "cnf", "act", "may_act", "scope", "client_id", "groups", "roles", "entitlements", "htm", "htu", "ath", "token_type", "active",
  // Other registered names a relying party may act on
  "typ", "txn", "toe", "vot", "vtm", "orig", "dest", "mky", "attest", "origid", "jcard", "at_use_nbr", "div", "opt", "vc", "vp",
  "sph", "ace_profile", "cnonce", "exi", "rph", "nonce_hash", "sip_from_tag", "sip_date", "sip_callid", "sip_cseq_num", "sip_via_branch",
  // This OP's access tokens (src/oauth/tokens.ts)
  "gid",
]);

export function isReservedClaimName(name: string): boolean {
  return RESERVED.has(name.toLowerCase());
}

/** Why `name` cannot be a custom claim, or null when it can. */
export function customClaimNameProblem(name: string): string | null {
  if (!CUSTOM_CLAIM_NAME.test(name)) return "must be 1 to 100 characters of A-Z a-z 0-9 _ . : / -, starting with a letter";
  if (isReservedClaimName(name)) return "is a registered claim name and cannot be a custom claim";
  return null;
}

export const MAX_CUSTOM_CLAIMS = 20;
/** The claims object as stored (its JSON text, UTF-8): each one travels in every ID token and userinfo answer that carries it. */
export const MAX_CUSTOM_CLAIMS_BYTES = 4096;
const MAX_STRING = 1000;
const MAX_ARRAY = 50;
const MAX_OBJECT_MEMBERS = 20;
const MAX_DEPTH = 3;

/** Why `value` cannot be a custom claim's value, or null: a JSON string, finite number, boolean, or a small array or object of those. */
function valueProblem(value: unknown, depth: number): string | null {
  if (typeof value === "string") return value.length <= MAX_STRING ? null : `must be at most ${MAX_STRING} characters`;
  if (typeof value === "boolean") return null;
  if (typeof value === "number") return Number.isFinite(value) ? null : "must be a finite number";
  if (value === null) return "must not be null (remove the claim instead)";
  if (depth >= MAX_DEPTH) return `must not nest more than ${MAX_DEPTH} levels`;
  if (Array.isArray(value)) {
    if (value.length > MAX_ARRAY) return `must have at most ${MAX_ARRAY} entries`;
    for (const [i, item] of value.entries()) {
      const problem = valueProblem(item, depth + 1);
      if (problem) return `${i}: ${problem}`;
    }
    return null;
  }
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>);
    if (entries.length > MAX_OBJECT_MEMBERS) return `must have at most ${MAX_OBJECT_MEMBERS} members`;
    for (const [key, item] of entries) {
      if (key.length === 0 || key.length > 100) return "member names must be 1 to 100 characters";
      const problem = valueProblem(item, depth + 1);
      if (problem) return `${key.slice(0, 40)}: ${problem}`;
    }
    return null;
  }
  return "must be a JSON string, number, boolean, array or object";
}

/** Why `claims` cannot be a user's custom claims, or null: at most 20 members with valid names and values, 4 KiB in all. */
export function customClaimsProblem(claims: Record<string, unknown>): string | null {
  const entries = Object.entries(claims);
  if (entries.length > MAX_CUSTOM_CLAIMS) return `has more than ${MAX_CUSTOM_CLAIMS} claims`;
  for (const [name, value] of entries) {
    const nameProblem = customClaimNameProblem(name);
    if (nameProblem) return `${name.slice(0, 40)}: ${nameProblem}`;
    const problem = valueProblem(value, 1);
    if (problem) return `${name}: ${problem}`;
  }
  const bytes = new TextEncoder().encode(JSON.stringify(claims)).byteLength;
  if (bytes > MAX_CUSTOM_CLAIMS_BYTES) return `is ${bytes} bytes as JSON, more than ${MAX_CUSTOM_CLAIMS_BYTES}`;
  return null;
}

export const MAX_GROUPS = 100;
const GROUP = /^(?!\s)(?!.*\s$)[^\u0000-\u001f\u007f]{1,128}$/;

/** Why `groups` cannot be a user's groups, or null: at most 100 distinct names of 1 to 128 characters. */
export function groupsProblem(groups: string[]): string | null {
  if (groups.length > MAX_GROUPS) return `has more than ${MAX_GROUPS} groups`;
  for (const [i, group] of groups.entries()) {
    if (!GROUP.test(group)) return `${i}: must be 1 to 128 characters, without control characters or spaces at either end`;
  }
  if (new Set(groups).size !== groups.length) return "must not name a group twice";
  return null;
}
