import { abortAllDurableObjects, env, listDurableObjectIds, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { loadConfig } from "../src/config";
import type { Env } from "../src/env";
import { addressBucket } from "../src/lib/ip-address";
import { rateLimiterFor } from "../src/objects/locate";
import type { RateLimiter } from "../src/objects/rate-limiter";
import { clientAddress, trustedAddress } from "../src/routes/support/rate-limit";

function limiter(key = `test:${crypto.randomUUID()}`) {
  return rateLimiterFor(env, key);
}

// A fixed clock years ahead, 10 s into a minute: windows are deterministic and the purge alarms the object
// schedules never fire by themselves during a test.
const MINUTE_START = Date.UTC(2040, 0, 1, 12, 0, 0);
const T0 = MINUTE_START + 10_000;
beforeEach(() => {
  vi.useFakeTimers({ toFake: ["Date"] });
  vi.setSystemTime(T0);
});
afterEach(() => vi.useRealTimers());

describe("RateLimiter", () => {
  it("of N+10 concurrent hits exactly N pass; the rest are denied with Retry-After (C6)", async () => {
    const rl = limiter();
    const N = 25;
    const results = await Promise.all(Array.from({ length: N + 10 }, () => rl.hit(N, 60)));
    const allowed = results.filter((r) => r.allowed);
    const denied = results.filter((r) => !r.allowed);
    expect(allowed).toHaveLength(N);
    expect(denied).toHaveLength(10);
    expect(new Set(allowed.map((r) => r.remaining))).toEqual(new Set(Array.from({ length: N }, (_, i) => i)));
    for (const r of denied) {
      expect(r).toEqual({ allowed: false, limit: N, remaining: 0, resetAt: MINUTE_START + 60_000, retryAfter: 50 });
    }
    expect((await rl.peekUsage(60)).count).toBe(N);
  });

  it("a denied hit does not consume capacity, and cost counts", async () => {
    const rl = limiter();
    expect(await rl.hit(5, 60, 3)).toMatchObject({ allowed: true, remaining: 2 });
    expect(await rl.hit(5, 60, 3)).toMatchObject({ allowed: false, remaining: 2 });
    expect(await rl.hit(5, 60, 2)).toMatchObject({ allowed: true, remaining: 0 });
    expect(await rl.hit(5, 60)).toMatchObject({ allowed: false, remaining: 0 });
    expect((await rl.peekUsage(60)).count).toBe(5);
    // Bad arguments throw inside the object. Called on the instance (runInDurableObject), not through the stub: the
    // test pool's RPC wrapper reports every rejected stub call as an "uncaught exception" on top of rejecting it
    // (cloudflare/workers-sdk#14736), which is noise, not a failure.
    const failure = (call: (o: RateLimiter) => Promise<unknown>) =>
      runInDurableObject(rl.object, (o) => call(o as unknown as RateLimiter)).then(() => null, (error: unknown) => String(error));
    expect(await failure((o) => o.hit("k", 5, 0))).toMatch(/RangeError: windowSeconds/);
    expect(await failure((o) => o.hit("k", 5, 60, -1))).toMatch(/RangeError: cost/);
    expect(await failure((o) => o.hit("k", -1, 60))).toMatch(/RangeError: limit/);
    expect(await failure((o) => o.hit("", 5, 60))).toMatch(/RangeError: key/);
  });

  it("a cost of 0 asks whether one more hit would pass, and counts nothing", async () => {
    const rl = limiter();
    expect(await rl.hit(2, 60, 0)).toMatchObject({ allowed: true, remaining: 2 });
    expect((await rl.peekUsage(60)).count).toBe(0);
    await rl.hit(2, 60);
    expect(await rl.hit(2, 60, 0)).toMatchObject({ allowed: true, remaining: 1 });
    await rl.hit(2, 60);
    expect(await rl.hit(2, 60, 0)).toMatchObject({ allowed: false, remaining: 0 });
    expect((await rl.peekUsage(60)).count).toBe(2);
  });

  it("retryAfter counts whole seconds to the window's end, at least 1", async () => {
    const rl = limiter();
    await rl.hit(1, 60);
    vi.setSystemTime(MINUTE_START + 59_500);
    expect(await rl.hit(1, 60)).toMatchObject({ allowed: false, retryAfter: 1, resetAt: MINUTE_START + 60_000 });
    vi.setSystemTime(MINUTE_START + 30_001);
    expect((await rl.hit(1, 60)).retryAfter).toBe(30);
  });

  it("the next window allows again", async () => {
    const rl = limiter();
    for (let i = 0; i < 3; i++) expect((await rl.hit(3, 60)).allowed).toBe(true);
    expect((await rl.hit(3, 60)).allowed).toBe(false);
    vi.setSystemTime(MINUTE_START + 59_999);
    expect((await rl.hit(3, 60)).allowed).toBe(false);
    vi.setSystemTime(MINUTE_START + 60_000);
    expect(await rl.hit(3, 60)).toMatchObject({ allowed: true, remaining: 2, resetAt: MINUTE_START + 120_000, retryAfter: 60 });
  });

  it("different windows of one key count separately", async () => {
    const rl = limiter();
    expect((await rl.hit(1, 60)).allowed).toBe(true);
    expect((await rl.hit(1, 3600)).allowed).toBe(true);
    expect((await rl.hit(1, 60)).allowed).toBe(false);
    expect((await rl.hit(1, 3600)).allowed).toBe(false);
  });

  it("counts survive a restart (C2)", async () => {
    const key = `test:${crypto.randomUUID()}`;
    await Promise.all(Array.from({ length: 4 }, () => limiter(key).hit(5, 60)));
    await abortAllDurableObjects();
    expect((await limiter(key).peekUsage(60)).count).toBe(4);
    expect(await limiter(key).hit(5, 60)).toMatchObject({ allowed: true, remaining: 0 });
    expect((await limiter(key).hit(5, 60)).allowed).toBe(false);
  });

  it("the alarm purges windows that are over (C15)", async () => {
    const rl = limiter();
    await rl.hit(10, 60);
    await rl.hit(10, 3600);
    expect((await rl.peekUsage(60)).windowsHeld).toBe(2);
    vi.setSystemTime(MINUTE_START + 61_000);
    await rl.hit(10, 60);
    expect((await rl.peekUsage(60)).windowsHeld).toBe(3);
    expect(await runDurableObjectAlarm(rl.object)).toBe(true);
    // The first minute's window went; the current minute and the hour remain.
    expect(await rl.peekUsage(60)).toMatchObject({ count: 1, windowsHeld: 2 });
    vi.setSystemTime(MINUTE_START + 3_600_000 + 1);
    expect(await runDurableObjectAlarm(rl.object)).toBe(true);
    expect((await rl.peekUsage(60)).windowsHeld).toBe(0);
  });
});

describe("rate-limit keys and objects (C15)", () => {
  it("made-up keys never make objects: 300 distinct keys share the shardCount limiter objects, and their rows go with their window", async () => {
    const keys = Array.from({ length: 300 }, () => `login:email:${crypto.randomUUID()}`);
    await Promise.all(keys.map((key) => limiter(key).hit(10, 60)));
    const objects = await listDurableObjectIds(env.RATE_LIMITER);
    expect(objects.length).toBeLessThanOrEqual(loadConfig(env).shardCount);
    // Each key still counts on its own.
    expect(await limiter(keys[0]).peekUsage(60)).toMatchObject({ count: 1, windowsHeld: 1 });
    expect(await limiter(keys[0]).hit(1, 60)).toMatchObject({ allowed: false });
    expect(await limiter(keys[1]).hit(2, 60)).toMatchObject({ allowed: true, remaining: 0 });
    // Once the window is over, each shard's alarm purges the rows of every key it holds.
    vi.setSystemTime(MINUTE_START + 61_000);
    for (const key of new Set(keys.map((k) => limiter(k).object.id.toString()))) {
      await runDurableObjectAlarm(env.RATE_LIMITER.get(env.RATE_LIMITER.idFromString(key)));
    }
    for (const key of keys.slice(0, 20)) expect((await limiter(key).peekUsage(60)).windowsHeld).toBe(0);
  });

  it("refuses an empty or oversized key rather than truncating it into another key", async () => {
    const failure = (p: Promise<unknown>) => p.then(() => null, (error: unknown) => String(error));
    expect(await failure(limiter("").hit(1, 60))).toMatch(/RangeError: key/);
    expect(await failure(limiter("k".repeat(513)).hit(1, 60))).toMatch(/RangeError: key/);
  });
});

describe("client addresses for rate limits", () => {
  it("an IPv4 address is its own bucket; IPv6 counts by /64 in one spelling; mapped IPv4 is IPv4; anything else is none", () => {
    expect(addressBucket("203.0.113.7")).toBe("203.0.113.7");
    expect(addressBucket("2001:db8:aa:bb:1:2:3:4")).toBe("2001:db8:aa:bb::/64");
    expect(addressBucket("2001:0DB8:00aa:00bb:ffff::1")).toBe("2001:db8:aa:bb::/64");
    expect(addressBucket("2001:db8:aa:bb::")).toBe("2001:db8:aa:bb::/64");
    expect(addressBucket("2001:db8::1")).toBe("2001:db8:0:0::/64");
    expect(addressBucket("::1")).toBe("0:0:0:0::/64");
    expect(addressBucket("::ffff:198.51.100.9")).toBe("198.51.100.9");
    expect(addressBucket("64:ff9b::203.0.113.1")).toBe("64:ff9b:0:0::/64");
    for (const bad of ["", "unknown", "203.0.113.256", "1.2.3", "1.2.3.4.5", "2001:db8::1::2", "2001:db8:1:2:3:4:5:6:7", "1:2:3:4:5:6:7::8", "2001:db8::g",
      "fe80::1%eth0", "203.0.113.7, 198.51.100.1", "x".repeat(100), "2001:db8::12345", "::ffff:1.2.3.999"]) {
      expect(addressBucket(bad), bad).toBeNull();
    }
  });

  it("CF-Connecting-IP is trusted by default and ignored with TRUST_CF_CONNECTING_IP=false; without a trusted address callers share one bucket", () => {
    const from = (ip: string | null) => new Request("http://localhost/authorize", { headers: ip === null ? {} : { "cf-connecting-ip": ip } });
    const untrusting = { ...env, TRUST_CF_CONNECTING_IP: "false" } as Env;
    expect(clientAddress(env, from("2001:db8:1:2::a"))).toBe("2001:db8:1:2::/64");
    expect(clientAddress(env, from("2001:db8:1:2:ffff::b"))).toBe("2001:db8:1:2::/64");
    expect(clientAddress(env, from("2001:db8:1:3::a"))).toBe("2001:db8:1:3::/64");
    expect(trustedAddress(env, from("2001:db8:1:2::a"))).toBe("2001:db8:1:2::a");
    expect(clientAddress(untrusting, from("2001:db8:1:2::a"))).toBe("unknown");
    expect(trustedAddress(untrusting, from("203.0.113.7"))).toBeNull();
    expect(clientAddress(env, from(null))).toBe("unknown");
    expect(clientAddress(env, from("made-up-key"))).toBe("unknown");
    expect(() => loadConfig({ ...env, TRUST_CF_CONNECTING_IP: "no" } as Env)).toThrow(/TRUST_CF_CONNECTING_IP=no: must be true or false/);
  });
});
