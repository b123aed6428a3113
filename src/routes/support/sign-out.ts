import { ALL_CLIENTS, endGrantsIssuedBefore } from "../../db/grant-revocations";
import type { AuditData } from "../../db/audit";
import type { Env } from "../../env";
import { userSessionsFor } from "../../objects/locate";
import { notFound } from "./admin-auth";

/**
 * "Sign out everywhere" — the admin's revoke-all, the user's own button (the logout page; the account page) and any
 * other caller that must cut a user off: every grant of the user ends (C22: one D1 write, read by the one token rule,
 * so refresh fails and access tokens are inactive at once), then every session ends in one call to one object (C18),
 * which queues a logout notice for each client each session signed in to (C21). The grants first: a failure after them
 * leaves sessions to end on a retry, never grants that outlive a reported success.
 */

export interface SignedOutEverywhere {
  /** Sessions ended, and their ids. */
  sessions: number;
  sids: string[];
  /** Live grants ended that were made through the user's sessions (every grant of the user ends; see UserSessions). */
  grants: number;
  /** Logout notices queued, one per ended session and client it signed in to. */
  notices: number;
}

export interface SignOutActor {
  /** `admin-api`, or the user's own id. */
  actor: string;
  /** The audit event of the grants' end: `admin.user.grants_ended`, `user.grants_ended`, … */
  auditType: string;
  /** Why the sessions end (kept with them and in their logout notices). */
  reason: string;
  data?: AuditData;
}

export async function signOutEverywhere(env: Env, userId: string, who: SignOutActor): Promise<SignedOutEverywhere> {
  const sessions = userSessionsFor(env, userId);
  if (sessions === null) throw notFound("user");
  const at = Date.now();
  await endGrantsIssuedBefore(env.DB, userId, ALL_CLIENTS, at, {
    type: who.auditType,
    actor: who.actor,
    subject: userId,
    clientId: null,
    data: { ...who.data, reason: who.reason },
  });
  const result = await sessions.revokeAllSessions(who.reason, who.actor, { grantsEndedAt: at });
  return { sessions: result.count, sids: result.sessions.map((s) => s.sid), grants: result.grants, notices: result.notices };
}
