import { purgeTime } from "../lib/time";
import { StatefulObject, type SchemaComponent } from "./base";

/** The answer to one hit. Times: `resetAt` in ms since the epoch, `retryAfter` in whole seconds (≥ 1, for Retry-After). */
export interface RateLimitResult {
  allowed: boolean;
  limit: number;
  remaining: number;
  resetAt: number;
  retryAfter: number;
}

export interface RateLimitUsage {
  windowStart: number;
  resetAt: number;
  count: number;
  /** Window rows of this key held in storage, current and not yet purged (C15). */
  windowsHeld: number;
}

const WINDOWS: SchemaComponent = {
  name: "rate_limit_windows",
  migrations: [
    [
      `CREATE TABLE windows (
        window_seconds INTEGER NOT NULL,
        window_start INTEGER NOT NULL,
        count INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        PRIMARY KEY (window_seconds, window_start)
      )`,
      `CREATE INDEX windows_expires_at ON windows (expires_at)`,
    ],
    // One object holds many keys (rateLimiterFor shards keys over a fixed number of objects, C15). Rows from before
    // stay, under the empty key that nothing asks for, until the alarm purges them with their window.
    [
      "CREATE TABLE windows_by_key (key TEXT NOT NULL, window_seconds INTEGER NOT NULL, window_start INTEGER NOT NULL, " +
        "count INTEGER NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (key, window_seconds, window_start))",
      "INSERT INTO windows_by_key SELECT '', window_seconds, window_start, count, expires_at FROM windows",
      `DROP TABLE windows`,
      `ALTER TABLE windows_by_key RENAME TO windows`,
      `CREATE INDEX windows_expires_at ON windows (expires_at)`,
    ],
  ],
};

function assertKey(key: string): void {
  if (typeof key !== "string" || key.length === 0 || key.length > MAX_KEY_LENGTH) throw new RangeError(`key must be 1 to ${MAX_KEY_LENGTH} characters`);
}

function assertCount(name: string, value: number, min: number): void {
  if (!Number.isSafeInteger(value) || value < min) throw new RangeError(`${name} must be an integer ≥ ${min}`);
}

/** Keys are made by the OP from bounded parts (an address bucket, a hash, a client id); anything longer is a bug. */
const MAX_KEY_LENGTH = 512;

/**
 * Fixed-window counters for the rate-limit keys of one shard (`rateLimiterFor` finds a key's shard). Windows are
 * aligned to floor(now / window). The read-increment-write is one synchronous transaction, so counts are exact under any
 * concurrency (C6), and they are in storage, so a restart does not reset them (C2).
 */
export class RateLimiter extends StatefulObject {
  protected readonly source = "rate_limiter";

  protected override schema(): SchemaComponent {
    return WINDOWS;
  }

  /**
   * Counts `cost` against `limit` in the current window of `key`. A denied hit does not consume capacity; it is counted
   * in one `rate_limit.denied` audit event per key and window, delivered when the window ends (the metrics read it). A
   * `cost` of 0 asks whether one more hit would pass, counting nothing (for limits that count only failures, checked
   * before the attempt).
   */
  async hit(key: string, limit: number, windowSeconds: number, cost = 1): Promise<RateLimitResult> {
    assertKey(key);
    assertCount("limit", limit, 0);
    assertCount("windowSeconds", windowSeconds, 1);
    assertCount("cost", cost, 0);
    const now = this.now();
    const windowMs = windowSeconds * 1000;
    const windowStart = Math.floor(now / windowMs) * windowMs;
    const resetAt = windowStart + windowMs;
    const { allowed, used, created } = this.transact(() => {
      const row = this.sql
        .exec<{ count: number }>(`SELECT count FROM windows WHERE key = ? AND window_seconds = ? AND window_start = ?`, key, windowSeconds, windowStart)
        .toArray()[0];
      const before = row?.count ?? 0;
      if (before + Math.max(cost, 1) > limit) {
        this.countAudit({ type: "rate_limit.denied", data: { key, limit, windowSeconds, windowStart } }, `${key}:${windowSeconds}:${windowStart}`, resetAt);
        return { allowed: false, used: before, created: false };
      }
      if (cost === 0) return { allowed: true, used: before, created: false };
      this.sql.exec(
        `INSERT INTO windows (key, window_seconds, window_start, count, expires_at) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (key, window_seconds, window_start) DO UPDATE SET count = count + excluded.count`,
        key,
        windowSeconds,
        windowStart,
        cost,
        resetAt,
      );
      return { allowed: true, used: before + cost, created: row === undefined };
    });
    // A new window row will need purging once it is over; a denial's event is delivered when the window ends.
    if (created) await this.wakeBy(purgeTime(resetAt));
    if (!allowed) await this.wakeBy(resetAt);
    return {
      allowed,
      limit,
      remaining: Math.max(0, limit - used),
      resetAt,
      retryAfter: Math.max(1, Math.ceil((resetAt - now) / 1000)),
    };
  }

  /** The count of `key` in the current window of `windowSeconds`, without counting anything (tests and operations). */
  peekUsage(key: string, windowSeconds: number): RateLimitUsage {
    assertKey(key);
    assertCount("windowSeconds", windowSeconds, 1);
    const windowMs = windowSeconds * 1000;
    const windowStart = Math.floor(this.now() / windowMs) * windowMs;
    if (!this.hasStorage()) return { windowStart, resetAt: windowStart + windowMs, count: 0, windowsHeld: 0 };
    const row = this.sql
      .exec<{ count: number }>(`SELECT count FROM windows WHERE key = ? AND window_seconds = ? AND window_start = ?`, key, windowSeconds, windowStart)
      .toArray()[0];
    const held = this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM windows WHERE key = ?`, key).one().n;
    return { windowStart, resetAt: windowStart + windowMs, count: row?.count ?? 0, windowsHeld: held };
  }

  /** Every window of every key has passed: nothing to count against any more, the shard's object can go (C15). */
  protected override holdsState(): boolean {
    return this.sql.exec(`SELECT 1 FROM windows LIMIT 1`).toArray().length > 0;
  }

  /** Windows that are over go (C15). */
  protected override purgeExpired(now: number): number {
    return this.sql.exec(`DELETE FROM windows WHERE expires_at <= ?`, now).rowsWritten;
  }

  protected override nextExpiry(): number | null {
    return this.sql.exec<{ at: number | null }>(`SELECT MIN(expires_at) AS at FROM windows`).one().at;
  }
}
