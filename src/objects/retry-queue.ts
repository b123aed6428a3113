import { log, type LogFields } from "../lib/log";

/**
 * The one way an object hands something to the outside world and never loses it: a row in a table of the object's
 * own storage (written in the same transaction as the change it is about), delivered by the object's alarm, retried
 * with exponential backoff, and after a bounded number of attempts kept as a dead letter — counted, reported by one
 * structured log line, listed and redriven on request. The audit outbox (C4) and the back-channel logout notices of
 * UserSessions (C21) are two such queues; each table starts with its id and payload and ends with `RETRY_COLUMNS`.
 */

/** Backoff: the delay after the n-th failed attempt is `base · 2^(n-1)` seconds, capped at `max`; `maxAttempts` failures make a dead letter. */
export interface RetryPolicy {
  baseSeconds: number;
  maxSeconds: number;
  maxAttempts: number;
}

/** Milliseconds to wait after `attempts` failed attempts. */
export function retryDelayMs(attempts: number, policy: RetryPolicy): number {
  return Math.min(policy.baseSeconds * 2 ** Math.max(attempts - 1, 0), policy.maxSeconds) * 1000;
}

/** The columns every queue table ends with. */
export const RETRY_COLUMNS = `attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        dead_lettered_at INTEGER,
        last_error TEXT`;

export interface QueueStatus {
  pending: number;
  deadLettered: number;
  /** When the oldest pending entry was made (ms), or null. */
  oldestPendingAt: number | null;
}

export interface QueueSpec {
  table: string;
  /** The primary key column. */
  id: string;
  /** SQL for when an entry was made (ms): a column, or an expression over the payload. */
  createdAt: string;
  /** Names the queue in log lines: `<name>.delivery_failed`, `<name>.dead_letter`, metric `<name>_dead_letter_total`. */
  name: string;
}

export interface RetryState {
  attempts: number;
  next_attempt_at: number;
  dead_lettered_at: number | null;
  last_error: string | null;
}

export interface Failure {
  id: string;
  /** Attempts made before this one. */
  attempts: number;
  error: string;
}

/** A queue over one table of an object's SQLite storage. Synchronous: every method can run inside `transact`. */
export class RetryQueue {
  constructor(
    private readonly sql: SqlStorage,
    private readonly spec: QueueSpec,
  ) {}

  /** Entries due for an attempt at `now`, oldest due first: their id column, `attempts`, and the `columns` asked for. */
  due<T extends Record<string, SqlStorageValue>>(now: number, limit: number, columns: string): Array<T & { attempts: number }> {
    const { table, id } = this.spec;
    return this.sql
      .exec<T & { attempts: number }>(
        `SELECT ${id}, attempts, ${columns} FROM ${table}
         WHERE dead_lettered_at IS NULL AND next_attempt_at <= ? ORDER BY next_attempt_at LIMIT ?`,
        now,
        limit,
      )
      .toArray();
  }

  /** Delivered (or no longer needed): the entry goes. */
  remove(ids: string[]): void {
    for (const entry of ids) this.sql.exec(`DELETE FROM ${this.spec.table} WHERE ${this.spec.id} = ?`, entry);
  }

  /**
   * Records failed attempts: each entry backs off, or becomes a dead letter once it has failed `maxAttempts` times.
   * Returns the ids that became dead letters.
   */
  failed(failures: Failure[], now: number, policy: RetryPolicy): string[] {
    const { table, id } = this.spec;
    const dead: string[] = [];
    for (const failure of failures) {
      const attempts = failure.attempts + 1;
      if (attempts >= policy.maxAttempts) {
        dead.push(failure.id);
        this.sql.exec(
          `UPDATE ${table} SET attempts = ?, dead_lettered_at = ?, last_error = ? WHERE ${id} = ?`,
          attempts,
          now,
          failure.error,
          failure.id,
        );
      } else {
        this.sql.exec(
          `UPDATE ${table} SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE ${id} = ?`,
          attempts,
          now + retryDelayMs(attempts, policy),
          failure.error,
          failure.id,
        );
      }
    }
    return dead;
  }

  /**
   * The log lines of a failed delivery run: a warning, and — when entries gave up — the alert, one error line with the
   * queue's running dead-letter total that operators match on (`metric` is a field of the line, not an exported metric).
   */
  report(fields: LogFields & { source: string; object: string }, deadLettered: number): void {
    log("warn", `${this.spec.name}.delivery_failed`, fields);
    if (deadLettered > 0) {
      log("error", `${this.spec.name}.dead_letter`, {
        metric: `${this.spec.name}_dead_letter_total`,
        source: fields.source,
        object: fields.object,
        count: deadLettered,
        total: this.status().deadLettered,
      });
    }
  }

  status(): QueueStatus {
    const row = this.sql
      .exec<{ pending: number; dead: number; oldest: number | null }>(
        `SELECT COUNT(*) FILTER (WHERE dead_lettered_at IS NULL) AS pending,
                COUNT(*) FILTER (WHERE dead_lettered_at IS NOT NULL) AS dead,
                MIN(CASE WHEN dead_lettered_at IS NULL THEN ${this.spec.createdAt} END) AS oldest
         FROM ${this.spec.table}`,
      )
      .one();
    return { pending: row.pending, deadLettered: row.dead, oldestPendingAt: row.oldest };
  }

  /** Entries with their retry state, dead letters only or all, oldest first (at most 1000). */
  list<T extends Record<string, SqlStorageValue>>(columns: string, options: { deadOnly: boolean; limit: number }): Array<T & RetryState> {
    const where = options.deadOnly ? "WHERE dead_lettered_at IS NOT NULL" : "";
    const order = options.deadOnly ? "dead_lettered_at" : `${this.spec.createdAt}`;
    return this.sql
      .exec<T & RetryState>(
        `SELECT ${this.spec.id}, ${columns}, attempts, next_attempt_at, dead_lettered_at, last_error FROM ${this.spec.table}
         ${where} ORDER BY ${order}, ${this.spec.id} LIMIT ?`,
        Math.min(Math.max(Math.floor(options.limit), 1), 1000),
      )
      .toArray();
  }

  /** Puts every dead letter back in line (attempts reset, due at `now`); returns how many. */
  redrive(now: number): number {
    const { n } = this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${this.spec.table} WHERE dead_lettered_at IS NOT NULL`).one();
    this.sql.exec(`UPDATE ${this.spec.table} SET dead_lettered_at = NULL, attempts = 0, next_attempt_at = ? WHERE dead_lettered_at IS NOT NULL`, now);
    return n;
  }

  /** When the next pending entry is due, or null when none is pending. */
  nextAttemptAt(): number | null {
    return this.sql.exec<{ at: number | null }>(`SELECT MIN(next_attempt_at) AS at FROM ${this.spec.table} WHERE dead_lettered_at IS NULL`).one().at;
  }

  /** Whether anything is left, pending or dead-lettered. */
  holdsEntries(): boolean {
    return this.sql.exec(`SELECT 1 FROM ${this.spec.table} LIMIT 1`).toArray().length > 0;
  }
}
