import type { AuditData } from "../db/audit";
import { clientVersion, deleteClient, getClient, insertClient, listClients, updateClient, type ClientChangeAudit, type ClientFields, type StoredClient } from "../db/clients";
import type { Env } from "../env";
import { randomToken } from "../lib/crypto";
import { isClientId } from "../lib/ids";
import { SIGNING_ALGS, type SigningAlg } from "../objects/key-manager";
import { keyManager } from "../objects/locate";
import { hashClientSecret } from "../oauth/client-auth";
import { newClientFields, parseClientMetadata, updatedClientFields, usesClientSecret } from "../oauth/client-metadata";
import { OAuthError } from "../oauth/errors";
import { readJsonObject } from "./support/params";
import { adminActor, notFound, type AdminHandler } from "./support/admin-auth";
import { jsonResponse } from "./support/respond";

/**
 * The admin API: clients CRUD in RFC 7591 metadata names (plus `skip_consent`), keys. A user's sessions, "sign out
 * everywhere" and logout notices are in admin-sessions.ts. The admin checks are routes/support/admin-auth.ts. Every change is written to D1 with its audit event in one batch; nothing is cached, so an update is in force for
 * every request that starts after it returns (C5).
 */

/** A PATCH that loses a compare-and-swap race is re-applied on the new version this many times, then reported. */
const UPDATE_ATTEMPTS = 3;

function auditOf(env: Env, request: Request, data: AuditData): ClientChangeAudit {
  const { actor, remote_ip } = adminActor(env, request);
  return { actor, data: { ...data, remote_ip } };
}

/** RFC 7591 §3.2.1: the registered metadata; the secret only when it was just issued (and never its hash). */
function clientView(client: StoredClient, secret: string | null = null) {
  const { secret_hash: _hash, registration_token_hash: _registration, registered_at: _registered, ...metadata } = client;
  return secret === null ? metadata : { ...metadata, client_secret: secret, client_secret_expires_at: 0 };
}

async function storedClient(env: Env, clientId: string): Promise<StoredClient> {
  const client = await getClient(env.DB, clientId);
  if (client === null) throw notFound("client");
  return client;
}

/**
 * POST /admin/clients → 201 with the metadata and, for a client_secret_* client, the secret (shown this once).
 * The id is random unless the admin names one (`client_id`, an extension for seeding); a taken id → 409.
 */
export const createClient: AdminHandler = async (request, env) => {
  const { client_id: chosenId, ...metadata } = await readJsonObject(request);
  if (chosenId !== undefined && (typeof chosenId !== "string" || !isClientId(chosenId))) {
    throw new OAuthError("invalid_client_metadata", "client_id: must be 1 to 128 characters of A-Z a-z 0-9 . _ ~ -");
  }
  const fields = newClientFields(parseClientMetadata(metadata));
  const clientId = chosenId ?? randomToken(16);
  if (chosenId !== undefined && (await getClient(env.DB, clientId)) !== null) {
    throw new OAuthError("invalid_request", "a client with this client_id exists", { status: 409 });
  }
  const secret = usesClientSecret(fields.token_endpoint_auth_method) ? randomToken(32) : null;
  const secretHash = secret === null ? null : await hashClientSecret(secret);
  // A concurrent create with the same chosen id loses on the primary key: the batch fails as a whole, nothing is written.
  try {
    await insertClient(
      env.DB,
      clientId,
      fields,
      secretHash,
      auditOf(env, request, {
        client_name: fields.client_name,
        grant_types: fields.grant_types,
        token_endpoint_auth_method: fields.token_endpoint_auth_method,
        redirect_uris: fields.redirect_uris,
        secret_issued: secret !== null,
      }),
    );
  } catch (error) {
    if (chosenId !== undefined && (await getClient(env.DB, clientId)) !== null) {
      throw new OAuthError("invalid_request", "a client with this client_id exists", { status: 409 });
    }
    throw error;
  }
  const client = await storedClient(env, clientId);
  return jsonResponse(clientView(client, secret), { status: 201, headers: { location: `/admin/clients/${clientId}` } });
};

/** GET /admin/clients */
export const listClientsRoute: AdminHandler = async (_request, env) => {
  const clients = await listClients(env.DB);
  return jsonResponse({ clients: clients.map((c) => clientView(c)) });
};

/** GET /admin/clients/:id */
export const getClientRoute: AdminHandler = async (request, env) => {
  return jsonResponse(clientView(await storedClient(env, String(request.params.id ?? ""))));
};

