/**
 * The instrumented Worker of `npm run bench -- --phases`: the product's own entry (src/index.ts) with its `env`
 * wrapped in counting, timing proxies — the D1 binding (every statement that runs: first/all/run/raw, batch, exec),
 * every Durable Object namespace (every method called on a stub it hands out: one JS RPC round trip each) — and
 * crypto.subtle.sign/verify patched to count and time themselves. No product code changes: this file is the entry
 * point of a separate build (`wrangler deploy bench/phases/entry.ts --dry-run`), never deployed.
 *
 * Each response carries a header `x-bench-phases` with what its request did, in order. The bench sends one request
 * at a time (concurrency 1), so whatever signs or verifies while a request is being handled belongs to it.
 * Calls that overlap in time (a Promise.all) count as one sequential round trip: on the critical path they cost one
 * network latency in production, not two.
 */
import { SignJWT, jwtVerify } from "jose";
import type { Env } from "../../src/env";
import product from "../../src/index";
import { tokenFamilyFor } from "../../src/objects/locate";
import { newFamilyId } from "../../src/objects/token-family";

export * from "../../src/index";

type Kind = "d1" | "do";

interface Call {
  kind: Kind;
  /** The SQL (first 100 characters) or `BINDING.method`. */
  what: string;
  start: number;
  end: number;
  /** Started while another storage call was still pending (it does not add a round trip of its own). */
  overlapped: boolean;
  error?: boolean;
}

interface CryptoOp {
  op: "sign" | "verify";
  alg: string;
  start: number;
  end: number;
}

/**
 * Sequential waits are counted from what is in flight, not from the clock (workerd's clock has a resolution of
 * 1 ms): a call that starts while none of its kind is pending begins a new wait on the critical path; one that
 * starts while another is pending overlaps it.
 */
class Waits {
  inflight = 0;
  sequential = 0;
  ms = 0;
  private openedAt = 0;

  begin(now: number): boolean {
    const fresh = this.inflight === 0;
    if (fresh) {
      this.sequential++;
      this.openedAt = now;
    }
    this.inflight++;
    return !fresh;
  }

  end(now: number): void {
    this.inflight--;
    if (this.inflight === 0) this.ms += now - this.openedAt;
  }
}

class Recorder {
  readonly started = performance.now();
  readonly calls: Call[] = [];
  readonly crypto: CryptoOp[] = [];
  readonly waits = { d1: new Waits(), do: new Waits(), storage: new Waits() };
}

/** The request being handled (one at a time: the bench sends them sequentially). */
let current: Recorder | null = null;
/** Storage calls made while no request was being handled (after a response: waitUntil work), since the last report. */
let background: Call[] = [];

function track<T>(kind: Kind, what: string, run: () => T): T {
  const recorder = current;
  const start = performance.now();
  const call: Call = { kind, what: what.slice(0, 100), start, end: Number.NaN, overlapped: false };
  if (recorder) {
    recorder.waits[kind].begin(start);
    call.overlapped = recorder.waits.storage.begin(start);
    recorder.calls.push(call);
  } else {
    background.push(call);
  }
  const result = run();
  const done = (error: boolean) => {
    call.end = performance.now();
    if (error) call.error = true;
    if (recorder) {
      recorder.waits[kind].end(call.end);
      recorder.waits.storage.end(call.end);
    }
  };
  // A JS RPC call returns an RpcPromise, which is callable (typeof "function", for pipelining), not a plain object.
  if (result !== null && (typeof result === "object" || typeof result === "function") && typeof (result as { then?: unknown }).then === "function") {
    (result as unknown as PromiseLike<unknown>).then(
      () => done(false),
      () => done(true),
    );
  } else {
    done(false);
  }
  return result;
}

