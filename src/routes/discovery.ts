import { issuerOf, loadConfig } from "../config";
import type { Env } from "../env";
import { publicDocument } from "./support/respond";
import { SUPPORTED_ACR_VALUES } from "../oauth/acr";
import { CLIENT_ASSERTION_ALGS } from "../oauth/client-assertion";
import { SUPPORTED_CLAIMS, SUPPORTED_SCOPES } from "../oauth/claims";
import { GRANT_TYPES, ID_TOKEN_SIGNING_ALGS, TOKEN_ENDPOINT_AUTH_METHODS } from "../oauth/client-metadata";
import { DPOP_SIGNING_ALGS } from "../oauth/dpop";
import { REQUEST_OBJECT_ALGS } from "../oauth/request-object";
import { LANGUAGES } from "../ui/i18n";

/**
 * Provider metadata: OIDC Discovery 1.0 §3 at /.well-known/openid-configuration and RFC 8414 §2 at
 * /.well-known/oauth-authorization-server, one document for both. It advertises only what this OP does: PAR
 * (RFC 9126 §5), DPoP (RFC 9449 §5.1), request objects by value (RFC 9101 §10.5) but no request_uri other than
 * PAR's, back-channel logout, and no front-channel logout (not built).
 */

/** The paths of the endpoints, relative to the issuer (which is an origin: routes are served at the root). */
export const ENDPOINT_PATHS = {
  authorization_endpoint: "/authorize",
  token_endpoint: "/token",
  userinfo_endpoint: "/userinfo",
  jwks_uri: "/jwks.json",
  introspection_endpoint: "/introspect",
  revocation_endpoint: "/revoke",
  end_session_endpoint: "/logout",
  pushed_authorization_request_endpoint: "/par",
} as const;

/** What the metadata depends on besides the issuer: the settings that change what the OP accepts. */
export interface MetadataOptions {
  /** REQUIRE_PUSHED_AUTHORIZATION_REQUESTS. */
  requirePushedAuthorizationRequests?: boolean;
  /** ALLOW_UNSIGNED_REQUEST_OBJECTS: `none` is among the request object algorithms. */
  unsignedRequestObjects?: boolean;
  /** DYNAMIC_REGISTRATION is not off: the registration endpoint exists (RFC 7591). */
  registration?: boolean;
}

export function providerMetadata(issuer: string, options: MetadataOptions = {}) {
  const endpoints = Object.fromEntries(Object.entries(ENDPOINT_PATHS).map(([name, path]) => [name, issuer + path])) as {
    [K in keyof typeof ENDPOINT_PATHS]: string;
  };
  return {
    issuer,
    ...endpoints,
    scopes_supported: [...SUPPORTED_SCOPES],
    response_types_supported: ["code"],
    response_modes_supported: ["query", "fragment", "form_post"],
    grant_types_supported: [...GRANT_TYPES],
    subject_types_supported: ["public"],
    id_token_signing_alg_values_supported: [...ID_TOKEN_SIGNING_ALGS],
    token_endpoint_auth_methods_supported: [...TOKEN_ENDPOINT_AUTH_METHODS],
    token_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGS],
    // RFC 8414 §2. Introspection takes the token endpoint's methods except `none` (RFC 7662 §2.1: the caller must be
    // authorized); revocation takes public clients too (RFC 7009 §2.1).
    introspection_endpoint_auth_methods_supported: TOKEN_ENDPOINT_AUTH_METHODS.filter((method) => method !== "none"),
    introspection_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGS],
    revocation_endpoint_auth_methods_supported: [...TOKEN_ENDPOINT_AUTH_METHODS],
    revocation_endpoint_auth_signing_alg_values_supported: [...CLIENT_ASSERTION_ALGS],
    code_challenge_methods_supported: ["S256"],
    claims_supported: [...SUPPORTED_CLAIMS],
    // Exactly the classes a sign-in method here meets (oauth/acr.ts): asserted when asked for and met.
    acr_values_supported: [...SUPPORTED_ACR_VALUES],
    claim_types_supported: ["normal"],
    claims_parameter_supported: true,
    // RFC 9101 / OIDC Core §6: request objects by value; request_uri only as /par hands them out (OIDC Discovery's
    // default for request_uri_parameter_supported is true, so it is said). Unsigned ones only when a setting allows.
    request_parameter_supported: true,
    request_uri_parameter_supported: false,
    request_object_signing_alg_values_supported: options.unsignedRequestObjects ? [...REQUEST_OBJECT_ALGS, "none"] : [...REQUEST_OBJECT_ALGS],
    // RFC 9126 §5: a client may always push; whether every client must.
    require_pushed_authorization_requests: options.requirePushedAuthorizationRequests ?? false,
    // RFC 9449 §5.1: the algorithms of DPoP proofs, at /token, /par and /userinfo.
    dpop_signing_alg_values_supported: [...DPOP_SIGNING_ALGS],
    // select_account: /authorize shows the sign-in page, where another account can be chosen (as for login).
    prompt_values_supported: ["none", "login", "consent", "select_account"],
    // RFC 9207 §3: `iss` is in every authorization response.
    authorization_response_iss_parameter_supported: true,
    // OIDC Back-Channel Logout 1.0 §2.1: Logout Tokens are sent to registered back-channel logout URIs, always with
    // `sid` (the same sid as in the ID token). No front-channel logout: not advertised.
    backchannel_logout_supported: true,
    backchannel_logout_session_supported: true,
    // RFC 8414 §2 / RFC 7591: only while dynamic registration is on.
    ...(options.registration ? { registration_endpoint: `${issuer}/register` } : {}),
    // The languages of the pages and emails (ui/i18n/): ui_locales on /authorize and /logout picks among them.
    // No claims_locales_supported: claims are returned as stored, never in language-tagged variants.
    ui_locales_supported: [...LANGUAGES],
  };
}

export type ProviderMetadata = ReturnType<typeof providerMetadata>;

export function discovery(request: Request, env: Env): Response {
  const config = loadConfig(env);
  const options = {
    requirePushedAuthorizationRequests: config.requirePushedAuthorizationRequests,
    unsignedRequestObjects: config.allowUnsignedRequestObjects,
    registration: config.dynamicRegistration !== "off",
  };
  return publicDocument(providerMetadata(issuerOf(env, request), options), 300);
}
