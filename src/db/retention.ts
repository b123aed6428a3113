/** How long the dev mailbox keeps a message: far longer than any sign-in link lives. */
export const DEV_MAILBOX_RETENTION_MS = 86_400_000;

/**
 * D1 rows past their lifetime (C15): audit events past retention, consents past their expiry, dev mailbox messages
 * older than a day, and grant revocations older than any grant still alive (`grantLifetimeSeconds`, the refresh-token
 * lifetime: every grant made before then has expired by itself).
 */
export async function purgeExpiredRows(
  db: D1Database,
  now: number,
  retention: { auditRetentionDays: number; grantLifetimeSeconds: number },
): Promise<{ audit: number; consents: number; devMailbox: number; grantRevocations: number }> {
  const [audit, expiredConsents, oldMessages, oldRevocations] = await db.batch([
    db.prepare(`DELETE FROM audit_log WHERE occurred_at < ?`).bind(now - retention.auditRetentionDays * 86_400_000),
    db.prepare(`DELETE FROM consents WHERE expires_at IS NOT NULL AND expires_at < ?`).bind(now),
    db.prepare(`DELETE FROM dev_mailbox WHERE sent_at < ?`).bind(now - DEV_MAILBOX_RETENTION_MS),
    db.prepare(`DELETE FROM grant_revocations WHERE revoked_before < ?`).bind(now - retention.grantLifetimeSeconds * 1000),
  ]);
  return {
    audit: audit!.meta.changes,
    consents: expiredConsents!.meta.changes,
    devMailbox: oldMessages!.meta.changes,
    grantRevocations: oldRevocations!.meta.changes,
  };
}
