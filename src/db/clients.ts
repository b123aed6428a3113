import { isClientId } from "../lib/ids";
import { adminAuditStatement, type AuditData } from "./audit";

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
  /** Seconds within which a rotated refresh token is answered again with the same successor (null: the server's setting). */
  refresh_token_reuse_interval: number | null;
  /** The user's custom claims (by name) this client receives with the `profile` scope; set by an admin only. */
  extra_claims: string[];
  /** "scope": the ID token carries the user claims of the granted scopes; "minimal": only those the claims request names. */
  id_token_claims: "scope" | "minimal";
  /** RFC 9126 §6: authorization requests only through /par. */
  require_pushed_authorization_requests: boolean;
  /** The one alg its request objects may be signed with (RFC 9101, OIDC Registration §2); null: any advertised one. */
  request_object_signing_alg: string | null;
  /** "fapi2": FAPI 2.0 Security Profile rules for this client (oauth/security-profile.ts); null: none. */
  security_profile: "fapi2" | null;
  /** RFC 7591 §2 links shown on the sign-in and consent pages (https only). */
  logo_uri: string | null;
  client_uri: string | null;
  policy_uri: string | null;
  tos_uri: string | null;
  client_id_issued_at: number;
  updated_at: number;
}

/** What the OP keeps besides the metadata: the secret's hash (C13), never the secret; for a dynamically registered client, its registration access token's hash (RFC 7592). */
export interface StoredClient extends Client {
  secret_hash: string | null;
  registration_token_hash: string | null;
  /**
   * When this client_id was (re)registered, in ms. Grants remember the registration they were made under, so deleting a
   * client and registering its client_id again revives none of the old grants (RFC 9700 §4.14).
   */
  registered_at: number;
}

export type ClientFields = Omit<Client, "client_id" | "client_id_issued_at" | "updated_at">;

interface ClientRow {
  id: string;
  secret_hash: string | null;
  client_name: string;
  redirect_uris: string;
  post_logout_redirect_uris: string;
  grant_types: string;
  response_types: string;
  token_endpoint_auth_method: string;
  scope: string;
  jwks: string | null;
  jwks_uri: string | null;
  id_token_signed_response_alg: string | null;
  backchannel_logout_uri: string | null;
  backchannel_logout_session_required: number;
  skip_consent: number;
  dpop_bound_access_tokens: number;
  refresh_token_reuse_interval: number | null;
  extra_claims: string;
  registration_token_hash: string | null;
  id_token_claims: string;
  require_pushed_authorization_requests: number;
  request_object_signing_alg: string | null;
  security_profile: string | null;
  logo_uri: string | null;
  client_uri: string | null;
  policy_uri: string | null;
  tos_uri: string | null;
  created_at: number;
  updated_at: number;
}

function toClient(row: ClientRow): StoredClient {
  return {
    client_id: row.id,
    client_name: row.client_name,
    redirect_uris: JSON.parse(row.redirect_uris) as string[],
    post_logout_redirect_uris: JSON.parse(row.post_logout_redirect_uris) as string[],
    grant_types: JSON.parse(row.grant_types) as string[],
    response_types: JSON.parse(row.response_types) as string[],
    token_endpoint_auth_method: row.token_endpoint_auth_method as Client["token_endpoint_auth_method"],
    scope: row.scope,
    jwks: row.jwks === null ? null : (JSON.parse(row.jwks) as Client["jwks"]),
    jwks_uri: row.jwks_uri,
    id_token_signed_response_alg: (row.id_token_signed_response_alg as Client["id_token_signed_response_alg"]) ?? null,
    backchannel_logout_uri: row.backchannel_logout_uri,
    backchannel_logout_session_required: row.backchannel_logout_session_required === 1,
    skip_consent: row.skip_consent === 1,
    dpop_bound_access_tokens: row.dpop_bound_access_tokens === 1,
    refresh_token_reuse_interval: row.refresh_token_reuse_interval,
    extra_claims: JSON.parse(row.extra_claims) as string[],
    id_token_claims: row.id_token_claims === "minimal" ? "minimal" : "scope",
    require_pushed_authorization_requests: row.require_pushed_authorization_requests === 1,
    request_object_signing_alg: row.request_object_signing_alg,
    security_profile: row.security_profile === "fapi2" ? "fapi2" : null,
    logo_uri: row.logo_uri ?? null,
    client_uri: row.client_uri ?? null,
    policy_uri: row.policy_uri ?? null,
    tos_uri: row.tos_uri ?? null,
    client_id_issued_at: Math.floor(row.created_at / 1000),
    updated_at: Math.floor(row.updated_at / 1000),
    secret_hash: row.secret_hash,
    registration_token_hash: row.registration_token_hash,
    registered_at: row.created_at,
  };
}

