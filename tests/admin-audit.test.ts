import { SELF, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { randomToken } from "../src/lib/crypto";
import { StatefulObject } from "../src/objects/base";
import { tokenFamilyFor, userSessionsFor } from "../src/objects/locate";
import { newSessionId } from "../src/objects/sessions";

/** GET /admin/audit, and dead letters across objects through the registry (issue 12, C4). */

type Json = Record<string, unknown>;
const AUTH = { authorization: `Bearer ${env.ADMIN_TOKEN}` };

function admin(method: string, path: string, headers: Record<string, string> = AUTH): Promise<Response> {
  return SELF.fetch(`http://localhost${path}`, { method, headers });
}

async function json(response: Response, status = 200): Promise<Json> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as Json;
}

describe("GET /admin/audit", () => {
  const tag = randomToken(6);
  const base = Date.UTC(2031, 0, 1);
  const user = `user-${tag}`;
  const client = `client-${tag}`;
  // 12 events, one a minute: types alternate, half for the client, all for the user.
  const rows = Array.from({ length: 12 }, (_, i) => ({
    event_id: `e-${tag}-${String(i).padStart(2, "0")}`,
    occurred_at: base + i * 60_000,
    type: i % 3 === 0 ? "admin.user.updated" : i % 3 === 1 ? "session.created" : "refresh_token.reuse_detected",
    source: i % 3 === 0 ? "admin" : i % 3 === 1 ? "sessions" : "token_family",
    actor: null,
    subject: user,
    client_id: i % 2 === 0 ? client : null,
    data: { n: i },
  }));

  async function seed() {
    const present = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE subject = ?").bind(user).first<{ n: number }>();
    if (present!.n > 0) return;
    await env.DB.batch(
      rows.map((r) =>
        env.DB.prepare("INSERT INTO audit_log (event_id, occurred_at, type, source, actor, subject, client_id, data, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)").bind(
          r.event_id, r.occurred_at, r.type, r.source, r.actor, r.subject, r.client_id, JSON.stringify(r.data), r.occurred_at + 5,
        ),
      ),
    );
  }

  async function ids(query: string): Promise<string[]> {
    const body = await json(await admin("GET", `/admin/audit?user=${user}&${query}`));
    return (body.events as Json[]).map((e) => e.event_id as string);
  }

  it("newest first, with the fields as stored; filters by type (exact or prefix), user, client and time range", async () => {
    await seed();
    const all = await json(await admin("GET", `/admin/audit?user=${user}`));
    const events = all.events as Json[];
    expect(events.map((e) => e.event_id)).toEqual(rows.map((r) => r.event_id).reverse());
    expect(events[0]).toEqual({ ...rows[11], recorded_at: rows[11]!.occurred_at + 5 });
    expect(all.next_cursor).toBeNull();

    expect(await ids("type=session.created")).toEqual(rows.filter((r) => r.type === "session.created").map((r) => r.event_id).reverse());
    expect(await ids("type=refresh_token*")).toEqual(rows.filter((r) => r.type.startsWith("refresh_token")).map((r) => r.event_id).reverse());
    expect(await ids(`client=${client}`)).toEqual(rows.filter((r) => r.client_id === client).map((r) => r.event_id).reverse());
    expect(await ids(`type=admin.*&client=${client}`)).toEqual(rows.filter((r) => r.type.startsWith("admin.") && r.client_id === client).map((r) => r.event_id).reverse());
    // since is inclusive, until exclusive; ms or ISO 8601.
    expect(await ids(`since=${base + 3 * 60_000}&until=${base + 6 * 60_000}`)).toEqual(rows.slice(3, 6).map((r) => r.event_id).reverse());
    expect(await ids(`since=2031-01-01T00:03:00Z&until=2031-01-01T00:06:00Z`)).toEqual(rows.slice(3, 6).map((r) => r.event_id).reverse());
    expect(await ids(`until=2031-01-01`)).toEqual([]);
    // A prefix's wildcard characters are literal.
    expect(await ids("type=session_created")).toEqual([]);
  });

  it("pages with a cursor: every event once, in order", async () => {
    await seed();
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const body: Json = await json(await admin("GET", `/admin/audit?user=${user}&limit=5${cursor ? `&cursor=${cursor}` : ""}`));
      seen.push(...(body.events as Json[]).map((e) => e.event_id as string));
      cursor = body.next_cursor as string | null;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(rows.map((r) => r.event_id).reverse());
  });

  it("bad parameters are 400; no token or a wrong one is 401", async () => {
    for (const query of ["limit=0", "limit=501", "limit=x", "since=yesterday", "until=2031-13-01", "type=Admin.User", "type=a%20b", "type=*", "cursor=abc", "user=a&user=b", "subject=x"]) {
      const response = await admin("GET", `/admin/audit?${query}`);
      expect(response.status, query).toBe(400);
      expect(((await response.json()) as Json).error).toBe("invalid_request");
    }
    for (const path of ["/admin/audit", "/admin/audit/dead-letters"]) {
      expect((await admin("GET", path, {})).status).toBe(401);
      expect((await admin("GET", path, { authorization: "Bearer nope" })).status).toBe(401);
    }
    expect((await admin("POST", "/admin/audit/dead-letters/redrive", {})).status).toBe(401);
    expect((await admin("POST", "/admin/audit/dead-letters/redrive", { authorization: "Bearer nope" })).status).toBe(401);
  });
});

