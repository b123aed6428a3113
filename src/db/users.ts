import { randomToken } from "../lib/crypto";
import { isOpaqueId } from "../lib/ids";
import { adminAuditStatement, type AuditData } from "./audit";
import { ALL_CLIENTS, endGrantsStatement } from "./grant-revocations";
import type { users } from "./schema";

/** A user, in the column names of src/db/schema.ts (camelCase). */
export type User = typeof users.$inferSelect;

/** A new user id, usable as sub: 128 random bits, an opaque id (lib/ids.ts). */
export function newUserId(): string {
  return randomToken(16);
}

/** RFC 5321 local parts are case-sensitive in theory, never in practice: one address, one account. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

interface UserRow {
  id: string;
  email: string;
  email_verified: number;
  name: string | null;
  given_name: string | null;
  family_name: string | null;
  preferred_username: string | null;
  picture: string | null;
  locale: string | null;
  zoneinfo: string | null;
  phone_number: string | null;
  phone_number_verified: number;
  address: string | null;
  groups: string;
  claims: string;
  disabled: number;
  created_at: number;
  updated_at: number;
}

function toUser(row: UserRow): User {
  return {
    id: row.id,
    email: row.email,
    emailVerified: row.email_verified === 1,
    name: row.name,
    givenName: row.given_name,
    familyName: row.family_name,
    preferredUsername: row.preferred_username,
    picture: row.picture,
    locale: row.locale,
    zoneinfo: row.zoneinfo,
    phoneNumber: row.phone_number,
    phoneNumberVerified: row.phone_number_verified === 1,
    address: row.address === null ? null : (JSON.parse(row.address) as Record<string, string>),
    groups: JSON.parse(row.groups) as string[],
    claims: JSON.parse(row.claims) as Record<string, unknown>,
    disabled: row.disabled === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function getUser(db: D1Database, userId: string): Promise<User | null> {
  if (!isOpaqueId(userId)) return null;
  return userOfRows([await selectUser(db, userId).first()]);
}

/** `getUser`'s statement, for a D1 batch that reads it beside other rows (`userOfRows` reads its answer). */
export function selectUser(db: D1Database, userId: string): D1PreparedStatement {
  return db.prepare(`SELECT * FROM users WHERE id = ?`).bind(userId);
}

export function userOfRows(rows: unknown[]): User | null {
  const row = rows[0] as UserRow | undefined | null;
  return row === undefined || row === null ? null : toUser(row);
}

export async function findUserByEmail(db: D1Database, email: string): Promise<User | null> {
  const row = await db.prepare(`SELECT * FROM users WHERE email = ?`).bind(normalizeEmail(email)).first<UserRow>();
  return row === null ? null : toUser(row);
}

/**
 * The user signing in with a verified email link: created on first sign-in. Idempotent under races and retries
 * (the unique email index decides), so a retried or concurrent sign-in never makes two accounts (C12). One batch:
 * insert if absent, mark the address verified, read back.
 */
export async function ensureUserForVerifiedEmail(db: D1Database, email: string, newUserId: string): Promise<User> {
  const normalized = normalizeEmail(email);
  const now = Date.now();
  const [, , read] = await db.batch([
    db
      .prepare(`INSERT INTO users (id, email, email_verified, created_at, updated_at) VALUES (?, ?, 1, ?, ?) ON CONFLICT DO NOTHING`)
      .bind(newUserId, normalized, now, now),
    db.prepare(`UPDATE users SET email_verified = 1, updated_at = ? WHERE email = ? AND email_verified = 0`).bind(now, normalized),
    db.prepare(`SELECT * FROM users WHERE email = ?`).bind(normalized),
  ]);
  const row = (read!.results as UserRow[])[0];
  if (!row) throw new Error("user row missing after insert");
  return toUser(row);
}

/** A user as a token check sees them (C22, C23): the row, and until when their grants for a client were ended (ms). */
export interface GrantUser {
  user: User;
  /** Grants for this client created at or before this time are dead; null when none were ended. */
  grantsRevokedBefore: number | null;
}

