import { decodeJwt, type JWTPayload } from "jose";
import { sha256Base64url, timingSafeEqualStrings } from "../lib/crypto";
import { usesClientSecret } from "./client-metadata";
import { OAuthError } from "./errors";
import * as z from "zod/mini";
import { param } from "./schema";


/**
 * Client authentication rules (RFC 6749 §2.3, RFC 7521/7523, OIDC Core §9). Pure: which credentials a request
 * carries and how a secret is hashed and compared; client-assertion.ts checks assertions. The route side
 * (routes/support/client-authentication.ts) does the lookups (D1, jti store, keys).
 */

export type ClientAuthMethod = "client_secret_basic" | "client_secret_post" | "private_key_jwt" | "none";

/** RFC 7523 §2.2. */
export const JWT_BEARER_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

const MAX_SECRET_LENGTH = 512;
const MAX_ASSERTION_LENGTH = 16 * 1024;

export type PresentedCredentials =
  | { method: "client_secret_basic"; clientId: string; secret: string }
  | { method: "client_secret_post"; clientId: string; secret: string }
  | { method: "private_key_jwt"; clientId: string; assertion: string }
  | { method: "none"; clientId: string };

/** Secrets are stored as their SHA-256 (base64url), never in clear (C13). Secrets are 256 random bits, so a plain hash is enough. */
export function hashClientSecret(secret: string): Promise<string> {
  return sha256Base64url(secret);
}

/** Compares a presented secret with the stored hash in constant time (C13). */
export async function secretMatches(presented: string, storedHash: string | null): Promise<boolean> {
  if (storedHash === null || storedHash === "") return false;
  return timingSafeEqualStrings(await hashClientSecret(presented), storedHash);
}

/** The challenge sent with every 401 invalid_client (RFC 6749 §5.2, RFC 7235 §3.1). */
export function basicChallenge(realm: string): Record<string, string> {
  return { "www-authenticate": `Basic realm="${realm.replace(/["\\]/g, "")}", charset="UTF-8"` };
}

export function invalidClient(description: string, realm: string): OAuthError {
  return new OAuthError("invalid_client", description, { status: 401, headers: basicChallenge(realm) });
}

/** RFC 6749 Appendix B: application/x-www-form-urlencoded decoding of one value; null when malformed. */
function formDecode(text: string): string | null {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return null;
  }
}

/**
 * RFC 6749 §2.3.1 / RFC 7617: `Authorization: Basic base64(urlencode(client_id) ":" urlencode(secret))`.
 * Returns null when the header is not Basic at all; throws invalid_client when it is Basic but malformed.
 */
export function parseBasicAuthorization(header: string | null, realm: string): { clientId: string; secret: string } | null {
  if (header === null) return null;
  const match = /^Basic[ ]+([A-Za-z0-9+/=_-]*)[ ]*$/i.exec(header.trim());
  if (!match) {
    if (/^Basic(\s|$)/i.test(header.trim())) throw invalidClient("malformed Basic credentials", realm);
    return null;
  }
  let decoded: string;
  try {
    const binary = atob(match[1]!);
    const bytes = Uint8Array.from(binary, (c) => c.charCodeAt(0));
    decoded = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw invalidClient("malformed Basic credentials", realm);
  }
  const colon = decoded.indexOf(":");
  if (colon < 0) throw invalidClient("malformed Basic credentials", realm);
  const clientId = formDecode(decoded.slice(0, colon));
  const secret = formDecode(decoded.slice(colon + 1));
  if (clientId === null || secret === null || clientId === "" || secret === "" || secret.length > MAX_SECRET_LENGTH) {
    throw invalidClient("malformed Basic credentials", realm);
  }
  return { clientId, secret };
}

export interface CredentialParams {
  client_id?: string | undefined;
  client_secret?: string | undefined;
  client_assertion?: string | undefined;
  client_assertion_type?: string | undefined;
}

/**
 * Which credentials a request presents (RFC 6749 §2.3: a client MUST NOT use more than one method per request).
 * Two methods at once → invalid_request; none at all → invalid_client (401).
 */
