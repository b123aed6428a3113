import { createLocalJWKSet, errors, type JSONWebKeySet, type JWK, type JWTVerifyGetKey } from "jose";
import type { StoredClient } from "../../db/clients";
import { errorText, log } from "../../lib/log";
import { isLoopbackHostname } from "../../lib/loopback";
import { isFapi2, isShortRsaKey } from "../../oauth/security-profile";
import { readTextLimited } from "./params";

/**
 * A client's public keys, for what it signs: `private_key_jwt` assertions (RFC 7523) and request objects (RFC 9101).
 * Registered `jwks` are used as stored (read with the client on every request, C5). A `jwks_uri` is fetched — https,
 * or http on a loopback host only; no redirects; 5 s at most; 64 KiB at most — and its keys are kept in this isolate
 * for 5 minutes; a `kid` that is not among them refetches once, at most every 30 s, so a client that rotated its
 * keys is not refused for long and a stream of made-up kids cannot make the OP hammer the client's server.
 * Keys with private parts are dropped; so are RSA keys under 2048 bits for a FAPI 2.0 client.
 */

const FETCH_TIMEOUT_MS = 5_000;
const MAX_JWKS_BYTES = 64 * 1024;
const MAX_KEYS = 20;
const CACHE_MS = 5 * 60_000;
const REFETCH_COOLDOWN_MS = 30_000;
const MAX_CACHED_URIS = 256;
/** Members only a private or symmetric key has (RFC 7518 §6.2.2, §6.3.2, §6.4.1). */
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

interface Fetched {
  fetchedAt: number;
  keys: Promise<JSONWebKeySet>;
}

const fetched = new Map<string, Fetched>();

/** Forgets every fetched key set (tests). */
export function clearClientKeyCache(): void {
  fetched.clear();
}

/** The public keys of a set that may verify what `client` signs. */
function usableKeys(keys: unknown[], client: StoredClient): JWK[] {
  return keys
    .filter((key): key is JWK => typeof key === "object" && key !== null && !Array.isArray(key) && typeof (key as JWK).kty === "string")
    .filter((key) => !PRIVATE_MEMBERS.some((member) => member in key))
    .filter((key) => !(isFapi2(client) && isShortRsaKey(key as Record<string, unknown>)))
    .slice(0, MAX_KEYS);
}

/** The jwks_uri as a URL it may be fetched from, or null (then the client has no usable keys). */
function fetchableUrl(uri: string): URL | null {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    return null;
  }
  if (url.username !== "" || url.password !== "") return null;
  return url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHostname(url.hostname)) ? url : null;
}

async function download(url: URL): Promise<JSONWebKeySet> {
  const response = await fetch(url, {
    headers: { accept: "application/jwk-set+json, application/json" },
    redirect: "manual",
    signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
  });
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new Error(`jwks_uri answered ${response.status}`);
  }
  if (Number(response.headers.get("content-length") ?? "0") > MAX_JWKS_BYTES) {
    await response.body?.cancel();
    throw new Error("jwks_uri answered more than 64 KiB");
  }
  const text = await readTextLimited(response, MAX_JWKS_BYTES).catch(() => {
    throw new Error("jwks_uri answered more than 64 KiB, or not UTF-8");
  });
  const body = JSON.parse(text) as unknown;
  const keys = typeof body === "object" && body !== null && Array.isArray((body as { keys?: unknown }).keys) ? (body as { keys: unknown[] }).keys : null;
  if (keys === null) throw new Error("jwks_uri did not answer a JWK Set");
  return { keys: keys as JWK[] };
}

function fetchKeys(url: URL, clientId: string): Fetched {
  const entry: Fetched = { fetchedAt: Date.now(), keys: download(url) };
  entry.keys.catch((error: unknown) => {
    log("warn", "client_jwks.fetch_failed", { client_id: clientId, host: url.host, error: errorText(error) });
    // A failure is not kept: the next request asks again.
    if (fetched.get(url.href) === entry) fetched.delete(url.href);
  });
  if (fetched.size >= MAX_CACHED_URIS) fetched.clear();
  fetched.set(url.href, entry);
  return entry;
}

function remoteKeySet(url: URL, client: StoredClient): JWTVerifyGetKey {
  const resolve = async (entry: Fetched, header: Parameters<JWTVerifyGetKey>[0], token: Parameters<JWTVerifyGetKey>[1]) =>
    createLocalJWKSet({ keys: usableKeys((await entry.keys).keys, client) })(header, token);
  return async (header, token) => {
    const now = Date.now();
    let entry = fetched.get(url.href);
    if (entry === undefined || now - entry.fetchedAt > CACHE_MS) entry = fetchKeys(url, client.client_id);
    try {
      return await resolve(entry, header, token);
    } catch (error) {
      // An unknown kid: the client may have rotated its keys since they were fetched. Once per cooldown.
      if (!(error instanceof errors.JWKSNoMatchingKey) || Date.now() - entry.fetchedAt < REFETCH_COOLDOWN_MS) throw error;
      if (fetched.get(url.href) !== entry) return await resolve(fetched.get(url.href) ?? fetchKeys(url, client.client_id), header, token);
      return await resolve(fetchKeys(url, client.client_id), header, token);
    }
  };
}

/** The keys that verify what `client` signs, or null when it has none registered (or an unusable jwks_uri). */
export function clientKeySet(client: StoredClient): JWTVerifyGetKey | null {
  if (client.jwks && Array.isArray(client.jwks.keys) && client.jwks.keys.length > 0) {
    return createLocalJWKSet({ keys: usableKeys(client.jwks.keys, client) });
  }
  if (client.jwks_uri) {
    const url = fetchableUrl(client.jwks_uri);
    return url === null ? null : remoteKeySet(url, client);
  }
  return null;
}
