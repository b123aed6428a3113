import { isClientId, isOpaqueId } from "../lib/ids";
import { clientOfRows, selectClient, type StoredClient } from "./clients";
import { grantUserOfRows, selectGrantUser, type GrantUser } from "./users";

/**
 * The parties of a token as D1 has them now — its client (unless the caller already holds it), and the user it speaks
 * for with their grant revocations for that client (C22, C23) — in one D1 round trip: a batch of the reads.
 */
export async function tokenParties(
  db: D1Database,
  parties: { clientId: string; readClient: boolean; userId: string | null },
): Promise<{ client: StoredClient | null; holder: GrantUser | null }> {
  const { clientId, userId } = parties;
  const readsClient = parties.readClient && isClientId(clientId);
  const readsUser = userId !== null && isOpaqueId(userId);
  const statements = [...(readsClient ? [selectClient(db, clientId)] : []), ...(readsUser ? [selectGrantUser(db, userId, clientId)] : [])];
  if (statements.length === 0) return { client: null, holder: null };
  const results = await db.batch(statements);
  const client = readsClient ? clientOfRows(results[0]!.results) : null;
  const holder = readsUser ? grantUserOfRows(results[readsClient ? 1 : 0]!.results) : null;
  return { client, holder };
}
