import { issuerOf, loadConfig } from "../config";
import type { Env } from "../env";
import { publicDocument } from "./support/respond";
import { SUPPORTED_ACR_VALUES } from "../oauth/acr";
import { CLIENT_ASSERTION_ALGS } from "../oauth/client-assertion";
import { SUPPORTED_CLAIMS, SUPPORTED_SCOPES } from "../oauth/claims";
import { GRANT_TYPES, ID_TOKEN_SIGNING_ALGS, TOKEN_ENDPOINT_AUTH_METHODS } from "../oauth/client-metadata";

/**
 * Provider metadata: OIDC Discovery 1.0 §3 at /.well-known/openid-configuration and RFC 8414 §2 at
 * /.well-known/oauth-authorization-server, one document for both. It advertises only what this OP does:
 * no PAR, DPoP, request objects or back-channel logout until they exist.
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
} as const;

export function providerMetadata(issuer: string, options: { registration?: boolean } = {}) {
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
    request_parameter_supported: false,
    request_uri_parameter_supported: false,
    // select_account: /authorize shows the sign-in page, where another account can be chosen (as for login).
    prompt_values_supported: ["none", "login", "consent", "select_account"],
    // RFC 9207 §3: `iss` is in every authorization response.
    authorization_response_iss_parameter_supported: true,
    // RFC 8414 §2 / RFC 7591: only while dynamic registration is on.
    ...(options.registration ? { registration_endpoint: `${issuer}/register` } : {}),
  };
}

export type ProviderMetadata = ReturnType<typeof providerMetadata>;

export function discovery(request: Request, env: Env): Response {
  return publicDocument(providerMetadata(issuerOf(env, request), { registration: loadConfig(env).dynamicRegistration !== "off" }), 300);
}