// ── crypto.subtle ─────────────────────────────────────────────────────────────────
for (const op of ["sign", "verify"] as const) {
  const original = SubtleCrypto.prototype[op] as (...args: unknown[]) => Promise<unknown>;
  Object.defineProperty(SubtleCrypto.prototype, op, {
    configurable: true,
    writable: true,
    value: function (this: SubtleCrypto, ...args: unknown[]) {
      const recorder = current;
      const algorithm = args[0];
      const alg = typeof algorithm === "string" ? algorithm : String((algorithm as { name?: unknown } | null)?.name ?? "?");
      const entry: CryptoOp = { op, alg, start: performance.now(), end: Number.NaN };
      const promise = original.apply(this, args);
      const done = () => {
        entry.end = performance.now();
        recorder?.crypto.push(entry);
      };
      promise.then(done, done);
      return promise;
    },
  });
}

// ── D1 ─────────────────────────────────────────────────────────────────────────────
const unwrapped = new WeakMap<object, object>();

function wrapStatement(statement: D1PreparedStatement, sql: string): D1PreparedStatement {
  const proxy = new Proxy(statement, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      if (prop === "bind") return (...args: unknown[]) => wrapStatement((value as (...a: unknown[]) => D1PreparedStatement).apply(target, args), sql);
      if (prop === "first" || prop === "all" || prop === "run" || prop === "raw") {
        return (...args: unknown[]) => track("d1", sql, () => (value as (...a: unknown[]) => unknown).apply(target, args));
      }
      return (value as (...a: unknown[]) => unknown).bind(target);
    },
  });
  unwrapped.set(proxy, statement);
  return proxy;
}

function wrapDatabase<T extends D1Database | D1DatabaseSession>(db: T): T {
  return new Proxy(db, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      const fn = value as (...a: unknown[]) => unknown;
      switch (prop) {
        case "prepare":
          return (sql: string) => wrapStatement(fn.call(target, sql) as D1PreparedStatement, sql);
        case "batch":
          return (statements: D1PreparedStatement[]) => {
            const real = statements.map((s) => (unwrapped.get(s) as D1PreparedStatement | undefined) ?? s);
            return track("d1", `batch of ${statements.length}`, () => fn.call(target, real));
          };
        case "exec":
          return (sql: string) => track("d1", `exec ${sql}`, () => fn.call(target, sql));
        case "withSession":
          return (...args: unknown[]) => wrapDatabase(fn.apply(target, args) as D1DatabaseSession);
        default:
          return fn.bind(target);
      }
    },
  });
}

// ── Durable Objects ─────────────────────────────────────────────────────────────────
const STUB_PROPERTIES = new Set<string | symbol>(["id", "name", "then"]);

function wrapStub(stub: object, binding: string): object {
  return new Proxy(stub, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof prop === "symbol" || STUB_PROPERTIES.has(prop) || typeof value !== "function") return value;
      // Reflect.apply, not value.apply: every property of an RPC stub's method is itself a remote property
      // (`stub.hit.apply` would be a call to a method named "hit.apply").
      return (...args: unknown[]) => track("do", `${binding}.${prop}`, () => Reflect.apply(value as (...a: unknown[]) => unknown, target, args));
    },
  });
}

function wrapNamespace(namespace: DurableObjectNamespace, binding: string): DurableObjectNamespace {
  return new Proxy(namespace, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target) as unknown;
      if (typeof value !== "function") return value;
      const fn = value as (...a: unknown[]) => unknown;
      if (prop === "get" || prop === "getByName") return (...args: unknown[]) => wrapStub(fn.apply(target, args) as object, binding);
      if (prop === "jurisdiction") return (...args: unknown[]) => wrapNamespace(fn.apply(target, args) as DurableObjectNamespace, binding);
      return fn.bind(target);
    },
  });
}

// ── env ─────────────────────────────────────────────────────────────────────────────
/** One wrapped env per real env, so caches the product keys by env (its config) behave as in the real build. */
const wrappedEnvs = new WeakMap<object, Record<string, unknown>>();

function instrumentedEnv<E extends object>(env: E): E {
  const cached = wrappedEnvs.get(env);
  if (cached) return cached as E;
  const wrapped: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(env)) {
    const v = value as Record<string, unknown> | null;
    if (v !== null && typeof v === "object" && typeof v.prepare === "function" && typeof v.batch === "function") {
      wrapped[name] = wrapDatabase(v as unknown as D1Database);
    } else if (v !== null && typeof v === "object" && typeof v.idFromName === "function") {
      wrapped[name] = wrapNamespace(v as unknown as DurableObjectNamespace, name);
    } else {
      wrapped[name] = value;
    }
  }
  wrappedEnvs.set(env, wrapped);
  return wrapped as E;
}