export async function getClient(db: D1Database, clientId: string): Promise<StoredClient | null> {
  // Anything not shaped like a client id is not looked up at all.
  if (!isClientId(clientId)) return null;
  const row = await selectClient(db, clientId).first<ClientRow>();
  return row === null ? null : toClient(row);
}

/** The statement that reads one client, for a D1 batch that reads it beside other rows (`clientOfRows` reads its answer). */
export function selectClient(db: D1Database, clientId: string): D1PreparedStatement {
  return db.prepare(`SELECT * FROM clients WHERE id = ?`).bind(clientId);
}

export function clientOfRows(rows: unknown[]): StoredClient | null {
  const row = rows[0] as ClientRow | undefined;
  return row === undefined ? null : toClient(row);
}

export async function listClients(db: D1Database): Promise<StoredClient[]> {
  const { results } = await db.prepare(`SELECT * FROM clients ORDER BY created_at DESC`).all<ClientRow>();
  return results.map(toClient);
}

// Changes to clients: each applied together with its audit event in one D1 batch (one transaction), so the change
// and its record commit together or not at all.

export interface ClientChangeAudit {
  /** Who asked (the admin API, with the caller's address). */
  actor: string;
  data: AuditData;
  /** Through what: the admin API (`admin.client.*` events, the default) or dynamic registration (`registration.client.*`). */
  by?: "admin" | "registration";
}

function clientEvent(audit: ClientChangeAudit, change: "created" | "updated" | "deleted", clientId: string) {
  const by = audit.by ?? "admin";
  return { type: `${by}.client.${change}`, source: by, actor: audit.actor, subject: clientId, clientId, data: audit.data };
}

/** The metadata columns, in one order, with their values as stored (lists and key sets as JSON, flags as 0/1). */
function metadataColumns(fields: ClientFields): Array<[string, string | number | null]> {
  return [
    ["client_name", fields.client_name],
    ["redirect_uris", JSON.stringify(fields.redirect_uris)],
    ["post_logout_redirect_uris", JSON.stringify(fields.post_logout_redirect_uris)],
    ["grant_types", JSON.stringify(fields.grant_types)],
    ["response_types", JSON.stringify(fields.response_types)],
    ["token_endpoint_auth_method", fields.token_endpoint_auth_method],
    ["scope", fields.scope],
    ["jwks", fields.jwks === null ? null : JSON.stringify(fields.jwks)],
    ["jwks_uri", fields.jwks_uri],
    ["id_token_signed_response_alg", fields.id_token_signed_response_alg],
    ["backchannel_logout_uri", fields.backchannel_logout_uri],
    ["backchannel_logout_session_required", fields.backchannel_logout_session_required ? 1 : 0],
    ["skip_consent", fields.skip_consent ? 1 : 0],
    ["dpop_bound_access_tokens", fields.dpop_bound_access_tokens ? 1 : 0],
    ["refresh_token_reuse_interval", fields.refresh_token_reuse_interval],
    ["id_token_claims", fields.id_token_claims],
    ["require_pushed_authorization_requests", fields.require_pushed_authorization_requests ? 1 : 0],
    ["request_object_signing_alg", fields.request_object_signing_alg],
    ["security_profile", fields.security_profile],
    ["extra_claims", JSON.stringify(fields.extra_claims)],
    ["logo_uri", fields.logo_uri],
    ["client_uri", fields.client_uri],
    ["policy_uri", fields.policy_uri],
    ["tos_uri", fields.tos_uri],
  ];
}

