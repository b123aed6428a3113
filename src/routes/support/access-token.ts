import { getClient, type StoredClient } from "../../db/clients";
import { tokenParties } from "../../db/token-parties";
import { userForGrant, type GrantUser, type User } from "../../db/users";
import type { Env } from "../../env";
import { verifyWithPublishedKeys } from "../../objects/key-cache";
import { clientTokensFor, tokenFamilyFor } from "../../objects/locate";
import { familyIdOfRefreshToken, type AccessTokenCheck, type FamilyInfo, type InspectResult } from "../../objects/token-family";
import { accessTokenGrantFacts, accessTokenGrantOf } from "../../oauth/access-token-grant";
import { clientGrantOf, registrationOfClientGrant } from "../../oauth/client-grant";
import { accessTokenOf, bearerInvalidRequest, invalidToken, presentedToken, resourceProofError, tokenRequired, type AuthScheme } from "../../oauth/bearer";
import { invalidDpopProof } from "../../oauth/dpop";
import { OAuthError } from "../../oauth/errors";
import { grantHasUser, whyGrantIsNotGood, whyPresentationIsNotGood, whyTokenIsNotGood } from "../../oauth/token-validity";
import { verifyAccessToken, type AccessTokenClaims } from "../../oauth/tokens";
import { checkDpopProof, nonceHeaders, spendProof, type EndpointProof } from "./dpop";
import { mediaTypeOf, readParams } from "./params";

/**
 * Where presented tokens are validated: the access token a request presents (RFC 6750 Bearer, or RFC 9449 DPoP with
 * its proof and key binding: `authorizedAccess`), and whether a token is still good (C23). An access token: signature, issuer, audience and expiry (RFC 9068), then its grant, its own revocation,
 * its client and its user, gathered in one round trip (the grant's object and D1 in parallel) and judged by
 * `whyTokenIsNotGood`. A refresh token at introspection: its grant's object, then its user, judged by `whyGrantIsNotGood`
 * (the refresh grant applies the same rule around its rotation).
 */

export interface ActiveAccessToken {
  claims: AccessTokenClaims;
  grant: FamilyInfo;
  /** The user the token speaks for; null for a client's own token (client_credentials). */
  user: User | null;
  /** The token's client, as registered now (C5). */
  client: StoredClient;
}

/**
 * The access token of a request and how it is presented: `Authorization: Bearer` or, for a POST form, `access_token`
 * (RFC 6750 §2.1, §2.2), never both; or `Authorization: DPoP` (RFC 9449 §7.1, header only).
 */
export async function readAccessToken(request: Request, realm: string): Promise<{ scheme: AuthScheme; token: string } | null> {
  const fromHeader = accessTokenOf(request.headers.get("authorization"), realm);
  let fromBody: string | null = null;
  if (request.method === "POST" && mediaTypeOf(request) === "application/x-www-form-urlencoded") {
    let params: Record<string, string>;
    try {
      params = await readParams(request, "body");
    } catch (error) {
      if (error instanceof OAuthError) throw bearerInvalidRequest(realm, error.description ?? "the request is malformed", fromHeader?.scheme);
      throw error;
    }
    fromBody = params.access_token ?? null;
  }
  const token = presentedToken(fromHeader?.token ?? null, fromBody, realm, fromHeader?.scheme);
  return token === null ? null : { scheme: fromHeader?.scheme ?? "Bearer", token };
}

/** A resource request whose access token is good and presented as it must be. */
export interface AuthorizedAccess extends ActiveAccessToken {
  scheme: AuthScheme;
  /** For the answer: `DPoP-Nonce` when the proof's nonce has rolled over (RFC 9449 §9). */
  headers: Record<string, string>;
}

/**
 * Resource access (/userinfo): for the DPoP scheme its proof for `path` with `ath` (every rule, no I/O), then the token
 * (C23's rule) with the proof's one jti call in the same round trip as the token's lookups, then the key binding
 * (RFC 9449 §7.1). Every refusal is the 401 of the scheme used: a Bearer challenge, or a DPoP one.
 */
