import { base64urlDecode, randomToken, sha256, sha256Base64url, timingSafeEqualBytes } from "../lib/crypto";
import { OPAQUE_ID_PATTERN, isOpaqueId } from "../lib/ids";
import { purgeTime } from "../lib/time";
import { StatefulObject, type SchemaComponent } from "./base";
import { deliverLogoutNotice, type LogoutDelivery } from "./logout-delivery";
import { RetryQueue, type Failure } from "./retry-queue";

/**
 * All browser sessions of one user, in one object found by `userSessionsFor(env, userId)`: "sign out everywhere"
 * is one call to one object and one transaction (C18).
 *
 * A session has a public id `sid` (OIDC Front-/Back-Channel Logout `sid`, safe to show relying parties) and a
 * secret that only the browser holds, in the cookie `<userId>.<sid>.<secret>`. The object stores the SHA-256 of
 * the secret and compares digests in constant time (C13).
 *
 * Ending a session tells every client it signed in to (OIDC Back-Channel Logout 1.0, C21): one logout notice per
 * client is written in the same transaction that ends the session, and the alarm delivers it — a Logout Token POSTed
 * to the client's back-channel logout URI — with a timeout, backoff, a bounded number of attempts and then a dead
 * letter that stays here, listed and redriven through the admin API. Notices keep the object alive until delivered.
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
const MAX_ISSUER = 2048;
/** Logout notices delivered concurrently per alarm run; more are taken by the next run, at once. */
const NOTICES_PER_RUN = 20;
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
  /** Each ended session with the clients it had signed in to: each of them got one logout notice. */
  sessions: Array<{ sid: string; clients: string[] }>;
  /** Logout notices queued (one per session and client). */
  notices: number;
  /** Grants recorded through these sessions that were still live and made before `grantsEndedAt` (0 without it). */
  grants: number;
}

/** What a client's sign-in through a session adds (recordClient). */
export interface RecordClientFacts {
  /** The issuer the client got its tokens from: its Logout Tokens carry the same `iss`. */
  issuer?: string;
  /** The grant the client just redeemed through the session: revoke-all counts the grants it ends. */
  grant?: { id: string; createdAt: number; expiresAt: number };
}

/** A logout notice as operators see it (admin API). Times in ms. */
export interface LogoutNoticeInfo {
  noticeId: string;
  sid: string;
  clientId: string;
  reason: string;
  createdAt: number;
  attempts: number;
  nextAttemptAt: number;
  deadLetteredAt: number | null;
  lastError: string | null;
}

export interface LogoutNoticeList {
  pending: number;
  deadLettered: number;
  notices: LogoutNoticeInfo[];
}