// ── the report ───────────────────────────────────────────────────────────────────────
const round = (n: number) => Math.round(n * 1000) / 1000;

function summary(recorder: Recorder, totalMs: number) {
  const byKind = (kind: Kind) => recorder.calls.filter((c) => c.kind === kind);
  const { storage, d1, do: objects } = recorder.waits;
  const cryptoOf = (op: "sign" | "verify") => {
    const ops = recorder.crypto.filter((c) => c.op === op);
    return { count: ops.length, ms: round(ops.reduce((s, c) => s + (c.end - c.start), 0)), algs: [...new Set(ops.map((c) => c.alg))] };
  };
  const doByBinding: Record<string, number> = {};
  for (const c of byKind("do")) {
    const binding = c.what.split(".")[0]!;
    doByBinding[binding] = (doByBinding[binding] ?? 0) + 1;
  }
  const report = {
    totalMs: round(totalMs),
    d1: { calls: byKind("d1").length, sequential: d1.sequential, ms: round(d1.ms) },
    do: { calls: byKind("do").length, sequential: objects.sequential, ms: round(objects.ms), byBinding: doByBinding },
    storage: { calls: recorder.calls.length, sequential: storage.sequential, ms: round(storage.ms) },
    sign: cryptoOf("sign"),
    verify: cryptoOf("verify"),
    trace: recorder.calls.map((c) => ({
      kind: c.kind,
      what: c.what,
      atMs: round(c.start - recorder.started),
      ms: round(c.end - c.start),
      ...(c.overlapped ? { overlapped: true } : {}),
      ...(c.error ? { error: true } : {}),
    })),
    background: background.map((c) => ({ kind: c.kind, what: c.what, ms: round(c.end - c.start) })),
  };
  background = [];
  return report;
}

// ── building blocks ────────────────────────────────────────────────────────────────
/**
 * GET /__bench/block/<name>: one building block of the endpoints alone, on the real env (not the counting one),
 * so the bench can put a CPU cost on each under load: what a request costs that does nothing, one D1 point read,
 * one Durable Object call that reads or writes one row, a new grant's object, one signature or verification of an
 * access token.
 * The endpoints' floors in the report are sums of these.
 */
const BLOCK_PREFIX = "/__bench/block/";

const ACCESS_TOKEN_CLAIMS = {
  iss: "http://127.0.0.1",
  sub: "user-0000000000000000",
  aud: "http://127.0.0.1",
  client_id: "client-000000000000",
  scope: "openid profile email offline_access",
  jti: "grant-0000000000000000000000",
};

const signers = new Map<string, Promise<{ key: CryptoKeyPair; jwt: string }>>();

function signerFor(alg: "RS256" | "ES256" | "EdDSA") {
  let signer = signers.get(alg);
  if (!signer) {
    signer = (async () => {
      const params =
        alg === "RS256"
          ? { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" }
          : alg === "ES256"
            ? { name: "ECDSA", namedCurve: "P-256" }
            : { name: "Ed25519" };
      const key = (await crypto.subtle.generateKey(params, false, ["sign", "verify"])) as CryptoKeyPair;
      return { key, jwt: await signAccessToken(alg, key) };
    })();
    signers.set(alg, signer);
  }
  return signer;
}

function signAccessToken(alg: string, key: CryptoKeyPair): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ ...ACCESS_TOKEN_CLAIMS, iat: now, exp: now + 600 }).setProtectedHeader({ alg, kid: "bench", typ: "at+jwt" }).sign(key.privateKey);
}

/** Refresh chains of the `do-rotate` block not in use by a request. */
const idleChains: { familyId: string; token: string }[] = [];

