import { loadConfig } from "../../config";
import { getClient, type StoredClient } from "../../db/clients";
import type { Env } from "../../env";
import { jtiStoreFor } from "../../objects/locate";
import { CLIENT_ASSERTION_ALGS, verifyClientAssertion } from "../../oauth/client-assertion";
import { extractClientCredentials, invalidClient, methodMismatch, secretMatches, type CredentialParams, type PresentedCredentials } from "../../oauth/client-auth";
import { OAuthError } from "../../oauth/errors";
import { signingAlgsFor } from "../../oauth/security-profile";
import { clientKeySet } from "./client-keys";
import { clientAddress, enforceRateLimit } from "./rate-limit";

/**
 * Client authentication at the back-channel endpoints (token, introspection, revocation): find the client in D1
 * (read on every request, C5), check the method fits its registration (`methodMismatch`), then check the credential.
 * Every failure is invalid_client, 401 (RFC 6749 §5.2).
 */

export interface ClientAuthContext {
  /** The issuer identifier: the realm of the challenge and the assertion audience. */
  issuer: string;
  /** The URL of the endpoint being called: recorded with an assertion's jti (it is not an accepted audience). */
  endpointUrl: string;
  /**
   * Rate limit per caller address AND presented client_id, applied before the client is looked up (an invented
   * client_id neither skips it nor costs a D1 read) and before the credential is checked (secrets cannot be guessed at
   * speed from any one address); a third party who knows a client_id cannot use up the real client's budget elsewhere.
   * `requests`: every request counts (/token). `failures`: only failed authentications count, and a caller over the
   * limit is refused before anything is looked up (/introspect, /revoke, which a resource server may call very often).
   */
  rateLimit: { name: string; limit: number; counts: "requests" | "failures" };
  /** Refuse public clients (`none`): a client_id alone proves nothing, and this endpoint needs a caller that does (RFC 7662 §2.1). */
  confidentialOnly?: boolean;
  /** Accept the endpoint's own URL as an assertion's audience too (RFC 9126 §2 asks it of /par). */
  endpointIsAudience?: boolean;
  /** How the client's row is read (default `getClient`): introspection reads it in the same batch as the token's user. */
  readClient?: (clientId: string) => Promise<StoredClient | null>;
}

export async function authenticateClient(env: Env, request: Request, params: CredentialParams, context: ClientAuthContext): Promise<StoredClient> {
  try {
    return await authenticate(env, request, params, context);
  } catch (error) {
    // RFC 6749 §5.2: the Basic challenge answers a client that tried the Authorization header (or sent nothing). A
    // client that authenticated in the body gets 401 invalid_client without it, which libraries read as the OAuth error it is.
    const triedBody = params.client_id !== undefined || params.client_secret !== undefined || params.client_assertion !== undefined;
    if (error instanceof OAuthError && error.code === "invalid_client" && request.headers.get("authorization") === null && triedBody) {
      throw new OAuthError("invalid_client", error.description, { status: 401 });
    }
    throw error;
  }
}

async function authenticate(env: Env, request: Request, params: CredentialParams, context: ClientAuthContext): Promise<StoredClient> {
  const presented = extractClientCredentials(request.headers.get("authorization"), params, context.issuer);
  const { name, limit, counts } = context.rateLimit;
  // The address first: the limiter key is cut at 200 characters, and a long client_id must not cut it off.
  const key = `${name}:ip:${clientAddress(env, request)}:client:${presented.clientId}`;
  await enforceRateLimit(env, key, limit, counts === "requests" ? 1 : 0);
  try {
    return await verifyCredentials(env, presented, context);
  } catch (error) {
    if (counts === "failures" && error instanceof OAuthError && error.code === "invalid_client") await enforceRateLimit(env, key, limit);
    throw error;
  }
}

async function verifyCredentials(env: Env, presented: PresentedCredentials, context: ClientAuthContext): Promise<StoredClient> {
  const realm = context.issuer;
  const client = await (context.readClient ?? ((clientId: string) => getClient(env.DB, clientId)))(presented.clientId);
  if (client === null) throw invalidClient("client authentication failed", realm);
  const mismatch = methodMismatch(client.token_endpoint_auth_method, presented.method);
  if (mismatch !== null) throw invalidClient(mismatch, realm);

  switch (presented.method) {
    case "client_secret_basic":
    case "client_secret_post":
      if (!(await secretMatches(presented.secret, client.secret_hash))) throw invalidClient("client authentication failed", realm);
      return client;
    case "private_key_jwt": {
      const keys = clientKeySet(client);
      if (keys === null) throw invalidClient("the client has no usable keys registered", realm);
      const { jti, windowSeconds } = await verifyClientAssertion(presented.assertion, keys, {
        clientId: client.client_id,
        issuer: context.issuer,
        tokenEndpoint: `${context.issuer}/token`,
        alsoAccepted: context.endpointIsAudience ? [context.endpointUrl] : [],
        algorithms: signingAlgsFor(client, CLIENT_ASSERTION_ALGS),
        realm,
        nowSeconds: Math.floor(Date.now() / 1000),
        maxLifetimeSeconds: loadConfig(env).clientAssertionMaxLifetime,
      });
      // C10: the assertion's jti is accepted once, remembered for as long as the assertion could be accepted.
      const scope = `client_assertion:${client.client_id}`;
      const fresh = await jtiStoreFor(env, scope).recordJti(scope, jti, { htu: context.endpointUrl }, windowSeconds);
      if (!fresh) throw invalidClient("client_assertion was already used", realm);
      return client;
    }
    case "none":
      if (context.confidentialOnly) throw invalidClient("this endpoint requires client authentication; a public client cannot use it", realm);
      // A public client proves nothing here; the authorization code's PKCE check binds the redemption (RFC 7636).
      return client;
  }
}

/**
 * The limit of /introspect and /revoke: failed client authentications per caller address and client_id, as many as
 * /token allows requests (`RATE_LIMIT_TOKEN`), in one bucket for both endpoints so alternating between them gains nothing.
 */
export function failedClientAuthentication(env: Env): ClientAuthContext["rateLimit"] {
  return { name: "client_auth_failures", limit: loadConfig(env).rateLimitToken, counts: "failures" };
}
