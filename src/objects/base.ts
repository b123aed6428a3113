import { DurableObject } from "cloudflare:workers";
import { loadConfig, type Config } from "../config";
import { insertAuditEvents, type AuditData, type AuditEvent } from "../db/audit";
import type { Env } from "../env";
import { errorText, log } from "../lib/log";
import { purgeTime } from "../lib/time";
import { deadLetterRegistry } from "./locate";
import { RetryQueue, retryDelayMs, type QueueStatus } from "./retry-queue";

/** A versioned piece of an object's schema: migration N (1-based) brings the tables from version N-1 to N (C20). */
export interface SchemaComponent {
  name: string;
  /** Each migration is a list of SQL statements; never edit one that has shipped, append a new one. */
  migrations: string[][];
}

export type NewAuditEvent = Omit<AuditEvent, "eventId" | "occurredAt" | "source"> & { occurredAt?: number };

export type OutboxStatus = QueueStatus;

const OUTBOX: SchemaComponent = {
  name: "audit_outbox",
  migrations: [
    [
      `CREATE TABLE audit_outbox (
        event_id TEXT PRIMARY KEY,
        event TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        dead_lettered_at INTEGER,
        last_error TEXT
      )`,
      `CREATE INDEX audit_outbox_next ON audit_outbox (dead_lettered_at, next_attempt_at)`,
    ],
  ],
};

/**
 * What this object last told the registry of undelivered events (objects/dead-letter-registry.ts): whether it holds
 * events whose delivery failed, and how many are dead-lettered. The truth is the outbox itself, in this same storage
 * and changed in the same transactions; when it and this row disagree, the alarm tells the registry, and retries with
 * backoff until the registry acknowledges — so an object with dead letters is never missing from the registry for
 * longer than the registry is unreachable, even while D1 is down (which is when dead letters happen).
 * Made by the first failed delivery, not with the object: until then there is nothing to tell (and a healthy object
 * writes no row for it). No table reads as "nothing told".
 */
const UNDELIVERED_REPORT: SchemaComponent = {
  name: "undelivered_report",
  migrations: [
    [
      `CREATE TABLE undelivered_report (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        undelivered INTEGER NOT NULL,
        dead_lettered INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        next_attempt_at INTEGER
      )`,
      `INSERT INTO undelivered_report (id, undelivered, dead_lettered, seq, attempts) VALUES (1, 0, 0, 0, 0)`,
    ],
  ],
};

/** What an object reports to the registry: whether events failed to reach D1, and how many gave up (dead letters). */
export interface UndeliveredState {
  undelivered: boolean;
  deadLettered: number;
}

function hasSchemaTable(storage: DurableObjectStorage): boolean {
  return storage.sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_schema_versions'`).toArray().length > 0;
}

/** Applies the pending migrations of one component inside one transaction; returns the version now in force. */
export function migrateComponent(storage: DurableObjectStorage, component: SchemaComponent): number {
  return storage.transactionSync(() => {
    const sql = storage.sql;
    sql.exec(`CREATE TABLE IF NOT EXISTS _schema_versions (component TEXT PRIMARY KEY, version INTEGER NOT NULL)`);
    const row = sql.exec<{ version: number }>(`SELECT version FROM _schema_versions WHERE component = ?`, component.name).toArray()[0];
    const current = row?.version ?? 0;
    if (current > component.migrations.length) {
      // Storage written by a newer deploy: refuse rather than corrupt it.
      throw new Error(`${component.name} storage is at version ${current}, newer than this code (${component.migrations.length})`);
    }
    for (let v = current; v < component.migrations.length; v++) {
      for (const statement of component.migrations[v]!) sql.exec(statement);
    }
    if (current !== component.migrations.length) {
      sql.exec(
        `INSERT INTO _schema_versions (component, version) VALUES (?, ?)
         ON CONFLICT (component) DO UPDATE SET version = excluded.version`,
        component.name,
        component.migrations.length,
      );
    }
    return component.migrations.length;
  });
}

