// @ts-check
/**
 * `npm run bench -- --phases`: what one request of each scenario costs our OP, measured from inside the Worker by
 * the instrumented build (bench/phases/entry.ts): sequential D1 queries and Durable Object calls (overlapping calls
 * count once), signatures and verifications, and the time spent in each; plus the CPU time of the whole process
 * tree per request, from outside. One request at a time, after a warm-up, so nothing queues and every call made
 * while a request runs is that request's.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { buildBundle, root } from "./bundle.mjs";
import { fail, runRound, settle } from "./load.mjs";
import { startOurs } from "./ours.mjs";
import { dpopKey } from "./http.mjs";
import { groupCpuMs } from "./procs.mjs";
import { markdownTable, textTable } from "./report.mjs";

const FORM = "application/x-www-form-urlencoded";

/**
 * @typedef {object} Phases  the x-bench-phases header (see bench/phases/entry.ts)
 * @property {number} totalMs
 * @property {{ calls: number, sequential: number, ms: number }} d1
 * @property {{ calls: number, sequential: number, ms: number, byBinding: Record<string, number> }} do
 * @property {{ calls: number, sequential: number, ms: number }} storage
 * @property {{ count: number, ms: number, algs: string[] }} sign
 * @property {{ count: number, ms: number, algs: string[] }} verify
 * @property {{ kind: string, what: string, atMs: number, ms: number, overlapped?: boolean, error?: boolean }[]} trace
 * @property {{ kind: string, what: string, ms: number }[]} background
 */

/**
 * The building blocks of bench/phases/entry.ts (GET /__bench/block/<id>), each measured alone under load.
 * @type {{ id: string, what: string }[]}
 */
const BLOCKS = [
  { id: "empty", what: "a request that does nothing: HTTP, Miniflare's entry worker, the Worker's fetch" },
  { id: "d1-read", what: "one D1 point read (SELECT * FROM clients WHERE id = ?)" },
  { id: "d1-batch2", what: "one D1 batch of two point reads (a client and a user)" },
  { id: "d1-batch3", what: "one D1 batch of three point reads (a client, a user, a consent)" },
  { id: "do-read", what: "one Durable Object call that reads a row" },
  { id: "do-write", what: "one Durable Object call that writes a row in a transaction (a rate-limit hit)" },
  { id: "do-create", what: "a new Durable Object's first write: its tables, one row, an alarm for its expiry" },
  { id: "do-create-grant", what: "a new grant's object: its tables, the grant, its audit event delivered to D1 by the alarm" },
  { id: "do-rotate", what: "a refresh-token rotation in an existing grant, with its audit event delivered to D1 by the alarm" },
  { id: "sign-RS256", what: "signing an access token, RS256 (2048-bit key)" },
  { id: "sign-ES256", what: "signing an access token, ES256" },
  { id: "sign-EdDSA", what: "signing an access token, EdDSA (Ed25519)" },
  { id: "verify-RS256", what: "verifying an access token, RS256" },
  { id: "verify-ES256", what: "verifying an access token, ES256" },
];

/**
 * What each hot endpoint cannot do without, by the guarantee that asks for it; its floor is the empty request plus
 * each block's cost above the empty one. The issue's targets (CPU ms per request) beside them.
 * `es256`: the block that stands in for it with ACCESS_TOKEN_SIGNING_ALG=ES256.
 * @type {{ endpoint: string, target: number | null, blocks: { id: string, why: string, es256?: string }[] }[]}
 */
