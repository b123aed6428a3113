import type { Env } from "../env";
import { errorText, log } from "../lib/log";

/**
 * GET /health: whether D1 and the Durable Objects answer. 200 when all do, 503 otherwise. The answer is public, so
 * it says only which check failed; why goes to the log.
 */
export async function health(env: Env): Promise<Response> {
  const checks: Record<string, { ok: boolean }> = {};
  const probe = async (name: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      checks[name] = { ok: true };
    } catch (error) {
      checks[name] = { ok: false };
      log("error", "health.check_failed", { check: name, error: errorText(error) });
    }
  };
  await Promise.all([
    probe("d1", () => env.DB.prepare("SELECT 1").first()),
    probe("auth_codes", () => env.AUTH_CODES.get(env.AUTH_CODES.idFromName("codes:0")).ping()),
    probe("sessions", () => env.SESSIONS.get(env.SESSIONS.idFromName("health")).ping()),
    probe("keys", () => env.KEYS.get(env.KEYS.idFromName("keys")).ping()),
    probe("rate_limiter", () => env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName("health")).ping()),
  ]);
  const ok = Object.values(checks).every((c) => c.ok);
  return Response.json({ status: ok ? "ok" : "degraded", checks }, { status: ok ? 200 : 503, headers: { "cache-control": "no-store" } });
}
