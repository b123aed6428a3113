import { SELF, createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { renderError } from "../src/routes/support/errors";
import worker from "../src/index";

/** Runs the cron handler; returns its `maintenance.done` report (the line is kept, not printed). */
async function runCron(scheduledTime: number): Promise<{ purge_d1: Record<string, number> }> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, "log").mockImplementation((line: unknown) => void lines.push(String(line)));
  try {
    const ctx = createExecutionContext();
    worker.scheduled(createScheduledController({ scheduledTime, cron: "*/15 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
  } finally {
    spy.mockRestore();
  }
  const done = lines.map((l) => JSON.parse(l) as { event: string; report: { purge_d1: Record<string, number> } }).filter((l) => l.event === "maintenance.done");
  expect(done).toHaveLength(1);
  return done[0]!.report;
}

describe("cron maintenance (C15)", () => {
  it("deletes audit events past retention and expired consents, keeps the rest", async () => {
    const now = Date.now();
    const old = now - 401 * 86_400_000;
    const tag = crypto.randomUUID();
    await env.DB.batch([
      env.DB.prepare("INSERT INTO audit_log (event_id, occurred_at, type, source, subject) VALUES (?, ?, 'x', 'test', ?)").bind(`old-${tag}`, old, tag),
      env.DB.prepare("INSERT INTO audit_log (event_id, occurred_at, type, source, subject) VALUES (?, ?, 'x', 'test', ?)").bind(`new-${tag}`, now, tag),
      env.DB.prepare("INSERT INTO users (id, email) VALUES (?, ?)").bind(`u-${tag}`, `${tag}@example.com`),
      env.DB.prepare(
        "INSERT INTO clients (id, client_name, redirect_uris, post_logout_redirect_uris, grant_types, response_types, token_endpoint_auth_method, scope) VALUES (?, 'c', '[]', '[]', '[]', '[]', 'none', 'openid')",
      ).bind(`c-${tag}`),
      env.DB.prepare("INSERT INTO consents (user_id, client_id, scopes, expires_at) VALUES (?, ?, 'openid', ?)").bind(`u-${tag}`, `c-${tag}`, now - 1),
    ]);
    const report = await runCron(now);
    expect(report.purge_d1.audit).toBeGreaterThanOrEqual(1);
    expect(report.purge_d1.consents).toBeGreaterThanOrEqual(1);
    const { results } = await env.DB.prepare("SELECT event_id FROM audit_log WHERE subject = ?").bind(tag).all<{ event_id: string }>();
    expect(results.map((r) => r.event_id)).toEqual([`new-${tag}`]);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM consents WHERE user_id = ?").bind(`u-${tag}`).first("n")).toBe(0);
  });

  it("deletes dev mailbox messages older than a day, keeps younger ones", async () => {
    const now = Date.now();
    const to = `retention-${crypto.randomUUID()}@example.com`;
    const message = (id: string, sentAt: number) =>
      env.DB.prepare("INSERT INTO dev_mailbox (id, \"to\", subject, text, link, sent_at) VALUES (?, ?, 's', 't', NULL, ?)").bind(id, to, sentAt);
    await env.DB.batch([message(`old-${to}`, now - 86_400_000 - 1), message(`new-${to}`, now - 86_400_000 + 60_000)]);
    expect((await runCron(now)).purge_d1.devMailbox).toBeGreaterThanOrEqual(1);
    const { results } = await env.DB.prepare("SELECT id FROM dev_mailbox WHERE \"to\" = ?").bind(to).all<{ id: string }>();
    expect(results.map((r) => r.id)).toEqual([`new-${to}`]);
  });
});

describe("/health", () => {
  it("reports D1 and the objects as answering", async () => {
    const response = await SELF.fetch("http://localhost/health");
    expect(response.status).toBe(200);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const body = (await response.json()) as { status: string; checks: Record<string, { ok: boolean }> };
    expect(body.status).toBe("ok");
    expect(Object.keys(body.checks).sort()).toEqual(["auth_codes", "d1", "keys", "rate_limiter", "sessions"]);
  });

  it("says degraded with 503 when D1 does not answer", async () => {
    const { health } = await import("../src/routes/health");
    // D1 cannot be taken offline from inside the pool, so this one case uses a binding that fails like an unreachable database.
    const broken = { ...env, DB: { prepare: () => { throw new Error("D1 is down"); } } as unknown as D1Database };
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const response = await health(broken);
    const lines = logged.mock.calls.map((args) => String(args[0]));
    logged.mockRestore();
    expect(response.status).toBe(503);
    const body = (await response.json()) as { status: string; checks: Record<string, unknown> };
    expect(body).toMatchObject({ status: "degraded", checks: { keys: { ok: true } } });
    // The answer is public: which check failed, never why. The reason is in the log.
    expect(body.checks.d1).toEqual({ ok: false });
    expect(JSON.stringify(body)).not.toContain("D1 is down");
    expect(lines.some((line) => line.includes("health.check_failed") && line.includes("D1 is down"))).toBe(true);
  });
});

describe("error logging", () => {
  it("an unexpected error is logged by its name and first line only (D1 errors list query values after it), and answered without detail", async () => {
    const logged = vi.spyOn(console, "error").mockImplementation(() => undefined);
    const response = renderError(new Error("D1_ERROR: UNIQUE constraint failed: users.email\nparams: victim@example.com, s3cret"));
    const lines = logged.mock.calls.map((args) => String(args[0]));
    logged.mockRestore();
    expect(response.status).toBe(500);
    expect(await response.json()).toEqual({ error: "server_error", error_description: "The server could not complete the request" });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: "unhandled_error", error: "Error: D1_ERROR: UNIQUE constraint failed: users.email" });
    expect(lines[0]).not.toContain("victim@example.com");
  });
});
