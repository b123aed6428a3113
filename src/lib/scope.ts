/**
 * Scope strings (RFC 6749 §3.3): a list of space-delimited, case-sensitive scope tokens whose order does not matter.
 *   scope       = scope-token *( SP scope-token )
 *   scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
 * Pure functions, no I/O.
 */

const SCOPE_TOKEN = /^[\x21\x23-\x5B\x5D-\x7E]+$/;

/**
 * The distinct tokens of a scope string, in first-seen order, or null when a token contains a character the
 * grammar forbids. Repeated spaces are tolerated; duplicates collapse (a set, §3.3). An empty string yields [].
 */
export function parseScope(scope: string): string[] | null {
  const tokens: string[] = [];
  for (const token of scope.split(" ")) {
    if (token === "") continue;
    if (!SCOPE_TOKEN.test(token)) return null;
    if (!tokens.includes(token)) tokens.push(token);
  }
  return tokens;
}

/** The canonical form of a scope string (distinct tokens, single spaces), or null when it is malformed or empty. */
export function normalizeScope(scope: string): string | null {
  const tokens = parseScope(scope);
  return tokens === null || tokens.length === 0 ? null : tokens.join(" ");
}

/**
 * Whether every token of `requested` was granted (RFC 6749 §6: a refresh request "MUST NOT include any scope not
 * originally granted"). Comparison is exact and case-sensitive. A malformed or empty `requested` is not a subset:
 * an access token with no scope at all is never what a client asked for.
 */
export function isScopeSubset(requested: string, granted: string): boolean {
  const want = parseScope(requested);
  const have = parseScope(granted);
  if (want === null || have === null || want.length === 0) return false;
  return want.every((token) => have.includes(token));
}

/** Whether a scope grants anything besides `offline_access` (which only keeps a refresh token alive). */
function grantsAResource(tokens: readonly string[]): boolean {
  return tokens.some((s) => s !== "offline_access");
}

export type NarrowedScope = { scope: string } | { error: string };

/**
 * The scope a refreshed token carries (RFC 6749 §6), decided inside the grant's transaction so that a refused refresh
 * spends nothing: the requested scope (absent: the granted one) may not exceed what was granted, and is narrowed to
 * what the client may be granted under its registration now (`allowedNow`, C5). An OpenID grant is refreshed on the
 * authority of `offline_access` (OIDC Core §11), so without it allowed any more there is no refresh.
 */
export function narrowRefreshScope(granted: string, requested: string | null, allowedNow: readonly string[]): NarrowedScope {
  const grantedTokens = parseScope(granted) ?? [];
  if (requested !== null && !isScopeSubset(requested, granted)) return { error: "the requested scope exceeds the scope originally granted" };
  const grantedNow = grantedTokens.filter((s) => allowedNow.includes(s));
  if (grantsAResource(grantedTokens) && !grantsAResource(grantedNow)) return { error: "none of the granted scopes is registered for this client any more" };
  if (grantedNow.includes("openid") && !grantedNow.includes("offline_access")) {
    return { error: "offline_access is no longer registered for this client, so this grant cannot be refreshed" };
  }
  if (requested === null) return { scope: grantedNow.join(" ") };
  const narrowed = (parseScope(requested) ?? []).filter((s) => grantedNow.includes(s));
  if (narrowed.length === 0) return { error: "none of the requested scopes is registered for this client any more" };
  return { scope: narrowed.join(" ") };
}
