import { and, isNotNull, lt } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { auditLog, consents } from "./schema";

/** D1 rows past their lifetime (C15): audit events past retention, consents past their expiry. */
export async function purgeExpiredRows(db: D1Database, now: number, auditRetentionDays: number): Promise<{ audit: number; consents: number }> {
  const orm = drizzle(db);
  const [audit, expiredConsents] = await orm.batch([
    orm.delete(auditLog).where(lt(auditLog.occurredAt, now - auditRetentionDays * 86_400_000)),
    orm.delete(consents).where(and(isNotNull(consents.expiresAt), lt(consents.expiresAt, now))),
  ]);
  return { audit: audit.meta.changes, consents: expiredConsents.meta.changes };
}
