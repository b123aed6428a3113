import { base64urlDecode, randomToken, sha256, sha256Base64url, timingSafeEqualBytes } from "../lib/crypto";
import { OPAQUE_ID_PATTERN, isOpaqueId } from "../lib/ids";
import { purgeTime } from "../lib/time";
import { StatefulObject, type SchemaComponent } from "./base";

/**
 * All browser sessions of one user, in one object found by `userSessionsFor(env, userId)`: "sign out everywhere"
 * is one call to one object and one transaction (C18).
 *
 * A session has a public id `sid` (OIDC Front-/Back-Channel Logout `sid`, safe to show relying parties) and a
 * secret that only the browser holds, in the cookie `<userId>.<sid>.<secret>`. The object stores the SHA-256 of
 * the secret and compares digests in constant time (C13).
 */

const SESSION_ID = /^[A-Za-z0-9_-]{16,64}$/;
/** 32 random bytes in base64url. */
const SECRET = /^[A-Za-z0-9_-]{43}$/;
const SESSION_COOKIE = new RegExp(`^(${OPAQUE_ID_PATTERN})\\.([A-Za-z0-9_-]{16,64})\\.([A-Za-z0-9_-]{43})$`);
/** 128 + 64 + 43 + 2 dots: anything longer is not one of ours, and is not run through the regex. */
const MAX_COOKIE_LENGTH = 237;
const MAX_CLIENT_ID = 256;
const MAX_AMR_VALUES = 16;
const MAX_SHORT_TEXT = 256;
/** `touchSession` writes `last_seen_at` at most this often per session. */
const TOUCH_INTERVAL_MS = 60_000;

/** A fresh public session id, usable in `createSession` (128 bits). */
export function newSessionId(): string {
  return randomToken(16);
}

export interface SessionCookie {
  userId: string;
  sid: string;
  secret: string;
}

/** The session cookie value. Throws on parts that are not ours (a programming error, never user input). */
export function formatSessionCookie(userId: string, sid: string, secret: string): string {
  if (!isOpaqueId(userId) || !SESSION_ID.test(sid) || !SECRET.test(secret)) throw new Error("formatSessionCookie: malformed part");
  return `${userId}.${sid}.${secret}`;
}

/** The parts of a session cookie, or null for anything that is not exactly one of ours (hostile input). */
export function parseSessionCookie(value: string): SessionCookie | null {
  if (typeof value !== "string" || value.length > MAX_COOKIE_LENGTH) return null;
  const match = SESSION_COOKIE.exec(value);
  return match ? { userId: match[1]!, sid: match[2]!, secret: match[3]! } : null;
}

export interface SessionInit {
  sid: string;
  userId: string;
  /** Seconds since the epoch (OIDC Core §2 `auth_time`). */
  authTime: number;
  /** OIDC Core §2 `amr` values (RFC 8176). */
  amr: string[];
  acr: string | null;
}

export interface SessionInfo {
  sid: string;
  userId: string;
  /** Seconds since the epoch. */
  authTime: number;
  amr: string[];
  acr: string | null;
  /** Milliseconds since the epoch, as the rest of the times below. */
  createdAt: number;
  lastSeenAt: number;
  /** Absolute end of the session: `createdAt + sessionTtl`, never extended. */
  expiresAt: number;
  /** End of the session if it stays unused: `lastSeenAt + sessionIdleTtl`, capped at `expiresAt`. */
  idleExpiresAt: number;
  /** The clients this session signed in to (for logout). */
  clients: string[];
}

export type CreateSessionResult =
  /** The only time the secret is ever returned. */
  | { created: true; secret: string; session: SessionInfo }
  /** The sid was already used (a retry, a race, or a revoked session): nothing changed. */
  | { created: false };

export interface RevokeSessionResult {
  revoked: boolean;
  /** The clients to notify of the logout; empty unless this call revoked the session. */
  clients: string[];
}

export interface RevokeAllResult {
  count: number;
  sessions: Array<{ sid: string; clients: string[] }>;
}

interface SessionRow {
  sid: string;
  user_id: string;
  secret_hash: string;
  created_at: number;
  auth_time: number;
  amr: string;
  acr: string | null;
  last_seen_at: number;
  expires_at: number;
  idle_expires_at: number;
  revoked_at: number | null;
  revoked_reason: string | null;
  [key: string]: SqlStorageValue;
}

