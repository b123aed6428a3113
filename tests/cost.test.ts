import { SELF, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { KeyManager } from "../src/objects/key-manager";
import { RateLimiter } from "../src/objects/rate-limiter";
import { UserSessions } from "../src/objects/sessions";
import { SingleUseResourceStore } from "../src/objects/single-use-store";
import { StatefulObject } from "../src/objects/base";
import { TokenFamily } from "../src/objects/token-family";
import { Browser, ORIGIN, REDIRECT_URI, authorizeUrl, decide, followLink, followLocal, makeClient, pkcePair, requestLink, uniqueEmail } from "./helpers/front-channel";

/**
 * What one sign-in and one refresh cost in the units Cloudflare bills (docs/deployment.md, "Cost"): Worker requests,
 * Durable Object requests (RPC calls and alarm invocations), SQLite rows written in objects (as workerd counts them:
 * `cursor.rowsWritten`, DDL included, plus one per `setAlarm`) and D1 rows written. The counters wrap the objects'
 * RPC methods and the storage APIs in this isolate. The bounds are the figures measured in 2026-12 with some room:
 * a change that makes a flow markedly dearer fails here (the message lists every figure) and should update the cost
 * section.
 */

interface Usage {
  workerRequests: number;
  objectCalls: number;
  alarms: number;
  objectRowsWritten: number;
  d1RowsWritten: number;
}

const cursors: { rowsWritten: number }[] = [];
let setAlarms = 0;
let d1RowsWritten = 0;
let objectCalls = 0;
let alarms = 0;
let workerRequests = 0;

const usage = (): Usage => ({
  workerRequests,
  objectCalls,
  alarms,
  objectRowsWritten: cursors.reduce((sum, c) => sum + c.rowsWritten, 0) + setAlarms,
  d1RowsWritten,
});

async function instrument(): Promise<void> {
  await runInDurableObject(env.RATE_LIMITER.get(env.RATE_LIMITER.idFromName("cost-probe")), (_object, state) => {
    const sql = Object.getPrototypeOf(state.storage.sql) as { exec: (...args: unknown[]) => { rowsWritten: number } };
    const exec = sql.exec;
    sql.exec = function (...args) {
      const cursor = exec.apply(this, args);
      cursors.push(cursor);
      return cursor;
    };
    const storage = Object.getPrototypeOf(state.storage) as { setAlarm: (...args: unknown[]) => Promise<void> };
    const setAlarm = storage.setAlarm;
    storage.setAlarm = function (...args) {
      setAlarms++;
      return setAlarm.apply(this, args);
    };
  });
  // RPC methods the Worker calls; each call is one billed Durable Object request.
  const rpc: [object, string[]][] = [
    [RateLimiter.prototype, ["hit"]],
    [SingleUseResourceStore.prototype, ["put", "peek", "consume"]],
    [UserSessions.prototype, ["createSession", "touchSession", "recordClient", "revokeSession", "listSessions"]],
    [TokenFamily.prototype, ["createFamily", "rotateRefreshToken", "checkAccessToken", "inspectRefreshToken"]],
    [KeyManager.prototype, ["getSigningKey", "getJwks"]],
  ];
  for (const [proto, names] of rpc) {
    for (const name of names) {
      const methods = proto as Record<string, (...args: unknown[]) => unknown>;
      const original = methods[name]!;
      methods[name] = function (...args) {
        objectCalls++;
        return original.apply(this, args);
      };
    }
  }
  const base = StatefulObject.prototype as unknown as { alarm: (...args: unknown[]) => unknown };
  const alarm = base.alarm;
  base.alarm = function (...args) {
    alarms++;
    return alarm.apply(this, args);
  };
  // D1 writes: drizzle's inserts and updates go through run() and batch(), whose results carry meta.rows_written.
  const statement = Object.getPrototypeOf(env.DB.prepare("SELECT 1")) as { run: (...args: unknown[]) => Promise<D1Result> };
  const run = statement.run;
  statement.run = async function (...args) {
    const result = await run.apply(this, args);
    d1RowsWritten += result.meta.rows_written ?? 0;
    return result;
  };
  const database = Object.getPrototypeOf(env.DB) as { batch: (...args: unknown[]) => Promise<D1Result[]> };
  const batch = database.batch;
  database.batch = async function (...args) {
    const results = await batch.apply(this, args);
    for (const result of results) d1RowsWritten += result.meta.rows_written ?? 0;
    return results;
  };
}

/** The usage of `flow`, including the alarms it triggers at once (audit delivery), waited for briefly. */
async function measure<T>(flow: () => Promise<T>): Promise<{ value: T; used: Usage }> {
  const before = usage();
  const value = await flow();
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const after = usage();
  const used = Object.fromEntries(Object.entries(after).map(([k, v]) => [k, v - before[k as keyof Usage]])) as unknown as Usage;
  return { value, used };
}

describe("the cost of a sign-in and a refresh", () => {
  it("stays within the figures docs/deployment.md's cost section is built on", { timeout: 60_000 }, async () => {
    await instrument();
    const client = await makeClient({ token_endpoint_auth_method: "none" });
    await SELF.fetch(`${ORIGIN}/jwks.json`); // the key manager's first keys are not a per-sign-in cost
    const fetchCounted = (path: string, init?: RequestInit) => {
      workerRequests++;
      return SELF.fetch(`${ORIGIN}${path}`, init);
    };
    const tokenRequest = (params: Record<string, string>) =>
      fetchCounted("/token", { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams({ client_id: client.client_id, ...params }) });

    /** A browser whose every request to the OP is counted (the dev mailbox is read around it, uncounted). */
    const countedBrowser = () => {
      const browser = new Browser();
      const original = browser.fetch.bind(browser);
      browser.fetch = (path, init) => {
        workerRequests++;
        return original(path, init);
      };
      return browser;
    };
    const email = uniqueEmail("cost");
    const signIn = async (browser: Browser) => {
      const { verifier, challenge } = await pkcePair();
      const params = { client_id: client.client_id, redirect_uri: REDIRECT_URI, response_type: "code", scope: "openid email profile offline_access", state: "s", nonce: "n", code_challenge: challenge, code_challenge_method: "S256" };
      const start = await browser.get(authorizeUrl(params));
      let answer = start;
      if (start.headers.get("location")?.startsWith("/login")) {
        answer = await followLocal(browser, await followLink(browser, await requestLink(browser, start.headers.get("location")!, email)));
      }
      if (answer.status === 200) answer = await decide(browser, answer, "allow");
      const code = new URL(answer.headers.get("location")!).searchParams.get("code")!;
      const tokens = await (await tokenRequest({ grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier })).json<{ access_token: string; refresh_token: string }>();
      expect((await fetchCounted("/userinfo", { headers: { authorization: `Bearer ${tokens.access_token}` } })).status).toBe(200);
      return tokens;
    };

    const browser = countedBrowser();
    const first = await measure(() => signIn(browser));
    const sso = await measure(() => signIn(browser));
    const another = countedBrowser();
    const repeat = await measure(() => signIn(another));
    let refreshToken = repeat.value.refresh_token;
    const refresh = await measure(async () => {
      const answer = await tokenRequest({ grant_type: "refresh_token", refresh_token: refreshToken });
      expect(answer.status).toBe(200);
      refreshToken = (await answer.json<{ refresh_token: string }>()).refresh_token;
    });

    // Every failure message carries all the figures.
    const figures = JSON.stringify({ first: first.used, repeat: repeat.used, sso: sso.used, refresh: refresh.used });
    // Measured 2026-12 (rows vary a little with which rate-limit and shard objects exist already):
    // first 10 requests, 29 object calls, 246 object rows, 24 D1 rows; repeat 8, 23, 169, 15; sso 3, 9, 55, 4; refresh 1, 2, 10, 4
    // (rows went up with the migrations every new object now runs: the token family's successor key and registration, the
    // rate-limit shards' key column).
    // First sign-in of a new user, with consent.
    expect(first.used.workerRequests, figures).toBeLessThanOrEqual(10);
    expect(first.used.objectCalls, figures).toBeLessThanOrEqual(36);
    expect(first.used.objectRowsWritten, figures).toBeLessThanOrEqual(270);
    expect(first.used.d1RowsWritten, figures).toBeLessThanOrEqual(35);
    // Email-link sign-in in another browser, consent remembered.
    expect(repeat.used.objectCalls, figures).toBeLessThanOrEqual(30);
    expect(repeat.used.objectRowsWritten, figures).toBeLessThanOrEqual(190);
    // Signed in already (session cookie): /authorize, /token, /userinfo.
    expect(sso.used.workerRequests, figures).toBe(3);
    expect(sso.used.objectCalls, figures).toBeLessThanOrEqual(12);
    expect(sso.used.objectRowsWritten, figures).toBeLessThanOrEqual(70);
    // A refresh: the rate limit and the grant's object; rows: the rotation, its audit event, their alarms.
    expect(refresh.used.workerRequests, figures).toBe(1);
    expect(refresh.used.objectCalls, figures).toBeLessThanOrEqual(2);
    expect(refresh.used.objectRowsWritten, figures).toBeLessThanOrEqual(14);
    expect(refresh.used.d1RowsWritten, figures).toBeLessThanOrEqual(6);
  });
});