/** The user and their grant revocations for `clientId` (and for every client), in one query. */
export async function userForGrant(db: D1Database, userId: string, clientId: string): Promise<GrantUser | null> {
  if (!isOpaqueId(userId)) return null;
  return grantUserOfRows([await selectGrantUser(db, userId, clientId).first()]);
}

/** `userForGrant`'s statement, for a D1 batch that reads it beside other rows (`grantUserOfRows` reads its answer). */
export function selectGrantUser(db: D1Database, userId: string, clientId: string): D1PreparedStatement {
  return db
    .prepare(
      `SELECT users.*, (SELECT MAX(revoked_before) FROM grant_revocations WHERE user_id = users.id AND client_id IN (?, '*')) AS grants_revoked_before
       FROM users WHERE id = ?`,
    )
    .bind(clientId, userId);
}

export function grantUserOfRows(rows: unknown[]): GrantUser | null {
  const row = rows[0] as (UserRow & { grants_revoked_before: number | null }) | undefined | null;
  return row === undefined || row === null ? null : { user: toUser(row), grantsRevokedBefore: row.grants_revoked_before };
}

// ── Changes by an administrator (the admin API): each written with its audit event in one D1 batch ──────────────

/** The members an admin sets, in OIDC Core §5.1 claim names (oauth/user-profile.ts validates them). */
export interface UserProfileFields {
  email?: string;
  email_verified?: boolean;
  name?: string | null;
  given_name?: string | null;
  family_name?: string | null;
  preferred_username?: string | null;
  picture?: string | null;
  locale?: string | null;
  zoneinfo?: string | null;
  phone_number?: string | null;
  phone_number_verified?: boolean;
  address?: Record<string, string | undefined> | null;
  groups?: string[];
  claims?: Record<string, unknown>;
}

/** Who made a change, and what the event records (never a claim's value: the audit log outlives the user). */
export interface UserChangeAudit {
  actor: string;
  data: AuditData;
}

