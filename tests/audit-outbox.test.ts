import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { Challenge } from "../src/objects/challenges";

// D1 is made to fail for real: the audit table is renamed away, so every insert errors as it would in an outage.
async function breakD1() {
  await env.DB.exec("ALTER TABLE audit_log RENAME TO audit_log_offline");
}
async function repairD1() {
  await env.DB.exec("ALTER TABLE audit_log_offline RENAME TO audit_log");
}

/**
 * The warnings a failed delivery logs (C4: a structured line naming the object), kept instead of printed: while D1 is
 * made to fail they are expected, so the test asserts them rather than letting them look like a failure.
 */
function deliveryWarnings() {
  const lines: string[] = [];
  const spy = vi.spyOn(console, "warn").mockImplementation((line: string) => void lines.push(line));
  return {
    lines,
    /** Stops keeping them; every one must be a delivery failure caused by the missing table. */
    check(expected: { source: string; min: number }) {
      spy.mockRestore();
      expect(lines.length).toBeGreaterThanOrEqual(expected.min);
      for (const line of lines) {
        expect(JSON.parse(line)).toMatchObject({ level: "warn", event: "audit.delivery_failed", source: expected.source });
        expect(line).toContain("no such table: audit_log");
      }
    },
  };
}

function challenges(name = crypto.randomUUID()) {
  return env.CHALLENGES.get(env.CHALLENGES.idFromName(name));
}

const link: Challenge = { kind: "magic_link", userId: "user-audit", email: "a@example.com" };

async function auditRows(subject: string) {
  const { results } = await env.DB.prepare("SELECT event_id, type FROM audit_log WHERE subject = ?").bind(subject).all<{ event_id: string; type: string }>();
  return results;
}

// The objects' clocks are set years ahead, so the alarms they schedule never fire by themselves during a test:
// each delivery attempt happens exactly when the test runs the alarm.
const FUTURE = Date.UTC(2040, 0, 1);
beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(FUTURE);
});
afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

describe("audit outbox (C4)", () => {
  it("an event is committed with the state change and delivered to D1 by the alarm", async () => {
    const store = challenges();
    const subject = `user-${crypto.randomUUID()}`;
    await store.put("x1", { ...link, userId: subject }, 60);
    await store.consume("x1", { kind: "magic_link" });
    await store.consume("x1", { kind: "magic_link" }); // replay: audited
    expect((await store.outboxStatus()).pending).toBe(1);
    await runDurableObjectAlarm(store);
    expect(await auditRows(subject)).toEqual([expect.objectContaining({ type: "challenge.replayed" })]);
    expect((await store.outboxStatus()).pending).toBe(0);
  });

  it("while D1 fails events wait with backoff; after recovery all arrive exactly once", async () => {
    const store = challenges();
    const subject = `user-${crypto.randomUUID()}`;
    const start = Date.now();
    const warnings = deliveryWarnings();
    await breakD1();
    try {
      for (let i = 0; i < 15; i++) {
        await store.put(`r${i}`, { ...link, userId: subject }, 600);
        await store.consume(`r${i}`, { kind: "magic_link" });
        await store.consume(`r${i}`, { kind: "magic_link" });
      }
      await runDurableObjectAlarm(store);
      await runDurableObjectAlarm(store);
      const waiting = await store.outboxStatus();
      expect(waiting).toMatchObject({ pending: 15, deadLettered: 0 });
      // Backoff: the next attempt is in the future, so an immediate retry delivers nothing.
      const attempts = await runInDurableObject(store, (_o, state) =>
        state.storage.sql.exec<{ attempts: number; next_attempt_at: number }>("SELECT attempts, next_attempt_at FROM audit_outbox").toArray(),
      );
      expect(attempts.every((a) => a.attempts === 1 && a.next_attempt_at > start)).toBe(true);
    } finally {
      await repairD1();
    }
    warnings.check({ source: "challenge", min: 1 });
    vi.setSystemTime(start + 10 * 60_000);
    await runDurableObjectAlarm(store);
    expect(await auditRows(subject)).toHaveLength(15);
    expect((await store.outboxStatus()).pending).toBe(0);
  });

  it("redelivery of an event D1 already has is idempotent (event id is the key)", async () => {
    const store = challenges();
    const subject = `user-${crypto.randomUUID()}`;
    // Keep the event in the outbox (D1 down), then simulate a crash after D1 accepted it but before the outbox row was deleted.
    await breakD1();
    let event: string;
    try {
      await store.put("d1", { ...link, userId: subject }, 60);
      await store.consume("d1", { kind: "magic_link" });
      await store.consume("d1", { kind: "magic_link" });
      event = await runInDurableObject(store, (_o, state) => state.storage.sql.exec<{ event: string }>("SELECT event FROM audit_outbox").one().event);
    } finally {
      await repairD1();
    }
    vi.setSystemTime(FUTURE + 3600_000);
    const parsed = JSON.parse(event) as { eventId: string; occurredAt: number; type: string; source: string };
    await env.DB.prepare("INSERT INTO audit_log (event_id, occurred_at, type, source, subject) VALUES (?, ?, ?, ?, ?)")
      .bind(parsed.eventId, parsed.occurredAt, parsed.type, parsed.source, subject)
      .run();
    await runDurableObjectAlarm(store);
    expect(await auditRows(subject)).toHaveLength(1);
    expect((await store.outboxStatus()).pending).toBe(0);
  });

  it("after repeated failure an event is dead-lettered, kept, reported, and can be redriven", async () => {
    const name = crypto.randomUUID();
    const store = challenges(name);
    const subject = `user-${crypto.randomUUID()}`;
    const errors: string[] = [];
    const spy = vi.spyOn(console, "error").mockImplementation((line: string) => void errors.push(line));
    const warnings = deliveryWarnings();
    const start = Date.now();
    await breakD1();
    try {
      await store.put("z", { ...link, userId: subject }, 60);
      await store.consume("z", { kind: "magic_link" });
      await store.consume("z", { kind: "magic_link" });
      // Walk the clock past each backoff (the longest is auditRetryMax, 1 h) until the event gives up.
      let t = start;
      for (let i = 0; i < 30 && (await store.outboxStatus()).deadLettered === 0; i++) {
        await runDurableObjectAlarm(store);
        t += 2 * 3600_000;
        vi.setSystemTime(t);
      }
      expect(await store.outboxStatus()).toMatchObject({ pending: 0, deadLettered: 1 });
      const dead = await store.deadLetters();
      expect(dead[0]).toMatchObject({ attempts: 12, event: { type: "challenge.replayed", subject } });
      const alert = errors.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.event === "audit.dead_letter");
      expect(alert).toMatchObject({ level: "error", metric: "audit_dead_letter_total", source: "challenge", object: name, total: 1 });
    } finally {
      spy.mockRestore();
      await repairD1();
    }
    warnings.check({ source: "challenge", min: 11 });
    expect(await store.redriveDeadLetters()).toBe(1);
    await runDurableObjectAlarm(store);
    expect(await auditRows(subject)).toHaveLength(1);
    expect(await store.outboxStatus()).toMatchObject({ pending: 0, deadLettered: 0 });
  });
});
