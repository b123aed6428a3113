import { adminAuditStatement, type DirectAuditEvent } from "./audit";

/**
 * C22: ending every grant of a user at once — for one client (a consent revoked) or for all ("sign out everywhere",
 * the admin's revoke-all) — without an index of grants: a grant created at or before the recorded time is dead,
 * which the one token rule (C23) reads with the user on every check. Only moves forward (MAX), so a late write never
 * revives anything. Written with its audit event in one batch.
 */

/** The `client_id` of a row that covers every client. */
export const ALL_CLIENTS = "*";

/** The statement that ends the grants, for a batch with the change that causes it (a consent revoked, a user disabled). */
export function endGrantsStatement(db: D1Database, userId: string, clientId: string, at: number): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO grant_revocations (user_id, client_id, revoked_before) SELECT id, ?, ? FROM users WHERE id = ?
       ON CONFLICT (user_id, client_id) DO UPDATE SET revoked_before = MAX(revoked_before, excluded.revoked_before)`,
    )
    .bind(clientId, at, userId);
}

/** False: no such user, nothing written (a user who does not exist has no grants). */
export async function endGrantsIssuedBefore(db: D1Database, userId: string, clientId: string, at: number, audit: DirectAuditEvent): Promise<boolean> {
  const [ended] = await db.batch([endGrantsStatement(db, userId, clientId, at), adminAuditStatement(db, audit, at, true)]);
  return ended!.meta.changes > 0;
}
