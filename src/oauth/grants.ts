import { SUPPORTED_SCOPES } from "./claims";
import { parseScope } from "./scopes";

/** Grant rules of the token endpoint that need no I/O. */

/**
 * Whether an authorization-code grant gets a refresh token. Only for clients registered for the refresh_token grant;
 * for an OpenID request only when `offline_access` was granted (OIDC Core §11: a refresh token outliving the user's
 * session is what offline_access asks for); a plain OAuth request (no `openid`) gets one whenever the client may refresh.
 */
export function issuesRefreshToken(clientGrantTypes: readonly string[], grantedScopes: readonly string[]): boolean {
  if (!clientGrantTypes.includes("refresh_token")) return false;
  return grantedScopes.includes("offline_access") || !grantedScopes.includes("openid");
}

/** Scopes that speak about a user (OIDC Core §5.4, §11): never granted to a client acting for itself. */
const USER_SCOPES: readonly string[] = SUPPORTED_SCOPES;

/**
 * RFC 6749 §4.4.2 / §3.3: the scope of a client_credentials token. The request may name any subset of the client's
 * registered scope except the user scopes; without `scope`, the registered scope minus the user scopes is used.
 * Null: the request asked for something it may not have (invalid_scope). May be "" (a token with no scope).
 */
export function clientCredentialsScope(registered: string, requested: string | null): string | null {
  const allowed = (parseScope(registered) ?? []).filter((s) => !USER_SCOPES.includes(s));
  if (requested === null) return allowed.join(" ");
  const wanted = parseScope(requested);
  if (wanted === null || wanted.length === 0) return null;
  if (!wanted.every((s) => allowed.includes(s))) return null;
  return wanted.join(" ");
}
