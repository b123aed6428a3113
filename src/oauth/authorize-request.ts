import { z } from "zod";
import type { Client } from "../db/clients";
import { parseWith, param } from "../routes/params";
import { SUPPORTED_SCOPES, parseClaimsRequest } from "./claims";
import { OAuthError, invalidRequest } from "./errors";
import { isValidS256Challenge } from "./pkce";
import { parseScope } from "./scopes";

/**
 * The rules of an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 7636), with no I/O.
 *
 * Two stages, because OIDC Core §3.1.2.6 treats errors differently by what is known:
 * 1. `responseTarget`: the client and its redirect URI. Until both check out there is nobody to answer to, so every
 *    problem here is shown to the user as a page — never a redirect.
 * 2. `validateAuthorizationRequest`: everything else. Problems are sent to the (registered) redirect URI.
 */

export type ResponseMode = "query" | "fragment" | "form_post";
export type Prompt = "none" | "login" | "consent" | "select_account";

const RESPONSE_MODES: readonly ResponseMode[] = ["query", "fragment", "form_post"];
const PROMPTS: readonly Prompt[] = ["none", "login", "consent", "select_account"];

/** state is echoed back verbatim; anything longer than this is refused (and not echoed). */
export const MAX_STATE_LENGTH = 2048;

/** Where an authorization response (success or error) may be sent. */
export interface ResponseTarget {
  clientId: string;
  redirectUri: string;
  responseMode: ResponseMode;
  state: string | null;
}

/** A validated authorization request. */
export interface AuthorizationRequest extends ResponseTarget {
  /** Granted-able scopes only: unknown ones and those the client did not register are dropped. */
  scope: string;
  nonce: string | null;
  /** PKCE S256 challenge (RFC 7636 §4.2); `plain` is never accepted. */
  codeChallenge: string | null;
  prompt: Prompt[];
  /** Seconds (OIDC Core §3.1.2.1); 0 behaves as prompt=login. */
  maxAge: number | null;
  loginHint: string | null;
  /** The raw hint; the route checks its signature (it needs the published keys). */
  idTokenHint: string | null;
  /** The `claims` parameter (OIDC Core §5.5), validated, kept as JSON text. */
  claims: string | null;
  /** Requested ACR values, recorded; the OP asserts an acr only when it satisfies one. */
  acrValues: string | null;
}

/** Thrown by stage 1: shown as an error page, never redirected. */
export class UntrustedRequestError extends OAuthError {}

/**
 * Stage 1: the client exists and the redirect URI is one it registered, compared as exact strings
 * (RFC 9700 §4.1.3). OIDC Core §3.1.2.1 requires redirect_uri even when the client registered only one: we always do,
 * so the token endpoint can always compare it (RFC 6749 §4.1.3).
 */
export function responseTarget(params: Record<string, string>, client: Client | null): ResponseTarget {
  const clientId = params.client_id;
  if (clientId === undefined) throw new UntrustedRequestError("invalid_request", "client_id is missing");
  if (client === null) throw new UntrustedRequestError("invalid_client", "the application (client_id) is not known here");
  const redirectUri = params.redirect_uri;
  if (redirectUri === undefined) throw new UntrustedRequestError("invalid_request", "redirect_uri is missing");
  if (!client.redirect_uris.includes(redirectUri)) {
    throw new UntrustedRequestError("invalid_request", "redirect_uri is not registered for this application");
  }
  const mode = params.response_mode;
  const state = params.state;
  return {
    clientId: client.client_id,
    redirectUri,
    // An unusable response_mode is reported (stage 2) in the default mode of response_type=code.
    responseMode: mode !== undefined && (RESPONSE_MODES as readonly string[]).includes(mode) ? (mode as ResponseMode) : "query",
    state: state !== undefined && state.length <= MAX_STATE_LENGTH ? state : null,
  };
}

/** The one schema of /authorize (stage 2). Unknown parameters are ignored (OIDC Core §3.1.2.1). */
const authorizeSchema = z.object({
  response_type: param(64).optional(),
  response_mode: z.enum(["query", "fragment", "form_post"]).optional(),
  state: param(MAX_STATE_LENGTH).optional(),
  scope: param(1024).optional(),
  nonce: param(512).optional(),
  code_challenge: param(128).optional(),
  code_challenge_method: param(16).optional(),
  prompt: param(128).optional(),
  max_age: z.string().regex(/^\d{1,9}$/, "must be a whole number of seconds").optional(),
  login_hint: param(320).optional(),
  id_token_hint: param(8192).optional(),
  claims: param(4096).optional(),
  acr_values: param(512).optional(),
});

