import { SELF, createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import worker from "../src/index";

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
    const ctx = createExecutionContext();
    worker.scheduled(createScheduledController({ scheduledTime: now, cron: "*/15 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
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
    const ctx = createExecutionContext();
    worker.scheduled(createScheduledController({ scheduledTime: now, cron: "*/15 * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);
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
    const response = await health(broken);
    expect(response.status).toBe(503);
    expect(await response.json()).toMatchObject({ status: "degraded", checks: { d1: { ok: false }, keys: { ok: true } } });
  });
});
