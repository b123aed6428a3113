import { adminAuditStatement, type DirectAuditEvent } from "./audit";

/** Remembered consent: the scopes a user granted a client (D1 `consents`). */

interface ConsentRow {
  scopes: string;
  expires_at: number | null;
}

function liveScopes(row: ConsentRow | null, now: number): string[] {
  if (row === null || (row.expires_at !== null && row.expires_at <= now)) return [];
  return row.scopes.split(" ").filter(Boolean);
}

/** The scopes a user has granted a client, or an empty set. Expired consent counts as none. */
export async function grantedScopes(db: D1Database, userId: string, clientId: string, now = Date.now()): Promise<Set<string>> {
  return grantedScopesOfRows([await selectConsent(db, userId, clientId).first()], now);
}

/** `grantedScopes`'s statement, for a D1 batch that reads it beside other rows (`grantedScopesOfRows` reads its answer). */
export function selectConsent(db: D1Database, userId: string, clientId: string): D1PreparedStatement {
  return db.prepare(`SELECT scopes, expires_at FROM consents WHERE user_id = ? AND client_id = ?`).bind(userId, clientId);
}

export function grantedScopesOfRows(rows: unknown[], now = Date.now()): Set<string> {
  return new Set(liveScopes((rows[0] as ConsentRow | undefined | null) ?? null, now));
}

/**
 * Remembers consent: the union of what was granted before and now. A compare-and-swap on the stored value, retried,
 * so two consents given at once (two tabs) both end up in the union instead of one overwriting the other.
 */
export async function rememberConsent(db: D1Database, userId: string, clientId: string, scopes: string[], now = Date.now()): Promise<void> {
  // Each round has one winner, so N writers at once need at most N rounds.
  for (let attempt = 0; attempt < 32; attempt++) {
    const row = await db.prepare(`SELECT scopes, expires_at FROM consents WHERE user_id = ? AND client_id = ?`).bind(userId, clientId).first<ConsentRow>();
    const value = [...new Set([...liveScopes(row, now), ...scopes])].sort().join(" ");
    const result =
      row === null
        ? await db
            .prepare(`INSERT INTO consents (user_id, client_id, scopes, granted_at, expires_at) VALUES (?, ?, ?, ?, NULL) ON CONFLICT DO NOTHING`)
            .bind(userId, clientId, value, now)
            .run()
        : await db
            .prepare(`UPDATE consents SET scopes = ?, granted_at = ?, expires_at = NULL WHERE user_id = ? AND client_id = ? AND scopes = ?`)
            .bind(value, now, userId, clientId, row.scopes)
            .run();
    if (result.meta.changes > 0) return;
  }
  throw new Error("consent kept changing concurrently");
}

export async function revokeConsent(db: D1Database, userId: string, clientId: string): Promise<void> {
  await db.prepare(`DELETE FROM consents WHERE user_id = ? AND client_id = ?`).bind(userId, clientId).run();
}

/** A remembered consent with its client's name, for operators (admin API). */
export interface ConsentInfo {
  client_id: string;
  client_name: string;
  scopes: string[];
  /** Seconds since the epoch. */
  granted_at: number;
  expires_at: number | null;
}

/** The user's live consents, newest first. */
export async function listConsents(db: D1Database, userId: string, now = Date.now()): Promise<ConsentInfo[]> {
  const { results } = await db
    .prepare(
      `SELECT consents.client_id, clients.client_name, consents.scopes, consents.granted_at, consents.expires_at
       FROM consents JOIN clients ON clients.id = consents.client_id
       WHERE consents.user_id = ? AND (consents.expires_at IS NULL OR consents.expires_at > ?)
       ORDER BY consents.granted_at DESC, consents.client_id`,
    )
    .bind(userId, now)
    .all<{ client_id: string; client_name: string; scopes: string; granted_at: number; expires_at: number | null }>();
  return results.map((r) => ({
    client_id: r.client_id,
    client_name: r.client_name,
    scopes: r.scopes.split(" ").filter(Boolean),
    granted_at: Math.floor(r.granted_at / 1000),
    expires_at: r.expires_at === null ? null : Math.floor(r.expires_at / 1000),
  }));
}

/**
 * Revokes a consent and, with it, every grant the user holds for that client (C22: refresh fails, access tokens are
 * inactive at once), with its audit event — one batch, so all three happen or none. The grants are ended only when a
 * consent was there to revoke (`changes()` of the statement before, as the audit row's). False: no such consent.
 */
export async function revokeConsentAndGrants(db: D1Database, userId: string, clientId: string, audit: DirectAuditEvent): Promise<boolean> {
  const now = Date.now();
  const [removal] = await db.batch([
    db.prepare(`DELETE FROM consents WHERE user_id = ? AND client_id = ?`).bind(userId, clientId),
    adminAuditStatement(db, audit, now, true),
    db
      .prepare(
        `INSERT INTO grant_revocations (user_id, client_id, revoked_before) SELECT id, ?, ? FROM users WHERE id = ? AND changes() > 0
         ON CONFLICT (user_id, client_id) DO UPDATE SET revoked_before = MAX(revoked_before, excluded.revoked_before)`,
      )
      .bind(clientId, now, userId),
  ]);
  return removal!.meta.changes > 0;
}