/** Inserts a client and its `admin.client.created` (or `registration.client.created`) event. */
export async function insertClient(
  db: D1Database,
  clientId: string,
  fields: ClientFields,
  secretHash: string | null,
  audit: ClientChangeAudit,
  /** RFC 7592: the hash of the registration access token of a client that registered itself. */
  registrationTokenHash: string | null = null,
): Promise<void> {
  const now = Date.now();
  const columns = metadataColumns(fields);
  const names = ["id", "secret_hash", "registration_token_hash", ...columns.map(([name]) => name), "created_at", "updated_at"];
  await db.batch([
    db
      .prepare(`INSERT INTO clients (${names.join(", ")}) VALUES (${names.map(() => "?").join(", ")})`)
      .bind(clientId, secretHash, registrationTokenHash, ...columns.map(([, value]) => value), now, now),
    adminAuditStatement(db, clientEvent(audit, "created", clientId), now, false),
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
  // Time in a Worker only moves across I/O: make sure the version moves even within one millisecond.
  const now = Math.max(Date.now(), expectedUpdatedAt + 1);
  const columns: Array<[string, string | number | null]> = [...metadataColumns(fields), ...(secretHash !== undefined ? [["secret_hash", secretHash] as [string, string | null]] : []), ["updated_at", now]];
  const [update] = await db.batch([
    db
      .prepare(`UPDATE clients SET ${columns.map(([name]) => `${name} = ?`).join(", ")} WHERE id = ? AND updated_at = ?`)
      .bind(...columns.map(([, value]) => value), clientId, expectedUpdatedAt),
    adminAuditStatement(db, clientEvent(audit, "updated", clientId), now, true),
  ]);
  return update!.meta.changes > 0;
}

/** Deletes a client (its consents go with it, by foreign key) and records `admin.client.deleted`. False: no such client. */
export async function deleteClient(db: D1Database, clientId: string, audit: ClientChangeAudit): Promise<boolean> {
  const now = Date.now();
  const [removal] = await db.batch([
    db.prepare(`DELETE FROM clients WHERE id = ?`).bind(clientId),
    adminAuditStatement(db, clientEvent(audit, "deleted", clientId), now, true),
  ]);
  return removal!.meta.changes > 0;
}

/** The stored version of a client (ms), for compare-and-swap updates; null when there is no such client. */
export async function clientVersion(db: D1Database, clientId: string): Promise<number | null> {
  const row = await db.prepare(`SELECT updated_at FROM clients WHERE id = ?`).bind(clientId).first<{ updated_at: number }>();
  return row === null ? null : row.updated_at;
}

/** What a page names a client by, and whether it is told of logouts (a back-channel logout URI is registered). */
export interface ClientSummary {
  client_id: string;
  client_name: string;
  backchannel_logout: boolean;
}

/** The clients of `ids` that still exist, in the order of `ids`: one query, at most 50 of them. */
export async function clientSummaries(db: D1Database, ids: string[]): Promise<ClientSummary[]> {
  const wanted = [...new Set(ids.filter(isClientId))].slice(0, 50);
  if (wanted.length === 0) return [];
  const { results } = await db
    .prepare(`SELECT id, client_name, backchannel_logout_uri IS NOT NULL AS backchannel FROM clients WHERE id IN (${wanted.map(() => "?").join(", ")})`)
    .bind(...wanted)
    .all<{ id: string; client_name: string; backchannel: number }>();
  const byId = new Map(results.map((r) => [r.id, r]));
  return wanted.flatMap((id) => {
    const row = byId.get(id);
    return row ? [{ client_id: id, client_name: row.client_name, backchannel_logout: row.backchannel === 1 }] : [];
  });
}
