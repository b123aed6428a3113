import { abortAllDurableObjects, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import type { AuthorizationCodeGrant } from "../src/objects/auth-codes";
import { s256Challenge } from "../src/lib/pkce";

const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

function grant(overrides: Partial<AuthorizationCodeGrant> = {}): AuthorizationCodeGrant {
  return {
    clientId: "client-a",
    redirectUri: "https://app.example/cb",
    sub: "user-1",
    scope: "openid",
    codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    nonce: null,
    sid: null,
    authTime: 1,
    amr: ["email"],
    acr: null,
    claims: null,
    dpopJkt: null,
    ...overrides,
  };
}

function codes(name = crypto.randomUUID()) {
  return env.AUTH_CODES.get(env.AUTH_CODES.idFromName(name));
}

afterEach(() => vi.useRealTimers());

describe("SingleUseResourceStore (auth codes)", () => {
  it("the RFC 7636 appendix B vector matches", async () => {
    expect(await s256Challenge(verifier)).toBe("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  });

  it("consumes once, then reports a tombstone with the outcome", async () => {
    const store = codes();
    await store.put("c1", grant(), 60);
    const redemption = { clientId: "client-a", redirectUri: "https://app.example/cb", codeVerifier: verifier };
    const first = await store.consume("c1", redemption, { grantId: "g1" });
    expect(first.status).toBe("ok");
    const second = await store.consume("c1", redemption, { grantId: "g2" });
    expect(second).toMatchObject({ status: "consumed", outcome: { grantId: "g1" } });
    expect(await store.consume("nope", redemption)).toEqual({ status: "unknown" });
  });

  it("a failed check changes nothing: wrong client, redirect URI or verifier", async () => {
    const store = codes();
    await store.put("c1", grant(), 60);
    const good = { clientId: "client-a", redirectUri: "https://app.example/cb", codeVerifier: verifier };
    expect((await store.consume("c1", { ...good, clientId: "client-b" })).status).toBe("rejected");
    expect((await store.consume("c1", { ...good, redirectUri: "https://app.example/cb2" })).status).toBe("rejected");
    expect((await store.consume("c1", { ...good, codeVerifier: "x".repeat(43) })).status).toBe("rejected");
    expect((await store.consume("c1", { ...good, codeVerifier: null })).status).toBe("rejected");
    expect((await store.consume("c1", good)).status).toBe("ok");
  });

  it("a verifier without a challenge is refused", async () => {
    const store = codes();
    await store.put("c1", grant({ codeChallenge: null }), 60);
    const r = await store.consume("c1", { clientId: "client-a", redirectUri: "https://app.example/cb", codeVerifier: verifier });
    expect(r.status).toBe("rejected");
  });

  it("of 50 concurrent consumes exactly one succeeds (C1)", async () => {
    const store = codes();
    await store.put("c1", grant(), 60);
    const redemption = { clientId: "client-a", redirectUri: "https://app.example/cb", codeVerifier: verifier };
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.consume("c1", redemption, { grantId: `g${i}` })));
    expect(results.filter((r) => r.status === "ok")).toHaveLength(1);
    expect(results.filter((r) => r.status === "consumed")).toHaveLength(49);
  });

  it("expires with controlled time, and the alarm purges expired rows and tombstones", async () => {
    const store = codes();
    const start = Date.now();
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(start);
    await store.put("live", grant(), 60);
    await store.put("used", grant(), 60);
    await store.consume("used", { clientId: "client-a", redirectUri: "https://app.example/cb", codeVerifier: verifier });
    // The redemption's audit event (auth_code.redeemed) is delivered by the alarm it sets for now; the clock moves on
    // only once that run is over (the next alarm is then the purge, a minute ahead).
    await runDurableObjectAlarm(store);
    await vi.waitFor(async () => expect(await runInDurableObject(store, (_o, state) => state.storage.getAlarm())).toBeGreaterThan(start + 1000), { timeout: 5000 });
    vi.setSystemTime(start + 61_000);
    expect(await store.peek("live")).toEqual({ status: "expired" });
    expect((await store.consume("live", { clientId: "client-a", redirectUri: "https://app.example/cb", codeVerifier: verifier })).status).toBe("expired");
    expect(await store.size()).toBe(2);
    expect(await runDurableObjectAlarm(store)).toBe(true);
    expect(await store.size()).toBe(0);
  });

  it("survives eviction of the object (C2)", async () => {
    const name = crypto.randomUUID();
    await codes(name).put("c1", grant(), 60);
    await codes(name).put("c2", grant(), 60);
    await codes(name).consume("c2", { clientId: "client-a", redirectUri: "https://app.example/cb", codeVerifier: verifier }, { grantId: "g" });
    await abortAllDurableObjects();
    expect((await codes(name).peek("c1")).status).toBe("active");
    expect(await codes(name).peek("c2")).toMatchObject({ status: "consumed", outcome: { grantId: "g" } });
  });
});
