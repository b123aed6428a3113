import { StatefulObject, type SchemaComponent, type UndeliveredState } from "./base";

/**
 * Which objects hold audit events that are not in D1 yet because delivering them failed — dead letters among them
 * (C4). Dead letters happen exactly when D1 fails, so this list cannot live in D1: it is one Durable Object, told by
 * each object's alarm whenever what its outbox holds changes (base.ts `reportUndelivered`, retried until acknowledged,
 * from the same storage that holds the events). An operator lists and redrives across objects through it
 * (GET /admin/audit/dead-letters); the counts shown are asked of the objects themselves.
 *
 * An entry cleared by its object stays as a tombstone for a day with the report's sequence number, so a late, older
 * report can never bring a cleared object back.
 */

export interface UndeliveredReport extends UndeliveredState {
  /** The object's class, as its `source` in audit events ("token_family" …). */
  source: string;
  /** The name the object was addressed by (`family:<id>`), when the runtime knows it. */
  name: string | null;
  /** The object's id (hex), to address it when it has no name. */
  id: string;
  /** Increases with every report of the object: an older report never overrides a newer one. */
  seq: number;
}

export interface RegisteredObject {
  source: string;
  name: string | null;
  id: string;
  /** Dead letters at the object's last report (the object itself has the live count). */
  deadLettered: number;
  /** Milliseconds since the epoch. */
  reportedAt: number;
}

const TOMBSTONE_MS = 86_400_000;

const TABLES: SchemaComponent = {
  name: "dead_letter_registry",
  migrations: [
    [
      `CREATE TABLE objects (
        source TEXT NOT NULL,
        id TEXT NOT NULL,
        name TEXT,
        undelivered INTEGER NOT NULL,
        dead_lettered INTEGER NOT NULL,
        seq INTEGER NOT NULL,
        reported_at INTEGER NOT NULL,
        PRIMARY KEY (source, id)
      )`,
      `CREATE INDEX objects_listed ON objects (undelivered, reported_at)`,
    ],
  ],
};

export class DeadLetterRegistry extends StatefulObject {
  protected readonly source = "dead_letter_registry";

  protected override schema(): SchemaComponent {
    return TABLES;
  }

  /** It is the registry: it has no audit events of its own to report. */
  protected override reportsUndelivered(): boolean {
    return false;
  }

  /** Records what an object's outbox holds now; an older report than the one recorded changes nothing. */
  async report(report: UndeliveredReport): Promise<void> {
    if (typeof report.source !== "string" || typeof report.id !== "string" || report.id.length > 128 || report.source.length > 64) {
      throw new Error("report: malformed object");
    }
    if (!Number.isSafeInteger(report.seq) || !Number.isSafeInteger(report.deadLettered) || report.deadLettered < 0) throw new Error("report: malformed counts");
    const now = this.now();
    this.transact(() => {
      this.sql.exec(
        `INSERT INTO objects (source, id, name, undelivered, dead_lettered, seq, reported_at) VALUES (?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (source, id) DO UPDATE SET name = excluded.name, undelivered = excluded.undelivered,
           dead_lettered = excluded.dead_lettered, seq = excluded.seq, reported_at = excluded.reported_at
         WHERE excluded.seq > objects.seq`,
        report.source,
        report.id,
        report.name === null ? null : String(report.name).slice(0, 300),
        report.undelivered ? 1 : 0,
        report.deadLettered,
        report.seq,
        now,
      );
    });
    // Cleared entries are tombstones for a day: the alarm removes them.
    if (!report.undelivered) await this.wakeBy(now + TOMBSTONE_MS);
  }

  /** The objects that hold undelivered events, those with dead letters first, then by the time of their report. */
  list(limit = 100, onlyDeadLettered = false): { objects: RegisteredObject[]; total: number; deadLettered: number } {
    if (!this.hasStorage()) return { objects: [], total: 0, deadLettered: 0 };
    const filter = onlyDeadLettered ? `undelivered = 1 AND dead_lettered > 0` : `undelivered = 1`;
    const objects = this.sql
      .exec<{ source: string; name: string | null; id: string; dead_lettered: number; reported_at: number }>(
        `SELECT source, name, id, dead_lettered, reported_at FROM objects WHERE ${filter}
         ORDER BY dead_lettered > 0 DESC, reported_at, source, id LIMIT ?`,
        Math.min(Math.max(Math.floor(limit), 1), 1000),
      )
      .toArray()
      .map((r) => ({ source: r.source, name: r.name, id: r.id, deadLettered: r.dead_lettered, reportedAt: r.reported_at }));
    const totals = this.sql
      .exec<{ total: number; dead: number | null }>(`SELECT COUNT(*) AS total, SUM(dead_lettered) AS dead FROM objects WHERE ${filter}`)
      .one();
    return { objects, total: totals.total, deadLettered: totals.dead ?? 0 };
  }

  protected override purgeExpired(now: number): number {
    return this.sql.exec(`DELETE FROM objects WHERE undelivered = 0 AND reported_at <= ?`, now - TOMBSTONE_MS).rowsWritten;
  }

  protected override nextExpiry(): number | null {
    const oldest = this.sql.exec<{ at: number | null }>(`SELECT MIN(reported_at) AS at FROM objects WHERE undelivered = 0`).one().at;
    return oldest === null ? null : oldest + TOMBSTONE_MS;
  }

  protected override holdsState(): boolean {
    return this.sql.exec(`SELECT 1 FROM objects LIMIT 1`).toArray().length > 0;
  }
}
