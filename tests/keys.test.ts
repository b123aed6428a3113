import { SELF, abortAllDurableObjects, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { createLocalJWKSet, errors, importJWK, jwtVerify, SignJWT, type JWK } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../src/config";
import type { KeyManager, SigningAlg } from "../src/objects/key-manager";
import { keyManager } from "../src/objects/locate";
import { clearSigningKeyCache, currentSigningKey, publishedJwks, verifyWithPublishedKeys } from "../src/objects/key-cache";

function keys(name = crypto.randomUUID()) {
  return env.KEYS.get(env.KEYS.idFromName(name));
}
type KeysStub = ReturnType<typeof keys>;

/** Runs `fn` inside the object, where calls started together interleave at every await. (The pool types the
 * instance as a bare DurableObject because the tests' Env adds TEST_MIGRATIONS, hence the cast.) */
function inKeyManager<R>(stub: KeysStub, fn: (instance: KeyManager) => Promise<R>): Promise<R> {
  return runInDurableObject(stub, (instance) => fn(instance as unknown as KeyManager));
}

const config = loadConfig(env);
const PRIVATE_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

// The objects' clocks are set years ahead, so the alarms they schedule never fire by themselves during a test:
// key maintenance happens exactly when the test runs the alarm.
const FUTURE = Date.UTC(2040, 0, 1);
beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(FUTURE);
  clearSigningKeyCache();
});
afterEach(() => vi.useRealTimers());

async function sign(stub: KeysStub, alg: SigningAlg, claims: Record<string, string> = {}) {
  const material = await stub.getSigningKey(alg);
  const key = await importJWK(material.privateJwk as JWK, alg);
  const jwt = await new SignJWT({ sub: "user-1", ...claims })
    .setProtectedHeader({ alg, kid: material.kid, typ: "JWT" })
    .setIssuer("https://op.example")
    .setAudience("client-a")
    .setIssuedAt()
    .setExpirationTime("1h")
    .sign(key);
  return { jwt, kid: material.kid };
}

async function auditTypes(kid: string): Promise<string[]> {
  const { results } = await env.DB.prepare(
    `SELECT type FROM audit_log WHERE source = 'keys' AND (json_extract(data, '$.kid') = ?1 OR json_extract(data, '$.previousKid') = ?1)
     ORDER BY occurred_at, type`,
  )
    .bind(kid)
    .all<{ type: string }>();
  return results.map((r) => r.type);
}