// ── Dead letters across objects ────────────────────────────────────────────────────────────────────────────────

// D1 fails for real: the audit table is renamed away, so every delivery errors as in an outage.
const breakD1 = () => env.DB.exec("ALTER TABLE audit_log RENAME TO audit_log_offline");
const repairD1 = () => env.DB.exec("ALTER TABLE audit_log_offline RENAME TO audit_log");

afterEach(() => {
  vi.useRealTimers();
  vi.restoreAllMocks();
});

/** Keeps the warning and error lines of failed deliveries (expected while D1 is down) instead of printing them. */
function quietFailures(): string[] {
  const lines: string[] = [];
  vi.spyOn(console, "warn").mockImplementation((line: string) => void lines.push(line));
  vi.spyOn(console, "error").mockImplementation((line: string) => void lines.push(line));
  return lines;
}

interface Holder {
  outboxStatus(): Promise<{ pending: number; deadLettered: number }>;
}

/** Runs the object's alarm at later and later times until its events give up (dead-lettered). */
async function untilDeadLettered(stub: DurableObjectStub & Holder, from: number): Promise<number> {
  let t = from;
  for (let i = 0; i < 40 && (await stub.outboxStatus()).deadLettered === 0; i++) {
    t += 3_600_000;
    vi.setSystemTime(t);
    await runDurableObjectAlarm(stub);
  }
  expect((await stub.outboxStatus()).deadLettered).toBeGreaterThan(0);
  return t;
}

/** Three objects of three classes, each with one audit event committed (while D1 is down). */
async function threeObjects() {
  const userId = randomToken(16);
  const familyId = randomToken(16);
  const challengeName = `challenges:dl-${randomToken(6)}`;
  const challenges = env.CHALLENGES.get(env.CHALLENGES.idFromName(challengeName));
  await challenges.put("x1", { kind: "magic_link", email: "dl@example.com" }, 60);
  await challenges.consume("x1", { kind: "magic_link" });
  await challenges.consume("x1", { kind: "magic_link" }); // the replay is audited
  const sessions = userSessionsFor(env, userId)!;
  await sessions.createSession({ sid: newSessionId(), userId, authTime: Math.floor(Date.now() / 1000), amr: ["email"], acr: null });
  const family = tokenFamilyFor(env, familyId)!;
  await family.createFamily({
    familyId, clientId: "dl-client", clientRegisteredAt: 1, sub: userId, scope: "openid", sid: null, authTime: 1, amr: [], acr: null, claims: null, dpopJkt: null, issueRefreshToken: true,
  });
  return {
    stubs: [challenges, sessions, family] as unknown as Array<DurableObjectStub & Holder>,
    names: [challengeName, `user:${userId}`, `family:${familyId}`],
  };
}

async function deadLetterList(): Promise<Json> {
  return json(await admin("GET", "/admin/audit/dead-letters"));
}

function ours(list: Json, names: string[]): Json[] {
  return (list.objects as Json[]).filter((o) => names.includes(o.object as string));
}

