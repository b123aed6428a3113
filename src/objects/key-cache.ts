import { createLocalJWKSet, errors, importJWK, jwtVerify, type JWK, type JWTPayload, type JWTVerifyOptions, type JWTVerifyResult } from "jose";
import { loadConfig } from "../config";
import type { Env } from "../env";
import { SIGNING_ALGS, type Jwks, type SigningAlg } from "./key-manager";
import { keyManager } from "./locate";

/**
 * The Worker's view of the signing keys. The key manager object is the truth; this isolate keeps its answers for
 * `keyCacheTtl` seconds so that signing and JWKS do not cost a round trip to one global object per request.
 * The object keeps a rotated-out key published for longer than this cache plus any token lifetime (C19).
 */

export interface CurrentSigningKey {
  kid: string;
  alg: SigningAlg;
  key: CryptoKey;
}

interface CachedJwks {
  jwks: Jwks;
  set: ReturnType<typeof createLocalJWKSet>;
}

interface CacheEntry<T> {
  value: Promise<T>;
  fetchedAt: number;
  expiresAt: number;
}

/** An unknown kid triggers at most one JWKS refetch per this interval, so forged kids cannot hammer the object. */
const JWKS_REFETCH_COOLDOWN_MS = 1000;

const signingKeys = new Map<SigningAlg, CacheEntry<CurrentSigningKey>>();
let jwksEntry: CacheEntry<CachedJwks> | null = null;

/** Forgets every cached key and JWKS (tests, and after an operator rotates keys in this isolate). */
export function clearSigningKeyCache(): void {
  signingKeys.clear();
  jwksEntry = null;
}

function cacheEntry<T>(env: Env, load: () => Promise<T>, onFailure: (entry: CacheEntry<T>) => void): CacheEntry<T> {
  const now = Date.now();
  const entry: CacheEntry<T> = { value: load(), fetchedAt: now, expiresAt: now + loadConfig(env).keyCacheTtl * 1000 };
  // A failed load is not cached: the next caller asks the object again.
  entry.value.catch(() => onFailure(entry));
  return entry;
}

/** The key to sign with now for `alg` (default: the configured one), imported as a non-extractable CryptoKey. */
export function currentSigningKey(env: Env, alg: SigningAlg = loadConfig(env).defaultSigningAlg): Promise<CurrentSigningKey> {
  const cached = signingKeys.get(alg);
  if (cached && cached.expiresAt > Date.now()) return cached.value;
  const entry = cacheEntry(
    env,
    () => loadSigningKey(env, alg),
    (failed) => {
      if (signingKeys.get(alg) === failed) signingKeys.delete(alg);
    },
  );
  signingKeys.set(alg, entry);
  return entry.value;
}

async function loadSigningKey(env: Env, alg: SigningAlg): Promise<CurrentSigningKey> {
  const material = await keyManager(env).getSigningKey(alg);
  const key = await importJWK(material.privateJwk as JWK, material.alg);
  if (!(key instanceof CryptoKey)) throw new Error(`signing key ${material.kid} did not import as a CryptoKey`);
  // A key this isolate has not seen published yet (first use, or a rotation without pre-publication): the cached
  // JWKS is older than it, so drop it rather than fail our own tokens until it expires.
  const jwks = jwksEntry;
  if (jwks) {
    const known = await jwks.value.then(
      (c) => c.jwks.keys.some((k) => k.kid === material.kid),
      () => false,
    );
    if (!known && jwksEntry === jwks) jwksEntry = null;
  }
  return { kid: material.kid, alg: material.alg, key };
}

function loadJwks(env: Env): CacheEntry<CachedJwks> {
  const entry = cacheEntry(
    env,
    async () => {
      const jwks = await keyManager(env).getJwks();
      return { jwks, set: createLocalJWKSet(jwks) };
    },
    (failed) => {
      if (jwksEntry === failed) jwksEntry = null;
    },
  );
  jwksEntry = entry;
  return entry;
}

function cachedJwks(env: Env): Promise<CachedJwks> {
  const cached = jwksEntry;
  if (cached && cached.expiresAt > Date.now()) return cached.value;
  return loadJwks(env).value;
}

/** The JWKS to publish at /jwks.json: every key not retired, public members only. */
export async function publishedJwks(env: Env): Promise<Jwks> {
  return (await cachedJwks(env)).jwks;
}

/**
 * Verifies a JWT we signed (an id_token_hint, say) against the published keys. An unknown kid refetches the JWKS
 * once (the key may be newer than this isolate's cache), at most once per cooldown. `algorithms` defaults to ours.
 */
export async function verifyWithPublishedKeys(env: Env, jwt: string, options: JWTVerifyOptions = {}): Promise<JWTVerifyResult<JWTPayload>> {
  const verifyOptions: JWTVerifyOptions = { ...options, algorithms: options.algorithms ?? [...SIGNING_ALGS] };
  const cached = await cachedJwks(env);
  try {
    return await jwtVerify(jwt, cached.set, verifyOptions);
  } catch (error) {
    if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
    const refreshed = await refreshJwks(env, cached);
    if (refreshed === null) throw error;
    return await jwtVerify(jwt, refreshed.set, verifyOptions);
  }
}

/** A JWKS newer than `stale`: a refetch started within the cooldown is shared, otherwise one new fetch. Null: none allowed. */
async function refreshJwks(env: Env, stale: CachedJwks): Promise<CachedJwks | null> {
  const entry = jwksEntry;
  if (entry && Date.now() - entry.fetchedAt < JWKS_REFETCH_COOLDOWN_MS) {
    const recent = await entry.value.catch(() => null);
    return recent === stale ? null : recent;
  }
  return await loadJwks(env).value;
}
