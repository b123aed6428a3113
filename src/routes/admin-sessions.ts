import type { IRequest } from "itty-router";
import { usersWithLogoutDeadLetters } from "../db/audit";
import type { Env } from "../env";
import { userSessionsFor } from "../objects/locate";
import type { LogoutNoticeInfo, SessionInfo } from "../objects/sessions";
import { adminActor, notFound, type AdminHandler } from "./support/admin-auth";
import { jsonResponse } from "./support/respond";
import { signOutEverywhere } from "./support/sign-out";

/**
 * The admin API of a user's sessions and what ends with them: list the sessions with the clients each signed in to,
 * end one (a logout: the RPs are told, grants survive), end all (C18) with the user's grants (C22), and the back-channel
 * logout notices (C21): pending and dead letters, redrive. Consents (listing, revoking with the client's grants in one
 * D1 batch) are in admin-users.ts.
 */

const seconds = (ms: number) => Math.floor(ms / 1000);
const secondsOrNull = (ms: number | null) => (ms === null ? null : seconds(ms));

function sessionView(session: SessionInfo) {
  return {
    sid: session.sid,
    auth_time: session.authTime,
    amr: session.amr,
    acr: session.acr,
    created_at: seconds(session.createdAt),
    last_seen_at: seconds(session.lastSeenAt),
    expires_at: seconds(session.expiresAt),
    idle_expires_at: seconds(session.idleExpiresAt),
    clients: session.clients,
  };
}

function noticeView(notice: LogoutNoticeInfo) {
  return {
    notice_id: notice.noticeId,
    sid: notice.sid,
    client_id: notice.clientId,
    reason: notice.reason,
    created_at: seconds(notice.createdAt),
    attempts: notice.attempts,
    next_attempt_at: notice.deadLetteredAt === null ? seconds(notice.nextAttemptAt) : null,
    dead_lettered_at: secondsOrNull(notice.deadLetteredAt),
    last_error: notice.lastError,
  };
}

function userIdOf(request: IRequest): string {
  return String(request.params.id ?? "");
}

function sessionsOf(request: IRequest, env: Env) {
  const sessions = userSessionsFor(env, userIdOf(request));
  if (sessions === null) throw notFound("user");
  return sessions;
}

/** GET /admin/users/:id/sessions — the user's usable sessions, newest first, each with the clients it signed in to. */
export const listUserSessions: AdminHandler = async (request, env) => {
  const sessions = await sessionsOf(request, env).listSessions();
  return jsonResponse({ sessions: sessions.map(sessionView) });
};

/**
 * DELETE /admin/users/:id/sessions/:sid — ends one session, as a logout does: each client it signed in to gets a
 * logout notice; the user's grants survive (Back-Channel Logout §2.7: offline access outlives a session). 404 when
 * the session is unknown or already ended.
 */
export const revokeUserSession: AdminHandler = async (request, env) => {
  const sessions = sessionsOf(request, env);
  const result = await sessions.revokeSession(String(request.params.sid ?? ""), "admin");
  if (!result.revoked) throw notFound("session");
  return jsonResponse({ revoked: 1, sid: String(request.params.sid), clients: result.clients, notices_queued: result.clients.length });
};

/**
 * POST /admin/users/:id/sessions/revoke-all — "sign out everywhere" for the user (routes/support/sign-out.ts): every
 * grant ends at once (C22), then every session in one call to one object (C18), each telling its clients (C21).
 */
export const revokeAllUserSessions: AdminHandler = async (request, env) => {
  const result = await signOutEverywhere(env, userIdOf(request), {
    actor: "admin-api",
    auditType: "admin.user.grants_ended",
    reason: "admin_revoke_all",
    data: { remote_ip: adminActor(env, request).remote_ip },
  });
  return jsonResponse({ revoked: result.sessions, sessions: result.sids, grants_ended: result.grants, notices_queued: result.notices });
};

/** GET /admin/users/:id/logout-notices[?dead=1] — the user's pending and dead-lettered logout notices (C21). */
export const listUserLogoutNotices: AdminHandler = async (request, env) => {
  const deadOnly = new URL(request.url).searchParams.get("dead") === "1";
  const list = await sessionsOf(request, env).logoutNotices({ deadOnly });
  return jsonResponse({ pending: list.pending, dead_lettered: list.deadLettered, notices: list.notices.map(noticeView) });
};

/** POST /admin/users/:id/logout-notices/redrive — puts the user's dead letters back in line; they are sent at once. */
export const redriveUserLogoutNotices: AdminHandler = async (request, env) => {
  const redriven = await sessionsOf(request, env).redriveLogoutNotices("admin-api");
  return jsonResponse({ redriven });
};

/** How many users the dead-letter views look at: the most recent ones reported in the audit log. */
const DEAD_LETTER_USERS = 100;

/** The users with dead letters now: found through the audit log, confirmed by each user's object (the truth). */
async function usersWithDeadLetters(env: Env) {
  const candidates = await usersWithLogoutDeadLetters(env.DB, DEAD_LETTER_USERS);
  const found = await Promise.all(
    candidates.map(async (userId) => {
      const sessions = userSessionsFor(env, userId);
      if (sessions === null) return null;
      const list = await sessions.logoutNotices({ deadOnly: true });
      return list.deadLettered > 0 ? { userId, sessions, list } : null;
    }),
  );
  return found.filter((f) => f !== null);
}

/**
 * GET /admin/logout-notices/dead-letters — every user whose logout notices are dead-lettered now, with the notices.
 * Found through the `logout_notice.dead_lettered` audit events (delivered to D1 from the same objects, C4), so a
 * dead letter appears here once its audit event has reached D1 — normally in the same alarm run.
 */
export const listLogoutDeadLetters: AdminHandler = async (_request, env) => {
  const users = await usersWithDeadLetters(env);
  return jsonResponse({
    users: users.map(({ userId, list }) => ({ user_id: userId, dead_lettered: list.deadLettered, notices: list.notices.map(noticeView) })),
  });
};

/** POST /admin/logout-notices/redrive — redrives the dead letters of every user listed by the view above. */
export const redriveLogoutDeadLetters: AdminHandler = async (_request, env) => {
  const users = await usersWithDeadLetters(env);
  const counts = await Promise.all(users.map(({ sessions }) => sessions.redriveLogoutNotices("admin-api")));
  return jsonResponse({ redriven: counts.reduce((a, b) => a + b, 0), users: users.length });
};
