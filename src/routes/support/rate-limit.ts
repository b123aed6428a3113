import { loadConfig } from "../../config";
import type { Env } from "../../env";
import { rateLimiterFor } from "../../objects/locate";
import { OAuthError } from "../../oauth/errors";

/** The client's address as Cloudflare reports it; requests without one (local tools) share one bucket. */
export function clientAddress(request: Request): string {
  const ip = request.headers.get("cf-connecting-ip");
  return ip !== null && ip.length > 0 && ip.length <= 64 ? ip : "unknown";
}

/** Counts `cost` (default one request) against `limit` per window for `key`; over it, a 429 with Retry-After (C6). Cost 0 only checks. */
export async function enforceRateLimit(env: Env, key: string, limit: number, cost = 1): Promise<void> {
  const result = await rateLimiterFor(env, key).hit(limit, loadConfig(env).rateLimitWindow, cost);
  if (!result.allowed) {
    throw new OAuthError("rate_limited", "Too many requests. Wait a little and try again.", {
      status: 429,
      headers: { "retry-after": String(result.retryAfter) },
    });
  }
}
