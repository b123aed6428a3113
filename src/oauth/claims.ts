import type { User } from "../db/users";
import { isReservedClaimName } from "./custom-claims";
import type { AcrRequest } from "./acr";
import { invalidRequest } from "./errors";

/**
 * Which user claims a client may see: by scope (OIDC Core §5.4) and by the `claims` request parameter (§5.5).
 * Pure rules; the claim values come from D1.
 */

export const SCOPE_CLAIMS: Record<string, readonly string[]> = {
  profile: [
    "name", "family_name", "given_name", "middle_name", "nickname", "preferred_username",
    "profile", "picture", "website", "gender", "birthdate", "zoneinfo", "locale", "updated_at",
  ],
  email: ["email", "email_verified"],
  address: ["address"],
  phone: ["phone_number", "phone_number_verified"],
  // The groups an admin put the user in (admin API).
  groups: ["groups"],
};

export const SUPPORTED_SCOPES = ["openid", "profile", "email", "address", "phone", "groups", "offline_access"] as const;
/** The user claims this OP holds (OIDC Core §5.1, and the admin's `groups`): exactly the members of `userClaimValues` besides custom claims, so discovery lists no claim it cannot return. */
export const USER_CLAIMS = ["name", "given_name", "family_name", "preferred_username", "picture", "locale", "zoneinfo", "updated_at",
  "email", "email_verified", "phone_number", "phone_number_verified", "address", "groups"] as const;
export const SUPPORTED_CLAIMS = ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "sid", "at_hash",
  ...USER_CLAIMS] as const;

/**
 * A validated `claims` request: for each target, the names of the claims asked for, and the two requests about the
 * ID token the OP must honour (§5.5.1): which user it is about, and which authentication context class. Other
 * `value`/`values`/`essential` members are advisory here.
 */
export interface ClaimsRequest {
  userinfo: string[];
  id_token: string[];
  /** `id_token.sub.value` (§5.5.1): the only user the ID token may be about. */
  idTokenSub: string | null;
  /** `id_token.acr` (§5.5.1.1): the classes asked for, by `value` or `values` (none named: any), and whether essential. */
  idTokenAcr: AcrRequest | null;
}

const MAX_ACR_VALUES = 20;

/** §5.5.1: `value` is one string, `values` a list of them; `essential` is a boolean. */
function idTokenMember(name: string, spec: Record<string, unknown> | null, out: ClaimsRequest): void {
  if (name !== "sub" && name !== "acr") return;
  const { value, values, essential } = spec ?? {};
  if (value !== undefined && typeof value !== "string") throw invalidRequest(`claims.id_token.${name}.value must be a string`);
  if (essential !== undefined && typeof essential !== "boolean") throw invalidRequest(`claims.id_token.${name}.essential must be true or false`);
  if (name === "sub") {
    out.idTokenSub = value ?? null;
    return;
  }
  if (values !== undefined && (!Array.isArray(values) || values.length > MAX_ACR_VALUES || !values.every((v) => typeof v === "string"))) {
    throw invalidRequest(`claims.id_token.acr.values must be a list of at most ${MAX_ACR_VALUES} strings`);
  }
  out.idTokenAcr = { values: value !== undefined ? [value] : ((values as string[] | undefined) ?? []), essential: essential === true };
}

