import { and, isNotNull, lt } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { auditLog, consents, devMailbox } from "./schema";

/** How long the dev mailbox keeps a message: far longer than any sign-in link lives. */
export const DEV_MAILBOX_RETENTION_MS = 86_400_000;

/** D1 rows past their lifetime (C15): audit events past retention, consents past their expiry, dev mailbox messages older than a day. */
export async function purgeExpiredRows(
  db: D1Database,
  now: number,
  auditRetentionDays: number,
): Promise<{ audit: number; consents: number; devMailbox: number }> {
  const orm = drizzle(db);
  const [audit, expiredConsents, oldMessages] = await orm.batch([
    orm.delete(auditLog).where(lt(auditLog.occurredAt, now - auditRetentionDays * 86_400_000)),
    orm.delete(consents).where(and(isNotNull(consents.expiresAt), lt(consents.expiresAt, now))),
    orm.delete(devMailbox).where(lt(devMailbox.sentAt, now - DEV_MAILBOX_RETENTION_MS)),
  ]);
  return { audit: audit.meta.changes, consents: expiredConsents.meta.changes, devMailbox: oldMessages.meta.changes };
}
