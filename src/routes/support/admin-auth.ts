import type { IRequest } from "itty-router";
import { loadConfig } from "../../config";
import type { Env } from "../../env";
import { timingSafeEqualStrings } from "../../lib/crypto";
import { bearerChallenge } from "../../oauth/bearer";
import { OAuthError } from "../../oauth/errors";
import { clientAddress, enforceRateLimit, trustedAddress } from "./rate-limit";

/**
 * What every admin endpoint shares: the bearer admin token (config.adminToken, and during a rotation also
 * config.adminTokenNext) compared in constant time, behind a per-address rate limit; no token configured → the API
 * is off. Admin endpoints live in routes/admin*.ts.
 */

export type AdminHandler = (request: IRequest, env: Env, ctx: ExecutionContext) => Promise<Response>;

/** Rate limit per caller address first (so the token cannot be guessed at speed), then the token itself. */
async function requireAdmin(request: Request, env: Env): Promise<void> {
  const config = loadConfig(env);
  if (config.adminToken === "") {
    throw new OAuthError("access_denied", "the admin API is disabled (no ADMIN_TOKEN is set)", { status: 403 });
  }
  await enforceRateLimit(env, `admin:ip:${clientAddress(env, request)}`, config.rateLimitAdmin);
  const header = request.headers.get("authorization");
  // RFC 6750 §3.1: a request without credentials gets the challenge with no error code.
  if (header === null || header.trim() === "") throw new OAuthError("invalid_token", "an admin token is required", { status: 401, headers: bearerChallenge("admin") });
  const match = /^Bearer +([\x21-\x7e]{1,1024})$/i.exec(header);
  // Every configured token is compared in full, so the time taken says nothing about which one (if any) matched.
  const valid = match !== null && (await Promise.all([config.adminToken, config.adminTokenNext].map((t) => t !== "" && timingSafeEqualStrings(match[1]!, t)))).some(Boolean);
  if (!valid) {
    throw new OAuthError("invalid_token", "the admin token is not valid", { status: 401, headers: bearerChallenge("admin", "invalid_token") });
  }
}

/** Wraps a handler with the admin checks. */
export function admin(handler: AdminHandler): AdminHandler {
  return async (request, env, ctx) => {
    await requireAdmin(request, env);
    return handler(request, env, ctx);
  };
}

/** The audit actor and caller address of an admin change (the address only when the deployment trusts the header). */
export function adminActor(env: Env, request: Request): { actor: string; remote_ip: string | null } {
  return { actor: "admin-api", remote_ip: trustedAddress(env, request) };
}

export function notFound(what: string): OAuthError {
  return new OAuthError("not_found", `no such ${what}`, { status: 404 });
}
