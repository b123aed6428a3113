import { issuerOf, loadConfig } from "../../config";
import { getUser, type User } from "../../db/users";
import type { Env } from "../../env";
import { errorText, log } from "../../lib/log";
import { userSessionsFor } from "../../objects/locate";
import { parseSessionCookie, type RecordClientFacts, type SessionInfo } from "../../objects/sessions";
import { SESSION_COOKIE, clearCookie, readCookie, setCookie } from "./cookies";

/**
 * The browser session: a cookie `<userId>.<sid>.<secret>` naming a session in the user's session object.
 * Only the object can tell whether the secret is right and the session still usable.
 */

export interface CurrentSession {
  userId: string;
  sid: string;
  session: SessionInfo;
}

/** The user the session cookie names, before anything checks it (to read that user's data beside the check). */
export function sessionCookieUserId(env: Env, request: Request): string | null {
  const raw = readCookie(request, SESSION_COOKIE, issuerOf(env, request));
  return raw === null ? null : (parseSessionCookie(raw)?.userId ?? null);
}

/**
 * The usable session of this browser, or null (no cookie, a cookie not ours, revoked, expired, or a user who no longer
 * exists or is disabled — an admin change is in force at once). Marks it as used. The user is looked up in D1 first,
 * so a forged cookie naming a made-up user never reaches, and never creates, a session object. `cookieUser`: that
 * lookup, when the caller read it in a batch of its own (the user `sessionCookieUserId` names).
 */
export async function currentSession(env: Env, request: Request, cookieUser?: Promise<User | null>): Promise<CurrentSession | null> {
  const raw = readCookie(request, SESSION_COOKIE, issuerOf(env, request));
  if (raw === null) return null;
  const parsed = parseSessionCookie(raw);
  if (parsed === null) return null;
  const user = await (cookieUser ?? getUser(env.DB, parsed.userId));
  if (user === null || user.id !== parsed.userId || user.disabled) return null;
  const sessions = userSessionsFor(env, parsed.userId);
  if (sessions === null) return null;
  const session = await sessions.touchSession(parsed.sid, parsed.secret);
  if (session === null || session.userId !== parsed.userId) return null;
  return { userId: parsed.userId, sid: parsed.sid, session };
}

/**
 * The Set-Cookie header for the session cookie: HttpOnly, SameSite=Lax, Path=/, and `__Host-` + Secure on an https
 * issuer (cookies.ts). It lives as long as the session may (the object still decides). `null` clears it.
 */
export function sessionCookie(env: Env, request: Request, value: string | null): string {
  const issuer = issuerOf(env, request);
  return value === null ? clearCookie(SESSION_COOKIE, issuer) : setCookie(SESSION_COOKIE, value, issuer, loadConfig(env).sessionTtl);
}

/**
 * The session learns which clients it signed in to, and the issuer each knows us by (for their logout notices, C21).
 * Best effort and off the response's path (it runs in `waitUntil`): called when the code is issued (unless the session
 * knows the client already) and again when it is redeemed (then with the grant), so one failure loses nothing, and it
 * never takes a sign-in or tokens back; a failure is logged.
 */
export function recordSessionClient(env: Env, ctx: ExecutionContext, userId: string, sid: string, clientId: string, facts: RecordClientFacts): void {
  const recording = (async () => {
    try {
      await userSessionsFor(env, userId)?.recordClient(sid, clientId, facts);
    } catch (error) {
      log("error", "session.record_client_failed", { error: errorText(error) });
    }
  })();
  ctx.waitUntil(recording);
}

/**
 * A new sign-in in a browser that still holds a session (prompt=login, max_age, another account) replaces its cookie:
 * the old session is ended rather than left to linger unreachable until it idles out. Best effort: it runs after the
 * new session exists, whose cookie must be sent whatever happens here (C12) — a session left over idles out.
 */
export async function endReplacedSession(env: Env, request: Request, newSid: string): Promise<void> {
  try {
    const previous = await currentSession(env, request);
    if (previous === null || previous.sid === newSid) return;
    await userSessionsFor(env, previous.userId)!.revokeSession(previous.sid, "replaced by a new sign-in");
  } catch (error) {
    log("error", "session.end_replaced_failed", { error: errorText(error) });
  }
}
