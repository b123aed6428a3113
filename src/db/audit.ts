import { drizzle } from "drizzle-orm/d1";
import { auditLog } from "./schema";

/** Event details: flat on purpose (a shallow type crosses Durable Object RPC cleanly and reads well in SQL). */
export type AuditData = Record<string, string | number | boolean | null | string[]>;

/** An audit event as recorded in an object's outbox and delivered to D1. */
export interface AuditEvent {
  eventId: string;
  occurredAt: number;
  type: string;
  source: string;
  actor?: string | null;
  subject?: string | null;
  clientId?: string | null;
  data?: AuditData | null;
}

/** Idempotent by event id: a redelivered event is ignored (C4). One batch, so D1 applies it atomically. */
export async function insertAuditEvents(db: D1Database, events: AuditEvent[]): Promise<void> {
  if (events.length === 0) return;
  const orm = drizzle(db);
  const rows = events.map((e) => ({
    eventId: e.eventId,
    occurredAt: e.occurredAt,
    type: e.type,
    source: e.source,
    actor: e.actor ?? null,
    subject: e.subject ?? null,
    clientId: e.clientId ?? null,
    data: e.data ?? null,
  }));
  // D1 limits bound parameters per statement (100); 9 columns a row → at most 10 rows per statement.
  const statements = [];
  for (let i = 0; i < rows.length; i += 10) {
    statements.push(orm.insert(auditLog).values(rows.slice(i, i + 10)).onConflictDoNothing());
  }
  const [first, ...rest] = statements;
  await orm.batch([first!, ...rest]);
}

/**
 * An audit row as a plain D1 statement, to go in the same `db.batch` as the change it records (a batch is one
 * transaction: the change and its event commit together or not at all). With `onlyIf` the row is inserted only when
 * that SQL condition holds when the statement runs — e.g. `changes() > 0` right after the change (`changes()` is per
 * connection, and a batch runs its statements in order on one), so a change that did not happen writes no event.
 * `ON CONFLICT DO NOTHING`: a deterministic event id records one event however many requests reach the same verdict.
 * (The WHERE is always there: SQLite needs one between an INSERT's SELECT and its ON CONFLICT.)
 */
export function auditStatement(db: D1Database, event: AuditEvent, onlyIf?: { sql: string; params: unknown[] }): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO audit_log (event_id, occurred_at, type, source, actor, subject, client_id, data, recorded_at)
       SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE ${onlyIf?.sql ?? "true"} ON CONFLICT (event_id) DO NOTHING`,
    )
    .bind(
      event.eventId,
      event.occurredAt,
      event.type,
      event.source,
      event.actor ?? null,
      event.subject ?? null,
      event.clientId ?? null,
      event.data === undefined || event.data === null ? null : JSON.stringify(event.data),
      event.occurredAt,
      ...(onlyIf?.params ?? []),
    );
}