async function createBlockGrant(env: Env): Promise<{ familyId: string; token: string }> {
  const familyId = newFamilyId();
  const created = await tokenFamilyFor(env, familyId)!.createFamily({
    familyId,
    clientId: "bench-block",
    clientRegisteredAt: 0,
    sub: "bench-block-user",
    scope: "openid offline_access",
    sid: null,
    authTime: Math.floor(Date.now() / 1000),
    amr: ["email"],
    acr: null,
    claims: null,
    dpopJkt: null,
    issueRefreshToken: true,
    lifetimeSeconds: 600,
  });
  if (created.status !== "created" || created.refreshToken === null) throw new Error(`createFamily: ${created.status}`);
  return { familyId, token: created.refreshToken };
}

async function runBlock(name: string, env: Env): Promise<Response | null> {
  const limiter = () => env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName("rl:bench-block"));
  switch (name) {
    case "empty":
      return new Response("ok");
    case "d1-read":
      await env.DB.prepare("SELECT * FROM clients WHERE id = ?").bind("bench-block-none").first();
      return new Response("ok");
    case "d1-batch2":
    case "d1-batch3": {
      const reads = [
        env.DB.prepare("SELECT * FROM clients WHERE id = ?").bind("bench-block-none"),
        env.DB.prepare("SELECT * FROM users WHERE id = ?").bind("bench-block-none"),
        env.DB.prepare("SELECT scopes, expires_at FROM consents WHERE user_id = ? AND client_id = ?").bind("bench-block-none", "bench-block-none"),
      ];
      await env.DB.batch(reads.slice(0, name === "d1-batch2" ? 2 : 3));
      return new Response("ok");
    }
    case "do-read":
      await limiter().peekUsage("bench-block", 60);
      return new Response("ok");
    case "do-write":
      await limiter().hit("bench-block", 1_000_000_000, 60);
      return new Response("ok");
    case "do-create":
      // A new object's first write: its tables made, one row, an alarm set for the row's expiry.
      await env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName(`rl:bench-block-${crypto.randomUUID()}`)).hit("bench-block", 1_000_000_000, 60);
      return new Response("ok");
    case "do-create-grant":
      // What every authorization-code grant costs: a new TokenFamily object (its tables, the family row, a refresh
      // token, the audit event its alarm then delivers to D1).
      await createBlockGrant(env);
      return new Response("ok");
    case "do-rotate": {
      // One refresh-token rotation in an existing grant (a write transaction, two hashes and an HMAC, and the
      // rotation's audit event delivered to D1 by the alarm). A chain is used by one request at a time.
      const chain = idleChains.pop() ?? { familyId: "", token: "" };
      if (chain.token === "") Object.assign(chain, await createBlockGrant(env));
      const rotated = await tokenFamilyFor(env, chain.familyId)!.rotateRefreshToken(chain.token, {
        clientId: "bench-block",
        clientRegisteredAt: 0,
        scope: null,
        dpopJkt: null,
      });
      if (rotated.status !== "ok") return new Response(`rotation: ${rotated.status}`, { status: 500 });
      chain.token = rotated.refreshToken;
      idleChains.push(chain);
      return new Response("ok");
    }
    case "sign-RS256":
    case "sign-ES256":
    case "sign-EdDSA": {
      const alg = name.slice(5) as "RS256" | "ES256" | "EdDSA";
      await signAccessToken(alg, (await signerFor(alg)).key);
      return new Response("ok");
    }
    case "verify-RS256":
    case "verify-ES256": {
      const { key, jwt } = await signerFor(name.slice(7) as "RS256" | "ES256");
      await jwtVerify(jwt, key.publicKey);
      return new Response("ok");
    }
    default:
      return null;
  }
}

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname.startsWith(BLOCK_PREFIX)) {
      return (await runBlock(url.pathname.slice(BLOCK_PREFIX.length), env)) ?? new Response("no such block", { status: 404 });
    }
    const recorder = new Recorder();
    current = recorder;
    let response: Response;
    try {
      response = await product.fetch(request, instrumentedEnv(env), ctx);
    } finally {
      current = null;
    }
    const totalMs = performance.now() - recorder.started;
    const headers = new Headers(response.headers);
    headers.set("x-bench-phases", JSON.stringify(summary(recorder, totalMs)));
    return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
  },
  scheduled(controller, env, ctx) {
    return product.scheduled(controller, env, ctx);
  },
} satisfies ExportedHandler<Parameters<typeof product.fetch>[1]>;