/** Column and stored value of each member given; the members' names are the columns' (lists and objects as JSON, flags 0/1). */
function profileColumns(fields: UserProfileFields): Array<[string, string | number | null]> {
  const columns: Array<[string, string | number | null]> = [];
  for (const [member, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    if (typeof value === "boolean") columns.push([member, value ? 1 : 0]);
    else if (value !== null && typeof value === "object") columns.push([member, JSON.stringify(value)]);
    else columns.push([member, value]);
  }
  return columns;
}

const PROFILE_COLUMNS = new Set([
  "email", "email_verified", "name", "given_name", "family_name", "preferred_username", "picture", "locale", "zoneinfo",
  "phone_number", "phone_number_verified", "address", "groups", "claims",
]);

function checkedColumns(fields: UserProfileFields): Array<[string, string | number | null]> {
  const columns = profileColumns(fields);
  // The names reach SQL as identifiers: only the known columns ever do.
  for (const [name] of columns) if (!PROFILE_COLUMNS.has(name)) throw new Error(`not a user column: ${name}`);
  return columns;
}

/** Creates a user with `admin.user.created`. The email must be unused: a taken one makes the batch fail, writing nothing. */
export async function insertUser(db: D1Database, userId: string, fields: UserProfileFields & { email: string }, audit: UserChangeAudit): Promise<void> {
  const now = Date.now();
  const columns = checkedColumns({ ...fields, email: normalizeEmail(fields.email) });
  const names = ["id", ...columns.map(([name]) => name), "created_at", "updated_at"];
  await db.batch([
    db.prepare(`INSERT INTO users (${names.join(", ")}) VALUES (${names.map(() => "?").join(", ")})`).bind(userId, ...columns.map(([, v]) => v), now, now),
    adminAuditStatement(db, { type: "admin.user.created", actor: audit.actor, subject: userId, clientId: null, data: audit.data }, now, false),
  ]);
}

/**
 * Sets the members given if the user is still the version read (`expectedUpdatedAt`, ms): a compare-and-swap, as for
 * clients (C5). False: the user changed or is gone; nothing was written and no event recorded. A taken email throws.
 */
export async function updateUser(db: D1Database, userId: string, expectedUpdatedAt: number, fields: UserProfileFields, audit: UserChangeAudit): Promise<boolean> {
  // Time in a Worker only moves across I/O: make sure the version moves even within one millisecond.
  const now = Math.max(Date.now(), expectedUpdatedAt + 1);
  const columns: Array<[string, string | number | null]> = [...checkedColumns(fields), ["updated_at", now]];
  const [update] = await db.batch([
    db.prepare(`UPDATE users SET ${columns.map(([name]) => `${name} = ?`).join(", ")} WHERE id = ? AND updated_at = ?`).bind(...columns.map(([, v]) => v), userId, expectedUpdatedAt),
    adminAuditStatement(db, { type: "admin.user.updated", actor: audit.actor, subject: userId, clientId: null, data: audit.data }, now, true),
  ]);
  return update!.meta.changes > 0;
}

/** The stored version of a user (ms), for compare-and-swap updates; null when there is no such user. */
export async function userVersion(db: D1Database, userId: string): Promise<number | null> {
  if (!isOpaqueId(userId)) return null;
  const row = await db.prepare(`SELECT updated_at FROM users WHERE id = ?`).bind(userId).first<{ updated_at: number }>();
  return row === null ? null : row.updated_at;
}

/**
 * Disables or enables a user, audited when it changes anything. Disabling also ends every grant the user holds (C22),
 * in the same batch: re-enabling the account later revives none of the tokens issued before. Null: no such user.
 */
export async function setUserDisabled(db: D1Database, userId: string, disabled: boolean, audit: UserChangeAudit): Promise<{ changed: boolean; at: number } | null> {
  if (!isOpaqueId(userId)) return null;
  const now = Date.now();
  const type = disabled ? "admin.user.disabled" : "admin.user.enabled";
  const results = await db.batch([
    db.prepare(`UPDATE users SET disabled = ? WHERE id = ? AND disabled != ?`).bind(disabled ? 1 : 0, userId, disabled ? 1 : 0),
    adminAuditStatement(db, { type, actor: audit.actor, subject: userId, clientId: null, data: audit.data }, now, true),
    ...(disabled ? [endGrantsStatement(db, userId, ALL_CLIENTS, now)] : []),
    db.prepare(`SELECT 1 AS found FROM users WHERE id = ?`).bind(userId),
  ]);
  if (results.at(-1)!.results.length === 0) return null;
  return { changed: results[0]!.meta.changes > 0, at: now };
}

/** Deletes a user with `admin.user.deleted`; passkeys, consents and grant revocations go with the row (foreign keys). False: no such user. */
export async function deleteUser(db: D1Database, userId: string, audit: UserChangeAudit): Promise<boolean> {
  if (!isOpaqueId(userId)) return false;
  const now = Date.now();
  const [removal] = await db.batch([
    db.prepare(`DELETE FROM users WHERE id = ?`).bind(userId),
    adminAuditStatement(db, { type: "admin.user.deleted", actor: audit.actor, subject: userId, clientId: null, data: audit.data }, now, true),
  ]);
  return removal!.meta.changes > 0;
}

/**
 * Users by email, in address order, a page at a time: `emailContains` filters (case-insensitive, as addresses are
 * stored lower-case), `after` is the last address of the previous page (keyset pagination: stable under inserts).
 */
export async function listUsers(db: D1Database, options: { emailContains?: string; after?: string; limit: number }): Promise<User[]> {
  const where: string[] = [];
  const binds: (string | number)[] = [];
  if (options.emailContains) {
    where.push(`email LIKE ? ESCAPE '\\'`);
    binds.push(`%${options.emailContains.toLowerCase().replace(/[\\%_]/g, (c) => `\\${c}`)}%`);
  }
  if (options.after !== undefined) {
    where.push(`email > ?`);
    binds.push(options.after);
  }
  const { results } = await db
    .prepare(`SELECT * FROM users ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY email LIMIT ?`)
    .bind(...binds, options.limit)
    .all<UserRow>();
  return results.map(toUser);
}
