import type { AuditData } from "../db/audit";
import { purgeTime } from "../lib/time";
import { StatefulObject, type SchemaComponent } from "./base";

/** What `consume` found. A consumed value is a tombstone until it would have expired, so a replay is known as a replay. */
export type ConsumeResult<T, O> =
  | { status: "ok"; value: T; expiresAt: number }
  | { status: "consumed"; value: T; consumedAt: number; outcome: O | null }
  | { status: "rejected"; reason: string }
  | { status: "expired" }
  | { status: "unknown" };

export type PeekResult<T, O> =
  | { status: "active"; value: T; expiresAt: number }
  | { status: "consumed"; value: T; consumedAt: number; outcome: O | null }
  | { status: "expired" }
  | { status: "unknown" };

interface EntryRow {
  value: string;
  expires_at: number;
  consumed_at: number | null;
  outcome: string | null;
  [key: string]: SqlStorageValue;
}

const ENTRIES: SchemaComponent = {
  name: "single_use_entries",
  migrations: [
    [
      `CREATE TABLE entries (
        id TEXT PRIMARY KEY,
        value TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        consumed_at INTEGER,
        outcome TEXT
      )`,
      `CREATE INDEX entries_expires_at ON entries (expires_at)`,
    ],
  ],
};

/**
 * The one implementation of a value that may be used once: store, atomic consume, peek, expiry.
 *
 * `consume` reads, checks and marks the entry in a single synchronous SQLite transaction, so of any number of
 * concurrent consumers exactly one gets `ok` (C1, C9, C10, C11). Subclasses bind the check to their protocol:
 * `prepare` does the asynchronous part (hashing a PKCE verifier) before the transaction, `verify` the
 * synchronous comparison inside it. A failed check changes nothing, so a bad request cannot burn a value.
 *
 * `outcome` is what the caller is about to produce from the value (a grant id, a session id); it is stored with the
 * tombstone in the same step, so a later replay can find and revoke it (RFC 6749 §4.1.2) or finish it (C12).
 */
export abstract class SingleUseResourceStore<T, E = void, P = E, O = unknown> extends StatefulObject {
  protected override schema(): SchemaComponent {
    return ENTRIES;
  }

  /** Whether replays are audited (auth codes, links); DPoP jti replays are ordinary rejections. */
  protected readonly auditReplays: boolean = true;

  /** What a successful consume records in the audit log, in the same transaction (`<source>.redeemed`); null: nothing. */
  protected redeemedEvent(_value: T, _outcome: O | undefined): AuditData | null {
    return null;
  }

  /** Async preparation of the expectation, outside the transaction (hashing). */
  protected async prepare(expectation: E): Promise<P> {
    return expectation as unknown as P;
  }

  /** Synchronous check inside the transaction: null when the value may be consumed, else why not. */
  protected verify(_value: T, _prepared: P): string | null {
    return null;
  }

  /** Stores a value under a fresh id. Returns false, changing nothing, when the id is already taken. */
  async put(id: string, value: T, ttlSeconds: number): Promise<{ stored: boolean; expiresAt: number }> {
    const now = this.now();
    const expiresAt = now + Math.max(1, Math.round(ttlSeconds * 1000));
    const stored = this.transact(
      () =>
        this.sql.exec(
          `INSERT INTO entries (id, value, created_at, expires_at) VALUES (?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
          id,
          JSON.stringify(value),
          now,
          expiresAt,
        ).rowsWritten > 0,
    );
    if (stored) await this.wakeBy(purgeTime(expiresAt));
    return { stored, expiresAt };
  }

  async consume(id: string, expectation: E, outcome?: O): Promise<ConsumeResult<T, O>> {
    if (!this.hasStorage()) return { status: "unknown" };
    const prepared = await this.prepare(expectation);
    const now = this.now();
    const result = this.transact((): ConsumeResult<T, O> => {
      const row = this.sql.exec<EntryRow>(`SELECT value, expires_at, consumed_at, outcome FROM entries WHERE id = ?`, id).toArray()[0];
      if (!row) return { status: "unknown" };
      const value = JSON.parse(row.value) as T;
      if (row.consumed_at !== null) {
        const consumed: ConsumeResult<T, O> = {
          status: "consumed",
          value,
          consumedAt: row.consumed_at,
          outcome: row.outcome === null ? null : (JSON.parse(row.outcome) as O),
        };
        if (this.auditReplays) this.recordAudit({ type: `${this.source}.replayed`, data: { consumedAt: row.consumed_at }, ...this.describe(value) });
        return consumed;
      }
      if (row.expires_at <= now) return { status: "expired" };
      const reason = this.verify(value, prepared);
      if (reason !== null) return { status: "rejected", reason };
      this.sql.exec(
        `UPDATE entries SET consumed_at = ?, outcome = ? WHERE id = ?`,
        now,
        outcome === undefined ? null : JSON.stringify(outcome),
        id,
      );
      const redeemed = this.redeemedEvent(value, outcome);
      if (redeemed !== null) this.recordAudit({ type: `${this.source}.redeemed`, data: redeemed, ...this.describe(value) });
      return { status: "ok", value, expiresAt: row.expires_at };
    });
    await this.flushAudit();
    return result;
  }

  peek(id: string): PeekResult<T, O> {
    if (!this.hasStorage()) return { status: "unknown" };
    const row = this.sql.exec<EntryRow>(`SELECT value, expires_at, consumed_at, outcome FROM entries WHERE id = ?`, id).toArray()[0];
    if (!row) return { status: "unknown" };
    const value = JSON.parse(row.value) as T;
    if (row.consumed_at !== null) {
      return { status: "consumed", value, consumedAt: row.consumed_at, outcome: row.outcome === null ? null : (JSON.parse(row.outcome) as O) };
    }
    if (row.expires_at <= this.now()) return { status: "expired" };
    return { status: "active", value, expiresAt: row.expires_at };
  }

  /** Audit fields for a value (subject, client) — subclasses say what identifies theirs. */
  protected describe(_value: T): { subject?: string | null; clientId?: string | null } {
    return {};
  }

  /** Expired entries and tombstones both go once the original lifetime is over (C15). */
  protected override purgeExpired(now: number): number {
    return this.sql.exec(`DELETE FROM entries WHERE expires_at <= ?`, now).rowsWritten;
  }

  protected override nextExpiry(): number | null {
    return this.sql.exec<{ at: number | null }>(`SELECT MIN(expires_at) AS at FROM entries`).one().at;
  }

  /** Nothing live and no tombstone left: the shard's storage can go (C15). */
  protected override holdsState(): boolean {
    return this.sql.exec(`SELECT 1 FROM entries LIMIT 1`).toArray().length > 0;
  }

  /** Rows currently held, live and tombstoned (for tests and operations). */
  size(): number {
    if (!this.hasStorage()) return 0;
    return this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM entries`).one().n;
  }
}
