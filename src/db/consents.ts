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
  const row = await db.prepare(`SELECT scopes, expires_at FROM consents WHERE user_id = ? AND client_id = ?`).bind(userId, clientId).first<ConsentRow>();
  return new Set(liveScopes(row, now));
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
