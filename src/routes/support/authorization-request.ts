import { loadConfig } from "../../config";
import type { StoredClient } from "../../db/clients";
import type { Env } from "../../env";
import { verifyWithPublishedKeys } from "../../objects/key-cache";
import { jtiStoreFor, parRequestStoreFor } from "../../objects/locate";
import type { PendingAuthorization } from "../../oauth/authorize/pending";
import { UntrustedRequestError, type AuthorizationRequest } from "../../oauth/authorize/request";
import { invalidRequest } from "../../oauth/errors";
import { REQUEST_OBJECT_ALGS, verifyRequestObject } from "../../oauth/request-object";
import { isFapi2, signingAlgsFor } from "../../oauth/security-profile";
import { verifyIdTokenHint } from "../../oauth/tokens";
import { clientKeySet } from "./client-keys";

/**
 * What /authorize and /par share once the client is known: the parameters of a request object (RFC 9101) verified,
 * those of a pushed request (RFC 9126) taken once (C9), and the validated request turned into the pending one.
 * The rules are oauth/'s (request-object.ts, authorize/request.ts); this brings them the keys, the stores and D1.
 */

/**
 * A request object's parameters, verified for `client`: with its registered keys (jwks, or jwks_uri fetched),
 * algorithms (its `request_object_signing_alg`, narrowed by its profile; `none` only where allowed), and its jti
 * recorded once for as long as the object lives (scope `request_object:<client_id>`).
 */
export async function verifiedRequestObject(env: Env, issuer: string, client: StoredClient, jwt: string, endpointUrl: string): Promise<Record<string, string>> {
  const registered = client.request_object_signing_alg;
  const algorithms = signingAlgsFor(client, registered === null ? REQUEST_OBJECT_ALGS : registered === "none" ? [] : [registered]);
  const allowUnsigned = loadConfig(env).allowUnsignedRequestObjects && !isFapi2(client) && (registered === null || registered === "none");
  const scope = `request_object:${client.client_id}`;
  return verifyRequestObject(
    jwt,
    clientKeySet(client),
    { clientId: client.client_id, issuer, nowSeconds: Math.floor(Date.now() / 1000), algorithms, allowUnsigned },
    (jti, windowSeconds) => jtiStoreFor(env, scope).recordJti(scope, jti, { htu: endpointUrl }, windowSeconds),
  );
}

/** A request_uri that cannot be used: shown to the user, never redirected (its redirect URI is in what is missing). */
function unusableRequestUri(description: string): UntrustedRequestError {
  return new UntrustedRequestError("invalid_request_uri", description);
}

/**
 * RFC 9126 §4: the pushed request behind `requestUri`, taken once and only by the client that pushed it (C9: the
 * check and the use are one step of its object). Unknown, expired, used or another client's: a page.
 */
export async function takePushedRequest(env: Env, requestUri: string, clientId: string): Promise<Record<string, string>> {
  const store = parRequestStoreFor(env, requestUri);
  if (store === null) throw unusableRequestUri("This sign-in request is not valid. Start again from the application.");
  const result = await store.consume(requestUri, { clientId });
  switch (result.status) {
    case "ok":
      return { ...result.value.params, client_id: clientId };
    case "consumed":
      throw unusableRequestUri("This sign-in request was already used. Start again from the application.");
    case "expired":
      throw unusableRequestUri("This sign-in request has expired. Start again from the application.");
    case "rejected":
    case "unknown":
      throw unusableRequestUri("This sign-in request is not valid. Start again from the application.");
  }
}

/**
 * The pending request a validated one becomes: its id_token_hint checked — an ID token we issued (expired is fine) to
 * this client (OIDC Core §3.1.2.1) — and the time it arrived.
 */
export async function pendingAuthorization(env: Env, issuer: string, client: StoredClient, validated: AuthorizationRequest): Promise<PendingAuthorization> {
  const { idTokenHint, ...rest } = validated;
  let idTokenHintSub: string | null = null;
  if (idTokenHint !== null) {
    const hint = await verifyIdTokenHint((jwt, opts) => verifyWithPublishedKeys(env, jwt, opts), issuer, idTokenHint);
    if (hint === null || !hint.aud.includes(client.client_id)) throw invalidRequest("id_token_hint is not an ID token issued to this application");
    idTokenHintSub = hint.sub;
  }
  return { ...rest, idTokenHintSub, startedAt: Date.now() };
}