/**
 * The base of every Durable Object of the OP. It owns the four things each object must do the same way:
 * - its tables carry a schema version and are migrated on first use after a deploy (C20);
 * - state changes and their audit events commit in one transaction, into an outbox (C4);
 * - one alarm delivers the outbox to D1 with exponential backoff and purges expired rows (C15);
 * - an object whose content has ended deletes its storage (C15): found by identifiers that come from outside, objects
 *   would otherwise pile up, one per grant, user or rate-limit key ever seen, each billed for its bytes.
 * Storage is made by the first write (`transact`), never by a read: read methods answer "nothing here" while
 * `hasStorage()` is false. Nothing lives only in memory: every field of a subclass is a cache of storage or derived from env.
 */
export abstract class StatefulObject extends DurableObject<Env> {
  private outboxDirty = false;
  protected readonly sql: SqlStorage;
  protected readonly config: Config;
  /** Names the object in audit events and log lines ("auth_codes", "sessions" …). */
  protected abstract readonly source: string;
  /** The subclass's own tables. A method, not a field: it is needed while the base constructor runs. */
  protected abstract schema(): SchemaComponent;

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    this.sql = ctx.storage.sql;
    this.config = loadConfig(env);
    // Runs before any request is delivered to this instance.
    void ctx.blockConcurrencyWhile(async () => {
      // Addressed by identifiers from the outside that may be made up (a refresh token) or long gone, an object stays
      // without storage until its first write, so a read never creates a stored object (C15).
      if (this.createsStorageOnWrite() && !hasSchemaTable(ctx.storage)) return;
      this.ensureSchema();
      // Safety net: events (and the subclass's own queued deliveries) committed just before a crash still get an alarm,
      // and so does a report the registry of undelivered events has not acknowledged yet.
      if (this.outboxStatus().pending > 0 || this.nextDeliveryAt() !== null || this.registryBehind()) await this.wakeBy(this.now());
    });
  }

  private schemaReady = false;

  /** Migrates the object's tables once per instance (C20). */
  private ensureSchema(): void {
    if (this.schemaReady) return;
    migrateComponent(this.ctx.storage, OUTBOX);
    migrateComponent(this.ctx.storage, this.schema());
    this.schemaReady = true;
  }

  /** Whether this object has any storage: false until the first `transact`, and again once it has deleted itself. */
  protected hasStorage(): boolean {
    return this.schemaReady;
  }

  /**
   * No tables until the first write. Every object but the key manager (which always holds keys) works so; its read
   * methods answer "nothing here" while `hasStorage()` is false, without calling `transact`.
   */
  protected createsStorageOnWrite(): boolean {
    return true;
  }

  /**
   * Whether the subclass's tables still hold anything that must be kept, after `purgeExpired` ran. When they do not,
   * and the outbox is empty (no event pending or dead-lettered), the alarm deletes the object's storage.
   */
  protected abstract holdsState(now: number): boolean;

  /** Milliseconds since the epoch. The one clock of the object, so expiry is tested with controlled time. */
  protected now(): number {
    return Date.now();
  }

  /** Runs `fn` as one SQLite transaction: its writes and the audit events it records commit together or not at all. */
  protected transact<R>(fn: () => R): R {
    if (this.schemaReady) return this.ctx.storage.transactionSync(fn);
    // The first write of an object that has no tables yet (or one made before a deploy): its migrations and the write
    // commit as one transaction — a new object costs one commit, not one per schema component plus the write. If
    // `fn` throws, the migrations roll back with it and are applied again by the next write.
    const result = this.ctx.storage.transactionSync(() => {
      migrateComponent(this.ctx.storage, OUTBOX);
      migrateComponent(this.ctx.storage, this.schema());
      return fn();
    });
    this.schemaReady = true;
    return result;
  }

  /** Records an audit event in the outbox. Call inside `transact` together with the change it describes. */
  protected recordAudit(event: NewAuditEvent): string {
    const eventId = crypto.randomUUID();
    const now = this.now();
    const full: AuditEvent = { ...event, eventId, occurredAt: event.occurredAt ?? now, source: this.source };
    this.sql.exec(
      `INSERT INTO audit_outbox (event_id, event, attempts, next_attempt_at) VALUES (?, ?, 0, ?)`,
      eventId,
      JSON.stringify(full),
      now,
    );
    this.outboxDirty = true;
    return eventId;
  }

  /**
   * Counts an occurrence in one audit event per `key`, delivered at `deliverAt` (call inside `transact`): until then
   * every call adds one to the event's `data.count`, so a flood of occurrences (denied requests) is one event in the
   * outbox and one row in D1, not one each. The event is not due before `deliverAt`, so it is never in flight while
   * it is counted; its id is derived from the key, so a redelivery is idempotent like any other. Then `wakeBy(deliverAt)`.
   */
  protected countAudit(event: NewAuditEvent & { data: AuditData }, key: string, deliverAt: number): void {
    const now = this.now();
    const eventId = `${event.type}:${this.objectName()}:${key}`.slice(0, 400);
    const counted = this.sql.exec(
      `UPDATE audit_outbox SET event = json_set(event, '$.data.count', json_extract(event, '$.data.count') + 1)
       WHERE event_id = ? AND dead_lettered_at IS NULL AND attempts = 0 AND next_attempt_at > ?`,
      eventId,
      now,
    ).rowsWritten;
    if (counted > 0) return;
    const full: AuditEvent = { ...event, data: { ...event.data, count: 1 }, eventId, occurredAt: event.occurredAt ?? now, source: this.source };
    this.sql.exec(
      `INSERT INTO audit_outbox (event_id, event, attempts, next_attempt_at) VALUES (?, ?, 0, ?) ON CONFLICT (event_id) DO NOTHING`,
      eventId,
      JSON.stringify(full),
      Math.max(deliverAt, now),
    );
  }

  /**
   * Makes sure the alarm fires no later than `at`. Called after every write that needs follow-up work
   * (an audit event to deliver, a row that will expire).
   */
  protected async wakeBy(at: number): Promise<void> {
    const current = await this.ctx.storage.getAlarm();
    if (current === null || current > at) await this.ctx.storage.setAlarm(at);
  }

  /** Call after a transaction that may have recorded audit events: schedules their delivery now. */
  protected async flushAudit(): Promise<void> {
    if (!this.outboxDirty) return;
    this.outboxDirty = false;
    await this.wakeBy(this.now());
  }

  /** Expired rows: delete them and return how many went. Called by the alarm. */
  protected purgeExpired(_now: number): number {
    return 0;
  }

  /** The earliest time at which `purgeExpired` has something to do, or null. */
  protected nextExpiry(): number | null {
    return null;
  }

  /**
   * A subclass's own outgoing deliveries (UserSessions: back-channel logout notices), run by the alarm before the audit
   * outbox, so the audit events they record go to D1 in the same run. They use a `RetryQueue` like the outbox does.
   */
  protected async deliverQueued(): Promise<void> {}

  /**
   * When the subclass's next queued delivery is due (ms), or null. Read while the base constructor runs (the safety
   * net after a crash), so it must use only storage, not fields of the subclass.
   */
  protected nextDeliveryAt(): number | null {
    return null;
  }

  override async alarm(): Promise<void> {
    if (!this.hasStorage()) return;
    await this.deliverQueued();
    await this.deliverAuditOutbox();
    await this.reportUndelivered();
    const now = this.now();
    this.transact(() => this.purgeExpired(now));
    if (await this.deleteIfEnded(now)) return;
    await this.scheduleNextAlarm();
  }

  /**
   * Deletes the object's storage when nothing is left in it (C15). The check and the deletion run with no await
   * between them, and the input gate holds other requests while storage is deleted: a request arriving at the same
   * moment sees the old state or a fresh object with no storage — never a half-deleted one.
   */
  private async deleteIfEnded(now: number): Promise<boolean> {
    const { pending, deadLettered } = this.outboxStatus();
    // A dead letter keeps the object alive until it is redriven and delivered: it is an event not yet in D1 (C4). So
    // does a registry that still lists it: the object stays until the registry has been told it is clear.
    if (pending > 0 || deadLettered > 0 || this.registryBehind() || this.holdsState(now)) return false;
    const deletions = [this.ctx.storage.deleteAlarm(), this.ctx.storage.deleteAll()];
    this.schemaReady = false;
    this.reportTable = false;
    await Promise.all(deletions);
    return true;
  }

  private async scheduleNextAlarm(): Promise<void> {
    const expiry = this.nextExpiry();
    const purgeAt = expiry === null ? null : purgeTime(expiry);
    const report = this.registryBehind() ? this.reportRow().next_attempt_at ?? this.now() : null;
    const candidates = [this.auditQueue().nextAttemptAt(), this.nextDeliveryAt(), purgeAt, report].filter((t): t is number => t !== null);
    if (candidates.length === 0) {
      await this.ctx.storage.deleteAlarm();
      return;
    }
    await this.ctx.storage.setAlarm(Math.max(Math.min(...candidates), this.now()));
  }

  /** The audit outbox as a retry queue (C4). */
  private auditQueue(): RetryQueue {
    return new RetryQueue(this.sql, { table: "audit_outbox", id: "event_id", createdAt: "json_extract(event, '$.occurredAt')", name: "audit" });
  }

  /**
   * Delivers due outbox events to D1 `audit_log` in one idempotent batch. On failure each event backs off
   * exponentially; after `auditMaxAttempts` it is dead-lettered: kept, counted, and reported (C4).
   */
  protected async deliverAuditOutbox(): Promise<{ delivered: number; failed: number }> {
    const now = this.now();
    const queue = this.auditQueue();
    const due = queue.due<{ event_id: string; event: string }>(now, 100, "event");
    if (due.length === 0) return { delivered: 0, failed: 0 };
    try {
      await insertAuditEvents(
        this.env.DB,
        due.map((row) => JSON.parse(row.event) as AuditEvent),
      );
    } catch (error) {
      // Only the first line: D1 errors list the query's parameters after it.
      const message = errorText(error);
      const { auditRetryBase, auditRetryMax, auditMaxAttempts } = this.config;
      const dead = this.transact(() =>
        queue.failed(
          due.map((row) => ({ id: row.event_id, attempts: row.attempts, error: message })),
          now,
          { baseSeconds: auditRetryBase, maxSeconds: auditRetryMax, maxAttempts: auditMaxAttempts },
        ),
      );
      // The object is named, so an operator can call deadLetters()/redriveDeadLetters() on it.
      queue.report({ source: this.source, object: this.objectName(), events: due.length, error: message }, dead.length);
      return { delivered: 0, failed: due.length };
    }
    this.transact(() => queue.remove(due.map((row) => row.event_id)));
    return { delivered: due.length, failed: 0 };
  }

  /** The registry this object reports to (a method, so a test can stand in for an unreachable one). */
  protected undeliveredRegistry(): { report(report: UndeliveredState & { source: string; name: string | null; id: string; seq: number }): Promise<void> } {
    return deadLetterRegistry(this.env);
  }

  /** Whether this object tells the registry of undelivered events about itself (every object but the registry). */
  protected reportsUndelivered(): boolean {
    return true;
  }

  /** Whether the report's table exists (made by the first failed delivery); cached once it does. */
  private reportTable = false;

  private hasReportTable(): boolean {
    if (!this.reportTable) {
      this.reportTable = this.sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'undelivered_report'`).toArray().length > 0;
    }
    return this.reportTable;
  }

  private reportRow(): { undelivered: number; dead_lettered: number; seq: number; attempts: number; next_attempt_at: number | null } {
    if (!this.hasReportTable()) return { undelivered: 0, dead_lettered: 0, seq: 0, attempts: 0, next_attempt_at: null };
    return this.sql
      .exec<{ undelivered: number; dead_lettered: number; seq: number; attempts: number; next_attempt_at: number | null }>(
        `SELECT undelivered, dead_lettered, seq, attempts, next_attempt_at FROM undelivered_report WHERE id = 1`,
      )
      .one();
  }

  /** The outbox as the registry should know it: events that failed at least once (or gave up), and the dead letters. */
  private undeliveredState(): UndeliveredState {
    const row = this.sql
      .exec<{ failed: number; dead: number }>(
        `SELECT COUNT(*) FILTER (WHERE attempts > 0 OR dead_lettered_at IS NOT NULL) AS failed,
                COUNT(*) FILTER (WHERE dead_lettered_at IS NOT NULL) AS dead
         FROM audit_outbox`,
      )
      .one();
    return { undelivered: row.failed > 0, deadLettered: row.dead };
  }

  /** Whether the registry was last told something other than what the outbox holds now. */
  private registryBehind(): boolean {
    if (!this.reportsUndelivered() || !this.hasStorage()) return false;
    const state = this.undeliveredState();
    if (!state.undelivered && state.deadLettered === 0 && !this.hasReportTable()) return false;
    const reported = this.reportRow();
    return state.undelivered !== (reported.undelivered === 1) || state.deadLettered !== reported.dead_lettered;
  }

  /**
   * Tells the registry what the outbox holds, when it changed since the last acknowledged report (from the alarm).
   * A failure is retried with the audit backoff and never given up: the registry is how operators find dead letters.
   */
  private async reportUndelivered(): Promise<void> {
    if (!this.registryBehind()) return;
    const now = this.now();
    const report = this.reportRow();
    if (report.next_attempt_at !== null && report.next_attempt_at > now) return;
    const state = this.undeliveredState();
    const seq = report.seq + 1;
    // The first report of this object makes its table (C20: a versioned component like any other).
    if (!this.hasReportTable()) {
      migrateComponent(this.ctx.storage, UNDELIVERED_REPORT);
      this.reportTable = true;
    }
    try {
      await this.undeliveredRegistry().report({ source: this.source, name: this.ctx.id.name ?? null, id: this.ctx.id.toString(), seq, ...state });
    } catch (error) {
      const attempts = report.attempts + 1;
      // The audit outbox's backoff, never given up: the registry is how operators find dead letters.
      const delay = retryDelayMs(attempts, { baseSeconds: this.config.auditRetryBase, maxSeconds: this.config.auditRetryMax, maxAttempts: Infinity });
      this.transact(() => this.sql.exec(`UPDATE undelivered_report SET attempts = ?, next_attempt_at = ?, seq = ? WHERE id = 1`, attempts, now + delay, seq));
      log("warn", "audit.registry_report_failed", { source: this.source, object: this.objectName(), attempts, error: errorText(error) });
      return;
    }
    this.transact(() =>
      this.sql.exec(
        `UPDATE undelivered_report SET undelivered = ?, dead_lettered = ?, seq = ?, attempts = 0, next_attempt_at = NULL WHERE id = 1`,
        state.undelivered ? 1 : 0,
        state.deadLettered,
        seq,
      ),
    );
  }

  /** Pending and dead-lettered audit events of this object: dead letters stay queryable until redriven. */
  outboxStatus(): OutboxStatus {
    if (!this.hasStorage()) return { pending: 0, deadLettered: 0, oldestPendingAt: null };
    return this.auditQueue().status();
  }

  /** Dead-lettered events, for operators. */
  deadLetters(limit = 100): Array<{ event: AuditEvent; attempts: number; lastError: string | null; deadLetteredAt: number }> {
    if (!this.hasStorage()) return [];
    return this.auditQueue()
      .list<{ event: string }>("event", { deadOnly: true, limit })
      .map((r) => ({ event: JSON.parse(r.event) as AuditEvent, attempts: r.attempts, lastError: r.last_error, deadLetteredAt: r.dead_lettered_at! }));
  }

  /** Puts dead-lettered events back in line for delivery (after the cause is fixed). */
  async redriveDeadLetters(): Promise<number> {
    if (!this.hasStorage()) return 0;
    const now = this.now();
    const count = this.transact(() => this.auditQueue().redrive(now));
    if (count > 0) await this.wakeBy(now);
    return count;
  }

  /** The name the object was addressed by (`codes:3`, `user:<id>` …), or its hex id. */
  protected objectName(): string {
    return this.ctx.id.name ?? this.ctx.id.toString();
  }

  /** Answers when the object is up and its storage readable; used by /health. */
  ping(): { ok: true; source: string } {
    this.sql.exec(`SELECT 1`).one();
    return { ok: true, source: this.source };
  }
}