describe("KeyManager", () => {
  it("generates the current key on first use, persists it and audits its creation", async () => {
    const stub = keys();
    expect(await stub.listKeys()).toEqual([]);
    const first = await stub.getSigningKey("RS256");
    expect(first.alg).toBe("RS256");
    expect(first.kid).toMatch(/^[A-Za-z0-9_-]{43}$/); // RFC 7638 SHA-256 thumbprint
    expect(first.privateJwk).toMatchObject({ kty: "RSA", kid: first.kid, alg: "RS256", use: "sig" });
    expect(first.privateJwk.d).toBeTruthy();
    expect(first.expiresAt).toBe(FUTURE + config.keyRotationInterval * 1000);
    expect((await stub.getSigningKey("RS256")).kid).toBe(first.kid);
    expect(await stub.listKeys()).toEqual([
      expect.objectContaining({ kid: first.kid, state: "current", activatedAt: FUTURE, hasPrivateKey: true }),
    ]);
    // RSA 2048 (OIDC Core §15.1 requires RS256).
    const { jwt } = await sign(stub, "RS256");
    const jwks = await stub.getJwks();
    expect(jwks.keys).toHaveLength(1);
    expect(atob(jwks.keys[0]!.n!.replace(/-/g, "+").replace(/_/g, "/") + "==").length).toBe(256);
    await expect(jwtVerify(jwt, createLocalJWKSet(jwks), { issuer: "https://op.example", audience: "client-a" })).resolves.toBeTruthy();
    await runDurableObjectAlarm(stub);
    expect(await auditTypes(first.kid)).toEqual(["signing_key.created"]);
  });

  it("20 concurrent first calls on a fresh object end with exactly one key", async () => {
    const stub = keys();
    const results = await Promise.all(Array.from({ length: 20 }, () => stub.getSigningKey("RS256")));
    const kids = new Set(results.map((r) => r.kid));
    expect(kids.size).toBe(1);
    const listed = await stub.listKeys();
    expect(listed).toHaveLength(1);
    expect(listed[0]).toMatchObject({ kid: [...kids][0], state: "current" });
    expect((await stub.getJwks()).keys.map((k) => k.kid)).toEqual([...kids]);
  });

  it("first calls interleaved inside one event also agree on one key (the loser discards its own)", async () => {
    // WebCrypto in workerd settles within microtasks, so separate RPC events rarely overlap; calls started in the
    // same event do interleave at every await: each generates a key, and only the transaction decides.
    const stub = keys();
    const kids = await inKeyManager(stub, async (instance) => {
      const results = await Promise.all(Array.from({ length: 20 }, () => instance.getSigningKey("ES256")));
      return results.map((r) => r.kid);
    });
    expect(new Set(kids).size).toBe(1);
    expect(await stub.listKeys()).toEqual([expect.objectContaining({ kid: kids[0], state: "current" })]);
    await runDurableObjectAlarm(stub);
    expect(await auditTypes(kids[0]!)).toEqual(["signing_key.created"]);
  });

  it("JWKS holds only public members", async () => {
    const stub = keys();
    await stub.getSigningKey("RS256");
    await stub.getSigningKey("ES256");
    await stub.rotateKeys("RS256");
    const jwks = await stub.getJwks();
    expect(jwks.keys).toHaveLength(3);
    for (const jwk of jwks.keys) {
      for (const member of PRIVATE_MEMBERS) expect(jwk).not.toHaveProperty(member);
      expect(jwk.use).toBe("sig");
      expect(Object.keys(jwk).sort()).toEqual(jwk.kty === "RSA" ? ["alg", "e", "kid", "kty", "n", "use"] : ["alg", "crv", "kid", "kty", "use", "x", "y"]);
    }
    // Every member would be rejected by jose as a private key if one slipped in.
    expect(() => createLocalJWKSet(jwks)).not.toThrow();
  });

  it("publishes the default key even before anything was signed", async () => {
    const stub = keys();
    const jwks = await stub.getJwks();
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ alg: config.defaultSigningAlg, kid: (await stub.getSigningKey(config.defaultSigningAlg)).kid });
  });

  it("ES256 works alongside RS256", async () => {
    const stub = keys();
    const rsa = await stub.getSigningKey("RS256");
    const ec = await stub.getSigningKey("ES256");
    expect(ec.privateJwk).toMatchObject({ kty: "EC", crv: "P-256", alg: "ES256" });
    expect(ec.kid).not.toBe(rsa.kid);
    const { jwt } = await sign(stub, "ES256");
    const jwks = await stub.getJwks();
    expect(jwks.keys.map((k) => k.kid).sort()).toEqual([rsa.kid, ec.kid].sort());
    const { protectedHeader } = await jwtVerify(jwt, createLocalJWKSet(jwks));
    expect(protectedHeader).toMatchObject({ alg: "ES256", kid: ec.kid });
    // On the instance: a rejected stub call is also reported as an "uncaught exception" by the test pool (workers-sdk#14736).
    const refused = await inKeyManager(stub, (o) => o.getSigningKey("HS256" as SigningAlg)).then(
      () => null,
      (error: unknown) => error,
    );
    expect(String(refused)).toMatch(/unsupported signing alg/);
  });

  it("rotation keeps the old key published for the overlap, then retires it (C19)", async () => {
    const stub = keys();
    const old = await sign(stub, "RS256");
    vi.setSystemTime(FUTURE + 1000);
    const [rotation] = await stub.rotateKeys("RS256", "test");
    const overlap = Math.max(config.keyOverlap, Math.max(config.idTokenTtl, config.accessTokenTtl) + config.keyCacheTtl) * 1000;
    expect(rotation).toMatchObject({ alg: "RS256", previousKid: old.kid, retireAfter: FUTURE + 1000 + overlap });
    expect(config.keyOverlap).toBeGreaterThanOrEqual(Math.max(config.idTokenTtl, config.accessTokenTtl));

    const fresh = await stub.getSigningKey("RS256");
    expect(fresh.kid).toBe(rotation!.kid);
    expect(fresh.kid).not.toBe(old.kid);
    const jwks = await stub.getJwks();
    expect(jwks.keys.map((k) => k.kid)).toEqual([fresh.kid, old.kid]);
    // A token signed just before rotation still verifies; so does one signed with the new key.
    await expect(jwtVerify(old.jwt, createLocalJWKSet(jwks))).resolves.toBeTruthy();
    const next = await sign(stub, "RS256");
    expect(next.kid).toBe(fresh.kid);
    await expect(jwtVerify(next.jwt, createLocalJWKSet(jwks))).resolves.toBeTruthy();

    // Just before the overlap ends the alarm changes nothing.
    vi.setSystemTime(FUTURE + 1000 + overlap - 1);
    await runDurableObjectAlarm(stub);
    expect((await stub.getJwks()).keys.map((k) => k.kid)).toContain(old.kid);

    // After it, the alarm retires the old key: unpublished, private part erased.
    vi.setSystemTime(FUTURE + 1000 + overlap + 1);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const after = await stub.getJwks();
    expect(after.keys.map((k) => k.kid)).toEqual([fresh.kid]);
    expect(await stub.listKeys()).toEqual(
      expect.arrayContaining([expect.objectContaining({ kid: old.kid, state: "retired", hasPrivateKey: false })]),
    );
    await expect(jwtVerify(old.jwt, createLocalJWKSet(after), { currentDate: new Date(FUTURE + 2000) })).rejects.toBeInstanceOf(
      errors.JWKSNoMatchingKey,
    );
    await runDurableObjectAlarm(stub); // delivers the audit events
    expect(await auditTypes(old.kid)).toEqual(["signing_key.created", "signing_key.rotated", "signing_key.retired"]);
    expect(await auditTypes(fresh.kid)).toEqual(["signing_key.created", "signing_key.rotated"]);
  });

  it("rotateIfDue pre-publishes the successor, rotates when due and retires after the overlap", async () => {
    const stub = keys();
    const first = await stub.getSigningKey("RS256");
    const interval = config.keyRotationInterval * 1000;

    expect(await stub.rotateIfDue()).toEqual({ rotated: [], published: [], retired: [] });

    // Some time before rotation, a `next` key is published but does not sign yet.
    vi.setSystemTime(FUTURE + interval - 60_000);
    const early = await stub.rotateIfDue();
    expect(early.rotated).toEqual([]);
    expect(early.published).toHaveLength(1);
    const nextKid = early.published[0]!;
    expect((await stub.getSigningKey("RS256")).kid).toBe(first.kid);
    expect((await stub.getJwks()).keys.map((k) => k.kid)).toEqual([first.kid, nextKid]);

    // When due, the pre-published key is promoted; cron and alarm together rotate once.
    vi.setSystemTime(FUTURE + interval + 1);
    const [a, b] = await Promise.all([stub.rotateIfDue(), stub.rotateIfDue()]);
    expect([...a.rotated, ...b.rotated]).toEqual([expect.objectContaining({ kid: nextKid, previousKid: first.kid })]);
    expect((await stub.getSigningKey("RS256")).kid).toBe(nextKid);
    expect((await stub.getJwks()).keys.map((k) => k.kid)).toEqual([nextKid, first.kid]);

    vi.setSystemTime(FUTURE + interval + 1 + config.keyOverlap * 1000 + 1);
    const late = await stub.rotateIfDue();
    expect(late.retired).toEqual([first.kid]);
    expect((await stub.getJwks()).keys.map((k) => k.kid)).toEqual([nextKid]);
  });

  it("concurrent maintenance runs rotate a due key once", async () => {
    const stub = keys();
    const first = await stub.getSigningKey("RS256");
    vi.setSystemTime(FUTURE + config.keyRotationInterval * 1000 + 1);
    // Nothing was pre-published, so each run generates a successor at an await; the transaction re-checks "due".
    const runs = await inKeyManager(stub, (instance) => Promise.all(Array.from({ length: 5 }, () => instance.rotateIfDue())));
    const rotations = runs.flatMap((r) => r.rotated);
    expect(rotations).toEqual([expect.objectContaining({ previousKid: first.kid })]);
    const states = (await stub.listKeys()).map((k) => k.state).sort();
    expect(states).toEqual(["current", "previous"]);
  });

  it("the alarm alone rotates a key that is due", async () => {
    const stub = keys();
    const first = await stub.getSigningKey("ES256");
    await runDurableObjectAlarm(stub);
    vi.setSystemTime(FUTURE + config.keyRotationInterval * 1000 + 1);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const now = await stub.getSigningKey("ES256");
    expect(now.kid).not.toBe(first.kid);
    expect((await stub.listKeys()).find((k) => k.kid === first.kid)?.state).toBe("previous");
  });

  it("keys survive a restart: the same kid stays current (C2)", async () => {
    const name = crypto.randomUUID();
    const rsa = await keys(name).getSigningKey("RS256");
    const ec = await keys(name).getSigningKey("ES256");
    await keys(name).rotateKeys("ES256");
    const ecNow = await keys(name).getSigningKey("ES256");
    const jwksBefore = await keys(name).getJwks();
    await abortAllDurableObjects();
    expect(await keys(name).getSigningKey("RS256")).toEqual(rsa);
    expect((await keys(name).getSigningKey("ES256")).kid).toBe(ecNow.kid);
    expect(await keys(name).getJwks()).toEqual(jwksBefore);
    expect((await keys(name).getJwks()).keys.map((k) => k.kid)).toContain(ec.kid);
    expect(await keys(name).listKeys()).toHaveLength(3);
  });
});