const METADATA_MEMBERS = [
  "client_name", "redirect_uris", "post_logout_redirect_uris", "grant_types", "response_types", "token_endpoint_auth_method",
  "scope", "jwks", "jwks_uri", "id_token_signed_response_alg", "skip_consent", "refresh_token_reuse_interval", "id_token_claims",
  "backchannel_logout_uri", "backchannel_logout_session_required",
  "require_pushed_authorization_requests", "dpop_bound_access_tokens", "request_object_signing_alg", "security_profile", "extra_claims",
  "logo_uri", "client_uri", "policy_uri", "tos_uri",
] as const satisfies readonly (keyof ClientFields)[];

function changedMembers(before: StoredClient, after: ClientFields): string[] {
  return METADATA_MEMBERS.filter((m) => JSON.stringify(before[m]) !== JSON.stringify(after[m]));
}

/**
 * PATCH /admin/clients/:id — the members sent replace the stored ones; the result is validated as a whole.
 * `{"rotate_secret": true}` issues a new secret (returned once). Switching to a client_secret_* method issues one
 * too; switching away erases the stored hash. Applied as a compare-and-swap on the version read.
 */
export const updateClientRoute: AdminHandler = async (request, env) => {
  const clientId = String(request.params.id ?? "");
  const { rotate_secret: rotate = false, ...metadata } = await readJsonObject(request);
  if (typeof rotate !== "boolean") throw new OAuthError("invalid_client_metadata", "rotate_secret: must be a boolean");
  const input = parseClientMetadata(metadata);
  for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
    // The version is read before the client: if the swap below succeeds, the client read is that version.
    const version = await clientVersion(env.DB, clientId);
    const current = version === null ? null : await getClient(env.DB, clientId);
    if (version === null || current === null) throw notFound("client");
    const fields = updatedClientFields(current, input);
    const confidential = usesClientSecret(fields.token_endpoint_auth_method);
    if (rotate && !confidential) {
      throw new OAuthError("invalid_client_metadata", `rotate_secret: a ${fields.token_endpoint_auth_method} client has no secret`);
    }
    const secret = confidential && (rotate || current.secret_hash === null) ? randomToken(32) : null;
    const secretHash = secret !== null ? await hashClientSecret(secret) : !confidential && current.secret_hash !== null ? null : undefined;
    const changed = changedMembers(current, fields);
    if (changed.length === 0 && secretHash === undefined) return jsonResponse(clientView(current));
    const applied = await updateClient(
      env.DB,
      clientId,
      version,
      fields,
      secretHash,
      auditOf(env, request, { changed, secret_rotated: secret !== null, secret_removed: secretHash === null }),
    );
    if (applied) return jsonResponse(clientView(await storedClient(env, clientId), secret));
  }
  throw new OAuthError("invalid_request", "the client was changed concurrently; retry", { status: 409 });
};

/** DELETE /admin/clients/:id → 204. Its remembered consents go with it. */
export const deleteClientRoute: AdminHandler = async (request, env) => {
  const clientId = String(request.params.id ?? "");
  const deleted = await deleteClient(env.DB, clientId, auditOf(env, request, {}));
  if (!deleted) throw notFound("client");
  return new Response(null, { status: 204, headers: { "cache-control": "no-store" } });
};

/** GET /admin/keys — the signing keys and their states (never private material). */
export const listSigningKeys: AdminHandler = async (_request, env) => {
  return jsonResponse({ keys: await keyManager(env).listKeys() });
};

/**
 * POST /admin/keys/rotate — rotate now (C19), optionally `{"alg": "RS256" | "ES256"}`. The old key keeps verifying for
 * the overlap; isolates pick up the new key within the key cache lifetime.
 */
export const rotateSigningKeys: AdminHandler = async (request, env) => {
  const hasBody = (request.headers.get("content-length") ?? "0") !== "0" || request.headers.has("content-type");
  const body = hasBody ? await readJsonObject(request) : {};
  const alg = body.alg;
  if (alg !== undefined && !(SIGNING_ALGS as readonly unknown[]).includes(alg)) {
    throw new OAuthError("invalid_request", `alg: must be one of ${SIGNING_ALGS.join(", ")}`);
  }
  const rotated = await keyManager(env).rotateKeys(alg as SigningAlg | undefined, "admin");
  return jsonResponse({ rotated });
};