/** Stage 2: everything but the client and redirect URI. Every problem is an OAuthError for the redirect URI. */
export function validateAuthorizationRequest(params: Record<string, string>, client: Client, target: ResponseTarget): AuthorizationRequest {
  // OIDC Core §6: request objects are not supported; RFC 9126 pushed requests are not offered.
  if (params.request !== undefined) throw new OAuthError("request_not_supported", "request objects are not supported");
  if (params.request_uri !== undefined) throw new OAuthError("request_uri_not_supported", "request_uri is not supported");

  const p = parseWith(authorizeSchema, params);

  if (p.response_type === undefined) throw invalidRequest("response_type is missing");
  if (p.response_type !== "code") throw new OAuthError("unsupported_response_type", "only response_type=code is supported");
  if (!client.response_types.includes("code") || !client.grant_types.includes("authorization_code")) {
    throw new OAuthError("unauthorized_client", "this application may not use the authorization code flow");
  }

  const scope = grantableScope(p.scope, client);

  // RFC 7636 §4.3, RFC 9700 §2.1.1: S256 only; required for public clients (no client authentication at /token).
  let codeChallenge: string | null = null;
  if (p.code_challenge !== undefined) {
    // An absent method means `plain` (RFC 7636 §4.3), which is refused like an explicit one.
    if (p.code_challenge_method !== "S256") throw invalidRequest("code_challenge_method must be S256");
    if (!isValidS256Challenge(p.code_challenge)) throw invalidRequest("code_challenge is not a valid S256 challenge");
    codeChallenge = p.code_challenge;
  } else if (p.code_challenge_method !== undefined) {
    throw invalidRequest("code_challenge_method was sent without code_challenge");
  } else if (client.token_endpoint_auth_method === "none") {
    throw invalidRequest("code_challenge is required (PKCE with S256) for this application");
  }

  const prompt = parsePrompt(p.prompt);
  const claims = p.claims ?? null;
  parseClaimsRequest(claims); // throws invalid_request when malformed

  return {
    ...target,
    scope,
    nonce: p.nonce ?? null,
    codeChallenge,
    prompt,
    maxAge: p.max_age === undefined ? null : Number(p.max_age),
    loginHint: p.login_hint ?? null,
    idTokenHint: p.id_token_hint ?? null,
    claims,
    acrValues: p.acr_values ?? null,
  };
}

/**
 * The scopes the request may be granted: supported by the OP and registered by the client (an empty registered
 * scope means any supported one). Others are dropped, as RFC 6749 §3.3 allows; nothing left is invalid_scope.
 */
export function grantableScope(requested: string | undefined, client: Pick<Client, "scope">): string {
  if (requested === undefined) throw new OAuthError("invalid_scope", "scope is missing (OpenID Connect requests need at least openid)");
  const tokens = parseScope(requested);
  if (tokens === null) throw new OAuthError("invalid_scope", "scope contains characters RFC 6749 §3.3 does not allow");
  const registered = parseScope(client.scope) ?? [];
  const allowed = tokens.filter(
    (s) => (SUPPORTED_SCOPES as readonly string[]).includes(s) && (registered.length === 0 || registered.includes(s)),
  );
  if (allowed.length === 0) throw new OAuthError("invalid_scope", "none of the requested scopes is available to this application");
  return allowed.join(" ");
}

/** OIDC Core §3.1.2.1: space-separated values; `none` stands alone. Unknown values are refused. */
export function parsePrompt(raw: string | undefined): Prompt[] {
  if (raw === undefined) return [];
  const values: Prompt[] = [];
  for (const value of raw.split(" ")) {
    if (value === "") continue;
    if (!(PROMPTS as readonly string[]).includes(value)) throw invalidRequest(`prompt value ${JSON.stringify(value.slice(0, 20))} is not supported`);
    if (!values.includes(value as Prompt)) values.push(value as Prompt);
  }
  if (values.includes("none") && values.length > 1) throw invalidRequest("prompt=none cannot be combined with other values");
  return values;
}
