import { sha256Base64url } from "../lib/crypto";
import { auditStatement, type AuditData } from "./audit";
import type { passkeys } from "./schema";

/**
 * The passkeys table: a user's WebAuthn credentials. Every change is one D1 batch with its audit event (one
 * transaction: both or neither), and the signature counter moves only by compare-and-swap (C7).
 */

/** A passkey, in the column names of src/db/schema.ts (camelCase). */
export type Passkey = typeof passkeys.$inferSelect;

interface PasskeyRow {
  id: string;
  user_id: string;
  public_key: string;
  counter: number;
  transports: string;
  device_type: string | null;
  backed_up: number;
  name: string | null;
  created_at: number;
  last_used_at: number | null;
  last_challenge: string | null;
}

function toPasskey(row: PasskeyRow): Passkey {
  return {
    id: row.id,
    userId: row.user_id,
    publicKey: row.public_key,
    counter: row.counter,
    transports: JSON.parse(row.transports) as string[],
    deviceType: row.device_type,
    backedUp: row.backed_up === 1,
    name: row.name,
    createdAt: row.created_at,
    lastUsedAt: row.last_used_at,
    lastChallenge: row.last_challenge,
  };
}

/** Credential ids as we store them: base64url, up to 1023 bytes (1364 characters). Anything else is never looked up. */
const CREDENTIAL_ID = /^[A-Za-z0-9_-]{16,1364}$/;

export function isCredentialId(value: unknown): value is string {
  return typeof value === "string" && CREDENTIAL_ID.test(value);
}

/** Who made a change, for its audit event: the user (`user`, from the account page) or the admin API. */
export interface PasskeyChange {
  actor: string;
  data?: AuditData;
}

function event(type: string, userId: string, change: PasskeyChange, at: number, data: AuditData) {
  return { eventId: crypto.randomUUID(), occurredAt: at, type, source: "passkeys", actor: change.actor, subject: userId, data: { ...data, ...change.data } };
}

const CHANGED = { sql: "changes() > 0", params: [] };

/** A user's passkeys, oldest first. */
export async function listPasskeys(db: D1Database, userId: string): Promise<Passkey[]> {
  const { results } = await db.prepare(`SELECT * FROM passkeys WHERE user_id = ? ORDER BY created_at, id`).bind(userId).all<PasskeyRow>();
  return results.map(toPasskey);
}

export async function getPasskey(db: D1Database, credentialId: string): Promise<Passkey | null> {
  if (!isCredentialId(credentialId)) return null;
  const row = await db.prepare(`SELECT * FROM passkeys WHERE id = ?`).bind(credentialId).first<PasskeyRow>();
  return row === null ? null : toPasskey(row);
}

export interface NewPasskey {
  id: string;
  userId: string;
  publicKey: string;
  counter: number;
  transports: string[];
  deviceType: string;
  backedUp: boolean;
  name: string | null;
}

/**
 * Stores a new passkey with its `passkey.registered` event. False, writing nothing: the credential id is registered
 * already (to this user or another) — a credential is never moved or overwritten, and one ceremony can never store
 * two (the id is the primary key).
 */
