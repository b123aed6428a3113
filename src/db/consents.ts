import { and, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { consents } from "./schema";

/** The scopes a user has granted a client, or an empty set. Expired consent counts as none. */
export async function grantedScopes(db: D1Database, userId: string, clientId: string, now = Date.now()): Promise<Set<string>> {
  const row = await drizzle(db)
    .select()
    .from(consents)
    .where(and(eq(consents.userId, userId), eq(consents.clientId, clientId)))
    .get();
  if (!row || (row.expiresAt !== null && row.expiresAt <= now)) return new Set();
  return new Set(row.scopes.split(" ").filter(Boolean));
}

/** Remembers consent: the union of what was granted before and now. */
export async function rememberConsent(db: D1Database, userId: string, clientId: string, scopes: string[], now = Date.now()): Promise<void> {
  const merged = new Set([...(await grantedScopes(db, userId, clientId, now)), ...scopes]);
  const value = [...merged].sort().join(" ");
  await drizzle(db)
    .insert(consents)
    .values({ userId, clientId, scopes: value, grantedAt: now, expiresAt: null })
    .onConflictDoUpdate({ target: [consents.userId, consents.clientId], set: { scopes: value, grantedAt: now, expiresAt: null } })
    .run();
}

export async function revokeConsent(db: D1Database, userId: string, clientId: string): Promise<void> {
  await drizzle(db).delete(consents).where(and(eq(consents.userId, userId), eq(consents.clientId, clientId))).run();
}
