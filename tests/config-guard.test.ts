import { SELF, createExecutionContext, createScheduledController, env, waitOnExecutionContext } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { devMessagesTo } from "../src/db/dev-mailbox";
import type { Env } from "../src/env";
import worker from "../src/index";
import { formFields } from "./helpers/front-channel";

/**
 * The Worker with invalid settings, or without ISSUER on a host that is not loopback, serves nothing: a 500 naming
 * the setting (an HTML page for a browser, JSON for anyone else) with no value in it, and one log line per request.
 * `worker.fetch` with a changed env runs the real entry point (src/index.ts) with other settings; SELF is the Worker
 * as wrangler.jsonc configures it (ISSUER empty).
 */

/** Everything the Worker printed, one entry per console call, while `run` ran. */
async function logged<T>(run: () => Promise<T>): Promise<{ result: T; lines: string[] }> {
  const lines: string[] = [];
  const keep = (...args: unknown[]) => void lines.push(args.map(String).join(" "));
  const spies = (["log", "info", "warn", "error", "debug"] as const).map((m) => vi.spyOn(console, m).mockImplementation(keep));
  try {
    return { result: await run(), lines };
  } finally {
    for (const spy of spies) spy.mockRestore();
  }
}

async function call(request: Request, vars: Record<string, string>): Promise<Response> {
  const ctx = createExecutionContext();
  const response = await worker.fetch(request as Parameters<typeof worker.fetch>[0], { ...env, ...vars } as Env, ctx);
  await waitOnExecutionContext(ctx);
  return response;
}

const SECRET_TOKEN = "tok3n-that-must-not-leak";
const BAD = { AUTH_CODE_TTL: "abc", ADMIN_TOKEN: SECRET_TOKEN.slice(0, 10), EMAIL_TRANSPORT: "http", EMAIL_API_URL: "https://mail.example/send", EMAIL_API_KEY: "key with spaces-secret" };

afterEach(() => vi.restoreAllMocks());

describe("invalid settings: every request gets a 500 naming the setting, one log line, no secret", () => {
  it("an API caller gets OAuth-style JSON that names each bad setting and what it must be, and no value", async () => {
    const { result: response, lines } = await logged(() => call(new Request("http://localhost/.well-known/openid-configuration"), BAD));
    expect(response.status).toBe(500);
    expect(response.headers.get("content-type")).toMatch(/^application\/json/);
    expect(response.headers.get("cache-control")).toBe("no-store");
    const body = (await response.json()) as { error: string; error_description: string };
    expect(body.error).toBe("server_error");
    expect(body.error_description).toContain("ADMIN_TOKEN must be empty (admin API off) or 32 to 512 characters");
    expect(body.error_description).toContain("AUTH_CODE_TTL must be a whole number of seconds between 10 and 600");
    expect(body.error_description).toContain("EMAIL_API_KEY must be at most 1024 visible ASCII characters");
    const text = JSON.stringify(body);
    for (const value of ["abc", BAD.ADMIN_TOKEN, "secret", "mail.example"]) expect(text).not.toContain(value);

    // One structured line for the operator, with the values of plain settings and never a secret's.
    expect(lines).toHaveLength(1);
    const line = JSON.parse(lines[0]!) as { level: string; event: string; settings: string[]; problems: string[] };
    expect(line).toMatchObject({ level: "error", event: "config.invalid", settings: ["ADMIN_TOKEN", "AUTH_CODE_TTL", "EMAIL_API_KEY"] });
    expect(line.problems).toContain("AUTH_CODE_TTL=abc: must be a whole number of seconds between 10 and 600");
    expect(lines[0]).toContain("ADMIN_TOKEN=(hidden, 10 characters)");
    expect(lines[0]).not.toContain(BAD.ADMIN_TOKEN);
    expect(lines[0]).not.toContain("secret");
  });

  it("a browser (Accept: text/html) gets an HTML page naming the setting; no stack trace anywhere", async () => {
    const browser = new Request("http://localhost/login", { headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" } });
    const { result: response, lines } = await logged(() => call(browser, { AUTH_CODE_TTL: "abc" }));
    expect(response.status).toBe(500);
    expect(response.headers.get("content-type")).toMatch(/^text\/html/);
    const html = await response.text();
    expect(html).toMatch(/^<!doctype html>/);
    expect(html).toContain("AUTH_CODE_TTL must be a whole number of seconds between 10 and 600");
    expect(html).not.toContain("abc");
    expect(html).not.toMatch(/\n\s+at /);
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toMatch(/\n\s+at /);
  });

  it("one log line per request, on every route, and nothing behind the guard runs", async () => {
    const { result, lines } = await logged(async () => {
      const paths = ["/health", "/token", "/authorize?client_id=x", "/admin/clients", "/no-such-page"];
      return Promise.all(paths.map((p) => call(new Request(`http://localhost${p}`, { method: p === "/token" ? "POST" : "GET" }), { SHARD_COUNT: "0" })));
    });
    expect(result.map((r) => r.status)).toEqual([500, 500, 500, 500, 500]);
    expect(lines).toHaveLength(5);
    expect(lines.every((l) => (JSON.parse(l) as { event: string }).event === "config.invalid")).toBe(true);
  });

  it("valid settings pass through untouched", async () => {
    const response = await call(new Request("http://localhost/.well-known/openid-configuration"), { AUTH_CODE_TTL: "120" });
    expect(response.status).toBe(200);
    expect(((await response.json()) as { issuer: string }).issuer).toBe("http://localhost");
  });

  it("the cron trigger with invalid settings logs the one line and does no maintenance", async () => {
    const ctx = createExecutionContext();
    const { lines } = await logged(async () => {
      await worker.scheduled(createScheduledController({ scheduledTime: Date.now(), cron: "*/15 * * * *" }), { ...env, AUDIT_RETENTION_DAYS: "0" } as Env, ctx);
      await waitOnExecutionContext(ctx);
    });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: "config.invalid", settings: ["AUDIT_RETENTION_DAYS"], during: "scheduled" });
  });
});