const FLOORS = [
  {
    endpoint: "POST /token (client_credentials)",
    target: 1.5,
    blocks: [
      { id: "do-write", why: "rate limit, exact and durable (C6, C2)" },
      { id: "d1-read", why: "the client as registered now (C5)" },
      { id: "sign-RS256", why: "the access token, RS256 by default (RFC 9068)", es256: "sign-ES256" },
    ],
  },
  {
    endpoint: "GET /userinfo",
    target: 0.4,
    blocks: [
      { id: "verify-RS256", why: "the access token", es256: "verify-ES256" },
      { id: "d1-batch2", why: "the client (C23) and the user's claims from D1, user not disabled (C17, C23)" },
      { id: "do-read", why: "the grant not revoked (C22, C23)" },
    ],
  },
  {
    endpoint: "POST /introspect (access token)",
    target: null,
    blocks: [
      { id: "do-write", why: "rate limit (C6, C2)" },
      { id: "verify-RS256", why: "the access token", es256: "verify-ES256" },
      { id: "d1-batch2", why: "the caller (C14, C5) and the token's user (C23)" },
      { id: "do-read", why: "the grant not revoked (C22, C23)" },
    ],
  },
  {
    endpoint: "POST /token (refresh_token)",
    target: 1.5,
    blocks: [
      { id: "do-write", why: "rate limit (C6, C2)" },
      { id: "d1-batch2", why: "the client (C5) and the user, not disabled (C23)" },
      { id: "do-rotate", why: "the rotation, atomic and durable (C3), audited (C4)" },
      { id: "sign-RS256", why: "the access token", es256: "sign-ES256" },
      { id: "sign-RS256", why: "the ID token (RS256: OIDC Core's default)" },
    ],
  },
  {
    endpoint: "GET /authorize (session, remembered consent)",
    target: 2,
    blocks: [
      { id: "do-write", why: "rate limit (C6, C2)" },
      { id: "d1-batch3", why: "the client (C5), the user not disabled (C23), the remembered consent" },
      { id: "do-read", why: "the session" },
      { id: "do-write", why: "the code, single-use and durable (C1, C2)" },
    ],
  },
  {
    endpoint: "POST /token (authorization_code), no offline_access: the grant lives in its tokens",
    target: 2.5,
    blocks: [
      { id: "do-write", why: "rate limit (C6, C2)" },
      { id: "d1-read", why: "the client (C5)" },
      { id: "do-rotate", why: "the code redeemed once, PKCE inside (C1), audited (C4): one write with its audit event, as a rotation is" },
      { id: "d1-read", why: "the user (C23)" },
      { id: "do-read", why: "no replay revoked the grant yet (C1)" },
      { id: "do-write", why: "the session learns the grant, for revoke-all and logout (C22, C21)" },
      { id: "sign-RS256", why: "the access token", es256: "sign-ES256" },
      { id: "sign-RS256", why: "the ID token" },
    ],
  },
  {
    endpoint: "POST /token (authorization_code), offline_access: a new grant object",
    target: 2.5,
    blocks: [
      { id: "do-write", why: "rate limit (C6, C2)" },
      { id: "d1-read", why: "the client (C5)" },
      { id: "do-rotate", why: "the code redeemed once, PKCE inside (C1), audited (C4)" },
      { id: "d1-read", why: "the user (C23)" },
      { id: "do-create-grant", why: "the grant's own object, its refresh token (C3), audited (C4)" },
      { id: "do-write", why: "the session learns the grant, for revoke-all and logout (C22, C21)" },
      { id: "sign-RS256", why: "the access token", es256: "sign-ES256" },
      { id: "sign-RS256", why: "the ID token" },
    ],
  },
];

/**
 * Each block under load (10 connections, best of 3 short rounds by CPU per request).
 * @param {string} issuer
 * @param {number} pgid
 * @param {(message: string) => void} progress
 */
async function measureBlocks(issuer, pgid, progress) {
  /** @type {Record<string, { cpuMsPerOp: number, opsPerSec: number }>} */
  const measured = {};
  for (const block of BLOCKS) {
    const path = `/__bench/block/${block.id}`;
    const probe = await fetch(`${issuer}${path}`);
    if (probe.status !== 200) throw new Error(`${path}: HTTP ${probe.status} ${(await probe.text()).slice(0, 200)}`);
    await probe.body?.cancel();
    /** @type {{ cpuMsPerOp: number, opsPerSec: number } | null} */
    let best = null;
    for (let round = 0; round < 3; round++) {
      await settle(pgid, 300);
      const result = await runRound({
        url: issuer,
        connections: 10,
        requestsPerOp: 1,
        durationSec: 1,
        pgid,
        requestsFor: (_i, stats) => [
          {
            method: "GET",
            path,
            onResponse(status, body) {
              if (status === 200) stats.ok++;
              else fail(stats, status, body);
            },
          },
        ],
      });
      if (result.failed > 0) throw new Error(`${path}: ${result.failed} failed requests: ${result.failureSamples.join(" | ")}`);
      if (best === null || result.cpuMsPerOp < best.cpuMsPerOp) best = { cpuMsPerOp: result.cpuMsPerOp, opsPerSec: result.opsPerSec };
    }
    measured[block.id] = /** @type {{ cpuMsPerOp: number, opsPerSec: number }} */ (best);
    progress(`block ${block.id}: ${measured[block.id]?.cpuMsPerOp.toFixed(3)} CPU ms/request, ${measured[block.id]?.opsPerSec.toFixed(0)} requests/s`);
  }
  const empty = measured.empty?.cpuMsPerOp ?? 0;
  const above = (/** @type {string} */ id) => (id === "empty" ? empty : (measured[id]?.cpuMsPerOp ?? NaN) - empty);
  const floors = FLOORS.map((f) => ({
    ...f,
    floorMs: empty + f.blocks.reduce((sum, b) => sum + above(b.id), 0),
    floorEs256Ms: empty + f.blocks.reduce((sum, b) => sum + above(b.es256 ?? b.id), 0),
  }));
  return { measured, floors, above };
}

