import { abortAllDurableObjects, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { userSessionsFor } from "../src/objects/locate";
import { formatSessionCookie, newSessionId, parseSessionCookie, type SessionInit, type UserSessions } from "../src/objects/sessions";
import { sha256Base64url } from "../src/lib/crypto";

const MINUTE = 60_000;
const DAY = 86_400_000;
// Defaults of src/config.ts: 14 days absolute, 3 days idle.
const TTL = 14 * DAY;
const IDLE = 3 * DAY;

// The objects' clocks are set years ahead, so the alarms they schedule never fire by themselves during a test:
// each purge and delivery happens exactly when the test runs the alarm.
const T0 = Date.UTC(2040, 0, 1);
beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(T0);
});
afterEach(() => vi.useRealTimers());

function user() {
  const userId = `user-${crypto.randomUUID()}`;
  const stub = userSessionsFor(env, userId);
  if (!stub) throw new Error(`not a user id: ${userId}`);
  return { userId, stub };
}

type Stub = ReturnType<typeof user>["stub"];

function init(userId: string, overrides: Partial<SessionInit> = {}): SessionInit {
  return { sid: newSessionId(), userId, authTime: Math.floor(Date.now() / 1000), amr: ["email"], acr: null, ...overrides };
}

async function created(stub: Stub, value: SessionInit): Promise<string> {
  const result = await stub.createSession(value);
  if (!result.created) throw new Error("createSession: not created");
  return result.secret;
}

