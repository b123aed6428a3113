import type { Client, ClientFields } from "../db/clients";
import { isLoopbackHostname } from "../lib/loopback";
import { OAuthError } from "./errors";
import * as z from "zod/mini";
import { ID_TOKEN_CLAIMS } from "./claims";
import { firstProblem } from "./schema";
import { parseScope } from "../lib/scope";
import { MAX_CUSTOM_CLAIMS, customClaimNameProblem } from "./custom-claims";
import { ASYMMETRIC_JWS_ALGS } from "./jws-algs";
import { FAPI2_REFRESH_RETRY_INTERVAL, SECURITY_PROFILES, fapi2RegistrationProblem } from "./security-profile";

/**
 * Client metadata rules (RFC 7591 §2), the one validator of the admin API and of dynamic registration. Pure: takes what an operator sent (and, for an update, the
 * client as stored) and returns the complete field set to store, or throws `invalid_client_metadata` /
 * `invalid_redirect_uri` (RFC 7591 §3.2.2). Metadata this OP does not understand is ignored (RFC 7591 §2).
 */

export const GRANT_TYPES = ["authorization_code", "refresh_token", "client_credentials"] as const;
export const RESPONSE_TYPES = ["code"] as const;
export const TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "private_key_jwt", "none"] as const;
export const ID_TOKEN_SIGNING_ALGS = ["RS256", "ES256"] as const;
/** OIDC Registration §2 `request_object_signing_alg`: an advertised asymmetric alg, or `none` (taken only when ALLOW_UNSIGNED_REQUEST_OBJECTS is on). */
export const REQUEST_OBJECT_SIGNING_ALGS = [...ASYMMETRIC_JWS_ALGS, "none"] as const;

export const DEFAULT_SCOPE = "openid profile email address phone offline_access";

const MAX_URIS = 20;
const MAX_URI_LENGTH = 2000;
const MAX_JWKS_KEYS = 10;
/** The longest a rotated refresh token may be answered again: a retry after a lost answer, not a second life. */
export const MAX_REUSE_INTERVAL = 300;

/** JWK members that only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1): never accepted in a client's JWKS. */
const PRIVATE_JWK_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/** RFC 8252 §7.1: a private-use scheme is a reversed domain name, so it has at least one dot ("com.example.app"). */
const PRIVATE_USE_SCHEME = /^[a-z][a-z0-9+-]*(\.[a-z0-9+-]+)+$/;
/** Schemes that run or embed content instead of navigating somewhere; refused even if they look reverse-DNS. */
const DANGEROUS_SCHEMES = new Set(["javascript", "data", "vbscript", "file", "blob", "about", "filesystem"]);

const text = (max: number) => z.string().check(z.maxLength(max, "is too long"));
const uriList = z.array(text(MAX_URI_LENGTH)).check(z.maxLength(MAX_URIS, `has more than ${MAX_URIS} entries`));
const jwkValue = z.union([text(4096), z.array(text(4096)).check(z.maxLength(10)), z.boolean(), z.number()]);
const jwks = z.object({
  keys: z
    .array(
      z.record(text(64), jwkValue).check(
        z.refine((jwk) => typeof jwk.kty === "string", "every key needs kty"),
        z.refine((jwk) => !PRIVATE_JWK_MEMBERS.some((m) => m in jwk), "must hold public keys only"),
      ),
    )
    .check(z.minLength(1, "must hold at least one key"), z.maxLength(MAX_JWKS_KEYS, `holds more than ${MAX_JWKS_KEYS} keys`)),
});

/**
 * What an operator may send (RFC 7591 names and those of the specs that register client metadata — RFC 9126 §6,
 * RFC 9449 §5.2, OIDC Registration §2 — plus `skip_consent`, `id_token_claims` and `security_profile`). Every member optional: on create the defaults
 * apply, on update the stored value stays. `null` clears a nullable member. Unknown members are stripped.
 */