interface NoticeRow {
  notice_id: string;
  sid: string;
  user_id: string;
  client_id: string;
  issuer: string | null;
  reason: string;
  created_at: number;
  [key: string]: SqlStorageValue;
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
    // C21: the logout notices (a retry queue, see retry-queue.ts) and the issuer each client knows us by; the grants
    // made through the sessions, so that revoke-all can say how many it ended.
    [
      `ALTER TABLE session_clients ADD COLUMN issuer TEXT`,
      `CREATE TABLE logout_notices (
        notice_id TEXT PRIMARY KEY,
        sid TEXT NOT NULL,
        user_id TEXT NOT NULL,
        client_id TEXT NOT NULL,
        issuer TEXT,
        reason TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at INTEGER NOT NULL,
        dead_lettered_at INTEGER,
        last_error TEXT
      )`,
      `CREATE INDEX logout_notices_next ON logout_notices (dead_lettered_at, next_attempt_at)`,
      `CREATE TABLE session_grants (
        grant_id TEXT PRIMARY KEY,
        client_id TEXT NOT NULL,
        sid TEXT,
        created_at INTEGER NOT NULL,
        expires_at INTEGER NOT NULL
      )`,
      `CREATE INDEX session_grants_expires_at ON session_grants (expires_at)`,
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
   * Remembers that the session signed in to `clientId` (for RP-initiated and back-channel logout), with the issuer the
   * client knows us by, and the grant it redeemed (for revoke-all's count). The first sign-in to a client is audited;
   * later ones only move `last_at`. A session that already ended when its client is learned of (a code issued just
   * before the logout and redeemed after it) queues that client's logout notice now (C21); an expired or unknown
   * session takes nothing. The grant is kept whatever the session's state, until the grant's own end.
   */
  async recordClient(sid: string, clientId: string, facts: RecordClientFacts = {}): Promise<void> {
    if (typeof clientId !== "string" || clientId.length === 0 || clientId.length > MAX_CLIENT_ID) throw new Error("recordClient: malformed clientId");
    const issuer = facts.issuer ?? null;
    if (issuer !== null && (typeof issuer !== "string" || issuer.length > MAX_ISSUER || !/^https?:\/\/[^\s]+$/.test(issuer))) {
      throw new Error("recordClient: malformed issuer");
    }
    const grant = facts.grant ?? null;
    if (grant !== null && (!isOpaqueId(grant.id) || !Number.isSafeInteger(grant.createdAt) || !Number.isSafeInteger(grant.expiresAt))) {
      throw new Error("recordClient: malformed grant");
    }
    if (typeof sid !== "string" || !SESSION_ID.test(sid)) return;
    const now = this.now();
    const keepsGrant = grant !== null && grant.expiresAt > now;
    if (!this.hasStorage() && !keepsGrant) return;
    this.transact(() => {
      if (keepsGrant) {
        this.sql.exec(
          `INSERT INTO session_grants (grant_id, client_id, sid, created_at, expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (grant_id) DO NOTHING`,
          grant.id,
          clientId,
          sid,
          grant.createdAt,
          grant.expiresAt,
        );
      }
      const row = this.row(sid);
      const ended = row !== undefined && row.revoked_at !== null && row.expires_at > now;
      if (!row || (!isActive(row, now) && !ended)) return;
      const added =
        this.sql.exec(
          `INSERT INTO session_clients (sid, client_id, first_at, last_at, issuer) VALUES (?, ?, ?, ?, ?) ON CONFLICT (sid, client_id) DO NOTHING`,
          sid,
          clientId,
          now,
          now,
          issuer,
        ).rowsWritten > 0;
      if (added && ended) {
        this.queueNotice(row, clientId, issuer, row.revoked_reason ?? "logout", now);
        this.recordAudit({ type: "session.client_added_after_end", subject: row.user_id, clientId, data: { sid, notices: 1 } });
      } else if (added) {
        this.recordAudit({ type: "session.client_added", subject: row.user_id, clientId, data: { sid } });
      } else {
        this.sql.exec(
          `UPDATE session_clients SET last_at = ?, issuer = COALESCE(?, issuer) WHERE sid = ? AND client_id = ?`,
          now,
          issuer,
          sid,
          clientId,
        );
      }
    });
    await this.flushAudit();
    if (keepsGrant) await this.wakeBy(purgeTime(grant.expiresAt));
  }

  /** A logout notice for `clientId` about the session `row`. Call inside `transact`; the alarm delivers it. */
  private queueNotice(row: SessionRow, clientId: string, issuer: string | null, reason: string, now: number): void {
    this.sql.exec(
      `INSERT INTO logout_notices (notice_id, sid, user_id, client_id, issuer, reason, created_at, attempts, next_attempt_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, 0, ?)`,
      crypto.randomUUID(),
      row.sid,
      row.user_id,
      clientId,
      issuer,
      shortText(reason),
      now,
      now,
    );
  }

  /**
   * Marks a session revoked and queues one logout notice per client it signed in to, in the caller's transaction (C21).
   * Call inside `transact`, with the audit event. Returns the clients.
   */
  private markRevoked(row: SessionRow, now: number, reason: string): string[] {
    this.sql.exec(`UPDATE sessions SET revoked_at = ?, revoked_reason = ? WHERE sid = ?`, now, shortText(reason), row.sid);
    const clients = this.sql
      .exec<{ client_id: string; issuer: string | null }>(`SELECT client_id, issuer FROM session_clients WHERE sid = ? ORDER BY first_at, client_id`, row.sid)
      .toArray();
    for (const client of clients) this.queueNotice(row, client.client_id, client.issuer, reason, now);
    return clients.map((c) => c.client_id);
  }

  /**
   * Ends one session (logout). Idempotent: `revoked` says whether this call ended it, and only then are the clients
   * returned and their logout notices queued, so each logout is propagated once. The revoked row stays until its absolute expiry: the sid cannot be
   * created again while a cookie naming it may exist.
   */
  async revokeSession(sid: string, reason: string): Promise<RevokeSessionResult> {
    if (typeof sid !== "string" || !SESSION_ID.test(sid) || !this.hasStorage()) return { revoked: false, clients: [] };
    const now = this.now();
    const result = this.transact((): RevokeSessionResult => {
      const row = this.row(sid);
      if (!row || !isActive(row, now)) return { revoked: false, clients: [] };
      const clients = this.markRevoked(row, now, reason);
      this.recordAudit({ type: "session.revoked", subject: row.user_id, data: { sid, reason: shortText(reason), clients, notices: clients.length } });
      return { revoked: true, clients };
    });
    await this.flushAudit();
    return result;
  }

  /**
   * Ends every usable session of the user in one transaction, with one audit event (C18), and queues the logout notices
   * of each (C21) — whoever calls it (revoke-all, sign out everywhere, a disabled or deleted user). `grantsEndedAt`
   * (ms): the caller ended the user's grants made until then (C22, grant_revocations in D1); the grants recorded here
   * that it ended are counted and forgotten.
   */
  async revokeAllSessions(reason: string, actor?: string, options: { grantsEndedAt?: number } = {}): Promise<RevokeAllResult> {
    const now = this.now();
    const endedAt = options.grantsEndedAt;
    if (endedAt !== undefined && !Number.isSafeInteger(endedAt)) throw new Error("revokeAllSessions: grantsEndedAt must be ms since the epoch");
    const result = this.transact((): RevokeAllResult => {
      const rows = this.sql.exec<SessionRow>(`SELECT * FROM sessions WHERE ${ACTIVE} ORDER BY created_at DESC, sid`, now, now).toArray();
      const sessions = rows.map((row) => ({ sid: row.sid, clients: this.markRevoked(row, now, reason) }));
      const notices = sessions.reduce((n, s) => n + s.clients.length, 0);
      let grants = 0;
      if (endedAt !== undefined) {
        const ended = `created_at <= ? AND expires_at > ?`;
        grants = this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM session_grants WHERE ${ended}`, endedAt, now).one().n;
        this.sql.exec(`DELETE FROM session_grants WHERE ${ended}`, endedAt, now);
      }
      this.recordAudit({
        type: "session.revoked_all",
        actor: actor ?? null,
        subject: this.addressedUserId() ?? rows[0]?.user_id ?? null,
        data: { count: sessions.length, sids: sessions.map((s) => s.sid), reason: shortText(reason), notices, grants },
      });
      return { count: sessions.length, sessions, notices, grants };
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
   * The usable session `sid`, without its secret: for a caller that already holds other proof of it (a one-time session
   * token, C8). Null when unknown, revoked or expired.
   */
  activeSession(sid: string): SessionInfo | null {
    if (!this.hasStorage() || typeof sid !== "string" || !SESSION_ID.test(sid)) return null;
    const row = this.row(sid);
    return row && isActive(row, this.now()) ? this.toInfo(row) : null;
  }

  // ── Logout notices (C21) ─────────────────────────────────────────────────────

  /** The logout notices as a retry queue. Built on demand: the base constructor asks for it before fields exist. */
  private notices(): RetryQueue {
    return new RetryQueue(this.sql, { table: "logout_notices", id: "notice_id", createdAt: "created_at", name: "logout" });
  }

  protected override nextDeliveryAt(): number | null {
    return this.notices().nextAttemptAt();
  }

  /**
   * The alarm's delivery of due notices: concurrently, each POST with its own timeout (logout-delivery.ts). Each
   * outcome is written with its audit event in one transaction: delivered or skipped (the client is gone or has no
   * URI now) → the notice goes; failed → it backs off, and after `backchannelLogoutMaxAttempts` is a dead letter,
   * counted and reported by one `logout.dead_letter` line.
   */
  protected override async deliverQueued(): Promise<void> {
    const queue = this.notices();
    const due = queue.due<NoticeRow>(this.now(), NOTICES_PER_RUN, "sid, user_id, client_id, issuer, reason, created_at");
    if (due.length === 0) return;
    const outcomes: LogoutDelivery[] = await Promise.all(
      due.map((n) => deliverLogoutNotice(this.env, this.config, { clientId: n.client_id, userId: n.user_id, sid: n.sid, issuer: n.issuer })),
    );
    const now = this.now();
    const failures: Failure[] = [];
    const dead = this.transact(() => {
      due.forEach((notice, i) => {
        const outcome = outcomes[i]!;
        const about = { subject: notice.user_id, clientId: notice.client_id };
        if (outcome.status === "delivered") {
          queue.remove([notice.notice_id]);
          this.recordAudit({ ...about, type: "logout_notice.delivered", data: { sid: notice.sid, attempts: notice.attempts + 1, http_status: outcome.httpStatus } });
        } else if (outcome.status === "skipped") {
          queue.remove([notice.notice_id]);
          this.recordAudit({ ...about, type: "logout_notice.skipped", data: { sid: notice.sid, reason: outcome.reason } });
        } else {
          failures.push({ id: notice.notice_id, attempts: notice.attempts, error: outcome.error });
        }
      });
      const { backchannelLogoutRetryBase, backchannelLogoutRetryMax, backchannelLogoutMaxAttempts } = this.config;
      const deadIds = queue.failed(failures, now, {
        baseSeconds: backchannelLogoutRetryBase,
        maxSeconds: backchannelLogoutRetryMax,
        maxAttempts: backchannelLogoutMaxAttempts,
      });
      for (const failure of failures) {
        const notice = due.find((n) => n.notice_id === failure.id)!;
        const deadLettered = deadIds.includes(failure.id);
        this.recordAudit({
          subject: notice.user_id,
          clientId: notice.client_id,
          type: deadLettered ? "logout_notice.dead_lettered" : "logout_notice.delivery_failed",
          data: { sid: notice.sid, attempt: failure.attempts + 1, error: failure.error },
        });
      }
      return deadIds;
    });
    if (failures.length > 0) {
      queue.report({ source: this.source, object: this.objectName(), notices: failures.length, error: failures[0]!.error }, dead.length);
    }
  }

  /** Pending and dead-lettered logout notices (admin API), oldest first; `deadOnly` lists only the dead letters. */
  logoutNotices(options: { deadOnly?: boolean; limit?: number } = {}): LogoutNoticeList {
    if (!this.hasStorage()) return { pending: 0, deadLettered: 0, notices: [] };
    const queue = this.notices();
    const { pending, deadLettered } = queue.status();
    const notices = queue
      .list<NoticeRow>("sid, user_id, client_id, issuer, reason, created_at", { deadOnly: options.deadOnly ?? false, limit: options.limit ?? 100 })
      .map((n) => ({
        noticeId: n.notice_id,
        sid: n.sid,
        clientId: n.client_id,
        reason: n.reason,
        createdAt: n.created_at,
        attempts: n.attempts,
        nextAttemptAt: n.next_attempt_at,
        deadLetteredAt: n.dead_lettered_at,
        lastError: n.last_error,
      }));
    return { pending, deadLettered, notices };
  }

  /** Puts the dead-lettered logout notices back in line (after the RP is fixed), audited; returns how many. */
  async redriveLogoutNotices(actor: string | null = null): Promise<number> {
    if (!this.hasStorage()) return 0;
    const now = this.now();
    const count = this.transact(() => {
      const n = this.notices().redrive(now);
      if (n > 0) this.recordAudit({ type: "logout_notice.redriven", actor, subject: this.addressedUserId(), data: { count: n } });
      return n;
    });
    await this.flushAudit();
    if (count > 0) await this.wakeBy(now);
    return count;
  }

  /**
   * C15: a session goes at its absolute expiry, or at its idle expiry unless revoked; a revoked session stays until
   * its absolute expiry so its sid is never re-created. Its clients go with it.
   */
  protected override purgeExpired(now: number): number {
    const gone = `expires_at <= ? OR (revoked_at IS NULL AND idle_expires_at <= ?)`;
    const clients = this.sql.exec(`DELETE FROM session_clients WHERE sid IN (SELECT sid FROM sessions WHERE ${gone})`, now, now).rowsWritten;
    const grants = this.sql.exec(`DELETE FROM session_grants WHERE expires_at <= ?`, now).rowsWritten;
    return clients + grants + this.sql.exec(`DELETE FROM sessions WHERE ${gone}`, now, now).rowsWritten;
  }

  /**
   * No session left (usable or revoked), no grant still live, and no logout notice pending or dead-lettered: the
   * user's object can go until their next sign-in (C15). A notice keeps it until it is delivered (C21).
   */
  protected override holdsState(): boolean {
    const any = (table: string) => this.sql.exec(`SELECT 1 FROM ${table} LIMIT 1`).toArray().length > 0;
    return any("sessions") || any("session_grants") || this.notices().holdsEntries();
  }

  protected override nextExpiry(): number | null {
    const { sessions, grants } = this.sql
      .exec<{ sessions: number | null; grants: number | null }>(
        `SELECT (SELECT MIN(CASE WHEN revoked_at IS NULL THEN MIN(expires_at, idle_expires_at) ELSE expires_at END) FROM sessions) AS sessions,
                (SELECT MIN(expires_at) FROM session_grants) AS grants`,
      )
      .one();
    // (SQLite's two-argument MIN is NULL when either is.)
    const times = [sessions, grants].filter((t): t is number => t !== null);
    return times.length === 0 ? null : Math.min(...times);
  }

  /** Rows held, usable or not (for tests and operations). */
  size(): { sessions: number; clients: number } {
    if (!this.hasStorage()) return { sessions: 0, clients: 0 };
    const count = (table: string) => this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n;
    return { sessions: count("sessions"), clients: count("session_clients") };
  }
}
