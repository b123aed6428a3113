import { pingDatabase } from "../db/health";
import type { Env } from "../env";
import { errorText, log } from "../lib/log";
import { authCodeStoreFor, keyManager, rateLimiterFor, userSessionsFor } from "../objects/locate";
import { newShardedId } from "../objects/sharding";

/**
 * GET /health: whether D1 and the Durable Objects answer, asked like every other caller asks them (D1 through db/,
 * objects through their RPC `ping`). 200 when all do, 503 otherwise. The answer is public, so it says only which
 * check failed; why goes to the log.
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
    probe("d1", () => pingDatabase(env.DB)),
    // Shard 0 of the codes, a fixed users' object and the limiter shard of one key: always the same objects, never new ones.
    probe("auth_codes", () => authCodeStoreFor(env, newShardedId(1))!.ping()),
    probe("sessions", () => userSessionsFor(env, "health-check")!.ping()),
    probe("keys", () => keyManager(env).ping()),
    probe("rate_limiter", () => rateLimiterFor(env, "health").object.ping()),
  ]);
  const ok = Object.values(checks).every((c) => c.ok);
  return Response.json({ status: ok ? "ok" : "degraded", checks }, { status: ok ? 200 : 503, headers: { "cache-control": "no-store" } });
}