export const clientMetadataSchema = z.object({
  client_name: z.optional(z.string().check(z.trim(), z.minLength(1, "must not be empty"), z.maxLength(200, "is too long"))),
  redirect_uris: z.optional(uriList),
  post_logout_redirect_uris: z.optional(uriList),
  grant_types: z.optional(z.array(z.enum(GRANT_TYPES)).check(z.maxLength(GRANT_TYPES.length * 2))),
  response_types: z.optional(z.array(z.enum(RESPONSE_TYPES)).check(z.maxLength(4))),
  token_endpoint_auth_method: z.optional(z.enum(TOKEN_ENDPOINT_AUTH_METHODS)),
  scope: z.optional(text(1000)),
  jwks: z.optional(z.nullable(jwks)),
  jwks_uri: z.optional(z.nullable(text(MAX_URI_LENGTH))),
  id_token_signed_response_alg: z.optional(z.nullable(z.enum(ID_TOKEN_SIGNING_ALGS))),
  skip_consent: z.optional(z.boolean()),
  backchannel_logout_uri: z.optional(z.nullable(text(MAX_URI_LENGTH))),
  backchannel_logout_session_required: z.optional(z.boolean()),
  refresh_token_reuse_interval: z.optional(z.nullable(z.int().check(z.minimum(0, "must be 0 or more"), z.maximum(MAX_REUSE_INTERVAL, `must be at most ${MAX_REUSE_INTERVAL} seconds`)))),
  id_token_claims: z.optional(z.enum(ID_TOKEN_CLAIMS)),
  require_pushed_authorization_requests: z.optional(z.boolean()),
  dpop_bound_access_tokens: z.optional(z.boolean()),
  request_object_signing_alg: z.optional(z.nullable(z.enum(REQUEST_OBJECT_SIGNING_ALGS))),
  security_profile: z.optional(z.nullable(z.enum(SECURITY_PROFILES))),
  logo_uri: z.optional(z.nullable(text(MAX_URI_LENGTH))),
  client_uri: z.optional(z.nullable(text(MAX_URI_LENGTH))),
  policy_uri: z.optional(z.nullable(text(MAX_URI_LENGTH))),
  tos_uri: z.optional(z.nullable(text(MAX_URI_LENGTH))),
  extra_claims: z.optional(z.array(text(100)).check(z.maxLength(MAX_CUSTOM_CLAIMS, `has more than ${MAX_CUSTOM_CLAIMS} entries`))),
});

/**
 * Who registers: an administrator (the admin API) or the client itself (dynamic registration, RFC 7591). Some members
 * are an operator's decision about other people's data or security and are refused from a client registering itself:
 * skipping the user's consent, receiving the users' custom claims, a reuse interval that softens theft detection.
 */
export type MetadataAuthor = "admin" | "client";
export const ADMIN_ONLY_MEMBERS = ["skip_consent", "extra_claims", "refresh_token_reuse_interval"] as const;

export type ClientMetadataInput = z.infer<typeof clientMetadataSchema>;

function metadataError(description: string): OAuthError {
  return new OAuthError("invalid_client_metadata", description.slice(0, 300));
}

function redirectError(description: string): OAuthError {
  return new OAuthError("invalid_redirect_uri", description.slice(0, 300));
}

/** Parses the JSON body; the first problem names the member, and redirect URI problems get their own code. */
export function parseClientMetadata(body: unknown, author: MetadataAuthor = "admin"): ClientMetadataInput {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw metadataError("the request body must be a JSON object");
  if (author === "client") {
    const adminOnly = ADMIN_ONLY_MEMBERS.find((member) => Object.hasOwn(body, member));
    if (adminOnly !== undefined) throw metadataError(`${adminOnly}: can only be set by an administrator`);
  }
  const result = clientMetadataSchema.safeParse(body);
  if (result.success) return result.data;
  const { path, text } = firstProblem(result.error, "metadata");
  const member = path[0];
  throw member === "redirect_uris" || member === "post_logout_redirect_uris" ? redirectError(text) : metadataError(text);
}

/**
 * Why `uri` cannot be a redirection URI, or null when it can (RFC 6749 §3.1.2, RFC 8252 §7, OAuth 2.0 Security BCP §4.1):
 * absolute, no fragment, no credentials, no whitespace; https, or http on a loopback host (native apps, local development),
 * or a private-use scheme in reverse-DNS form (native apps).
 */
