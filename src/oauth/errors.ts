/**
 * The one OAuth error type. Thrown anywhere in protocol code; rendered in one place (routes/support/errors.ts):
 * as RFC 6749 §5.2 JSON for back-channel endpoints, or as an authorization error response / error page for /authorize.
 */
export type OAuthErrorCode =
  | "invalid_request"
  | "invalid_client"
  | "invalid_grant"
  | "unauthorized_client"
  | "unsupported_grant_type"
  | "unsupported_response_type"
  | "invalid_scope"
  | "access_denied"
  | "server_error"
  | "temporarily_unavailable"
  | "login_required"
  | "consent_required"
  | "interaction_required"
  | "account_selection_required"
  | "invalid_request_uri"
  | "invalid_request_object"
  | "request_not_supported"
  | "request_uri_not_supported"
  | "registration_not_supported"
  | "invalid_token"
  | "insufficient_scope"
  | "invalid_dpop_proof"
  | "use_dpop_nonce"
  | "invalid_client_metadata"
  | "invalid_redirect_uri"
  | "unsupported_token_type"
  | "rate_limited"
  | "not_found";

const DEFAULT_STATUS: Partial<Record<OAuthErrorCode, number>> = {
  invalid_client: 401,
  invalid_token: 401,
  insufficient_scope: 403,
  server_error: 500,
  temporarily_unavailable: 503,
  rate_limited: 429,
  not_found: 404,
};

export class OAuthError extends Error {
  readonly status: number;
  /** Extra response headers: `WWW-Authenticate`, `Retry-After`, `DPoP-Nonce`. */
  readonly headers: Record<string, string>;

  constructor(
    readonly code: OAuthErrorCode,
    /** Human-readable, safe to show: never contains a secret or an internal detail. */
    readonly description?: string,
    options: { status?: number; headers?: Record<string, string> } = {},
  ) {
    super(description ? `${code}: ${description}` : code);
    this.name = "OAuthError";
    this.status = options.status ?? DEFAULT_STATUS[code] ?? 400;
    this.headers = options.headers ?? {};
  }
}

export const invalidRequest = (description: string) => new OAuthError("invalid_request", description);
export const invalidGrant = (description: string) => new OAuthError("invalid_grant", description);
export const invalidScope = (description: string) => new OAuthError("invalid_scope", description);