const TABLES: SchemaComponent = {
  name: "sessions",
  migrations: [
    [
      `CREATE TABLE sessions (
        sid TEXT PRIMARY KEY,
        user_id TEXT NOT NULL,
        secret_hash TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        auth_time INTEGER NOT NULL,
        amr TEXT NOT NULL,
        acr TEXT,
        last_seen_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL,
        idle_expires_at INTEGER NOT NULL,
        revoked_at INTEGER,
        revoked_reason TEXT
      )`,
      `CREATE INDEX sessions_expires_at ON sessions (expires_at)`,
      `CREATE INDEX sessions_idle_expires_at ON sessions (idle_expires_at)`,
      `CREATE TABLE session_clients (
        sid TEXT NOT NULL,
        client_id TEXT NOT NULL,
        first_at INTEGER NOT NULL,
        last_at INTEGER NOT NULL,
        PRIMARY KEY (sid, client_id)
      )`,
    ],
  ],
};

/** SQL condition for a session that may still be used at time `?`. */
const ACTIVE = `revoked_at IS NULL AND expires_at > ? AND idle_expires_at > ?`;

function isActive(row: SessionRow, now: number): boolean {
  return row.revoked_at === null && row.expires_at > now && row.idle_expires_at > now;
}

function shortText(text: string): string {
  return String(text).slice(0, 200);
}

export class UserSessions extends StatefulObject {
  protected readonly source = "sessions";

  protected override schema(): SchemaComponent {
    return TABLES;
  }

  /** The user this object was addressed by, when the runtime tells us (`user:<id>`). */
  private addressedUserId(): string | null {
    const name = this.ctx.id.name;
    return name !== undefined && name.startsWith("user:") ? name.slice("user:".length) : null;
  }

  private row(sid: string): SessionRow | undefined {
    return this.sql.exec<SessionRow>(`SELECT * FROM sessions WHERE sid = ?`, sid).toArray()[0];
  }

  private clientsOf(sid: string): string[] {
    return this.sql
      .exec<{ client_id: string }>(`SELECT client_id FROM session_clients WHERE sid = ? ORDER BY first_at, client_id`, sid)
      .toArray()
      .map((r) => r.client_id);
  }

  private toInfo(row: SessionRow): SessionInfo {
    return {
      sid: row.sid,
      userId: row.user_id,
      authTime: row.auth_time,
      amr: JSON.parse(row.amr) as string[],
      acr: row.acr,
      createdAt: row.created_at,
      lastSeenAt: row.last_seen_at,
      expiresAt: row.expires_at,
      idleExpiresAt: row.idle_expires_at,
      clients: this.clientsOf(row.sid),
    };
  }

  /** The row of a usable session whose secret matches, else undefined. Synchronous: usable inside `transact`. */
  private verified(sid: string, secretDigest: Uint8Array, now: number): SessionRow | undefined {
    const row = this.row(sid);
    if (!row) return undefined;
    // C13: digests compared in constant time; the check runs even for a dead session so timing says nothing.
    const matches = timingSafeEqualBytes(base64urlDecode(row.secret_hash), secretDigest);
    return matches && isActive(row, now) ? row : undefined;
  }