export function extractClientCredentials(authorization: string | null, params: CredentialParams, realm: string): PresentedCredentials {
  const basic = parseBasicAuthorization(authorization, realm);
  const hasSecret = params.client_secret !== undefined;
  const hasAssertion = params.client_assertion !== undefined || params.client_assertion_type !== undefined;
  const methods = [basic !== null, hasSecret, hasAssertion].filter(Boolean).length;
  if (methods > 1) throw new OAuthError("invalid_request", "more than one client authentication method was used");

  if (basic !== null) {
    // RFC 6749 §2.3.1 allows client_id in the body as well; it must then name the same client.
    if (params.client_id !== undefined && params.client_id !== basic.clientId) {
      throw new OAuthError("invalid_request", "client_id does not match the Authorization header");
    }
    return { method: "client_secret_basic", ...basic };
  }
  if (hasSecret) {
    if (params.client_id === undefined) throw invalidClient("client_id is required with client_secret", realm);
    if (params.client_secret!.length > MAX_SECRET_LENGTH) throw invalidClient("client authentication failed", realm);
    return { method: "client_secret_post", clientId: params.client_id, secret: params.client_secret! };
  }
  if (hasAssertion) {
    if (params.client_assertion === undefined || params.client_assertion_type === undefined) {
      throw new OAuthError("invalid_request", "client_assertion and client_assertion_type go together");
    }
    if (params.client_assertion_type !== JWT_BEARER_ASSERTION_TYPE) throw invalidClient("unsupported client_assertion_type", realm);
    if (params.client_assertion.length > MAX_ASSERTION_LENGTH) throw invalidClient("client_assertion is too large", realm);
    const claims = unverifiedAssertionClaims(params.client_assertion, realm);
    // RFC 7523 §3: iss and sub are both the client_id; a client_id parameter, if sent, must agree (RFC 7521 §4.2).
    if (typeof claims.sub !== "string" || claims.iss !== claims.sub) throw invalidClient("client_assertion iss and sub must both be the client_id", realm);
    if (params.client_id !== undefined && params.client_id !== claims.sub) throw invalidClient("client_id does not match the client_assertion", realm);
    return { method: "private_key_jwt", clientId: claims.sub, assertion: params.client_assertion };
  }
  if (params.client_id !== undefined) return { method: "none", clientId: params.client_id };
  throw invalidClient("client authentication is required", realm);
}

/**
 * Whether a registered client may authenticate the way it did. RFC 6749 §2.3.1: a client issued a secret may send it
 * in HTTP Basic (which the server MUST support) or in the body, whichever it registered, at every endpoint; a
 * `private_key_jwt` client only with its assertion (RFC 7523 §2.2); a public client only with its client_id. Returns the
 * description of the invalid_client to answer — naming the registered method, never a secret — or null when it fits.
 */
export function methodMismatch(registered: ClientAuthMethod, presented: ClientAuthMethod): string | null {
  if (usesClientSecret(registered) ? usesClientSecret(presented) : presented === registered) return null;
  switch (registered) {
    case "client_secret_basic":
    case "client_secret_post":
      return `the client is registered for ${registered}: authenticate with its client secret, in HTTP Basic or in the request body`;
    case "private_key_jwt":
      return "the client is registered for private_key_jwt: authenticate with a signed client_assertion";
    case "none":
      return "the client is registered as a public client (none): send its client_id and no credentials";
  }
}

/** The payload of an assertion before its signature is checked: used only to find the client whose keys check it. */
function unverifiedAssertionClaims(assertion: string, realm: string): JWTPayload {
  try {
    return decodeJwt(assertion);
  } catch {
    throw invalidClient("client_assertion is not a JWT", realm);
  }
}

/** The client-authentication parameters every back-channel endpoint accepts (RFC 6749 §2.3.1, RFC 7523 §2.2); spread into each endpoint's schema. */
export const clientAuthParams = {
  client_id: z.optional(param(256)),
  client_secret: z.optional(param(512)),
  client_assertion: z.optional(param(16 * 1024)),
  client_assertion_type: z.optional(param(256)),
};
