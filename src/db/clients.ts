import { desc, eq } from "drizzle-orm";
import { drizzle } from "drizzle-orm/d1";
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

function toRow(fields: Partial<ClientFields>) {
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

/** Client ids are opaque and bounded; anything else is not looked up at all. */
const CLIENT_ID = /^[A-Za-z0-9._~-]{1,128}$/;

export async function getClient(db: D1Database, clientId: string): Promise<StoredClient | null> {
  if (!CLIENT_ID.test(clientId)) return null;
  const row = await drizzle(db).select().from(clients).where(eq(clients.id, clientId)).get();
  return row ? toClient(row) : null;
}

export async function listClients(db: D1Database): Promise<StoredClient[]> {
  const rows = await drizzle(db).select().from(clients).orderBy(desc(clients.createdAt)).all();
  return rows.map(toClient);
}

export async function insertClient(db: D1Database, clientId: string, fields: ClientFields, secretHash: string | null): Promise<StoredClient> {
  const now = Date.now();
  const row = await drizzle(db)
    .insert(clients)
    .values({
      id: clientId,
      secretHash,
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
      createdAt: now,
      updatedAt: now,
    })
    .returning()
    .get();
  return toClient(row);
}

/** Replaces the given fields (and the secret hash when given); returns null for an unknown client. */
export async function updateClient(
  db: D1Database,
  clientId: string,
  fields: Partial<ClientFields>,
  secretHash?: string | null,
): Promise<StoredClient | null> {
  if (!CLIENT_ID.test(clientId)) return null;
  const values = Object.fromEntries(Object.entries(toRow(fields)).filter(([, v]) => v !== undefined));
  const row = await drizzle(db)
    .update(clients)
    .set({ ...values, ...(secretHash !== undefined ? { secretHash } : {}), updatedAt: Date.now() })
    .where(eq(clients.id, clientId))
    .returning()
    .get();
  return row ? toClient(row) : null;
}

export async function deleteClient(db: D1Database, clientId: string): Promise<boolean> {
  if (!CLIENT_ID.test(clientId)) return false;
  const result = await drizzle(db).delete(clients).where(eq(clients.id, clientId)).run();
  return result.meta.changes > 0;
}
