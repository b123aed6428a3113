/** How long the dev mailbox keeps a message: far longer than any sign-in link lives. */
export const DEV_MAILBOX_RETENTION_MS = 86_400_000;

/** D1 rows past their lifetime (C15): audit events past retention, consents past their expiry, dev mailbox messages older than a day. */
export async function purgeExpiredRows(
  db: D1Database,
  now: number,
  auditRetentionDays: number,
): Promise<{ audit: number; consents: number; devMailbox: number }> {
  const [audit, expiredConsents, oldMessages] = await db.batch([
    db.prepare(`DELETE FROM audit_log WHERE occurred_at < ?`).bind(now - auditRetentionDays * 86_400_000),
    db.prepare(`DELETE FROM consents WHERE expires_at IS NOT NULL AND expires_at < ?`).bind(now),
    db.prepare(`DELETE FROM dev_mailbox WHERE sent_at < ?`).bind(now - DEV_MAILBOX_RETENTION_MS),
  ]);
  return { audit: audit!.meta.changes, consents: expiredConsents!.meta.changes, devMailbox: oldMessages!.meta.changes };
}
