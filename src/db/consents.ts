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

/**
 * Remembers consent: the union of what was granted before and now. A compare-and-swap on the stored value, retried,
 * so two consents given at once (two tabs) both end up in the union instead of one overwriting the other.
 */
export async function rememberConsent(db: D1Database, userId: string, clientId: string, scopes: string[], now = Date.now()): Promise<void> {
  const orm = drizzle(db);
  const key = and(eq(consents.userId, userId), eq(consents.clientId, clientId));
  // Each round has one winner, so N writers at once need at most N rounds.
  for (let attempt = 0; attempt < 32; attempt++) {
    const row = await orm.select().from(consents).where(key).get();
    const live = row && (row.expiresAt === null || row.expiresAt > now) ? row.scopes.split(" ").filter(Boolean) : [];
    const value = [...new Set([...live, ...scopes])].sort().join(" ");
    const result = row
      ? await orm.update(consents).set({ scopes: value, grantedAt: now, expiresAt: null }).where(and(key, eq(consents.scopes, row.scopes))).run()
      : await orm.insert(consents).values({ userId, clientId, scopes: value, grantedAt: now, expiresAt: null }).onConflictDoNothing().run();
    if (result.meta.changes > 0) return;
  }
  throw new Error("consent kept changing concurrently");
}

export async function revokeConsent(db: D1Database, userId: string, clientId: string): Promise<void> {
  await drizzle(db).delete(consents).where(and(eq(consents.userId, userId), eq(consents.clientId, clientId))).run();
}