/** Parses and validates the `claims` parameter (OIDC Core §5.5). Malformed JSON or shape → invalid_request. */
export function parseClaimsRequest(raw: string | null | undefined): ClaimsRequest | null {
  if (raw === null || raw === undefined || raw === "") return null;
  if (raw.length > 4096) throw invalidRequest("claims is too large");
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw invalidRequest("claims is not valid JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw invalidRequest("claims must be a JSON object");
  const out: ClaimsRequest = { userinfo: [], id_token: [], idTokenSub: null, idTokenAcr: null };
  for (const target of ["userinfo", "id_token"] as const) {
    const member = (parsed as Record<string, unknown>)[target];
    if (member === undefined || member === null) continue;
    if (typeof member !== "object" || Array.isArray(member)) throw invalidRequest(`claims.${target} must be a JSON object`);
    for (const [name, spec] of Object.entries(member as Record<string, unknown>)) {
      if (spec !== null && (typeof spec !== "object" || Array.isArray(spec))) throw invalidRequest(`claims.${target}.${name.slice(0, 40)} must be null or an object`);
      out[target].push(name);
      if (target === "id_token") idTokenMember(name, spec as Record<string, unknown> | null, out);
    }
  }
  return out;
}

/**
 * The user claims the scopes of `scope` cover (OIDC Core §5.4). A client's `extra_claims` (custom claims an admin
 * registered it for) are part of the profile: covered by `profile`, like the standard profile claims.
 */
function scopeClaimNames(scope: string, extraClaims: readonly string[]): Set<string> {
  const names = new Set<string>();
  const scopes = scope.split(" ");
  for (const s of scopes) for (const claim of SCOPE_CLAIMS[s] ?? []) names.add(claim);
  if (scopes.includes("profile")) for (const claim of extraClaims) names.add(claim);
  return names;
}

/**
 * Which user claims a client's ID tokens carry (the client's `id_token_claims` registration member):
 * - "scope" (the default): the claims of the granted scopes, as userinfo returns them. OIDC Core §5.4 allows it, and
 *   RPs that build their user from the ID token (Auth.js, express-openid-connect, passport) need it;
 * - "minimal": only the claims the `claims` request's id_token member names (§5.4: with an access token issued, the
 *   scope claims are otherwise for userinfo).
 */
export const ID_TOKEN_CLAIMS = ["scope", "minimal"] as const;
export type IdTokenClaims = (typeof ID_TOKEN_CLAIMS)[number];

/**
 * Claims released for `target`. The granted scope is what the user consented to, so it bounds both targets: the
 * `claims` request (OIDC Core §5.5) selects among the claims of the granted scopes and never adds others (C17).
 * - userinfo: the claims of the granted scopes (a userinfo member can only name claims these already cover);
 * - id_token: the same, or with `minimal` only those the id_token member names (ID_TOKEN_CLAIMS).
 */
export function releasedClaimNames(
  grantedScope: string,
  claimsRequest: ClaimsRequest | null,
  target: "userinfo" | "id_token",
  idTokenClaims: IdTokenClaims = "scope",
  /** The client's `extra_claims`: custom claims it may receive, with `profile`. */
  extraClaims: readonly string[] = [],
): Set<string> {
  const granted = scopeClaimNames(grantedScope, extraClaims);
  if (target === "userinfo" || idTokenClaims === "scope") return granted;
  return new Set((claimsRequest?.id_token ?? []).filter((claim) => granted.has(claim)));
}

/** A claim's value: standard claims are strings, numbers, booleans and the address object; groups and custom claims any small JSON value. */
export type ClaimValue = string | number | boolean | readonly unknown[] | { readonly [member: string]: unknown };

/** Filters a user's claims (already in OIDC names) to the released set, dropping absent values. `sub` is always there. */
export function filterClaims(sub: string, all: Record<string, ClaimValue | null>, released: Set<string>) {
  const out: Record<string, ClaimValue> = { sub };
  for (const name of released) {
    const value = all[name];
    if (value !== null && value !== undefined) out[name] = value;
  }
  return out;
}

/** The validated `claims` request stored with a grant; a stored value that no longer parses releases nothing extra. */
export function storedClaimsRequest(raw: string | null): ClaimsRequest | null {
  try {
    return parseClaimsRequest(raw);
  } catch {
    return null;
  }
}

const ADDRESS_MEMBERS = ["formatted", "street_address", "locality", "region", "postal_code", "country"] as const;

/**
 * A D1 user in OIDC Core §5.1 claim names, with `groups` and the custom claims. Absent values are null (and never
 * released). A custom claim can never stand for a standard one: registered names are refused when they are set, and
 * skipped here too.
 */
export function userClaimValues(user: User): Record<(typeof USER_CLAIMS)[number], ClaimValue | null> & Record<string, ClaimValue | null> {
  const custom: Record<string, ClaimValue> = {};
  for (const [name, value] of Object.entries(user.claims ?? {})) {
    if (!isReservedClaimName(name) && value !== null && value !== undefined) custom[name] = value as ClaimValue;
  }
  let address: Record<string, string> | null = null;
  if (user.address && typeof user.address === "object") {
    address = {};
    for (const member of ADDRESS_MEMBERS) {
      const value = (user.address as Record<string, unknown>)[member];
      if (typeof value === "string" && value !== "") address[member] = value;
    }
    if (Object.keys(address).length === 0) address = null;
  }
  return {
    ...custom,
    groups: user.groups && user.groups.length > 0 ? user.groups : null,
    name: user.name,
    given_name: user.givenName,
    family_name: user.familyName,
    preferred_username: user.preferredUsername,
    picture: user.picture,
    locale: user.locale,
    zoneinfo: user.zoneinfo,
    // §5.1: seconds since the epoch.
    updated_at: Math.floor(user.updatedAt / 1000),
    email: user.email,
    email_verified: user.emailVerified,
    phone_number: user.phoneNumber,
    phone_number_verified: user.phoneNumber ? user.phoneNumberVerified : null,
    address,
  };
}
