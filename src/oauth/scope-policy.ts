import type { Client } from "../db/clients";
import { parseScope } from "../lib/scope";
import { SUPPORTED_SCOPES } from "./claims";
import { OAuthError, invalidScope } from "./errors";

/** Which scopes a client may be granted, and what a grant yields: the scope rules of /authorize and /token. No I/O. */

/**
 * What the client may be granted now: the supported scopes it registered (an empty registered scope means any
 * supported one). Read from the registration of now, so an admin change is in force at once (C5).
 */
export function allowedScopes(client: Pick<Client, "scope">): string[] {
  const registered = parseScope(client.scope) ?? [];
  return SUPPORTED_SCOPES.filter((s) => registered.length === 0 || registered.includes(s));
}

/**
 * The scopes an authorization request may be granted: supported by the OP and registered by the client. Others are
 * dropped, as RFC 6749 §3.3 allows; nothing left is invalid_scope.
 */
export function grantableScope(requested: string | undefined, client: Pick<Client, "scope">): string {
  if (requested === undefined) throw new OAuthError("invalid_scope", "scope is missing (OpenID Connect requests need at least openid)");
  const tokens = parseScope(requested);
  if (tokens === null) throw new OAuthError("invalid_scope", "scope contains characters RFC 6749 §3.3 does not allow");
  const allowed = allowedScopes(client);
  const granted = tokens.filter((s) => allowed.includes(s));
  if (granted.length === 0) throw new OAuthError("invalid_scope", "none of the requested scopes is available to this application");
  return granted.join(" ");
}

/**
 * C5: the scope of a code issued under the registration of then, narrowed to the registration of now. RFC 6749 §5.2
 * invalid_scope when nothing the user granted for a resource remains (offline_access alone only keeps a refresh
 * token alive).
 */
export function scopeStillGrantable(granted: string, client: Pick<Client, "scope">): string {
  const now = grantableScope(granted, client);
  const forResources = (scope: string) => scope.split(" ").some((s) => s !== "" && s !== "offline_access");
  if (forResources(granted) && !forResources(now)) throw invalidScope("none of the granted scopes is registered for this client any more");
  return now;
}

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