export function redirectUriProblem(uri: string): string | null {
  const url = parseRegisteredUri(uri, { fragment: false, unparseable: "must be an absolute URI" });
  if (typeof url === "string") return url;
  const scheme = url.protocol.slice(0, -1).toLowerCase();
  if (DANGEROUS_SCHEMES.has(scheme)) return `must not use the ${scheme}: scheme`;
  if (url.username !== "" || url.password !== "") return "must not contain credentials";
  // The URL parser reads "https:/host", "https:host" and "https:///host" as "https://host/": require the plain form.
  if ((scheme === "https" || scheme === "http") && !/^https?:\/\/[^/?#\\]/i.test(uri)) return "must be scheme://host/…";
  if (scheme === "https") return url.hostname === "" ? "must name a host" : null;
  if (scheme === "http") return isLoopbackHostname(url.hostname) ? null : "must use https (http only on localhost, 127.0.0.1 or [::1])";
  if (PRIVATE_USE_SCHEME.test(scheme)) return null;
  return "must use https, http on a loopback host, or a private-use scheme in reverse domain name form (RFC 8252 §7.1)";
}

/**
 * The checks every registered URI starts with; the URL, or why there is none. The URL parser would quietly strip
 * whitespace and control characters, and a registered URI must be exactly what is later compared or shown.
 */
function parseRegisteredUri(uri: string, rules: { fragment: boolean; unparseable: string }): URL | string {
  if (/[\s\u0000-\u001f\u007f]/.test(uri)) return "must not contain whitespace or control characters";
  if (!rules.fragment && uri.includes("#")) return "must not contain a fragment";
  try {
    return new URL(uri);
  } catch {
    return rules.unparseable;
  }
}

/**
 * Why `uri` cannot be a back-channel logout URI, or null when it can (OIDC Back-Channel Logout 1.0 §2.2): an absolute
 * https URL (http only on a loopback host, for local development), which may have a port, path and query but no
 * fragment, and no credentials — the OP POSTs Logout Tokens to it.
 */
export function backchannelLogoutUriProblem(uri: string): string | null {
  const url = parseRegisteredUri(uri, { fragment: false, unparseable: "must be an absolute URL" });
  if (typeof url === "string") return url;
  if (!/^https?:\/\/[^/?#\\]/i.test(uri)) return "must be an https URL (scheme://host/…)";
  if (url.username !== "" || url.password !== "") return "must not contain credentials";
  if (url.protocol === "https:") return url.hostname === "" ? "must name a host" : null;
  if (url.protocol === "http:") return isLoopbackHostname(url.hostname) ? null : "must use https (http only on localhost, 127.0.0.1 or [::1])";
  return "must be an https URL";
}

function checkRedirectUris(member: string, uris: string[]): void {
  uris.forEach((uri, i) => {
    const problem = redirectUriProblem(uri);
    if (problem) throw redirectError(`${member}.${i}: ${problem}`);
  });
}

function distinct<T>(values: T[]): T[] {
  return [...new Set(values)];
}

/** The metadata of a new client: the defaults, overridden by what was sent, then checked as a whole. */
export function newClientFields(input: ClientMetadataInput): ClientFields {
  const grantTypes = input.grant_types ?? ["authorization_code"];
  return finalize({
    client_name: input.client_name ?? "Unnamed client",
    redirect_uris: input.redirect_uris ?? [],
    post_logout_redirect_uris: input.post_logout_redirect_uris ?? [],
    grant_types: grantTypes,
    // RFC 7591 §2.1: response_types follow the grant types unless given.
    response_types: input.response_types ?? (grantTypes.includes("authorization_code") ? ["code"] : []),
    token_endpoint_auth_method: input.token_endpoint_auth_method ?? "client_secret_basic",
    scope: input.scope ?? DEFAULT_SCOPE,
    jwks: input.jwks ?? null,
    jwks_uri: input.jwks_uri ?? null,
    id_token_signed_response_alg: input.id_token_signed_response_alg ?? null,
    backchannel_logout_uri: input.backchannel_logout_uri ?? null,
    backchannel_logout_session_required: input.backchannel_logout_session_required ?? false,
    skip_consent: input.skip_consent ?? false,
    dpop_bound_access_tokens: input.dpop_bound_access_tokens ?? false,
    refresh_token_reuse_interval: input.refresh_token_reuse_interval ?? null,
    id_token_claims: input.id_token_claims ?? "scope",
    logo_uri: input.logo_uri ?? null,
    client_uri: input.client_uri ?? null,
    policy_uri: input.policy_uri ?? null,
    tos_uri: input.tos_uri ?? null,
    require_pushed_authorization_requests: input.require_pushed_authorization_requests ?? false,
    request_object_signing_alg: input.request_object_signing_alg ?? null,
    security_profile: input.security_profile ?? null,
    extra_claims: input.extra_claims ?? [],
  }, input);
}

/** The metadata after an update: the stored client with the sent members replaced, checked as a whole. */
export function updatedClientFields(current: Client, input: ClientMetadataInput): ClientFields {
  const grantTypes = input.grant_types ?? current.grant_types;
  let responseTypes = input.response_types ?? current.response_types;
  // Changing only the grant types keeps response_types consistent with them (RFC 7591 §2.1).
  if (input.grant_types !== undefined && input.response_types === undefined) {
    responseTypes = grantTypes.includes("authorization_code") ? ["code"] : [];
  }
  return finalize({
    client_name: input.client_name ?? current.client_name,
    redirect_uris: input.redirect_uris ?? current.redirect_uris,
    post_logout_redirect_uris: input.post_logout_redirect_uris ?? current.post_logout_redirect_uris,
    grant_types: grantTypes,
    response_types: responseTypes,
    token_endpoint_auth_method: input.token_endpoint_auth_method ?? current.token_endpoint_auth_method,
    scope: input.scope ?? current.scope,
    jwks: input.jwks === undefined ? current.jwks : input.jwks,
    jwks_uri: input.jwks_uri === undefined ? current.jwks_uri : input.jwks_uri,
    id_token_signed_response_alg: input.id_token_signed_response_alg === undefined ? current.id_token_signed_response_alg : input.id_token_signed_response_alg,
    backchannel_logout_uri: input.backchannel_logout_uri === undefined ? current.backchannel_logout_uri : input.backchannel_logout_uri,
    backchannel_logout_session_required: input.backchannel_logout_session_required ?? current.backchannel_logout_session_required,
    skip_consent: input.skip_consent ?? current.skip_consent,
    dpop_bound_access_tokens: input.dpop_bound_access_tokens ?? current.dpop_bound_access_tokens,
    refresh_token_reuse_interval: input.refresh_token_reuse_interval === undefined ? current.refresh_token_reuse_interval : input.refresh_token_reuse_interval,
    id_token_claims: input.id_token_claims ?? current.id_token_claims,
    logo_uri: input.logo_uri === undefined ? current.logo_uri : input.logo_uri,
    client_uri: input.client_uri === undefined ? current.client_uri : input.client_uri,
    policy_uri: input.policy_uri === undefined ? current.policy_uri : input.policy_uri,
    tos_uri: input.tos_uri === undefined ? current.tos_uri : input.tos_uri,
    require_pushed_authorization_requests: input.require_pushed_authorization_requests ?? current.require_pushed_authorization_requests,
    request_object_signing_alg: input.request_object_signing_alg === undefined ? current.request_object_signing_alg : input.request_object_signing_alg,
    security_profile: input.security_profile === undefined ? current.security_profile : input.security_profile,
    extra_claims: input.extra_claims ?? current.extra_claims,
  }, input);
}

/**
 * A FAPI 2.0 client (security_profile fapi2) gets what the profile requires for the members that were not sent:
 * DPoP-bound access tokens, pushed requests, ES256 ID tokens, a refresh retry interval. A member sent with a value
 * the profile forbids is refused by `fapi2RegistrationProblem`, never silently changed.
 */
function withProfileDefaults(fields: ClientFields, input: ClientMetadataInput): ClientFields {
  if (fields.security_profile !== "fapi2") return fields;
  return {
    ...fields,
    dpop_bound_access_tokens: input.dpop_bound_access_tokens ?? true,
    require_pushed_authorization_requests: input.require_pushed_authorization_requests ?? true,
    id_token_signed_response_alg: input.id_token_signed_response_alg === undefined ? "ES256" : fields.id_token_signed_response_alg,
    refresh_token_reuse_interval: input.refresh_token_reuse_interval === undefined && fields.refresh_token_reuse_interval === null ? FAPI2_REFRESH_RETRY_INTERVAL : fields.refresh_token_reuse_interval,
  };
}

/** The rules that relate members to each other. */
function finalize(given: ClientFields, input: ClientMetadataInput): ClientFields {
  const fields = withProfileDefaults(given, input);
  const out: ClientFields = {
    ...fields,
    redirect_uris: distinct(fields.redirect_uris),
    post_logout_redirect_uris: distinct(fields.post_logout_redirect_uris),
    grant_types: distinct(fields.grant_types),
    response_types: distinct(fields.response_types),
    extra_claims: distinct(fields.extra_claims),
  };
  out.extra_claims.forEach((name, i) => {
    const problem = customClaimNameProblem(name);
    if (problem) throw metadataError(`extra_claims.${i}: ${problem}`);
  });
  checkRedirectUris("redirect_uris", out.redirect_uris);
  checkRedirectUris("post_logout_redirect_uris", out.post_logout_redirect_uris);

  if (out.grant_types.length === 0) throw metadataError("grant_types: must name at least one grant type");
  const usesCode = out.grant_types.includes("authorization_code");
  if (usesCode && out.redirect_uris.length === 0) throw redirectError("redirect_uris: the authorization_code grant needs at least one redirect URI");
  // RFC 7591 §2.1: the code response type and the authorization_code grant go together.
  if (usesCode !== out.response_types.includes("code")) {
    throw metadataError("response_types: \"code\" must be registered exactly when grant_types includes authorization_code");
  }
  // Refresh tokens are only issued with authorization codes here.
  if (out.grant_types.includes("refresh_token") && !usesCode) throw metadataError("grant_types: refresh_token requires authorization_code");

  const method = out.token_endpoint_auth_method;
  if (out.grant_types.includes("client_credentials") && method === "none") {
    throw metadataError("grant_types: client_credentials requires a confidential client (token_endpoint_auth_method other than none)");
  }

  if (out.backchannel_logout_uri !== null) {
    const problem = backchannelLogoutUriProblem(out.backchannel_logout_uri);
    if (problem) throw metadataError(`backchannel_logout_uri: ${problem}`);
  }

  if (out.jwks !== null && out.jwks_uri !== null) throw metadataError("jwks and jwks_uri must not both be present (RFC 7591 §2)");
  if (out.jwks_uri !== null) {
    let url: URL | null = null;
    try {
      url = new URL(out.jwks_uri);
    } catch {
      url = null;
    }
    const secure = url !== null && (url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHostname(url.hostname)));
    if (url === null || !secure || out.jwks_uri.includes("#") || url.username !== "" || url.password !== "") {
      throw metadataError("jwks_uri: must be an absolute https URL (http only on a loopback host), without fragment or credentials");
    }
  }
  if (method === "private_key_jwt" && out.jwks === null && out.jwks_uri === null) {
    throw metadataError("token_endpoint_auth_method: private_key_jwt requires jwks or jwks_uri");
  }

  for (const member of PAGE_URIS) {
    const uri = out[member];
    const problem = uri === null ? null : pageUriProblem(uri);
    if (problem !== null) throw metadataError(`${member}: ${problem}`);
  }

  const scopes = parseScope(out.scope);
  if (scopes === null) throw metadataError("scope: must be space-separated scope tokens (RFC 6749 §3.3)");
  if (scopes.length === 0) throw metadataError("scope: must name at least one scope");
  out.scope = scopes.join(" ");

  const profileProblem = fapi2RegistrationProblem(out);
  if (profileProblem !== null) throw metadataError(profileProblem);
  return out;
}

/** The RFC 7591 §2 URIs the sign-in and consent pages show (an image, and links a person follows). */
const PAGE_URIS = ["logo_uri", "client_uri", "policy_uri", "tos_uri"] as const;

/**
 * Why `uri` cannot be shown on the pages, or null: it must be an absolute https URL with a host and no credentials
 * or whitespace — never http (the pages are https: a logo over http is mixed content, a link over http can be
 * rewritten on the way), never javascript: or data:. The pages escape it like any value (the `html` template).
 */
export function pageUriProblem(uri: string): string | null {
  const url = parseRegisteredUri(uri, { fragment: true, unparseable: "must be an absolute https URL" });
  if (typeof url === "string") return url;
  if (url.protocol !== "https:" || !/^https:\/\/[^/?#\\]/i.test(uri)) return "must be an absolute https URL";
  if (url.hostname === "") return "must name a host";
  if (url.username !== "" || url.password !== "") return "must not contain credentials";
  return null;
}

/** Whether the client authenticates with a shared secret, so one is issued and stored hashed (C13). */
export function usesClientSecret(method: Client["token_endpoint_auth_method"]): boolean {
  return method === "client_secret_basic" || method === "client_secret_post";
}