describe("Worker-side signing key cache", () => {
  it("returns the same key until the cache is cleared, then picks up a rotation", async () => {
    const manager = keyManager(env);
    const a = await currentSigningKey(env, "RS256");
    const b = await currentSigningKey(env, "RS256");
    expect(b).toBe(a);
    expect(a.kid).toBe((await manager.getSigningKey("RS256")).kid);
    expect(a.key.type).toBe("private");
    expect(a.key.extractable).toBe(false);

    const [rotation] = await manager.rotateKeys("RS256", "test");
    // Still cached: memory is a cache of the object, for keyCacheTtl.
    expect((await currentSigningKey(env, "RS256")).kid).toBe(a.kid);
    clearSigningKeyCache();
    expect((await currentSigningKey(env, "RS256")).kid).toBe(rotation!.kid);
  });

  it("the cache expires after keyCacheTtl", async () => {
    const manager = keyManager(env);
    const a = await currentSigningKey(env, "ES256");
    const [rotation] = await manager.rotateKeys("ES256", "test");
    vi.setSystemTime(Date.now() + config.keyCacheTtl * 1000 - 1);
    expect((await currentSigningKey(env, "ES256")).kid).toBe(a.kid);
    vi.setSystemTime(Date.now() + 2);
    expect((await currentSigningKey(env, "ES256")).kid).toBe(rotation!.kid);
  });

  it("verifies tokens against the published JWKS, refetching once on an unknown kid", async () => {
    const manager = keyManager(env);
    const signer = await currentSigningKey(env, "RS256");
    const token = (key: CryptoKey, kid: string) =>
      new SignJWT({ sub: "user-1" }).setProtectedHeader({ alg: "RS256", kid }).setIssuedAt().setExpirationTime("1h").sign(key);

    const published = await publishedJwks(env);
    expect(published.keys.map((k) => k.kid)).toContain(signer.kid);
    const ok = await verifyWithPublishedKeys(env, await token(signer.key, signer.kid));
    expect(ok.payload.sub).toBe("user-1");

    // A rotation this isolate has not seen: the cached JWKS lacks the new kid, a refetch finds it.
    const [rotation] = await manager.rotateKeys("RS256", "test");
    const material = await manager.getSigningKey("RS256");
    const newKey = (await importJWK(material.privateJwk as JWK, "RS256")) as CryptoKey;
    expect((await publishedJwks(env)).keys.map((k) => k.kid)).not.toContain(rotation!.kid);
    vi.setSystemTime(Date.now() + 2000); // past the refetch cooldown
    const fresh = await verifyWithPublishedKeys(env, await token(newKey, rotation!.kid));
    expect(fresh.protectedHeader.kid).toBe(rotation!.kid);
    expect((await publishedJwks(env)).keys.map((k) => k.kid)).toContain(rotation!.kid);
    // The old key's tokens still verify (overlap).
    await expect(verifyWithPublishedKeys(env, await token(signer.key, signer.kid))).resolves.toBeTruthy();

    // A forged kid: one refetch at most, then the error.
    const { privateKey } = (await crypto.subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      false,
      ["sign", "verify"],
    )) as CryptoKeyPair;
    await expect(verifyWithPublishedKeys(env, await token(privateKey, "not-our-kid"))).rejects.toBeInstanceOf(errors.JWKSNoMatchingKey);
    // Right kid, wrong signature.
    await expect(verifyWithPublishedKeys(env, await token(privateKey, rotation!.kid))).rejects.toBeInstanceOf(
      errors.JWSSignatureVerificationFailed,
    );
  });
});