  /**
   * Creates the session `sid`, once. The insert is the linearization point: of any number of calls with one sid
   * (a retried magic link, concurrent clicks) exactly one gets the secret, the others `{created: false}` and no
   * change (C12). A sid that was revoked stays taken until its absolute expiry, so it cannot come back.
   */
  async createSession(init: SessionInit): Promise<CreateSessionResult> {
    if (!SESSION_ID.test(init.sid)) throw new Error("createSession: malformed sid");
    if (!isOpaqueId(init.userId)) throw new Error("createSession: malformed userId");
    const addressed = this.addressedUserId();
    if (addressed !== null && addressed !== init.userId) throw new Error("createSession: userId does not name this object");
    if (!Number.isSafeInteger(init.authTime) || init.authTime <= 0) throw new Error("createSession: authTime must be seconds since the epoch");
    if (
      !Array.isArray(init.amr) ||
      init.amr.length > MAX_AMR_VALUES ||
      !init.amr.every((v) => typeof v === "string" && v.length > 0 && v.length <= MAX_SHORT_TEXT)
    ) {
      throw new Error("createSession: amr must be a short array of strings");
    }
    if (init.acr !== null && (typeof init.acr !== "string" || init.acr.length > MAX_SHORT_TEXT)) throw new Error("createSession: malformed acr");

    const secret = randomToken(32);
    const secretHash = await sha256Base64url(secret);
    const now = this.now();
    const expiresAt = now + Math.round(this.config.sessionTtl * 1000);
    const idleExpiresAt = Math.min(now + Math.round(this.config.sessionIdleTtl * 1000), expiresAt);

    const result = this.transact((): CreateSessionResult => {
      const inserted =
        this.sql.exec(
          `INSERT INTO sessions (sid, user_id, secret_hash, created_at, auth_time, amr, acr, last_seen_at, expires_at, idle_expires_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (sid) DO NOTHING`,
          init.sid,
          init.userId,
          secretHash,
          now,
          init.authTime,
          JSON.stringify(init.amr),
          init.acr,
          now,
          expiresAt,
          idleExpiresAt,
        ).rowsWritten > 0;
      if (!inserted) return { created: false };
      this.recordAudit({
        type: "session.created",
        subject: init.userId,
        data: { sid: init.sid, authTime: init.authTime, amr: init.amr, acr: init.acr, expiresAt },
      });
      return { created: true, secret, session: this.toInfo(this.row(init.sid)!) };
    });
    await this.flushAudit();
    if (result.created) await this.wakeBy(purgeTime(idleExpiresAt));
    return result;
  }

  /** The session, when `sid` is known, the secret matches, and it is neither revoked nor expired (absolute or idle). */
  async getSession(sid: string, secret: string): Promise<SessionInfo | null> {
    if (!this.hasStorage()) return null;
    if (typeof sid !== "string" || typeof secret !== "string" || !SESSION_ID.test(sid) || !SECRET.test(secret)) return null;
    const digest = await sha256(secret);
    const row = this.verified(sid, digest, this.now());
    return row ? this.toInfo(row) : null;
  }

  /**
   * As `getSession`, and marks the session as used: the idle expiry slides to `now + sessionIdleTtl`, never past the
   * absolute expiry. Written at most once a minute per session, so busy pages do not turn into a write each.
   */
  async touchSession(sid: string, secret: string): Promise<SessionInfo | null> {
    if (!this.hasStorage()) return null;
    if (typeof sid !== "string" || typeof secret !== "string" || !SESSION_ID.test(sid) || !SECRET.test(secret)) return null;
    const digest = await sha256(secret);
    const now = this.now();
    return this.transact((): SessionInfo | null => {
      const row = this.verified(sid, digest, now);
      if (!row) return null;
      if (now - row.last_seen_at >= TOUCH_INTERVAL_MS) {
        const idleExpiresAt = Math.min(now + Math.round(this.config.sessionIdleTtl * 1000), row.expires_at);
        this.sql.exec(`UPDATE sessions SET last_seen_at = ?, idle_expires_at = ? WHERE sid = ?`, now, idleExpiresAt, sid);
        // The alarm already set for the earlier idle expiry will find nothing to purge and move on to the next.
        return this.toInfo({ ...row, last_seen_at: now, idle_expires_at: idleExpiresAt });
      }
      return this.toInfo(row);
    });
  }

  /**
   * Remembers that the session signed in to `clientId` (for RP-initiated and back-channel logout). Ignored for a
   * session that is not usable. The first sign-in to a client is audited; later ones only move `last_at`.
   */
  async recordClient(sid: string, clientId: string): Promise<void> {
    if (typeof clientId !== "string" || clientId.length === 0 || clientId.length > MAX_CLIENT_ID) throw new Error("recordClient: malformed clientId");
    if (typeof sid !== "string" || !SESSION_ID.test(sid) || !this.hasStorage()) return;
    const now = this.now();
    this.transact(() => {
      const row = this.row(sid);
      if (!row || !isActive(row, now)) return;
      const added =
        this.sql.exec(
          `INSERT INTO session_clients (sid, client_id, first_at, last_at) VALUES (?, ?, ?, ?) ON CONFLICT (sid, client_id) DO NOTHING`,
          sid,
          clientId,
          now,
          now,
        ).rowsWritten > 0;
      if (added) {
        this.recordAudit({ type: "session.client_added", subject: row.user_id, clientId, data: { sid } });
      } else {
        this.sql.exec(`UPDATE session_clients SET last_at = ? WHERE sid = ? AND client_id = ?`, now, sid, clientId);
      }
    });
    await this.flushAudit();
  }

