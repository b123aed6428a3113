import type { IRequest } from "itty-router";
import { issuerOf, loadConfig, type Config } from "../config";
import { clientVersion, deleteClient, getClient, insertClient, updateClient, type ClientChangeAudit, type StoredClient } from "../db/clients";
import type { Env } from "../env";
import { randomToken, sha256Base64url, timingSafeEqualStrings } from "../lib/crypto";
import { bearerChallenge } from "../oauth/bearer";
import { hashClientSecret } from "../oauth/client-auth";
import { ADMIN_ONLY_MEMBERS, newClientFields, parseClientMetadata, usesClientSecret } from "../oauth/client-metadata";
import { OAuthError } from "../oauth/errors";
import { methodNotAllowed, notFound } from "./support/errors";
import { readJsonObject } from "./support/params";
import { clientAddress, enforceRateLimit } from "./support/rate-limit";
import { jsonResponse } from "./support/respond";

/**
 * Dynamic client registration: RFC 7591 (POST /register) and RFC 7592 (GET, PUT, DELETE /register/:client_id with the
 * registration access token). Off unless DYNAMIC_REGISTRATION says `token` (an initial access token is required) or
 * `open`; when off, these paths do not exist (404) and discovery does not name them. The metadata goes through the one
 * validator of the admin API, as the client's own request: members that are an operator's decision are refused.
 */

type Handler = (request: IRequest, env: Env, ctx: ExecutionContext) => Promise<Response>;

/** A PUT that loses a compare-and-swap race is re-applied on the new version this many times, then reported (409). */
const UPDATE_ATTEMPTS = 3;

/** The registration access token (RFC 7592 §1.1): random, shown once, stored hashed. */
const REGISTRATION_TOKEN_BYTES = 32;

/** Registration is on; each call counts against the per-address limit (an open endpoint that creates rows). */
async function registrationEnabled(request: Request, env: Env): Promise<Config | null> {
  const config = loadConfig(env);
  if (config.dynamicRegistration === "off") return null;
  await enforceRateLimit(env, `registration:ip:${clientAddress(env, request)}`, config.rateLimitRegistration);
  return config;
}

function bearerOf(request: Request): string | null {
  const header = request.headers.get("authorization");
  if (header === null || header.trim() === "") return null;
  const match = /^Bearer +([\x21-\x7e]{1,1024})$/i.exec(header);
  return match ? match[1]! : "";
}

function unauthorized(realm: string, description: string, presented: boolean): OAuthError {
  // RFC 6750 §3.1: without credentials, the challenge carries no error code.
  return new OAuthError("invalid_token", description, { status: 401, headers: presented ? bearerChallenge(realm, "invalid_token") : bearerChallenge(realm) });
}

function auditOf(env: Env, request: Request, clientId: string | null, data: Record<string, string | number | boolean | null | string[]> = {}): ClientChangeAudit {
  return { actor: clientId === null ? "dynamic-registration" : `client:${clientId}`, by: "registration", data: { ...data, remote_ip: clientAddress(env, request) } };
}

/** RFC 7591 §3.2.1 / RFC 7592 §3: the registered metadata, the endpoints' token and URI; a secret only when just issued. */
function registrationView(issuer: string, client: StoredClient, registrationToken: string, secret: string | null) {
  const { secret_hash: _s, registration_token_hash: _r, updated_at: _u, ...metadata } = client;
  for (const member of ADMIN_ONLY_MEMBERS) delete (metadata as Record<string, unknown>)[member];
  // RFC 7591 §3.2.1: members that are not set are left out (a null would read as a value to a client library).
  const present = Object.fromEntries(Object.entries(metadata).filter(([, value]) => value !== null));
  return {
    ...present,
    ...(secret === null ? {} : { client_secret: secret, client_secret_expires_at: 0 }),
    registration_access_token: registrationToken,
    registration_client_uri: `${issuer}/register/${encodeURIComponent(client.client_id)}`,
  };
}

/** POST /register (RFC 7591 §3.1) → 201 with the client, its secret (for client_secret_* methods) and the registration access token. */
export const register: Handler = async (request, env) => {
  const config = await registrationEnabled(request, env);
  if (config === null) return notFound(request);
  const issuer = issuerOf(env, request);
  if (config.dynamicRegistration === "token") {
    const presented = bearerOf(request);
    if (presented === null) throw unauthorized(issuer, "an initial access token is required to register", false);
    if (!(await timingSafeEqualStrings(presented, config.initialAccessToken))) throw unauthorized(issuer, "the initial access token is not valid", true);
  }
  const fields = newClientFields(parseClientMetadata(await readJsonObject(request), "client"));
  const clientId = randomToken(16);
  const secret = usesClientSecret(fields.token_endpoint_auth_method) ? randomToken(32) : null;
  const registrationToken = randomToken(REGISTRATION_TOKEN_BYTES);
  await insertClient(
    env.DB,
    clientId,
    fields,
    secret === null ? null : await hashClientSecret(secret),
    auditOf(env, request, null, { client_name: fields.client_name, redirect_uris: fields.redirect_uris, token_endpoint_auth_method: fields.token_endpoint_auth_method }),
    await sha256Base64url(registrationToken),
  );
  const client = (await getClient(env.DB, clientId))!;
  return jsonResponse(registrationView(issuer, client, registrationToken, secret), { status: 201, headers: { location: `${issuer}/register/${clientId}` } });
};

