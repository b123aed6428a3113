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
  return db
    .prepare(
      `INSERT INTO audit_log (event_id, occurred_at, type, source, actor, subject, client_id, data, recorded_at)
       SELECT ?, ?, ?, 'admin', ?, ?, ?, ?, ? ${onlyIfChanged ? "WHERE changes() > 0" : ""}`,
    )
    .bind(crypto.randomUUID(), at, event.type, event.actor, event.subject, event.clientId, JSON.stringify(event.data), at);
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
