import { loadConfig } from "../../config";
import type { Env } from "../../env";
import { addressBucket, isIpAddress } from "../../lib/ip-address";
import { rateLimiterFor } from "../../objects/locate";
import { OAuthError } from "../../oauth/errors";

/**
 * The caller's IP address, as far as the deployment trusts anyone to say it: `CF-Connecting-IP`, which Cloudflare's
 * edge sets on every request it forwards, when TRUST_CF_CONNECTING_IP is on (the default). Null when it is off, or the
 * header is missing (local tools) or not an IP address.
 */
export function trustedAddress(env: Env, request: Request): string | null {
  if (!loadConfig(env).trustCfConnectingIp) return null;
  const ip = request.headers.get("cf-connecting-ip");
  return ip !== null && isIpAddress(ip) ? ip : null;
}

/**
 * The caller's bucket for per-address rate limits: the trusted address, an IPv6 one by its /64 (lib/ip-address.ts).
 * Callers without a trusted address share one bucket, `unknown`.
 */
export function clientAddress(env: Env, request: Request): string {
  const ip = trustedAddress(env, request);
  return (ip === null ? null : addressBucket(ip)) ?? "unknown";
}

/** Counts one request against `limit` per window (RATE_LIMIT_WINDOW unless given) for `key`: whether it was within it (C6). */
export async function withinRateLimit(env: Env, key: string, limit: number, windowSeconds = loadConfig(env).rateLimitWindow): Promise<boolean> {
  return (await rateLimiterFor(env, key).hit(limit, windowSeconds)).allowed;
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
