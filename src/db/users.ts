import { randomToken } from "../lib/crypto";
import { isOpaqueId } from "../lib/ids";
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
    disabled: row.disabled === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function getUser(db: D1Database, userId: string): Promise<User | null> {
  if (!isOpaqueId(userId)) return null;
  const row = await db.prepare(`SELECT * FROM users WHERE id = ?`).bind(userId).first<UserRow>();
  return row === null ? null : toUser(row);
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