export async function authorizedAccess(env: Env, request: Request, issuer: string, path: string): Promise<AuthorizedAccess> {
  const presented = await readAccessToken(request, issuer);
  if (presented === null) throw tokenRequired(issuer, "no access token was presented");
  const { scheme, token } = presented;
  let active: ActiveAccessToken | null;
  let proof: EndpointProof | null = null;
  if (scheme === "DPoP") {
    if (request.headers.get("dpop") === null) throw resourceProofError(issuer, invalidDpopProof("the DPoP scheme needs a DPoP proof"));
    try {
      proof = await checkDpopProof(env, request, issuer, path, token);
      const checked = proof;
      active = await activeAccessToken(env, issuer, token, { beside: () => spendProof(env, checked) });
    } catch (error) {
      throw error instanceof OAuthError ? resourceProofError(issuer, error) : error;
    }
  } else {
    active = await activeAccessToken(env, issuer, token);
  }
  if (active === null) throw invalidToken(issuer, "the access token is invalid, expired or revoked", scheme);
  const why = whyPresentationIsNotGood(active.claims, proof === null ? { scheme: "Bearer" } : { scheme: "DPoP", jkt: proof.jkt });
  if (why !== null) throw invalidToken(issuer, why, scheme);
  return { ...active, scheme, headers: nonceHeaders(proof) };
}

/** How the caller wants the token's lookups done. */
export interface TokenLookup {
  /** One more storage step to run in the same round trip as the token's lookups (a DPoP proof's jti record). */
  beside?: () => Promise<void>;
}

/** The token's facts when it is still good, else null. */
export async function activeAccessToken(env: Env, issuer: string, token: string, lookup: TokenLookup = {}): Promise<ActiveAccessToken | null> {
  const claims = await verifiedAccessToken(env, issuer, token);
  const started = claims === null ? null : startTokenLookups(env, claims, lookup.beside);
  return started === null ? null : await judgeToken(started, null);
}

/**
 * Introspection (RFC 7662) of an access token by the client `authenticate` authenticates, which reads the caller's
 * row through `readClient`, once the caller's rate limit let it in. There the signature is checked (the JWKS comes from
 * this isolate's cache); when the token names the presented client, the read is the token's own D1 batch (its client
 * and user), side by side with its grant's object, so authentication and the token's lookups are one round trip —
 * reads a failed authentication leaves unused, never a write. Another client's token is never good for the caller
 * (C14), and is not looked up.
 */
export async function introspectedAccessToken(
  env: Env,
  issuer: string,
  token: string,
  authenticate: (readClient: (clientId: string) => Promise<StoredClient | null>) => Promise<StoredClient>,
): Promise<ActiveAccessToken | null> {
  let started: StartedLookups | null = null;
  const caller = await authenticate(async (clientId) => {
    // Here, not before: the caller's rate limit has let the request in.
    const claims = await verifiedAccessToken(env, issuer, token);
    started = claims === null || claims.client_id !== clientId ? null : startTokenLookups(env, claims);
    return started === null ? await getClient(env.DB, clientId) : await started.client;
  });
  const lookups = started as StartedLookups | null;
  return lookups === null || lookups.claims.client_id !== caller.client_id ? null : await judgeToken(lookups, caller);
}

function verifiedAccessToken(env: Env, issuer: string, token: string): Promise<AccessTokenClaims | null> {
  return verifyAccessToken((jwt, options) => verifyWithPublishedKeys(env, jwt, options), issuer, token);
}

/** A token's lookups, in flight: its client as registered now, and the rest of what C23's rule needs. */
interface StartedLookups {
  claims: AccessTokenClaims;
  client: Promise<StoredClient | null>;
  /** The token's grant and its user (undefined for a grant with no user), once every lookup is in. */
  facts: Promise<{ grant: AccessTokenCheck; holder: GrantUser | null | undefined }>;
}

/**
 * Starts, side by side, everything C23's rule needs to judge the token: for a user's token its grant's object and one
 * D1 batch (the client and the user) — for a grant that lives in its tokens (access-token-grant.ts) the object only
 * says whether it was revoked; for a client's own token (client_credentials: its grant is the client's registration)
 * its revocation in the client's list and the client. Null when the token names no grant we could hold.
 */