/** @param {number[]} values */
function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return NaN;
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] ?? NaN) : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
}

/**
 * @param {Response} response
 * @param {number[]} expected
 * @param {string} what
 * @returns {Promise<{ phases: Phases, body: string, response: Response }>}
 */
async function phasesOf(response, expected, what) {
  const body = await response.text();
  if (!expected.includes(response.status)) throw new Error(`${what}: HTTP ${response.status} ${body.slice(0, 400)}`);
  const raw = response.headers.get("x-bench-phases");
  if (raw === null) throw new Error(`${what}: no x-bench-phases header (not the instrumented build?)`);
  return { phases: JSON.parse(raw), body, response };
}

/**
 * @param {object} options
 * @param {(message: string) => void} options.progress
 * @param {string} options.stateRoot
 * @param {string[]} options.toRemove
 * @param {Record<string, unknown>} options.machine
 * @param {string[]} options.scenarios
 * @param {string} options.out
 * @param {number} [options.iterations]
 * @param {number} [options.warmup]
 * @param {Record<string, string>} [options.settings]
 * @param {boolean} [options.blocks]  measure the building blocks too (default true)
 */
export async function runPhases(options) {
  const iterations = options.iterations ?? 40;
  const warmup = options.warmup ?? 5;
  const { progress } = options;
  progress("building the instrumented bundle (wrangler deploy bench/phases/entry.ts --dry-run)");
  const bundle = await buildBundle({ entry: "bench/phases/entry.ts" });
  options.toRemove.push(bundle.dir);
  const stateDir = mkdtempSync(path.join(options.stateRoot, "bench-phases-"));
  options.toRemove.push(stateDir);
  const ours = await startOurs({ bundle, stateDir, name: "ours (instrumented)", ...(options.settings ? { settings: options.settings } : {}) });
  const { issuer } = ours;
  const pgid = ours.proc.pgid;

  /**
   * @typedef {{ endpoint: string, run: (i: number) => Promise<Phases> }} Step
   * @type {{ id: string, steps: () => Promise<Step[]> }[]}
   */
  const plans = [
    {
      id: "discovery",
      steps: async () => [
        { endpoint: "GET /.well-known/openid-configuration", run: async () => (await phasesOf(await fetch(`${issuer}${ours.paths.discovery}`), [200], "discovery")).phases },
      ],
    },
    {
      id: "jwks",
      steps: async () => [{ endpoint: "GET /jwks.json", run: async () => (await phasesOf(await fetch(`${issuer}${ours.paths.jwks}`), [200], "jwks")).phases }],
    },
    {
      id: "client_credentials",
      steps: async () => [
        {
          endpoint: "POST /token (client_credentials)",
          run: async () =>
            (
              await phasesOf(
                await fetch(`${issuer}/token`, { method: "POST", headers: { authorization: ours.serviceAuth, "content-type": FORM }, body: ours.clientCredentialsBody }),
                [200],
                "client_credentials",
              )
            ).phases,
        },
      ],
    },
    {
      id: "userinfo",
      steps: async () => {
        const token = await ours.mintUserinfoToken(0);
        const bound = await ours.mintDpopGrant(0);
        return [
          {
            endpoint: "GET /userinfo",
            run: async () => (await phasesOf(await fetch(`${issuer}/userinfo`, { headers: { authorization: `Bearer ${token}` } }), [200], "userinfo")).phases,
          },
          {
            endpoint: "GET /userinfo (DPoP)",
            run: async () => {
              const headers = { authorization: `DPoP ${bound.accessToken}`, dpop: await bound.key.proof("GET", `${issuer}/userinfo`, bound.accessToken) };
              return (await phasesOf(await fetch(`${issuer}/userinfo`, { headers }), [200], "userinfo (DPoP)")).phases;
            },
          },
        ];
      },
    },
    {
      id: "introspection",
      steps: async () => {
        const token = await ours.mintUserinfoToken(1);
        return [
          {
            endpoint: "POST /introspect (access token)",
            run: async () => {
              const { phases, body } = await phasesOf(
                await fetch(`${issuer}/introspect`, { method: "POST", headers: { authorization: ours.webAuth, "content-type": FORM }, body: `token=${encodeURIComponent(token)}` }),
                [200],
                "introspect",
              );
              if (!ours.introspectionOk(body)) throw new Error(`introspection not active: ${body}`);
              return phases;
            },
          },
        ];
      },
    },
    {
      id: "refresh",
      steps: async () => {
        let token = (await ours.mintGrant(2)).refreshToken;
        /** @type {Awaited<ReturnType<typeof ours.mintDpopGrant>> | undefined} */
        let bound;
        return [
          {
            endpoint: "POST /token (refresh_token)",
            run: async () => {
              const { phases, body } = await phasesOf(
                await fetch(`${issuer}/token`, { method: "POST", headers: { authorization: ours.webAuth, "content-type": FORM }, body: ours.refreshBody(token) }),
                [200],
                "refresh",
              );
              token = JSON.parse(body).refresh_token;
              return phases;
            },
          },
          {
            endpoint: "POST /token (refresh_token, DPoP-bound, public client)",
            run: async () => {
              bound ??= await ours.mintDpopGrant(3);
              const { key } = bound;
              const headers = { "content-type": FORM, dpop: await key.proof("POST", `${issuer}/token`) };
              const { phases, body } = await phasesOf(await fetch(`${issuer}/token`, { method: "POST", headers, body: ours.spaRefreshBody(bound.refreshToken) }), [200], "refresh (DPoP)");
              bound = { ...bound, refreshToken: JSON.parse(body).refresh_token };
              return phases;
            },
          },
        ];
      },
    },
    {
      id: "authorize",
      steps: async () => {
        /** @type {string[]} codes from the authorize step, redeemed by the token step */
        const codes = [];
        /** @type {string[]} request_uris from the /par step, used by the next authorize step */
        const pushedUris = [];
        /** @type {string[]} codes of pushed requests, redeemed with a DPoP proof */
        const pushedCodes = [];
        return [
          {
            endpoint: "GET /authorize (session, remembered consent)",
            run: async (/** @type {number} */ i) => {
              const { path: p, cookie } = ours.authorizeRequest(i);
              const { phases, response } = await phasesOf(await fetch(`${issuer}${p}`, { headers: { cookie }, redirect: "manual" }), [302, 303], "authorize");
              const code = new URL(response.headers.get("location") ?? "").searchParams.get("code");
              if (code === null) throw new Error("no code");
              codes.push(code);
              return phases;
            },
          },
          {
            endpoint: "POST /token (authorization_code; no offline_access: the grant lives in its tokens)",
            run: async () => {
              const code = codes.shift();
              if (code === undefined) throw new Error("no code left");
              return (
                await phasesOf(
                  await fetch(`${issuer}/token`, { method: "POST", headers: { authorization: ours.webAuth, "content-type": FORM }, body: ours.codeTokenBody(code) }),
                  [200],
                  "token (code)",
                )
              ).phases;
            },
          },
          {
            endpoint: "POST /par",
            run: async () => {
              const { phases, body } = await phasesOf(
                await fetch(`${issuer}/par`, { method: "POST", headers: { authorization: ours.webAuth, "content-type": FORM }, body: ours.parBody() }),
                [201],
                "par",
              );
              pushedUris.push(JSON.parse(body).request_uri);
              return phases;
            },
          },
          {
            endpoint: "GET /authorize (request_uri from /par; session, remembered consent)",
            run: async (/** @type {number} */ i) => {
              const requestUri = pushedUris.shift();
              if (requestUri === undefined) throw new Error("no request_uri left");
              const { path: p, cookie } = ours.pushedAuthorizeRequest(requestUri, i);
              const { phases, response } = await phasesOf(await fetch(`${issuer}${p}`, { headers: { cookie }, redirect: "manual" }), [302, 303], "authorize (PAR)");
              const code = new URL(response.headers.get("location") ?? "").searchParams.get("code");
              if (code === null) throw new Error("no code");
              pushedCodes.push(code);
              return phases;
            },
          },
          {
            endpoint: "POST /token (authorization_code, with a DPoP proof)",
            run: async () => {
              const code = pushedCodes.shift();
              if (code === undefined) throw new Error("no code left");
              const key = await dpopKey();
              const headers = { authorization: ours.webAuth, "content-type": FORM, dpop: await key.proof("POST", `${issuer}/token`) };
              return (await phasesOf(await fetch(`${issuer}/token`, { method: "POST", headers, body: ours.codeTokenBody(code) }), [200], "token (code, DPoP)")).phases;
            },
          },
        ];
      },
    },
  ].filter((p) => options.scenarios.includes(p.id));

  /** @type {any[]} */
  const endpoints = [];
  /** @type {Awaited<ReturnType<typeof measureBlocks>> | null} */
  let blocks = null;
  try {
    await ours.signInUsers(4);
    progress(`${ours.name} up at ${issuer}`);
    for (const plan of plans) {
      const steps = await plan.steps();
      for (const step of steps) {
        for (let i = 0; i < warmup; i++) await step.run(i);
        await settle(pgid, 500);
        /** @type {Phases[]} */
        const samples = [];
        /** @type {number[]} */
        const wall = [];
        const cpuBefore = groupCpuMs(pgid);
        for (let i = 0; i < iterations; i++) {
          const t = performance.now();
          samples.push(await step.run(i));
          wall.push(performance.now() - t);
        }
        await settle(pgid, 1000);
        const cpuMsPerRequest = (groupCpuMs(pgid) - cpuBefore) / iterations;
        /** @param {(p: Phases) => number} f */
        const stat = (f) => {
          const values = samples.map(f);
          return { median: median(values), mean: values.reduce((a, b) => a + b, 0) / values.length, min: Math.min(...values), max: Math.max(...values) };
        };
        const typical = [...samples].sort((a, b) => a.totalMs - b.totalMs)[Math.floor(samples.length / 2)];
        const summary = {
          scenario: plan.id,
          endpoint: step.endpoint,
          iterations,
          d1Sequential: stat((p) => p.d1.sequential),
          d1Calls: stat((p) => p.d1.calls),
          d1Ms: stat((p) => p.d1.ms),
          doSequential: stat((p) => p.do.sequential),
          doCalls: stat((p) => p.do.calls),
          doMs: stat((p) => p.do.ms),
          storageSequential: stat((p) => p.storage.sequential),
          storageMs: stat((p) => p.storage.ms),
          signs: stat((p) => p.sign.count),
          signMs: stat((p) => p.sign.ms),
          verifies: stat((p) => p.verify.count),
          verifyMs: stat((p) => p.verify.ms),
          workerMs: stat((p) => p.totalMs),
          // What is left of the Worker's time: its own JavaScript (and waiting for the CPU), not storage, not signing.
          otherMs: stat((p) => p.totalMs - p.storage.ms - p.sign.ms - p.verify.ms),
          clientMs: { median: median(wall) },
          cpuMsPerRequest,
          signAlgs: [...new Set(samples.flatMap((p) => p.sign.algs))],
          typicalTrace: typical?.trace ?? [],
          background: samples.flatMap((p) => p.background),
        };
        endpoints.push(summary);
        progress(
          `${step.endpoint}: ${summary.storageSequential.median} sequential round trips (D1 ${summary.d1Sequential.median}, DO ${summary.doSequential.median}), ` +
            `${summary.signs.median} signatures, ${summary.workerMs.mean.toFixed(2)} ms in the Worker, ${cpuMsPerRequest.toFixed(2)} CPU ms/request`,
        );
      }
    }
    if (options.blocks !== false) {
      progress("the building blocks, each alone under load (10 connections)");
      blocks = await measureBlocks(issuer, pgid, progress);
    }
  } finally {
    await ours.stop();
  }

  /** @param {{ median: number, mean: number, min: number, max: number }} s */
  const count = (s) => (s.min === s.max ? String(s.median) : `${s.median} (${s.min}–${s.max})`);
  /** @param {number} n */
  const ms = (n) => (Number.isFinite(n) ? n.toFixed(2) : "–");
  const rows = [
    [
      "endpoint",
      "sequential round trips",
      "D1 seq (queries)",
      "DO seq (calls)",
      "D1 ms",
      "DO ms",
      "signatures (ms)",
      "verifications (ms)",
      "Worker ms",
      "of it other ms",
      "CPU ms/req",
    ],
    ...endpoints.map((e) => [
      e.endpoint,
      count(e.storageSequential),
      `${count(e.d1Sequential)} (${count(e.d1Calls)})`,
      `${count(e.doSequential)} (${count(e.doCalls)})`,
      ms(e.d1Ms.mean),
      ms(e.doMs.mean),
      `${count(e.signs)} (${ms(e.signMs.mean)})`,
      `${count(e.verifies)} (${ms(e.verifyMs.mean)})`,
      ms(e.workerMs.mean),
      ms(e.otherMs.mean),
      ms(e.cpuMsPerRequest),
    ]),
  ];
  const traces = endpoints
    .map(
      (e) =>
        `${e.endpoint}\n` +
        (e.typicalTrace.length === 0
          ? "  (no storage calls)\n"
          : e.typicalTrace.map((/** @type {any} */ c, /** @type {number} */ i) => `  ${String(i + 1).padStart(2)}. ${c.overlapped ? "∥" : " "} +${c.atMs.toFixed(0).padStart(3)} ms  ${c.kind === "d1" ? "D1" : "DO"}  ${c.what}  (${typeof c.ms === "number" ? `${c.ms.toFixed(0)} ms` : "still running when the answer went"})${c.error ? " ERROR" : ""}`).join("\n") + "\n"),
    )
    .join("\n");

  const blockRows = blocks
    ? [
        ["building block", "CPU ms/request", "above the empty request", "requests/s"],
        ...BLOCKS.map((b) => [
          `${b.id}: ${b.what}`,
          ms(blocks?.measured[b.id]?.cpuMsPerOp ?? NaN),
          b.id === "empty" ? "" : ms(blocks?.above(b.id) ?? NaN),
          (blocks?.measured[b.id]?.opsPerSec ?? NaN).toFixed(0),
        ]),
      ]
    : null;
  const floorRows = blocks
    ? [
        ["endpoint", "floor CPU ms", "with ES256 access tokens", "target", "what it cannot do without (blocks above the empty request)"],
        ...blocks.floors.map((f) => [f.endpoint, ms(f.floorMs), ms(f.floorEs256Ms), f.target === null ? "–" : ms(f.target), f.blocks.map((b) => `${b.id} (${b.why})`).join(" + ")]),
      ]
    : null;
  const blocksText = blockRows && floorRows
    ? `Building blocks, each alone under load (10 connections, best of 3 rounds of 1 s, CPU of the whole process tree per request):\n\n${textTable(blockRows, ["l", "r", "r", "r"])}\n\n` +
      `Floors: the empty request plus what each endpoint's guarantees need, from the blocks above:\n\n${textTable(floorRows, ["l", "r", "r", "r", "l"])}\n\n`
    : "";
  const blocksMarkdown = blockRows && floorRows
    ? `\n## Building blocks and floors\n\nEach block alone under load (10 connections, best of 3 rounds of 1 s, CPU of the whole process tree per request):\n\n${markdownTable(blockRows)}\n\n` +
      `The floor of an endpoint is the empty request plus the blocks its guarantees need:\n\n${markdownTable(floorRows)}\n`
    : "";

  mkdirSync(path.dirname(options.out), { recursive: true });
  writeFileSync(
    options.out,
    `${JSON.stringify({ kind: "phases", date: new Date().toISOString(), machine: options.machine, iterations, warmup, endpoints, table: rows, blocks: blocks ? { measured: blocks.measured, floors: blocks.floors } : null }, null, 2)}\n`,
  );
  const md = path.join(path.dirname(options.out), "round-trips.md");
  writeFileSync(md, `Counts are medians of ${iterations} requests (min–max when they vary); times are means, in ms.\n\n${markdownTable(rows)}\n\nCalls of a typical request (median Worker time), in order, with their start time (∥ = started while another call was pending, so no round trip of its own; times have the 1 ms resolution of workerd's clock):\n\n\`\`\`\n${traces}\`\`\`\n${blocksMarkdown}`);
  process.stdout.write(
    `\nPer-request cost of our OP (instrumented deploy bundle in Miniflare, one request at a time, median of ${iterations}; ` +
      `"sequential" = waits on the critical path, overlapping calls counted once; counts are medians (min–max when they vary), ` +
      `times are means, from workerd's clock, which has a resolution of 1 ms)\n\n` +
      `${textTable(rows, rows[0]?.map((_, c) => (c === 0 ? "l" : "r")) ?? [])}\n\n${traces}\n${blocksText}` +
      `JSON in ${path.relative(root, options.out)}, markdown in ${path.relative(root, md)}\n`,
  );
}