describe("the issuer never comes from the Host header outside loopback (ISSUER unset)", () => {
  const email = () => `forged-${crypto.randomUUID()}@example.com`;

  it("a forged Host is refused on every route: a clear page or JSON naming ISSUER, and a log line", async () => {
    const { result, lines } = await logged(async () => [
      await SELF.fetch("https://attacker.example/login", { headers: { accept: "text/html" } }),
      await SELF.fetch("https://attacker.example/.well-known/openid-configuration"),
    ]);
    const [page, json] = result;
    expect(page!.status).toBe(500);
    const html = await page!.text();
    expect(html).toContain("ISSUER must be set (the https origin this OP is served on) to serve a host other than localhost, 127.0.0.1 or [::1]");
    expect(html).not.toContain("attacker.example");
    expect(json!.status).toBe(500);
    const body = (await json!.json()) as { error: string; error_description: string };
    expect(body.error).toBe("server_error");
    expect(body.error_description).toContain("ISSUER must be set");
    expect(JSON.stringify(body)).not.toContain("attacker.example");
    expect(lines).toHaveLength(2);
    expect(JSON.parse(lines[0]!)).toMatchObject({ level: "error", event: "config.issuer_required", host: "attacker.example" });
  });

  it("a sign-in on a forged Host sends no mail (with a real email transport) and answers no link or redirect to anywhere", async () => {
    // The account takeover: an email API that would deliver a link to the attacker's origin. It must never be called.
    const mail = { EMAIL_TRANSPORT: "http", EMAIL_API_URL: "https://mail.example/send", EMAIL_API_KEY: "k" };
    const fetched: string[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (input) => {
      fetched.push(input instanceof Request ? input.url : String(input));
      return new Response("{}", { status: 200 });
    });
    const to = email();
    const ip = `203.0.113.9-${crypto.randomUUID()}`;
    const { result } = await logged(async () => {
      const page = await call(new Request("https://attacker.example/login", { headers: { accept: "text/html", "cf-connecting-ip": ip } }), mail);
      const cookie = page.headers.getAll("set-cookie").find((c) => c.includes("oidc_csrf="))?.split(";")[0] ?? `__Host-oidc_csrf=${"a".repeat(43)}`;
      const fields = page.status === 200 ? formFields(await page.clone().text()) : { csrf_token: "a".repeat(43) };
      const post = await call(
        new Request("https://attacker.example/login", {
          method: "POST",
          headers: { "content-type": "application/x-www-form-urlencoded", accept: "text/html", cookie, "cf-connecting-ip": ip },
          body: new URLSearchParams({ ...fields, email: to }).toString(),
        }),
        mail,
      );
      const authorize = await call(new Request("https://attacker.example/authorize?response_type=code&client_id=x&redirect_uri=https%3A%2F%2Fattacker.example%2Fcb"), mail);
      return [page, post, authorize];
    });
    for (const response of result) {
      expect(response.status).toBe(500);
      expect(response.headers.get("location")).toBeNull();
      expect(response.headers.get("set-cookie")).toBeNull();
      expect(await response.text()).not.toContain("attacker.example");
    }
    expect(fetched).toEqual([]);
    expect(await devMessagesTo(env.DB, to)).toEqual([]);
  });

  it("loopback origins are served as before (local development)", async () => {
    for (const origin of ["http://localhost", "http://127.0.0.1:8787", "http://[::1]:8787", "https://localhost"]) {
      const response = await SELF.fetch(`${origin}/.well-known/openid-configuration`);
      expect(response.status, origin).toBe(200);
      expect(((await response.json()) as { issuer: string }).issuer).toBe(origin);
    }
  });

  it("with ISSUER set, a forged Host changes nothing: the sign-in link points at the issuer", async () => {
    const vars = { ISSUER: "http://localhost:9999" };
    const ip = `203.0.113.7-${crypto.randomUUID()}`;
    const page = await call(new Request("https://attacker.example/login", { headers: { "cf-connecting-ip": ip } }), vars);
    expect(page.status).toBe(200);
    const csrf = page.headers.getAll("set-cookie").find((c) => c.startsWith("oidc_csrf="))!.split(";")[0]!;
    const to = email();
    const sent = await call(
      new Request("https://attacker.example/login", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", cookie: csrf, "cf-connecting-ip": ip },
        body: new URLSearchParams({ ...formFields(await page.text()), email: to }).toString(),
      }),
      vars,
    );
    expect(sent.status).toBe(200);
    expect(await sent.text()).not.toContain("attacker.example");
    const [message] = await devMessagesTo(env.DB, to);
    expect(message!.link).toMatch(/^http:\/\/localhost:9999\/login\/email\?token=/);
    expect(message!.text).not.toContain("attacker.example");
  });
});