describe("dead letters across objects (C4)", () => {
  it("are listed while D1 is down, through a registry kept by the objects themselves, and redriven exactly once", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const start = Date.UTC(2041, 0, 1);
    vi.setSystemTime(start);
    const lines = quietFailures();
    const { stubs, names } = await threeObjects();
    await breakD1();
    let eventIds: string[];
    try {
      let t = start;
      for (const stub of stubs) t = await untilDeadLettered(stub, t);
      // Listed with their events, counts asked of the objects — and D1 is still down.
      const list = await deadLetterList();
      const listed = ours(list, names);
      expect(listed.map((o) => o.source).sort()).toEqual(["challenge", "sessions", "token_family"]);
      for (const object of listed) {
        expect(object).toMatchObject({ dead_lettered: 1, pending: 0 });
        const [letter] = object.dead_letters as Json[];
        expect(letter).toMatchObject({ attempts: 12, last_error: expect.stringContaining("no such table: audit_log") });
        expect(typeof letter!.eventId).toBe("string");
      }
      expect(listed.map((o) => (o.dead_letters as Json[])[0]!.type).sort()).toEqual(["challenge.replayed", "session.created", "token_family.created"]);
      eventIds = listed.map((o) => (o.dead_letters as Json[])[0]!.eventId as string);
      expect((list.totals as Json).dead_lettered).toBeGreaterThanOrEqual(3);
      // An object with dead letters keeps itself (it does not delete its storage), whatever else has ended.
      expect(lines.some((l) => l.includes('"event":"audit.dead_letter"'))).toBe(true);
    } finally {
      await repairD1();
    }

    // Redrive: every dead letter put back in line, once; a second redrive finds none.
    const redrive = await json(await admin("POST", "/admin/audit/dead-letters/redrive"));
    expect(redrive.redriven).toBeGreaterThanOrEqual(3);
    expect(redrive.objects).toBeGreaterThanOrEqual(3);
    for (const stub of stubs) expect((await stub.outboxStatus()).deadLettered).toBe(0);
    const again = await json(await admin("POST", "/admin/audit/dead-letters/redrive"));
    expect(again.redriven).toBe(0);

    // Their alarms deliver them — exactly once each — and tell the registry they are clear.
    for (const stub of stubs) {
      await runDurableObjectAlarm(stub);
      expect((await stub.outboxStatus()).pending).toBe(0);
    }
    for (const id of eventIds!) {
      const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE event_id = ?").bind(id).first<{ n: number }>();
      expect(row!.n).toBe(1);
    }
    expect(ours(await deadLetterList(), names)).toEqual([]);
  });

  it("a report the registry did not take is retried until it is acknowledged", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const start = Date.UTC(2042, 0, 1);
    vi.setSystemTime(start);
    quietFailures();
    // The registry cannot be reached for now: every report the objects send fails.
    const failing = vi.fn(() => Promise.reject(new Error("registry unavailable")));
    const unreachable = vi.spyOn(StatefulObject.prototype as unknown as { undeliveredRegistry: () => unknown }, "undeliveredRegistry").mockReturnValue({ report: failing });
    const name = `challenges:dl-${randomToken(6)}`;
    const stub = env.CHALLENGES.get(env.CHALLENGES.idFromName(name)) as unknown as DurableObjectStub & Holder;
    await breakD1();
    let t: number;
    try {
      await (stub as unknown as { put: Function }).put("y", { kind: "magic_link" }, 60);
      await (stub as unknown as { consume: Function }).consume("y", { kind: "magic_link" });
      await (stub as unknown as { consume: Function }).consume("y", { kind: "magic_link" });
      t = await untilDeadLettered(stub, start);
      expect(failing).toHaveBeenCalled();
      expect(ours(await deadLetterList(), [name])).toEqual([]);
      const report = await runInDurableObject(stub, (_o, state) => state.storage.sql.exec<{ attempts: number; next_attempt_at: number }>("SELECT attempts, next_attempt_at FROM undelivered_report").one());
      expect(report.attempts).toBeGreaterThan(0);
      // The registry is back: the object's next alarm tells it.
      unreachable.mockRestore();
      vi.setSystemTime(report.next_attempt_at + 1);
      await runDurableObjectAlarm(stub);
      const [listed] = ours(await deadLetterList(), [name]);
      expect(listed).toMatchObject({ source: "challenge", dead_lettered: 1 });
    } finally {
      await repairD1();
    }
    expect(t!).toBeGreaterThan(start);
  });
});
