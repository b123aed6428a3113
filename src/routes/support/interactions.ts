import { loadConfig } from "../../config";
import { getClient, type Client } from "../../db/clients";
import type { Env } from "../../env";
import { challengeStoreFor, newChallengeId } from "../../objects/locate";
import type { PendingAuthorization } from "../../oauth/authorize/pending";
import { PageError, type ProblemName } from "./errors";

/**
 * Where a pending /authorize request lives while the user signs in and consents: an `interaction` challenge in the
 * challenge store, consumed when the code is issued (so a completed interaction cannot be replayed). Used by the
 * authorize, sign-in and consent routes.
 */

/** A problem that must be shown to the user, never sent to the client (OIDC Core §3.1.2.6): a page of the catalogue. */
export function pageError(problem: ProblemName, status = 400, action: PageError["action"] = null): PageError {
  return new PageError(problem, status, action);
}

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
  if (id === undefined || id === null || store === null) throw pageError("requestInvalid");
  const found = await store.peek(id);
  if (found.status === "consumed") throw pageError("requestDone");
  if (found.status !== "active" || found.value.kind !== "interaction") throw pageError("requestExpired");
  const raw = found.value.data?.request;
  if (typeof raw !== "string") throw pageError("requestInvalid");
  return JSON.parse(raw) as PendingAuthorization;
}

/** Uses the interaction up, once: of two submissions, one goes on, the other gets a page. */
export async function completeInteraction(env: Env, id: string, outcome: { sessionId: string; userId: string }): Promise<void> {
  const result = await challengeStoreFor(env, id)!.consume(id, { kind: "interaction" }, outcome);
  if (result.status !== "ok") throw pageError("requestDone");
}

/**
 * The client and redirect URI of a pending request, read again now (C5): a client deleted or a redirect URI removed
 * since the request arrived means there is nobody to answer to any more.
 */
export async function clientOfPending(env: Env, pending: PendingAuthorization): Promise<Client> {
  const client = await getClient(env.DB, pending.clientId);
  if (client === null || !client.redirect_uris.includes(pending.redirectUri)) {
    throw pageError("appGone");
  }
  return client;
}