  /** Marks a session revoked. Call inside `transact`, with the audit event. Returns the clients it had signed in to. */
  private markRevoked(row: SessionRow, now: number, reason: string): string[] {
    this.sql.exec(`UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE sid = ?`, now, shortText(reason), row.sid);
    return this.clientsOf(row.sid);
  }

  /**
   * Ends one session (logout). Idempotent: `revoked` says whether this call ended it, and only then are the clients
   * returned, so each logout is propagated once. The revoked row stays until its absolute expiry: the sid cannot be
   * created again while a cookie naming it may exist.
   */
  async revokeSession(sid: string, reason: string): Promise<RevokeSessionResult> {
    if (typeof sid !== "string" || !SESSION_ID.test(sid) || !this.hasStorage()) return { revoked: false, clients: [] };
    const now = this.now();
    const result = this.transact((): RevokeSessionResult => {
      const row = this.row(sid);
      if (!row || !isActive(row, now)) return { revoked: false, clients: [] };
      const clients = this.markRevoked(row, now, reason);
      this.recordAudit({ type: "session.revoked", subject: row.user_id, data: { sid, reason: shortText(reason), clients } });
      return { revoked: true, clients };
    });
    await this.flushAudit();
    return result;
  }

  /** Ends every usable session of the user in one transaction, with one audit event (C18). */
  async revokeAllSessions(reason: string, actor?: string): Promise<RevokeAllResult> {
    const now = this.now();
    const result = this.transact((): RevokeAllResult => {
      const rows = this.sql.exec<SessionRow>(`SELECT * FROM sessions WHERE ${ACTIVE} ORDER BY created_at DESC, sid`, now, now).toArray();
      const sessions = rows.map((row) => ({ sid: row.sid, clients: this.markRevoked(row, now, reason) }));
      this.recordAudit({
        type: "session.revoked_all",
        actor: actor ?? null,
        subject: this.addressedUserId() ?? rows[0]?.user_id ?? null,
        data: { count: sessions.length, sids: sessions.map((s) => s.sid), reason: shortText(reason) },
      });
      return { count: sessions.length, sessions };
    });
    await this.flushAudit();
    return result;
  }

  /** The usable sessions, newest first (account page, admin API). */
  listSessions(): SessionInfo[] {
    if (!this.hasStorage()) return [];
    const now = this.now();
    return this.sql
      .exec<SessionRow>(`SELECT * FROM sessions WHERE ${ACTIVE} ORDER BY created_at DESC, sid`, now, now)
      .toArray()
      .map((row) => this.toInfo(row));
  }

  /**
   * C15: a session goes at its absolute expiry, or at its idle expiry unless revoked; a revoked session stays until
   * its absolute expiry so its sid is never re-created. Its clients go with it.
   */
  protected override purgeExpired(now: number): number {
    const gone = `expires_at <= ? OR (revoked_at IS NULL AND idle_expires_at <= ?)`;
    const clients = this.sql.exec(`DELETE FROM session_clients WHERE sid IN (SELECT sid FROM sessions WHERE ${gone})`, now, now).rowsWritten;
    return clients + this.sql.exec(`DELETE FROM sessions WHERE ${gone}`, now, now).rowsWritten;
  }

  /** No session left, usable or revoked: the user's object can go until their next sign-in (C15). */
  protected override holdsState(): boolean {
    return this.sql.exec(`SELECT 1 FROM sessions LIMIT 1`).toArray().length > 0;
  }

  protected override nextExpiry(): number | null {
    return this.sql
      .exec<{ at: number | null }>(
        `SELECT MIN(CASE WHEN revoked_at IS NULL THEN MIN(expires_at, idle_expires_at) ELSE expires_at END) AS at FROM sessions`,
      )
      .one().at;
  }

  /** Rows held, usable or not (for tests and operations). */
  size(): { sessions: number; clients: number } {
    if (!this.hasStorage()) return { sessions: 0, clients: 0 };
    const count = (table: string) => this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n;
    return { sessions: count("sessions"), clients: count("session_clients") };
  }
}
