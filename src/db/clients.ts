import { and, desc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
import { isClientId } from "../lib/ids";
import { auditStatement, type AuditData } from "./audit";
import { clients } from "./schema";

/** A registered client, in RFC 7591 metadata names. Read from D1 on every request: no cache, so an admin update is in force at once (C5). */
export interface Client {
  client_id: string;
  client_name: string;
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  grant_types: string[];
  response_types: string[];
  token_endpoint_auth_method: "client_secret_basic" | "client_secret_post" | "private_key_jwt" | "none";
  scope: string;
  jwks: { keys: Record<string, string | string[] | boolean | number>[] } | null;
  jwks_uri: string | null;
  id_token_signed_response_alg: "RS256" | "ES256" | null;
  backchannel_logout_uri: string | null;
  backchannel_logout_session_required: boolean;
  skip_consent: boolean;
  dpop_bound_access_tokens: boolean;
  client_id_issued_at: number;
  updated_at: number;
}

/** What the OP keeps besides the metadata: the secret's hash (C13), never the secret. */
export interface StoredClient extends Client {
  secret_hash: string | null;
}

export type ClientFields = Omit<Client, "client_id" | "client_id_issued_at" | "updated_at">;

type Row = typeof clients.$inferSelect;

function toClient(row: Row): StoredClient {
  return {
    client_id: row.id,
    client_name: row.clientName,
    redirect_uris: row.redirectUris,
    post_logout_redirect_uris: row.postLogoutRedirectUris,
    grant_types: row.grantTypes,
    response_types: row.responseTypes,
    token_endpoint_auth_method: row.tokenEndpointAuthMethod as Client["token_endpoint_auth_method"],
    scope: row.scope,
    jwks: (row.jwks as Client["jwks"]) ?? null,
    jwks_uri: row.jwksUri,
    id_token_signed_response_alg: (row.idTokenSignedResponseAlg as Client["id_token_signed_response_alg"]) ?? null,
    backchannel_logout_uri: row.backchannelLogoutUri,
    backchannel_logout_session_required: row.backchannelLogoutSessionRequired,
    skip_consent: row.skipConsent,
    dpop_bound_access_tokens: row.dpopBoundAccessTokens,
    client_id_issued_at: Math.floor(row.createdAt / 1000),
    updated_at: Math.floor(row.updatedAt / 1000),
    secret_hash: row.secretHash,
  };
}

export async function getClient(db: D1Database, clientId: string): Promise<StoredClient | null> {
  // Anything not shaped like a client id is not looked up at all.
  if (!isClientId(clientId)) return null;
  const row = await drizzle(db).select().from(clients).where(eq(clients.id, clientId)).get();
  return row ? toClient(row) : null;
}

export async function listClients(db: D1Database): Promise<StoredClient[]> {
  const rows = await drizzle(db).select().from(clients).orderBy(desc(clients.createdAt)).all();
  return rows.map(toClient);
}

// Changes to clients: each applied together with its audit event in one D1 batch (one transaction), so the change
// and its record commit together or not at all.

export interface ClientChangeAudit {
  /** Who asked (the admin API, with the caller's address). */
  actor: string;
  data: AuditData;
}

/** A drizzle query as a D1 statement, so it can share a `db.batch` with plain SQL. */
function statement(db: D1Database, query: { toSQL(): { sql: string; params: unknown[] } }): D1PreparedStatement {
  const { sql, params } = query.toSQL();
  return db.prepare(sql).bind(...params);
}

function toRow(fields: ClientFields) {
  return {
    clientName: fields.client_name,
    redirectUris: fields.redirect_uris,
    postLogoutRedirectUris: fields.post_logout_redirect_uris,
    grantTypes: fields.grant_types,
    responseTypes: fields.response_types,
    tokenEndpointAuthMethod: fields.token_endpoint_auth_method,
    scope: fields.scope,
    jwks: fields.jwks,
    jwksUri: fields.jwks_uri,
    idTokenSignedResponseAlg: fields.id_token_signed_response_alg,
    backchannelLogoutUri: fields.backchannel_logout_uri,
    backchannelLogoutSessionRequired: fields.backchannel_logout_session_required,
    skipConsent: fields.skip_consent,
    dpopBoundAccessTokens: fields.dpop_bound_access_tokens,
  };
}

/** The audit row of a client change; with `onlyIfChanged`, written only when the statement just before it changed a row. */
function clientAudit(db: D1Database, type: string, clientId: string, audit: ClientChangeAudit, at: number, onlyIfChanged: boolean): D1PreparedStatement {
  return auditStatement(
    db,
    { eventId: crypto.randomUUID(), occurredAt: at, type, source: "admin", actor: audit.actor, subject: clientId, clientId, data: audit.data },
    onlyIfChanged ? { sql: "changes() > 0", params: [] } : undefined,
  );
}

/** Inserts a client and its `admin.client.created` event. */
export async function insertClient(
  db: D1Database,
  clientId: string,
  fields: ClientFields,
  secretHash: string | null,
  audit: ClientChangeAudit,
): Promise<void> {
  const orm = drizzle(db);
  const now = Date.now();
  await db.batch([
    statement(db, orm.insert(clients).values({ id: clientId, secretHash, ...toRow(fields), createdAt: now, updatedAt: now })),
    clientAudit(db, "admin.client.created", clientId, audit, now, false),
  ]);
}

/**
 * Replaces a client's metadata (and its secret hash when given) if it is still the version read (`expectedUpdatedAt`,
 * ms): a compare-and-swap, so two concurrent updates cannot merge into metadata nobody validated. False: the client
 * changed or is gone, nothing was written and no event recorded.
 */
export async function updateClient(
  db: D1Database,
  clientId: string,
  expectedUpdatedAt: number,
  fields: ClientFields,
  secretHash: string | null | undefined,
  audit: ClientChangeAudit,
): Promise<boolean> {
  const orm = drizzle(db);
  // Time in a Worker only moves across I/O: make sure the version moves even within one millisecond.
  const now = Math.max(Date.now(), expectedUpdatedAt + 1);
  const [update] = await db.batch([
    statement(
      db,
      orm
        .update(clients)
        .set({ ...toRow(fields), ...(secretHash !== undefined ? { secretHash } : {}), updatedAt: now })
        .where(and(eq(clients.id, clientId), eq(clients.updatedAt, expectedUpdatedAt))),
    ),
    clientAudit(db, "admin.client.updated", clientId, audit, now, true),
  ]);
  return update!.meta.changes > 0;
}

/** Deletes a client (its consents go with it, by foreign key) and records `admin.client.deleted`. False: no such client. */
export async function deleteClient(db: D1Database, clientId: string, audit: ClientChangeAudit): Promise<boolean> {
  const orm = drizzle(db);
  const now = Date.now();
  const [removal] = await db.batch([
    statement(db, orm.delete(clients).where(eq(clients.id, clientId))),
    clientAudit(db, "admin.client.deleted", clientId, audit, now, true),
  ]);
  return removal!.meta.changes > 0;
}

/** The stored version of a client (ms), for compare-and-swap updates; null when there is no such client. */
export async function clientVersion(db: D1Database, clientId: string): Promise<number | null> {
  const row = await drizzle(db).select({ updatedAt: clients.updatedAt }).from(clients).where(eq(clients.id, clientId)).get();
  return row ? row.updatedAt : null;
}
