import { eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { randomToken } from "../lib/crypto";
import { isOpaqueId } from "../lib/ids";
import { users } from "./schema";

export type User = typeof users.$inferSelect;

/** A new user id, usable as sub: 128 random bits, an opaque id (lib/ids.ts). */
export function newUserId(): string {
  return randomToken(16);
}

/** RFC 5321 local parts are case-sensitive in theory, never in practice: one address, one account. */
export function normalizeEmail(email: string): string {
  return email.trim().toLowerCase();
}

export async function getUser(db: D1Database, userId: string): Promise<User | null> {
  if (!isOpaqueId(userId)) return null;
  return (await drizzle(db).select().from(users).where(eq(users.id, userId)).get()) ?? null;
}

export async function findUserByEmail(db: D1Database, email: string): Promise<User | null> {
  return (await drizzle(db).select().from(users).where(eq(users.email, normalizeEmail(email))).get()) ?? null;
}

/**
 * The user signing in with a verified email link: created on first sign-in. Idempotent under races and retries
 * (the unique email index decides), so a retried or concurrent sign-in never makes two accounts (C12).
 */
export async function ensureUserForVerifiedEmail(db: D1Database, email: string, newUserId: string): Promise<User> {
  const normalized = normalizeEmail(email);
  const orm = drizzle(db);
  const now = Date.now();
  await orm.insert(users).values({ id: newUserId, email: normalized, emailVerified: true, createdAt: now, updatedAt: now }).onConflictDoNothing().run();
  const user = await orm.select().from(users).where(eq(users.email, normalized)).get();
  if (!user) throw new Error("user row missing after insert");
  if (!user.emailVerified) {
    await orm.update(users).set({ emailVerified: true, updatedAt: now }).where(eq(users.id, user.id)).run();
    return { ...user, emailVerified: true };
  }
  return user;
}