describe("admin key endpoints", () => {
  const auth = { authorization: `Bearer ${env.ADMIN_TOKEN}` };

  it("list the keys without private material and rotate on demand, keeping the old key published (C19)", async () => {
    const before = await SELF.fetch("http://localhost/admin/keys", { headers: auth });
    expect(before.status).toBe(200);
    const listed = await before.text();
    expect(listed).not.toMatch(/"d"|private_jwk|privateJwk/);
    const current = (JSON.parse(listed) as { keys: Array<{ kid: string; alg: string; state: string }> }).keys.find((k) => k.alg === "RS256" && k.state === "current");

    expect((await SELF.fetch("http://localhost/admin/keys/rotate", { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: '{"alg":"HS256"}' })).status).toBe(400);
    expect((await SELF.fetch("http://localhost/admin/keys/rotate", { method: "POST" })).status).toBe(401);

    const rotate = await SELF.fetch("http://localhost/admin/keys/rotate", { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: '{"alg":"RS256"}' });
    expect(rotate.status).toBe(200);
    const { rotated } = (await rotate.json()) as { rotated: Array<{ alg: string; kid: string; previousKid: string | null }> };
    expect(rotated).toHaveLength(1);
    if (current) expect(rotated[0]!.previousKid).toBe(current.kid);
    clearSigningKeyCache();
    const kids = (await publishedJwks(env)).keys.map((k) => k.kid);
    expect(kids).toContain(rotated[0]!.kid);
    if (current) expect(kids).toContain(current.kid);
  });
});