function rows(stub: Stub) {
  return runInDurableObject(stub, (_o, state) => {
    // A table that is not there holds nothing: an object with no storage yet, or one that deleted its storage (C15).
    const exists = (table: string) => state.storage.sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`, table).toArray().length > 0;
    const count = (table: string) => (exists(table) ? state.storage.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n : 0);
    return { sessions: count("sessions"), clients: count("session_clients") };
  });
}

function outboxTypes(stub: Stub): Promise<string[]> {
  return runInDurableObject(stub, (_o, state) =>
    state.storage.sql
      .exec<{ event: string }>("SELECT event FROM audit_outbox")
      .toArray()
      .map((r) => (JSON.parse(r.event) as { type: string }).type),
  );
}

async function auditLog(subject: string) {
  const { results } = await env.DB.prepare("SELECT type, source, actor, client_id, data FROM audit_log WHERE subject = ? ORDER BY occurred_at, type")
    .bind(subject)
    .all<{ type: string; source: string; actor: string | null; client_id: string | null; data: string | null }>();
  return results.map((r) => ({ ...r, data: r.data === null ? null : (JSON.parse(r.data) as Record<string, unknown>) }));
}

describe("session cookie format", () => {
  const userId = "user-0123456789";
  const sid = "AAAAAAAAAAAAAAAAAAAAAA";
  const secret = "s".repeat(43);

  it("round-trips our own values", () => {
    const cookie = formatSessionCookie(userId, sid, secret);
    expect(cookie).toBe(`${userId}.${sid}.${secret}`);
    expect(parseSessionCookie(cookie)).toEqual({ userId, sid, secret });
    const fresh = newSessionId();
    expect(parseSessionCookie(formatSessionCookie(userId, fresh, secret))).toEqual({ userId, sid: fresh, secret });
  });

  it("parses hostile values to null", () => {
    const hostile = [
      "",
      ".",
      "..",
      `${userId}.${sid}`,
      `${userId}.${sid}.${secret}.`,
      `${userId}.${sid}.${secret}.extra`,
      `.${userId}.${sid}.${secret}`,
      `${userId}..${sid}.${secret}`,
      `${userId}.${sid}.${secret}`.repeat(2),
      "a".repeat(10_240),
      `${userId}.${sid}.${"s".repeat(10_000)}`,
      `${userId}.${sid}.${"s".repeat(42)}`,
      `${userId}.${sid}.${"s".repeat(44)}`,
      `${userId}.${"A".repeat(15)}.${secret}`,
      `${userId}.${"A".repeat(65)}.${secret}`,
      `short.${sid}.${secret}`,
      `${"u".repeat(129)}.${sid}.${secret}`,
      `${userId}.${sid}.${"s".repeat(42)}+`,
      `${userId}.${sid}.${"s".repeat(42)}/`,
      `${userId}.${sid}.${"s".repeat(42)}=`,
      `${userId}.${sid}.${"s".repeat(42)} `,
      ` ${userId}.${sid}.${secret}`,
      `${userId}.${sid}.${secret}\n`,
      `user 0123456789.${sid}.${secret}`,
      `user-01234567é9.${sid}.${secret}`,
      `${userId}.${sid.slice(1)}%.${secret}`,
      `${userId}.${sid}.${"s".repeat(42)}\u0000`,
    ];
    for (const value of hostile) expect(parseSessionCookie(value), JSON.stringify(value.slice(0, 80))).toBeNull();
    expect(parseSessionCookie(undefined as unknown as string)).toBeNull();
    expect(parseSessionCookie(42 as unknown as string)).toBeNull();
  });

  it("refuses to format parts that are not ours", () => {
    expect(() => formatSessionCookie("a.b.c.d.e", sid, secret)).toThrow();
    expect(() => formatSessionCookie(userId, "x.y", secret)).toThrow();
    expect(() => formatSessionCookie(userId, sid, "short")).toThrow();
  });
});

describe("UserSessions", () => {
  it("creates, gets and touches a session; stores only the secret's hash", async () => {
    const { userId, stub } = user();
    const value = init(userId, { amr: ["hwk", "user"], acr: "urn:example:loa:2" });
    const result = await stub.createSession(value);
    expect(result).toMatchObject({
      created: true,
      session: {
        sid: value.sid,
        userId,
        authTime: value.authTime,
        amr: ["hwk", "user"],
        acr: "urn:example:loa:2",
        createdAt: T0,
        lastSeenAt: T0,
        expiresAt: T0 + TTL,
        idleExpiresAt: T0 + IDLE,
        clients: [],
      },
    });
    if (!result.created) throw new Error("not created");
    const cookie = parseSessionCookie(formatSessionCookie(userId, value.sid, result.secret));
    expect(cookie).not.toBeNull();

    expect(await stub.getSession(cookie!.sid, cookie!.secret)).toEqual(result.session);
    expect(await stub.touchSession(cookie!.sid, cookie!.secret)).toEqual(result.session);
    expect(await stub.listSessions()).toEqual([result.session]);

    const stored = await runInDurableObject(stub, (_o, state) => state.storage.sql.exec<Record<string, SqlStorageValue>>("SELECT * FROM sessions").toArray());
    expect(stored).toHaveLength(1);
    expect(stored[0]!.secret_hash).toBe(await sha256Base64url(result.secret));
    expect(JSON.stringify(stored)).not.toContain(result.secret);
  });

  it("a wrong secret, an unknown sid or another session's secret gives null", async () => {
    const { userId, stub } = user();
    const a = init(userId);
    const b = init(userId);
    const secretA = await created(stub, a);
    const secretB = await created(stub, b);
    expect(await stub.getSession(a.sid, "x".repeat(43))).toBeNull();
    expect(await stub.getSession(a.sid, secretB)).toBeNull();
    expect(await stub.getSession(a.sid, secretA.slice(0, 42))).toBeNull();
    expect(await stub.getSession(a.sid, "")).toBeNull();
    expect(await stub.getSession(newSessionId(), secretA)).toBeNull();
    expect(await stub.touchSession(a.sid, secretB)).toBeNull();
    expect(await stub.getSession(a.sid, secretA)).toMatchObject({ sid: a.sid });
    expect(await stub.getSession(b.sid, secretB)).toMatchObject({ sid: b.sid });
  });

  it("createSession is idempotent on sid: a later call returns created:false and changes nothing", async () => {
    const { userId, stub } = user();
    const value = init(userId);
    const secret = await created(stub, value);
    expect(await stub.createSession(value)).toEqual({ created: false });
    expect(await stub.createSession({ ...value, amr: ["pwd"], authTime: value.authTime + 5 })).toEqual({ created: false });
    expect(await stub.getSession(value.sid, secret)).toMatchObject({ amr: ["email"], authTime: value.authTime });
    expect(await rows(stub)).toEqual({ sessions: 1, clients: 0 });
  });

  it("of 50 concurrent createSession calls with one sid exactly one creates (C12)", async () => {
    const { userId, stub } = user();
    const value = init(userId);
    const results = await Promise.all(Array.from({ length: 50 }, () => stub.createSession(value)));
    const winners = results.filter((r) => r.created);
    expect(winners).toHaveLength(1);
    expect(results.filter((r) => !r.created)).toHaveLength(49);
    const winner = winners[0]!;
    if (!winner.created) throw new Error("unreachable");
    expect(await stub.getSession(value.sid, winner.secret)).toMatchObject({ sid: value.sid });
    expect(await rows(stub)).toEqual({ sessions: 1, clients: 0 });
    expect((await outboxTypes(stub)).filter((t) => t === "session.created")).toHaveLength(1);
  });

  it("refuses a userId that is not the object's, and malformed input", async () => {
    const { userId, stub } = user();
    // Called on the instance itself: an exception thrown across RPC is reported by this test pool as unhandled.
    const refusal = (value: SessionInit) =>
      runInDurableObject(stub, (instance) =>
        // The test env type (with TEST_MIGRATIONS) differs from src/env.ts, so the instance is typed by hand.
        (instance as unknown as UserSessions).createSession(value).then(
          () => "accepted",
          (error: unknown) => (error instanceof Error ? error.message : String(error)),
        ),
      );
    expect(await refusal(init("user-someone-else"))).toMatch(/does not name this object/);
    expect(await refusal(init(userId, { sid: "short" }))).toMatch(/malformed sid/);
    expect(await refusal(init(userId, { sid: "has.a.dot-0123456789" }))).toMatch(/malformed sid/);
    expect(await refusal(init(userId, { authTime: 1.5 }))).toMatch(/authTime/);
    expect(await refusal(init(userId, { amr: Array.from({ length: 17 }, () => "x") }))).toMatch(/amr/);
    expect(await refusal(init(userId, { acr: "a".repeat(257) }))).toMatch(/acr/);
    expect(await rows(stub)).toEqual({ sessions: 0, clients: 0 });
  });

  it("records the clients a session signed in to", async () => {
    const { userId, stub } = user();
    const value = init(userId);
    const secret = await created(stub, value);
    await stub.recordClient(value.sid, "client-a");
    vi.setSystemTime(T0 + 1000);
    await stub.recordClient(value.sid, "client-b");
    await stub.recordClient(value.sid, "client-a");
    expect((await stub.getSession(value.sid, secret))?.clients).toEqual(["client-a", "client-b"]);
    // Unknown sessions are ignored: nothing is stored for them.
    await stub.recordClient(newSessionId(), "client-c");
    expect(await rows(stub)).toEqual({ sessions: 1, clients: 2 });
    expect((await outboxTypes(stub)).filter((t) => t === "session.client_added")).toHaveLength(2);
  });

  it("revokeSession ends one session, returns its clients once, and the sid cannot be created again", async () => {
    const { userId, stub } = user();
    const a = init(userId);
    const b = init(userId);
    const secretA = await created(stub, a);
    const secretB = await created(stub, b);
    await stub.recordClient(a.sid, "client-a");
    await stub.recordClient(a.sid, "client-b");

    expect(await stub.revokeSession(a.sid, "logout")).toEqual({ revoked: true, clients: ["client-a", "client-b"] });
    expect(await stub.getSession(a.sid, secretA)).toBeNull();
    expect(await stub.touchSession(a.sid, secretA)).toBeNull();
    expect(await stub.revokeSession(a.sid, "logout")).toEqual({ revoked: false, clients: [] });
    expect(await stub.revokeSession(newSessionId(), "logout")).toEqual({ revoked: false, clients: [] });
    expect(await stub.createSession(a)).toEqual({ created: false });
    expect(await stub.getSession(a.sid, secretA)).toBeNull();
    // The other session is untouched.
    expect(await stub.getSession(b.sid, secretB)).toMatchObject({ sid: b.sid });
    expect((await stub.listSessions()).map((s) => s.sid)).toEqual([b.sid]);
    // A revoked session takes a client learned of only afterwards just to tell it of the logout (C21): one notice.
    expect((await stub.logoutNotices()).pending).toBe(2);
    await stub.recordClient(a.sid, "client-c");
    expect(await rows(stub)).toEqual({ sessions: 2, clients: 3 });
    expect((await stub.logoutNotices()).notices.map((n) => n.clientId).sort()).toEqual(["client-a", "client-b", "client-c"]);
    await stub.recordClient(a.sid, "client-c");
    expect((await stub.logoutNotices()).pending).toBe(3);
    expect((await outboxTypes(stub)).filter((t) => t === "session.revoked")).toHaveLength(1);
  });

  it("revokeAllSessions ends every session in one call with one audit event (C18)", async () => {
    const { userId, stub } = user();
    const values = [init(userId), init(userId), init(userId), init(userId)];
    const secrets: string[] = [];
    for (const [i, value] of values.entries()) {
      vi.setSystemTime(T0 + i * MINUTE);
      secrets.push(await created(stub, value));
    }
    await stub.recordClient(values[0]!.sid, "client-a");
    await stub.recordClient(values[1]!.sid, "client-a");
    await stub.recordClient(values[1]!.sid, "client-b");
    await stub.revokeSession(values[3]!.sid, "logout");
    // Newest first.
    expect((await stub.listSessions()).map((s) => s.sid)).toEqual([values[2]!.sid, values[1]!.sid, values[0]!.sid]);

    const result = await stub.revokeAllSessions("admin_revoke_all", "admin");
    expect(result).toEqual({
      count: 3,
      sessions: [
        { sid: values[2]!.sid, clients: [] },
        { sid: values[1]!.sid, clients: ["client-a", "client-b"] },
        { sid: values[0]!.sid, clients: ["client-a"] },
      ],
      notices: 3,
      grants: 0,
    });
    for (const [i, value] of values.entries()) expect(await stub.getSession(value.sid, secrets[i]!)).toBeNull();
    expect(await stub.listSessions()).toEqual([]);
    for (const value of values) expect(await stub.createSession(value)).toEqual({ created: false });
    expect((await outboxTypes(stub)).filter((t) => t === "session.revoked_all")).toHaveLength(1);
    expect((await outboxTypes(stub)).filter((t) => t === "session.revoked")).toHaveLength(1); // only the single logout
    expect(await stub.revokeAllSessions("again")).toEqual({ count: 0, sessions: [], notices: 0, grants: 0 });
  });

  it("touch slides the idle expiry, at most one write a minute, never past the absolute expiry", async () => {
    const { userId, stub } = user();
    const value = init(userId);
    const secret = await created(stub, value);

    vi.setSystemTime(T0 + 30_000);
    expect(await stub.touchSession(value.sid, secret)).toMatchObject({ lastSeenAt: T0, idleExpiresAt: T0 + IDLE });

    vi.setSystemTime(T0 + 2 * DAY);
    expect(await stub.touchSession(value.sid, secret)).toMatchObject({ lastSeenAt: T0 + 2 * DAY, idleExpiresAt: T0 + 2 * DAY + IDLE });
    // getSession does not slide.
    vi.setSystemTime(T0 + 4 * DAY);
    expect(await stub.getSession(value.sid, secret)).toMatchObject({ lastSeenAt: T0 + 2 * DAY, idleExpiresAt: T0 + 2 * DAY + IDLE });
    // Past the original idle expiry, the session lives on because it was touched.
    expect(await stub.touchSession(value.sid, secret)).toMatchObject({ idleExpiresAt: T0 + 4 * DAY + IDLE });
    // Persisted, not just returned.
    expect(await stub.getSession(value.sid, secret)).toMatchObject({ lastSeenAt: T0 + 4 * DAY, idleExpiresAt: T0 + 4 * DAY + IDLE });

    for (const day of [6, 8, 10, 12]) {
      vi.setSystemTime(T0 + day * DAY);
      expect(await stub.touchSession(value.sid, secret)).not.toBeNull();
    }
    vi.setSystemTime(T0 + 13 * DAY);
    expect(await stub.touchSession(value.sid, secret)).toMatchObject({ idleExpiresAt: T0 + TTL, expiresAt: T0 + TTL });
    // The absolute expiry holds however recently the session was used.
    vi.setSystemTime(T0 + TTL);
    expect(await stub.touchSession(value.sid, secret)).toBeNull();
    expect(await stub.getSession(value.sid, secret)).toBeNull();
  });

  it("idle expiry: the session stops working, and the alarm purges it with its clients (C15)", async () => {
    const { userId, stub } = user();
    const idle = init(userId);
    const busy = init(userId);
    const idleSecret = await created(stub, idle);
    const busySecret = await created(stub, busy);
    await stub.recordClient(idle.sid, "client-a");

    vi.setSystemTime(T0 + 2 * DAY);
    await stub.touchSession(busy.sid, busySecret);

    vi.setSystemTime(T0 + IDLE - 1);
    expect(await stub.getSession(idle.sid, idleSecret)).not.toBeNull();
    vi.setSystemTime(T0 + IDLE);
    expect(await stub.getSession(idle.sid, idleSecret)).toBeNull();
    expect(await stub.touchSession(idle.sid, idleSecret)).toBeNull();
    expect((await stub.listSessions()).map((s) => s.sid)).toEqual([busy.sid]);
    expect(await rows(stub)).toEqual({ sessions: 2, clients: 1 });

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await rows(stub)).toEqual({ sessions: 1, clients: 0 });
    expect(await stub.getSession(busy.sid, busySecret)).not.toBeNull();
    // The alarm stays set for the remaining session's expiry.
    const alarm = await runInDurableObject(stub, (_o, state) => state.storage.getAlarm());
    expect(alarm).not.toBeNull();
    expect(alarm!).toBeLessThanOrEqual(T0 + 2 * DAY + IDLE + MINUTE);

    vi.setSystemTime(T0 + 2 * DAY + IDLE);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await rows(stub)).toEqual({ sessions: 0, clients: 0 });
    expect(await runInDurableObject(stub, (_o, state) => state.storage.getAlarm())).toBeNull();
  });

  it("absolute expiry: a revoked session is kept until then, so its sid stays taken; then everything goes (C15)", async () => {
    const { userId, stub } = user();
    const revoked = init(userId);
    const live = init(userId);
    await created(stub, revoked);
    const liveSecret = await created(stub, live);
    await stub.recordClient(revoked.sid, "client-a");
    vi.setSystemTime(T0 + DAY);
    await stub.revokeSession(revoked.sid, "logout");

    // Keep the live one in use until its absolute expiry.
    for (let day = 2; day < 14; day += 2) {
      vi.setSystemTime(T0 + day * DAY);
      expect(await stub.touchSession(live.sid, liveSecret)).not.toBeNull();
    }
    vi.setSystemTime(T0 + 10 * DAY);
    await runDurableObjectAlarm(stub);
    // Past its idle expiry, but revoked: kept, and not re-creatable.
    expect(await rows(stub)).toEqual({ sessions: 2, clients: 1 });
    expect(await stub.createSession(revoked)).toEqual({ created: false });

    vi.setSystemTime(T0 + TTL - 1);
    expect(await stub.getSession(live.sid, liveSecret)).not.toBeNull();
    vi.setSystemTime(T0 + TTL);
    expect(await stub.getSession(live.sid, liveSecret)).toBeNull();
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await rows(stub)).toEqual({ sessions: 0, clients: 0 });
  });

  it("survives a restart of the object (C2)", async () => {
    const { userId, stub } = user();
    const a = init(userId);
    const b = init(userId);
    const secretA = await created(stub, a);
    const secretB = await created(stub, b);
    await stub.recordClient(a.sid, "client-a");
    await stub.revokeSession(b.sid, "logout");
    vi.setSystemTime(T0 + DAY);
    await stub.touchSession(a.sid, secretA);

    await abortAllDurableObjects();

    const again = userSessionsFor(env, userId)!;
    expect(await again.getSession(a.sid, secretA)).toMatchObject({
      sid: a.sid,
      clients: ["client-a"],
      lastSeenAt: T0 + DAY,
      idleExpiresAt: T0 + DAY + IDLE,
    });
    expect(await again.getSession(b.sid, secretB)).toBeNull();
    expect(await again.createSession(a)).toEqual({ created: false });
    expect(await again.createSession(b)).toEqual({ created: false });
  });

  it("audit events reach D1 audit_log when the alarm runs", async () => {
    const { userId, stub } = user();
    const a = init(userId);
    const b = init(userId);
    await created(stub, a);
    await created(stub, b);
    await stub.recordClient(a.sid, "client-a");
    await stub.revokeSession(b.sid, "logout");
    await stub.revokeAllSessions("user_signed_out_everywhere", userId);
    expect(await auditLog(userId)).toEqual([]);

    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const log = await auditLog(userId);
    // client-a is not registered in D1: its logout notice is closed without a request, and that is audited too.
    expect(log.map((e) => e.type).sort()).toEqual([
      "logout_notice.skipped", "session.client_added", "session.created", "session.created", "session.revoked", "session.revoked_all",
    ]);
    expect(log.every((e) => e.source === "sessions")).toBe(true);
    expect(log.find((e) => e.type === "session.client_added")).toMatchObject({ client_id: "client-a", data: { sid: a.sid } });
    expect(log.find((e) => e.type === "session.revoked")).toMatchObject({ data: { sid: b.sid, reason: "logout", clients: [] } });
    expect(log.find((e) => e.type === "session.revoked_all")).toMatchObject({
      actor: userId,
      data: { count: 1, sids: [a.sid], reason: "user_signed_out_everywhere" },
    });
    // No secret ever reaches the audit log.
    expect(await stub.getSession(a.sid, "x".repeat(43))).toBeNull();
    expect((await outboxTypes(stub)).length).toBe(0);
  });
});
