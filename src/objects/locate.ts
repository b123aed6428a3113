import { loadConfig } from "../config";
import { PAR_URN_PREFIX, isOpaqueId } from "../lib/ids";
import type { AuditEvent } from "../db/audit";
import type { Env } from "../env";
import { newShardedId, shardOfId, shardOfKey } from "./sharding";

/**
 * Where each piece of state lives. Every object is found from the identifier the caller already holds,
 * so no lookup table and no global object sits on a hot path (the key manager is the one exception).
 * An identifier that is not one of ours resolves to null and never reaches (or creates) an object.
 */

export function newAuthCodeId(env: Env): string {
  return newShardedId(loadConfig(env).shardCount);
}

export function authCodeStoreFor(env: Env, code: string) {
  const shard = shardOfId(code, loadConfig(env).shardCount);
  return shard === null ? null : env.AUTH_CODES.get(env.AUTH_CODES.idFromName(`codes:${shard}`));
}

export function newParRequestUri(env: Env): string {
  return PAR_URN_PREFIX + newShardedId(loadConfig(env).shardCount);
}

export function parRequestStoreFor(env: Env, requestUri: string) {
  if (!requestUri.startsWith(PAR_URN_PREFIX)) return null;
  const shard = shardOfId(requestUri.slice(PAR_URN_PREFIX.length), loadConfig(env).shardCount);
  return shard === null ? null : env.PAR_REQUESTS.get(env.PAR_REQUESTS.idFromName(`par:${shard}`));
}

/** jtis are spread by their scope (the DPoP key thumbprint or the client id), which the caller knows before the proof is trusted. */
export function jtiStoreFor(env: Env, scope: string) {
  return env.JTIS.get(env.JTIS.idFromName(`jtis:${shardOfKey(scope, loadConfig(env).shardCount)}`));
}

export function newChallengeId(env: Env): string {
  return newShardedId(loadConfig(env).shardCount);
}

export function challengeStoreFor(env: Env, challengeId: string) {
  const shard = shardOfId(challengeId, loadConfig(env).shardCount);
  return shard === null ? null : env.CHALLENGES.get(env.CHALLENGES.idFromName(`challenges:${shard}`));
}

/** All sessions of one user live in one object, so "sign out everywhere" is one call (C18). */
export function userSessionsFor(env: Env, userId: string) {
  return isOpaqueId(userId) ? env.SESSIONS.get(env.SESSIONS.idFromName(`user:${userId}`)) : null;
}

/** One object per grant (refresh-token family): rotation and revocation of a family are local to it. */
export function tokenFamilyFor(env: Env, familyId: string) {
  return isOpaqueId(familyId) ? env.TOKEN_FAMILIES.get(env.TOKEN_FAMILIES.idFromName(`family:${familyId}`)) : null;
}

/**
 * The access tokens a client was issued for itself (client_credentials) that were revoked before they expire: one
 * object per client, holding only that list (it has storage only once something was revoked).
 */
export function clientTokensFor(env: Env, clientId: string) {
  return env.TOKEN_FAMILIES.get(env.TOKEN_FAMILIES.idFromName(`client:${clientId}`));
}

export function keyManager(env: Env) {
  return env.KEYS.get(env.KEYS.idFromName("keys"));
}

/**
 * The counters of one rate-limit key ("token:ip:203.0.113.9:client:abc", "login:email:<hash>"). Keys are built from
 * what callers send (addresses, email addresses), so they do not name objects: each key's counts are rows in one of
 * `shardCount` limiter objects (`rl:<shard>`), found by hashing the key. Exact counts, no global hot spot, and made-up
 * keys add rows that the alarm purges when their window is over, never objects (C15).
 */
export function rateLimiterFor(env: Env, key: string) {
  const object = env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(`rl:${shardOfKey(key, loadConfig(env).shardCount)}`));
  return {
    object,
    hit: (limit: number, windowSeconds: number, cost?: number) => object.hit(key, limit, windowSeconds, cost),
    peekUsage: (windowSeconds: number) => object.peekUsage(key, windowSeconds),
  };
}

/**
 * The registry of objects holding audit events not yet in D1 (dead letters, failed deliveries): one object, written
 * only while deliveries fail, read by operators (GET /admin/audit/dead-letters).
 */
export function deadLetterRegistry(env: Env) {
  return env.DEAD_LETTERS.get(env.DEAD_LETTERS.idFromName("dead-letters"));
}

/** What every object answers about its audit outbox (objects/base.ts). */
export interface OutboxHolder {
  outboxStatus(): Promise<{ pending: number; deadLettered: number; oldestPendingAt: number | null }>;
  deadLetters(limit?: number): Promise<Array<{ event: AuditEvent; attempts: number; lastError: string | null; deadLetteredAt: number }>>;
  redriveDeadLetters(): Promise<number>;
}

/**
 * The object an entry of the registry names: the namespace by the object's `source` (its class), then the name it was
 * addressed by (or, without one, its id). Null for a source or id that is not one of ours.
 */
export function outboxHolder(env: Env, entry: { source: string; name: string | null; id: string }): OutboxHolder | null {
  const namespaces: Record<string, DurableObjectNamespace | undefined> = {
    auth_code: env.AUTH_CODES,
    par_request: env.PAR_REQUESTS,
    jti: env.JTIS,
    challenge: env.CHALLENGES,
    sessions: env.SESSIONS,
    token_family: env.TOKEN_FAMILIES,
    keys: env.KEYS,
    rate_limiter: env.RATE_LIMITER,
  };
  const namespace = Object.hasOwn(namespaces, entry.source) ? namespaces[entry.source] : undefined;
  if (namespace === undefined) return null;
  let id: DurableObjectId;
  try {
    id = entry.name !== null ? namespace.idFromName(entry.name) : namespace.idFromString(entry.id);
  } catch {
    return null;
  }
  return namespace.get(id) as unknown as OutboxHolder;
}