export async function insertPasskey(db: D1Database, passkey: NewPasskey, change: PasskeyChange): Promise<boolean> {
  const now = Date.now();
  const [insert] = await db.batch([
    db
      .prepare(
        `INSERT INTO passkeys (id, user_id, public_key, counter, transports, device_type, backed_up, name, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
      )
      .bind(passkey.id, passkey.userId, passkey.publicKey, passkey.counter, JSON.stringify(passkey.transports), passkey.deviceType, passkey.backedUp ? 1 : 0, passkey.name, now),
    auditStatement(
      db,
      event("passkey.registered", passkey.userId, change, now, { credential_id: passkey.id, device_type: passkey.deviceType, backed_up: passkey.backedUp, transports: passkey.transports }),
      CHANGED,
    ),
  ]);
  return insert!.meta.changes > 0;
}

export type PasskeyUse =
  /** This sign-in moved the counter forward (or, for an authenticator without a counter, recorded the use). */
  | { status: "recorded" }
  /** An earlier request of this same ceremony did: a retry after a failure (C12) or a concurrent duplicate (C11). */
  | { status: "already_recorded" }
  /** Refused: the counter did not move forward (a possible clone, C7). Audited in the same batch. */
  | { status: "counter_regression"; storedCounter: number }
  /** The passkey was deleted meanwhile. */
  | { status: "gone" };

/**
 * C7: the signature counter only moves forward, by one compare-and-swap in D1 —
 * `UPDATE passkeys SET counter = ?, last_used_at = ? WHERE id = ? AND counter < ?` — which also notes the ceremony's
 * WebAuthn challenge. A presented counter of zero is accepted only while the stored one is zero too (the
 * authenticator keeps no counter). When nothing was updated, the row read in the same batch tells why: the counter
 * is already where this very ceremony put it (a retry or a duplicate of one response), or it is a regression — then
 * `passkey.counter_regression` is written in the same batch, once per ceremony (its event id is derived from the
 * challenge and the credential, so any number of concurrent duplicates record one event).
 */
export async function recordPasskeyUse(
  db: D1Database,
  use: { credentialId: string; userId: string; counter: number; challenge: string; remoteIp: string },
): Promise<PasskeyUse> {
  const now = Date.now();
  const update =
    use.counter > 0
      ? db
          .prepare(`UPDATE passkeys SET counter = ?, last_used_at = ?, last_challenge = ? WHERE id = ? AND counter < ?`)
          .bind(use.counter, now, use.challenge, use.credentialId, use.counter)
      : db.prepare(`UPDATE passkeys SET last_used_at = ?, last_challenge = ? WHERE id = ? AND counter = 0`).bind(now, use.challenge, use.credentialId);
  const regression = auditStatement(
    db,
    {
      eventId: `counter-regression.${await sha256Base64url(`${use.credentialId}\n${use.challenge}`)}`,
      occurredAt: now,
      type: "passkey.counter_regression",
      source: "passkeys",
      actor: "user",
      subject: use.userId,
      data: { credential_id: use.credentialId, presented_counter: use.counter, remote_ip: use.remoteIp },
    },
    {
      sql: `changes() = 0 AND EXISTS (SELECT 1 FROM passkeys WHERE id = ? AND NOT (counter = ? AND last_challenge IS ?))`,
      params: [use.credentialId, use.counter, use.challenge],
    },
  );
  const read = db.prepare(`SELECT counter, last_challenge FROM passkeys WHERE id = ?`).bind(use.credentialId);
  const [updated, , after] = await db.batch<{ counter: number; last_challenge: string | null }>([update, regression, read]);
  if (updated!.meta.changes > 0) return { status: "recorded" };
  const row = after!.results[0];
  if (row === undefined) return { status: "gone" };
  if (row.counter === use.counter && row.last_challenge === use.challenge) return { status: "already_recorded" };
  return { status: "counter_regression", storedCounter: row.counter };
}

/** Renames one of the user's passkeys (`passkey.renamed`). False: no such passkey of this user. */
export async function renamePasskey(db: D1Database, userId: string, credentialId: string, name: string | null, change: PasskeyChange): Promise<boolean> {
  if (!isCredentialId(credentialId)) return false;
  const now = Date.now();
  const [rename] = await db.batch([
    db.prepare(`UPDATE passkeys SET name = ? WHERE id = ? AND user_id = ?`).bind(name, credentialId, userId),
    auditStatement(db, event("passkey.renamed", userId, change, now, { credential_id: credentialId, name }), CHANGED),
  ]);
  return rename!.meta.changes > 0;
}

export type PasskeyDeletion = "deleted" | "not_found" | "last_one";

/**
 * Deletes one of the user's passkeys (`passkey.deleted`). With `keepOne` the user's last passkey is kept: the count is
 * part of the same statement, so two concurrent deletions can never remove the last two.
 */
export async function deletePasskey(
  db: D1Database,
  userId: string,
  credentialId: string,
  options: { keepOne: boolean },
  change: PasskeyChange,
): Promise<PasskeyDeletion> {
  if (!isCredentialId(credentialId)) return "not_found";
  const now = Date.now();
  const keep = options.keepOne ? ` AND (SELECT COUNT(*) FROM passkeys WHERE user_id = ?) > 1` : "";
  const [removal] = await db.batch([
    db.prepare(`DELETE FROM passkeys WHERE id = ? AND user_id = ?${keep}`).bind(credentialId, userId, ...(options.keepOne ? [userId] : [])),
    auditStatement(db, event("passkey.deleted", userId, change, now, { credential_id: credentialId }), CHANGED),
  ]);
  if (removal!.meta.changes > 0) return "deleted";
  const still = await db.prepare(`SELECT 1 AS present FROM passkeys WHERE id = ? AND user_id = ?`).bind(credentialId, userId).first();
  return still === null ? "not_found" : "last_one";
}

/** Records that the admin API read a user's passkeys (`admin.passkeys.listed`). */
export async function auditPasskeyListing(db: D1Database, userId: string, change: PasskeyChange, count: number): Promise<void> {
  await auditStatement(db, event("admin.passkeys.listed", userId, change, Date.now(), { count })).run();
}
