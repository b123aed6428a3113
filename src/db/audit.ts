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
  const now = Date.now();
  const insert = db.prepare(
    `INSERT INTO audit_log (event_id, occurred_at, type, source, actor, subject, client_id, data, recorded_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (event_id) DO NOTHING`,
  );
  await db.batch(
    events.map((e) =>
      insert.bind(e.eventId, e.occurredAt, e.type, e.source, e.actor ?? null, e.subject ?? null, e.clientId ?? null, e.data ? JSON.stringify(e.data) : null, now),
    ),
  );
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

/** An event written by the Worker itself (the admin API, a user's own action) rather than by an object's outbox. */
export interface DirectAuditEvent {
  type: string;
  actor: string | null;
  subject: string | null;
  clientId: string | null;
  data: AuditData;
}

/**
 * The audit row of a D1 change, for the same batch as the change (one transaction: they commit together). With
 * `onlyIfChanged` it is inserted only when the statement just before it changed a row (`changes()` is per connection,
 * and a batch runs its statements in order on one): a lost race writes no event.
 */
export function adminAuditStatement(db: D1Database, event: DirectAuditEvent, at: number, onlyIfChanged: boolean): D1PreparedStatement {
  return auditStatement(db, { eventId: crypto.randomUUID(), occurredAt: at, source: "admin", ...event }, onlyIfChanged ? { sql: "changes() > 0", params: [] } : undefined);
}

/**
 * The users whose session object reported a dead-lettered logout notice (`logout_notice.dead_lettered`, C21), most
 * recent first: where the admin API looks for dead letters. The objects themselves say whether they still hold any.
 */
export async function usersWithLogoutDeadLetters(db: D1Database, limit: number): Promise<string[]> {
  const { results } = await db
    .prepare(
      `SELECT subject, MAX(occurred_at) AS last FROM audit_log
       WHERE type = 'logout_notice.dead_lettered' AND subject IS NOT NULL GROUP BY subject ORDER BY last DESC LIMIT ?`,
    )
    .bind(limit)
    .all<{ subject: string }>();
  return results.map((r) => r.subject);
}
