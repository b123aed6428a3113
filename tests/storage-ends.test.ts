import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../src/config";
import { authCodeStoreFor, rateLimiterFor, tokenFamilyFor, userSessionsFor } from "../src/objects/locate";
import { newSessionId } from "../src/objects/sessions";
import { newShardedId, shardOfKey } from "../src/objects/sharding";
import { newFamilyId, type FamilyInit } from "../src/objects/token-family";

/**
 * C15 for objects, not only rows: every object deletes its storage once its content has ended, and an object asked
 * about an old identifier afterwards answers as for a made-up one, without making storage again.
 */

// Years ahead of the runtime's clock: no alarm fires by itself, each runs when the test runs it.
const T0 = Date.UTC(2041, 0, 1);
const MINUTE = 60_000;
beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(T0);
});
afterEach(() => vi.useRealTimers());

type AnyStub = Parameters<typeof runInDurableObject>[0];

/** The object's own tables (the runtime's `_cf_*` tables aside) and whether an alarm is set. */
function storageOf(stub: AnyStub) {
  return runInDurableObject(stub, async (_o, state) => ({
    tables: state.storage.sql
      .exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name`)
      .toArray()
      .map((r) => r.name),
    alarm: await state.storage.getAlarm(),
  }));
}

const EMPTY = { tables: [], alarm: null };
/** When the grants' client was registered (RFC 9700 §4.14: a grant belongs to one registration). */
const REGISTERED_AT = Date.UTC(2040, 0, 1);

/** Runs the object's alarm until it has nothing left to do (audit delivery first, then the purge that empties it). */
async function runAlarms(stub: AnyStub, times = 3): Promise<void> {
  for (let i = 0; i < times; i++) await runDurableObjectAlarm(stub);
}

/**
 * A rate-limit key whose limiter object (keys share SHARD_COUNT objects, C15) is shard `shard`: each test that looks
 * at a limiter's storage has a shard of its own, whatever the other tests of this file leave in theirs.
 */
function keyInShard(shard: number): string {
  const count = loadConfig(env).shardCount;
  for (;;) {
    const key = `storage:${crypto.randomUUID()}`;
    if (shardOfKey(key, count) === String(shard % count)) return key;
  }
}

function grant(familyId: string, overrides: Partial<FamilyInit> = {}): FamilyInit {
  return {
    familyId,
    clientId: "client-storage",
    clientRegisteredAt: REGISTERED_AT,
    sub: `user-${crypto.randomUUID()}`,
    scope: "openid offline_access",
    sid: null,
    authTime: 1_700_000_000,
    amr: ["email"],
    acr: null,
    claims: null,
    dpopJkt: null,
    issueRefreshToken: true,
    ...overrides,
  };
}

describe("objects delete their storage when nothing is left (C15)", () => {
  it("a single-use store shard: once every value and tombstone has expired", async () => {
    const shard = newShardedId(loadConfig(env).shardCount);
    const store = authCodeStoreFor(env, shard)!;
    const code = `${shard.split(".")[0]}.${"c".repeat(43)}`;
    await store.put(code, { clientId: "c", redirectUri: "https://rp.example/cb", sub: "u", scope: "openid", codeChallenge: null, nonce: null, sid: null, authTime: 1, amr: [], acr: null, claims: null, dpopJkt: null }, 60);
    await store.consume(code, { clientId: "c", redirectUri: "https://rp.example/cb", codeVerifier: null });
    expect((await storageOf(store)).tables).toContain("entries");

    vi.setSystemTime(T0 + 30_000);
    await runAlarms(store);
    // The tombstone still lives: a replay must be known as a replay (C1).
    expect((await store.peek(code)).status).toBe("consumed");
    vi.setSystemTime(T0 + 2 * MINUTE);
    await runAlarms(store);
    expect(await storageOf(store)).toEqual(EMPTY);
    expect(await store.peek(code)).toEqual({ status: "unknown" });
    expect(await store.consume(code, { clientId: "c", redirectUri: "https://rp.example/cb", codeVerifier: null })).toEqual({ status: "unknown" });
    expect(await storageOf(store)).toEqual(EMPTY);
  });

  it("a token family: once the grant's lifetime is over, rotated tokens and revoked jtis with it", async () => {
    const id = newFamilyId();
    const family = tokenFamilyFor(env, id)!;
    const created = await family.createFamily(grant(id, { lifetimeSeconds: 3600 }));
    if (created.status !== "created") throw new Error(created.status);
    const rotated = await family.rotateRefreshToken(created.refreshToken!, { clientId: "client-storage", clientRegisteredAt: REGISTERED_AT, scope: null, dpopJkt: null });
    expect(rotated.status).toBe("ok");
    await family.revokeAccessToken("jti-1", T0 + 600_000);

    vi.setSystemTime(T0 + 30 * MINUTE);
    await runAlarms(family);
    expect((await storageOf(family)).tables).toEqual(expect.arrayContaining(["family", "refresh_tokens"]));
    vi.setSystemTime(T0 + 3600_000 + MINUTE);
    await runAlarms(family);
    expect(await storageOf(family)).toEqual(EMPTY);
    expect(await family.rotateRefreshToken(created.refreshToken!, { clientId: "client-storage", clientRegisteredAt: REGISTERED_AT, scope: null, dpopJkt: null })).toEqual({ status: "unknown" });
    expect(await family.inspectRefreshToken(created.refreshToken!)).toEqual({ active: false });
    expect(await family.checkAccessToken("jti-1")).toEqual({ active: false });
    expect(await family.getFamily()).toBeNull();
    expect(await storageOf(family)).toEqual(EMPTY);
  });

  it("a revoked family: kept as a tombstone until its original expiry, then gone", async () => {
    const id = newFamilyId();
    const family = tokenFamilyFor(env, id)!;
    const created = await family.createFamily(grant(id, { lifetimeSeconds: 3600 }));
    if (created.status !== "created") throw new Error(created.status);
    await family.revokeFamily("test", "admin");
    vi.setSystemTime(T0 + 30 * MINUTE);
    await runAlarms(family);
    expect(await family.rotateRefreshToken(created.refreshToken!, { clientId: "client-storage", clientRegisteredAt: REGISTERED_AT, scope: null, dpopJkt: null })).toEqual({ status: "revoked" });
    vi.setSystemTime(T0 + 3600_000 + MINUTE);
    await runAlarms(family);
    expect(await storageOf(family)).toEqual(EMPTY);
  });

  it("a rate limiter: once its windows have passed", async () => {
    const limiter = rateLimiterFor(env, keyInShard(15));
    expect((await limiter.hit(5, 60)).allowed).toBe(true);
    expect((await limiter.hit(5, 60)).allowed).toBe(true);
    vi.setSystemTime(T0 + 2 * MINUTE + 1);
    await runAlarms(limiter.object);
    expect(await storageOf(limiter.object)).toEqual(EMPTY);
    expect(await limiter.peekUsage(60)).toMatchObject({ count: 0, windowsHeld: 0 });
    expect(await storageOf(limiter.object)).toEqual(EMPTY);
    // A new hit starts a fresh count.
    expect(await limiter.hit(1, 60)).toMatchObject({ allowed: true, remaining: 0 });
  });

  it("a user's sessions: once no session is left, revoked ones included", async () => {
    const userId = `user-${crypto.randomUUID()}`;
    const sessions = userSessionsFor(env, userId)!;
    const sid = newSessionId();
    const created = await sessions.createSession({ sid, userId, authTime: Math.floor(T0 / 1000), amr: ["email"], acr: null });
    if (!created.created) throw new Error("not created");
    await sessions.revokeSession(sid, "logout");
    const { sessionTtl } = loadConfig(env);
    vi.setSystemTime(T0 + sessionTtl * 1000 - MINUTE);
    await runAlarms(sessions);
    // Revoked, but kept until its absolute expiry: the sid stays taken.
    expect(await sessions.createSession({ sid, userId, authTime: 1, amr: ["email"], acr: null })).toEqual({ created: false });
    vi.setSystemTime(T0 + sessionTtl * 1000 + MINUTE);
    await runAlarms(sessions);
    expect(await storageOf(sessions)).toEqual(EMPTY);
    expect(await sessions.getSession(sid, created.secret)).toBeNull();
    expect(await sessions.touchSession(sid, created.secret)).toBeNull();
    expect(await sessions.listSessions()).toEqual([]);
    expect(await sessions.revokeSession(sid, "again")).toEqual({ revoked: false, clients: [] });
    await sessions.recordClient(sid, "client-a");
    expect(await storageOf(sessions)).toEqual(EMPTY);
  });

  it("a read of a made-up identifier never makes storage", async () => {
    const sessions = userSessionsFor(env, `user-${crypto.randomUUID()}`)!;
    const shard = newShardedId(loadConfig(env).shardCount);
    const store = authCodeStoreFor(env, `${shard}`)!;
    const limiter = rateLimiterFor(env, keyInShard(14));
    await sessions.getSession(newSessionId(), "s".repeat(43));
    await store.peek(shard);
    await limiter.peekUsage(60);
    for (const stub of [sessions, store, limiter.object]) expect(await storageOf(stub)).toEqual(EMPTY);
  });
});

describe("what keeps an object alive", () => {
  async function breakD1() {
    await env.DB.exec("ALTER TABLE audit_log RENAME TO audit_log_offline");
  }
  async function repairD1() {
    await env.DB.exec("ALTER TABLE audit_log_offline RENAME TO audit_log");
  }

  it("an audit event not yet in D1: pending, then dead-lettered, the object stays until it is delivered (C4)", async () => {
    const sessions = userSessionsFor(env, `user-${crypto.randomUUID()}`)!;
    // Revoke-all records an event even when there is no session: an outbox with one event and nothing else.
    const warnings = vi.spyOn(console, "warn").mockImplementation(() => undefined);
    const errors = vi.spyOn(console, "error").mockImplementation(() => undefined);
    await breakD1();
    try {
      await sessions.revokeAllSessions("test", "admin");
      const { auditMaxAttempts, auditRetryMax } = loadConfig(env);
      for (let attempt = 0; attempt < auditMaxAttempts; attempt++) {
        vi.setSystemTime(Date.now() + auditRetryMax * 1000 + MINUTE);
        await runDurableObjectAlarm(sessions);
        expect((await storageOf(sessions)).tables, `attempt ${attempt}`).toContain("audit_outbox");
      }
      expect(await sessions.outboxStatus()).toMatchObject({ pending: 0, deadLettered: 1 });
      // A dead letter is not delivered by itself: the object keeps it, whatever the alarm does.
      await runAlarms(sessions);
      expect((await storageOf(sessions)).tables).toContain("audit_outbox");
    } finally {
      await repairD1();
      warnings.mockRestore();
      errors.mockRestore();
    }
    expect(await sessions.redriveDeadLetters()).toBe(1);
    await runAlarms(sessions);
    expect(await storageOf(sessions)).toEqual(EMPTY);
  });

  it("a request racing the deletion sees the old state or a fresh object, never half of one", async () => {
    for (let round = 0; round < 10; round++) {
      const limiter = rateLimiterFor(env, keyInShard(round));
      await limiter.hit(3, 60);
      vi.setSystemTime(T0 + (round + 1) * 10 * MINUTE);
      const [, hit] = await Promise.all([runDurableObjectAlarm(limiter.object), limiter.hit(3, 60)]);
      // Whichever ran first, the new hit counts in a window of its own and is kept.
      expect(hit).toMatchObject({ allowed: true, remaining: 2 });
      expect(await limiter.peekUsage(60)).toMatchObject({ count: 1 });
    }
  });
});
