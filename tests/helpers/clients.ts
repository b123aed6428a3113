import { env } from "cloudflare:test";
import { clientVersion, getClient, insertClient, updateClient, type ClientFields, type StoredClient } from "../../src/db/clients";
import { randomToken } from "../../src/lib/crypto";

/** Clients registered straight into D1 through the same audited writes the admin API uses. */

const TEST_AUDIT = { actor: "test", data: {} };

export const CLIENT_DEFAULTS: ClientFields = {
  client_name: "Test client",
  redirect_uris: ["https://rp.example/callback"],
  post_logout_redirect_uris: [],
  grant_types: ["authorization_code", "refresh_token"],
  response_types: ["code"],
  token_endpoint_auth_method: "client_secret_basic",
  scope: "openid profile email address phone offline_access",
  jwks: null,
  jwks_uri: null,
  id_token_signed_response_alg: null,
  backchannel_logout_uri: null,
  backchannel_logout_session_required: false,
  skip_consent: false,
  dpop_bound_access_tokens: false,
  refresh_token_reuse_interval: null,
  id_token_claims: "scope",
  require_pushed_authorization_requests: false,
  request_object_signing_alg: null,
  security_profile: null,
  logo_uri: null,
  client_uri: null,
  policy_uri: null,
  tos_uri: null,
  extra_claims: [],
};

export async function registerClient(fields: Partial<ClientFields>, secretHash: string | null, idPrefix = "client"): Promise<StoredClient> {
  const clientId = `${idPrefix}-${randomToken(8)}`;
  await insertClient(env.DB, clientId, { ...CLIENT_DEFAULTS, ...fields }, secretHash, TEST_AUDIT);
  return (await getClient(env.DB, clientId))!;
}

/** An admin-style change: some fields (and the secret hash when given) replaced, in force for the next request (C5). */
export async function patchClient(clientId: string, fields: Partial<ClientFields>, secretHash?: string | null): Promise<void> {
  const version = (await clientVersion(env.DB, clientId))!;
  const { secret_hash: _hash, registered_at: _registered, client_id: _id, client_id_issued_at: _issued, updated_at: _updated, ...current } = (await getClient(env.DB, clientId))!;
  const applied = await updateClient(env.DB, clientId, version, { ...current, ...fields }, secretHash, TEST_AUDIT);
  if (!applied) throw new Error("client changed concurrently");
}
