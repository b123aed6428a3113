import { isClientId, isOpaqueId } from "../lib/ids";
import { clientOfRows, selectClient, type StoredClient } from "./clients";
import { grantedScopesOfRows, selectConsent } from "./consents";
import { grantUserOfRows, selectGrantUser, selectUser, userOfRows, type GrantUser, type User } from "./users";

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

/**
 * The parties of an authorization request as D1 has them now — the client (C5), the user the session cookie names
 * (not yet checked: the session object decides) and the consent that user gave the client — in one D1 round trip.
 * An id not shaped like one is not looked up; with no usable id there is no round trip at all.
 */
export async function authorizationParties(
  db: D1Database,
  parties: { clientId: string | null; userId: string | null },
): Promise<{ client: StoredClient | null; user: User | null; grantedScopes: Set<string> }> {
  const clientId = parties.clientId !== null && isClientId(parties.clientId) ? parties.clientId : null;
  const userId = parties.userId !== null && isOpaqueId(parties.userId) ? parties.userId : null;
  const statements: D1PreparedStatement[] = [];
  if (clientId !== null) statements.push(selectClient(db, clientId));
  if (userId !== null) statements.push(selectUser(db, userId));
  if (clientId !== null && userId !== null) statements.push(selectConsent(db, userId, clientId));
  const results = statements.length === 0 ? [] : await db.batch(statements);
  const rowsAt = (i: number) => results[i]?.results ?? [];
  return {
    client: clientId === null ? null : clientOfRows(rowsAt(0)),
    user: userId === null ? null : userOfRows(rowsAt(clientId === null ? 0 : 1)),
    grantedScopes: clientId !== null && userId !== null ? grantedScopesOfRows(rowsAt(2)) : new Set(),
  };
}
