import { loadConfig } from "../../config";
import { getClient, type Client } from "../../db/clients";
import type { Env } from "../../env";
import { challengeStoreFor, newChallengeId } from "../../objects/locate";
import type { PendingAuthorization } from "../../oauth/authorize/pending";
import { UntrustedRequestError } from "../../oauth/authorize/request";

/**
 * Where a pending /authorize request lives while the user signs in and consents: an `interaction` challenge in the
 * challenge store, consumed when the code is issued (so a completed interaction cannot be replayed). Used by the
 * authorize, sign-in and consent routes.
 */

/** A problem that must be shown to the user, never sent to the client (OIDC Core §3.1.2.6). */
export function pageError(description: string, status = 400): UntrustedRequestError {
  return new UntrustedRequestError("invalid_request", description, { status });
}

export const ALREADY_COMPLETED = "This sign-in request was already completed. Start again from the application.";

/** Never shorter than the link it waits for, plus time to consent. */
export function interactionTtl(env: Env): number {
  const config = loadConfig(env);
  return Math.max(config.interactionTtl, config.magicLinkTtl + 10 * 60);
}

export async function startInteraction(env: Env, pending: PendingAuthorization): Promise<string> {
  const id = newChallengeId(env);
  const { stored } = await challengeStoreFor(env, id)!.put(
    id,
    { kind: "interaction", interaction: null, data: { request: JSON.stringify(pending) } },
    interactionTtl(env),
  );
  if (!stored) throw new Error("interaction id collision");
  return id;
}

/** The pending request of a live interaction; anything else (unknown, expired, completed, another kind) is a page. */
export async function loadInteraction(env: Env, id: string | undefined | null): Promise<PendingAuthorization> {
  const store = id === undefined || id === null ? null : challengeStoreFor(env, id);
  if (id === undefined || id === null || store === null) throw pageError("This sign-in request is not valid. Start again from the application.");
  const found = await store.peek(id);
  if (found.status === "consumed") throw pageError(ALREADY_COMPLETED);
  if (found.status !== "active" || found.value.kind !== "interaction") {
    throw pageError("This sign-in request has expired or is not valid. Start again from the application.");
  }
  const raw = found.value.data?.request;
  if (typeof raw !== "string") throw pageError("This sign-in request is not valid. Start again from the application.");
  return JSON.parse(raw) as PendingAuthorization;
}

/** Uses the interaction up, once: of two submissions, one goes on, the other gets a page. */
export async function completeInteraction(env: Env, id: string, outcome: { sessionId: string; userId: string }): Promise<void> {
  const result = await challengeStoreFor(env, id)!.consume(id, { kind: "interaction" }, outcome);
  if (result.status !== "ok") throw pageError(ALREADY_COMPLETED);
}

/**
 * The client and redirect URI of a pending request, read again now (C5): a client deleted or a redirect URI removed
 * since the request arrived means there is nobody to answer to any more.
 */
export async function clientOfPending(env: Env, pending: PendingAuthorization): Promise<Client> {
  const client = await getClient(env.DB, pending.clientId);
  if (client === null || !client.redirect_uris.includes(pending.redirectUri)) {
    throw pageError("The application that started this sign-in is no longer registered here.");
  }
  return client;
}
