import { abortAllDurableObjects, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { rateLimiterFor } from "../src/objects/locate";
import type { RateLimiter } from "../src/objects/rate-limiter";

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
      runInDurableObject(rl, (o) => call(o as unknown as RateLimiter)).then(() => null, (error: unknown) => String(error));
    expect(await failure((o) => o.hit(5, 0))).toMatch(/RangeError: windowSeconds/);
    expect(await failure((o) => o.hit(5, 60, 0))).toMatch(/RangeError: cost/);
    expect(await failure((o) => o.hit(-1, 60))).toMatch(/RangeError: limit/);
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
    expect(await runDurableObjectAlarm(rl)).toBe(true);
    // The first minute's window went; the current minute and the hour remain.
    expect(await rl.peekUsage(60)).toMatchObject({ count: 1, windowsHeld: 2 });
    vi.setSystemTime(MINUTE_START + 3_600_000 + 1);
    expect(await runDurableObjectAlarm(rl)).toBe(true);
    expect((await rl.peekUsage(60)).windowsHeld).toBe(0);
  });
});