/**
 * The client a registration access token is for (RFC 7592 §2). Anything else — no token, a wrong one, a client that
 * does not exist or was registered by an administrator — is the same 401, so the endpoint says nothing about which.
 */
async function registeredClient(request: IRequest, env: Env): Promise<{ issuer: string; client: StoredClient; token: string } | Response> {
  const config = await registrationEnabled(request, env);
  if (config === null) return notFound(request);
  const issuer = issuerOf(env, request);
  const token = bearerOf(request);
  if (token === null) throw unauthorized(issuer, "the registration access token is required", false);
  const client = await getClient(env.DB, String(request.params.client_id ?? ""));
  const expected = client?.registration_token_hash ?? "";
  // Hashed first, so the comparison takes the same time whether or not a client was found.
  const matches = await timingSafeEqualStrings(await sha256Base64url(token), expected);
  if (client === null || expected === "" || !matches) throw unauthorized(issuer, "the registration access token is not valid for this client", true);
  return { issuer, client, token };
}

/** GET /register/:client_id (RFC 7592 §2.1). */
export const readRegistration: Handler = async (request, env) => {
  const found = await registeredClient(request, env);
  if (found instanceof Response) return found;
  return jsonResponse(registrationView(found.issuer, found.client, found.token, null));
};

/** Members of the RFC 7592 §2.2 request that are not metadata: they must match, or are the server's to set. */
const SERVER_MEMBERS = ["client_id", "client_secret", "client_id_issued_at", "client_secret_expires_at", "registration_access_token", "registration_client_uri"];

/**
 * PUT /register/:client_id (RFC 7592 §2.2): the metadata sent replaces all of it — members left out take their
 * defaults — with the same validation as a registration; what only an administrator may set stays as it is. A
 * compare-and-swap on the version read, like the admin API's updates (C5). A client that changes to a
 * client_secret_* method gets a secret (in the answer, once); one that changes away loses it.
 */
export const updateRegistration: Handler = async (request, env) => {
  const found = await registeredClient(request, env);
  if (found instanceof Response) return found;
  const { issuer, client: current, token } = found;
  const body = await readJsonObject(request);
  if (body.client_id !== current.client_id) throw new OAuthError("invalid_request", "client_id: must be the client's identifier (RFC 7592 §2.2)");
  if (body.client_secret !== undefined && (typeof body.client_secret !== "string" || current.secret_hash === null || (await hashClientSecret(body.client_secret)) !== current.secret_hash)) {
    throw new OAuthError("invalid_request", "client_secret: must be the client's current secret, or left out");
  }
  const metadata = Object.fromEntries(Object.entries(body).filter(([member]) => !SERVER_MEMBERS.includes(member)));
  const sent = newClientFields(parseClientMetadata(metadata, "client"));
  for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
    // The version is read before the client: if the swap below succeeds, the client read is that version.
    const version = await clientVersion(env.DB, current.client_id);
    const stored = version === null ? null : await getClient(env.DB, current.client_id);
    if (version === null || stored === null) throw unauthorized(issuer, "the registration access token is not valid for this client", true);
    const fields = { ...sent, skip_consent: stored.skip_consent, extra_claims: stored.extra_claims, refresh_token_reuse_interval: stored.refresh_token_reuse_interval };
    const confidential = usesClientSecret(fields.token_endpoint_auth_method);
    const secret = confidential && stored.secret_hash === null ? randomToken(32) : null;
    const secretHash = secret !== null ? await hashClientSecret(secret) : !confidential && stored.secret_hash !== null ? null : undefined;
    const applied = await updateClient(env.DB, stored.client_id, version, fields, secretHash, auditOf(env, request, stored.client_id, { secret_issued: secret !== null }));
    if (applied) return jsonResponse(registrationView(issuer, (await getClient(env.DB, stored.client_id))!, token, secret));
  }
  throw new OAuthError("invalid_request", "the registration was changed concurrently; retry", { status: 409 });
};

/** DELETE /register/:client_id (RFC 7592 §2.3) → 204; the client and its token are gone, so a further call is 401. */
export const deleteRegistration: Handler = async (request, env) => {
  const found = await registeredClient(request, env);
  if (found instanceof Response) return found;
  await deleteClient(env.DB, found.client.client_id, auditOf(env, request, found.client.client_id));
  return new Response(null, { status: 204, headers: { "cache-control": "no-store" } });
};

/** Another method on a registration path: 405 while registration is on, and the 404 of an unknown path while it is off. */
export function registrationMethodNotAllowed(request: Request, env: Env, allow: string): Response {
  if (loadConfig(env).dynamicRegistration === "off") return notFound(request);
  return methodNotAllowed(allow);
}
