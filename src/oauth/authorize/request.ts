import type { Client } from "../../db/clients";
import { OAuthError } from "../errors";
import * as z from "zod/mini";
import { param, parseWith } from "../schema";
import { grantableScope } from "../scope-policy";
import { requestedAcr, type AcrRequest } from "../acr";
import { checkAcrAttainable } from "./check-acr";
import { checkClaimsParameter } from "./check-claims";
import { checkPkce } from "./check-pkce";
import { parsePrompt, type Prompt } from "./check-prompt";
import { checkDpopJkt } from "./check-dpop-jkt";
import { checkPushedRequest } from "./check-pushed-request";
import { checkResponseType } from "./check-response-type";

/**
 * The rules of an authorization request (RFC 6749 §4.1.1, OIDC Core §3.1.2.1, RFC 7636), with no I/O.
 *
 * Two stages, because OIDC Core §3.1.2.6 treats errors differently by what is known:
 * 1. `responseTarget`: the client and its redirect URI. Until both check out there is nobody to answer to, so every
 *    problem here is shown to the user as a page — never a redirect.
 * 2. `validateAuthorizationRequest`: everything else, one named check per rule. Problems go to the (registered) redirect URI.
 */

export type ResponseMode = "query" | "fragment" | "form_post";
export type { Prompt };

const RESPONSE_MODES: readonly ResponseMode[] = ["query", "fragment", "form_post"];

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
  /** `claims.id_token.sub.value` (§5.5.1): the only user this request may be answered for. */
  claimsSub: string | null;
  /** The acr asked for (`claims.id_token.acr`, else `acr_values`); the OP asserts an acr only when it meets one (oauth/acr.ts). */
  acr: AcrRequest | null;
  /** The languages the user prefers for the pages (OIDC Core §3.1.2.1), space-separated, kept as sent: the pages choose. */
  uiLocales: string | null;
  /** RFC 9449 §10: the DPoP key thumbprint the code will be bound to, or null. */
  dpopJkt: string | null;
}

/** How the request arrived, for the rules that depend on it. */
export interface RequestArrival {
  /** Through /par (RFC 9126): at /par itself, or at /authorize by its request_uri. */
  pushed: boolean;
  /** REQUIRE_PUSHED_AUTHORIZATION_REQUESTS. */
  serverRequiresPushed: boolean;
  /** At /par: the key of the request's DPoP proof (RFC 9449 §10.1); null otherwise. */
  proofJkt: string | null;
}

/** Thrown by stage 1: shown as an error page, never redirected; `clientName` names the app on the page when it is known. */
export class UntrustedRequestError extends OAuthError {
  readonly clientName: string | null;

  constructor(code: OAuthError["code"], description?: string, options: { status?: number; headers?: Record<string, string>; clientName?: string } = {}) {
    super(code, description, options);
    this.clientName = options.clientName ?? null;
  }
}

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
  const app = { clientName: client.client_name };
  if (redirectUri === undefined) throw new UntrustedRequestError("invalid_request", "redirect_uri is missing", app);
  if (!client.redirect_uris.includes(redirectUri)) {
    throw new UntrustedRequestError("invalid_request", "redirect_uri is not registered for this application", app);
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
const AuthorizeRequestSchema = z.object({
  response_type: z.optional(param(64)),
  response_mode: z.optional(z.enum(["query", "fragment", "form_post"])),
  state: z.optional(param(MAX_STATE_LENGTH)),
  scope: z.optional(param(1024)),
  nonce: z.optional(param(512)),
  code_challenge: z.optional(param(128)),
  code_challenge_method: z.optional(param(16)),
  prompt: z.optional(param(128)),
  max_age: z.optional(z.string().check(z.regex(/^\d{1,9}$/, "must be a whole number of seconds"))),
  login_hint: z.optional(param(320)),
  id_token_hint: z.optional(param(8192)),
  claims: z.optional(param(4096)),
  acr_values: z.optional(param(512)),
  ui_locales: z.optional(param(256)),
  dpop_jkt: z.optional(param(64)),
});

/**
 * Stage 2: everything but the client and redirect URI, on the request's own parameters (those of its request object
 * or of its pushed request once resolved, routes/support/authorization-request.ts). The same rules at /authorize and
 * at /par. Every problem is an OAuthError for the redirect URI (at /par, the JSON answer).
 */
export function validateAuthorizationRequest(params: Record<string, string>, client: Client, target: ResponseTarget, arrival: RequestArrival): AuthorizationRequest {
  checkPushedRequest(arrival.pushed, client, arrival.serverRequiresPushed);
  const p = parseWith(AuthorizeRequestSchema, params);
  checkResponseType(p.response_type, client);
  const scope = grantableScope(p.scope, client);
  const codeChallenge = checkPkce(p.code_challenge, p.code_challenge_method, client);
  const prompt = parsePrompt(p.prompt);
  const { claims, parsed } = checkClaimsParameter(p.claims);
  const acr = requestedAcr(parsed?.idTokenAcr ?? null, p.acr_values);
  checkAcrAttainable(acr);
  const dpopJkt = checkDpopJkt(p.dpop_jkt, arrival.proofJkt);
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
    claimsSub: parsed?.idTokenSub ?? null,
    acr,
    uiLocales: p.ui_locales ?? null,
    dpopJkt,
  };
}