function startTokenLookups(env: Env, claims: AccessTokenClaims, beside?: () => Promise<void>): StartedLookups | null {
  const registeredAt = registrationOfClientGrant(claims.gid);
  if (registeredAt !== null) {
    const client = getClient(env.DB, claims.client_id);
    const revoked = clientTokensFor(env, claims.client_id).isAccessTokenRevoked(claims.jti);
    const facts = Promise.all([revoked, client, beside?.()]).then(([isRevoked]) => ({
      grant: isRevoked ? ({ active: false } as const) : ({ active: true, grant: clientGrantOf(claims, registeredAt) } as const),
      holder: undefined,
    }));
    return settledLater({ claims, client, facts });
  }
  const inTokens = accessTokenGrantOf(claims.gid);
  if (inTokens !== null) {
    // A code grant that lives in its tokens is a user's: without auth_time it is not one of ours.
    if (claims.auth_time === undefined) return null;
    const anchor = tokenFamilyFor(env, inTokens.grantId);
    if (anchor === null) return null;
    const parties = tokenParties(env.DB, { clientId: claims.client_id, readClient: true, userId: claims.sub });
    const facts = Promise.all([anchor.isAccessTokenRevoked(claims.jti), parties, beside?.()]).then(([isRevoked, read]) => ({
      grant: isRevoked ? ({ active: false } as const) : ({ active: true, grant: accessTokenGrantFacts(claims, inTokens) } as const),
      holder: read.holder,
    }));
    return settledLater({ claims, client: parties.then((read) => read.client), facts });
  }
  const family = tokenFamilyFor(env, claims.gid);
  if (family === null) return null;
  // A user's token carries auth_time; a client's own token (client_credentials) does not and has no user to read.
  const userId = claims.auth_time !== undefined ? claims.sub : null;
  const parties = tokenParties(env.DB, { clientId: claims.client_id, readClient: true, userId });
  const facts = Promise.all([family.checkAccessToken(claims.jti), parties, beside?.()]).then(([grant, read]) => ({
    grant,
    holder: grant.active && grantHasUser(grant.grant) ? read.holder : undefined,
  }));
  return settledLater({ claims, client: parties.then((read) => read.client), facts });
}

/** Lookups a refusal may leave unread (a caller whose credentials fail): their rejections must not go unhandled. */
function settledLater(lookups: StartedLookups): StartedLookups {
  lookups.client.catch(() => undefined);
  lookups.facts.catch(() => undefined);
  return lookups;
}

/** C23's one rule on the token's facts; `caller`: the client the endpoint authenticated (its row is the one just read). */
async function judgeToken(started: StartedLookups, caller: StoredClient | null): Promise<ActiveAccessToken | null> {
  const [{ grant, holder }, read] = await Promise.all([started.facts, started.client]);
  const client = caller ?? read;
  const { claims } = started;
  if (whyTokenIsNotGood({ claims, grant, client, holder }) !== null || !grant.active) return null;
  // Good means the client is registered (whyTokenIsNotGood), so it is there.
  return { claims, grant: grant.grant, user: holder?.user ?? null, client: client! };
}

/**
 * A refresh token's facts when it is the current token of a live grant of `client` and still good (C23), else null.
 * `client` is the caller, already authenticated (and so read from D1 just now): another client's token is never good.
 */
export async function activeRefreshToken(env: Env, token: string, client: StoredClient): Promise<(InspectResult & { active: true }) | null> {
  const familyId = familyIdOfRefreshToken(token);
  const family = familyId === null ? null : tokenFamilyFor(env, familyId);
  if (family === null) return null;
  const inspected = await family.inspectRefreshToken(token);
  if (!inspected.active || inspected.family.clientId !== client.client_id) return null;
  const holder = grantHasUser(inspected.family) ? await userForGrant(env.DB, inspected.family.sub, client.client_id) : undefined;
  return whyGrantIsNotGood({ grant: inspected.family, client, holder }) === null ? inspected : null;
}
