import { SELF, env, runDurableObjectAlarm } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { Env } from "../src/env";
import { randomToken } from "../src/lib/crypto";
import { rateLimiterFor } from "../src/objects/locate";
import { runScheduledMaintenance } from "../src/scheduled";

/** GET /admin/metrics and the Analytics Engine writer (issue 12): every number from the audit log or from objects' storage. */

type Json = Record<string, unknown>;
const AUTH = { authorization: `Bearer ${env.ADMIN_TOKEN}` };

async function metrics(query: string, status = 200): Promise<Json> {
  const response = await SELF.fetch(`http://localhost/admin/metrics?${query}`, { headers: AUTH });
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as Json;
}

interface Seeded {
  type: string;
  subject?: string;
  client_id?: string;
  data?: Json;
}

/** Events at `at` + i ms, recorded 1 s later. */
async function seed(at: number, events: Seeded[]): Promise<void> {
  await env.DB.batch(
    events.map((e, i) =>
      env.DB.prepare("INSERT INTO audit_log (event_id, occurred_at, type, source, subject, client_id, data, recorded_at) VALUES (?, ?, ?, 'test', ?, ?, ?, ?)").bind(
        `m-${randomToken(8)}`, at + i, e.type, e.subject ?? null, e.client_id ?? null, e.data ? JSON.stringify(e.data) : null, at + i + 1000,
      ),
    ),
  );
}

const FIXTURE: Seeded[] = [
  { type: "session.created", data: { amr: ["email"] } },
  { type: "session.created", data: { amr: ["email"] } },
  { type: "session.created", data: { amr: ["hwk", "user", "mfa"] } },
  { type: "auth_code.redeemed", subject: "user-1", client_id: "app" },
  { type: "auth_code.redeemed", subject: "user-2", client_id: "app" },
  { type: "refresh_token.rotated" },
  { type: "refresh_token.rotated" },
  { type: "refresh_token.retry_answered" },
  { type: "refresh_token.reuse_detected" },
  { type: "auth_code.replayed" },
  { type: "auth_code.replayed" },
  { type: "rate_limit.denied", data: { key: "token:ip:1:client:app", count: 7 } },
  { type: "rate_limit.denied", data: { key: "login:email:abc", count: 3 } },
  { type: "rate_limit.denied", data: { key: "login:ip:2", count: 1 } },
  { type: "backchannel_logout.delivered" },
  { type: "backchannel_logout.failed" },
  { type: "admin.user.created" },
];

const EXPECTED = {
  sign_ins: { total: 3, by_method: { email: 2, passkey: 1 } },
  // client_credentials tokens keep no state and write no event: not counted (null).
  token_grants: { authorization_code: 2, client_credentials: null, refresh_token: 3 },
  refresh_token_reuse_detected: 1,
  authorization_code_replays: 2,
  rate_limit_denials: { total: 11, by_endpoint: { token: 7, login: 4 } },
  logout: { delivered: 1, failed: 1 },
};

afterEach(() => {
  vi.useRealTimers();
});

describe("GET /admin/metrics", () => {
  it("counts sign-ins by method, grants by type, reuse, replays, rate-limit denials and logouts from the audit log, in the range asked", async () => {
    const at = Date.UTC(2035, 5, 1);
    await seed(at, FIXTURE);
    const body = await metrics(`since=${at}&until=${at + 60_000}`);
    expect(body).toMatchObject({ since: at, until: at + 60_000, ...EXPECTED });
    expect(body.audit_outbox).toEqual({ objects_with_undelivered_events: expect.any(Number), pending: expect.any(Number), dead_lettered: expect.any(Number) });
    // Outside the range: nothing. ISO 8601 works as well as ms.
    expect(await metrics("since=2035-06-01T00:01:00Z&until=2035-06-02")).toMatchObject({ sign_ins: { total: 0 }, rate_limit_denials: { total: 0 } });
  });

  it("a rate limiter counts its denials in one event per window, delivered when the window ends", async () => {
    vi.useFakeTimers({ toFake: ["Date"] });
    const start = Date.UTC(2036, 0, 1, 0, 0, 10);
    vi.setSystemTime(start);
    const limiter = rateLimiterFor(env, `login:ip:metrics-${randomToken(4)}`);
    const results = [];
    for (let i = 0; i < 6; i++) results.push((await limiter.hit(2, 60)).allowed);
    expect(results).toEqual([true, true, false, false, false, false]);
    // Not delivered while the window lasts: one pending event, counting.
    expect((await limiter.object.outboxStatus()).pending).toBe(1);
    vi.setSystemTime(start + 60_000);
    await runDurableObjectAlarm(limiter.object);
    expect((await limiter.object.outboxStatus()).pending).toBe(0);
    const body = await metrics(`since=${start - 60_000}&until=${start + 120_000}`);
    expect(body.rate_limit_denials).toEqual({ total: 4, by_endpoint: { login: 4 } });
  });

  it("400 for a bad range or an unknown parameter; 401 without the token", async () => {
    for (const query of ["since=2036-01-02&until=2036-01-01", "since=soon", "window=1h"]) await metrics(query, 400);
    expect((await SELF.fetch("http://localhost/admin/metrics")).status).toBe(401);
    expect((await SELF.fetch("http://localhost/admin/metrics", { headers: { authorization: "Bearer wrong" } })).status).toBe(401);
  });
});

describe("the metrics cron and Workers Analytics Engine", () => {
  it("with a METRICS binding, writes one data point per counter for the period that ended a period ago", async () => {
    const period = 15 * 60_000;
    const to = Date.UTC(2037, 2, 3, 10, 30);
    await seed(to - period + 5_000, FIXTURE); // occurred inside the period [to - 15 min, to)
    const points: AnalyticsEngineDataPoint[] = [];
    const dataset: AnalyticsEngineDataset = { writeDataPoint: (point) => void points.push(point!) };
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      // The run at to + 15 min counts [to - 15 min, to).
      const report = await runScheduledMaintenance({ ...env, METRICS: dataset } as Env, to + period + 30_000);
      expect(report.metrics).toEqual({ points: expect.any(Number), from: to - period });
    } finally {
      log.mockRestore();
    }
    const value = (metric: string, label = "") => points.find((p) => p.blobs?.[0] === metric && p.blobs?.[1] === label)?.doubles?.[0];
    expect(value("sign_ins", "email")).toBe(2);
    expect(value("sign_ins", "passkey")).toBe(1);
    expect(value("token_grants", "refresh_token")).toBe(3);
    expect(value("rate_limit_denials", "token")).toBe(7);
    expect(value("authorization_code_replays")).toBe(2);
    expect(value("logout_failed")).toBe(1);
    for (const point of points) expect(point.doubles?.[1]).toBe(to - period);
  });

  it("without the binding, the cron writes nothing and reports no metrics task", async () => {
    const log = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      expect(await runScheduledMaintenance(env, Date.now())).not.toHaveProperty("metrics");
    } finally {
      log.mockRestore();
    }
  });
});
