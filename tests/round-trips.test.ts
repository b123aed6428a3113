import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { KeyManager } from "../src/objects/key-manager";
import { JtiStore } from "../src/objects/jtis";
import { RateLimiter } from "../src/objects/rate-limiter";
import { UserSessions } from "../src/objects/sessions";
import { SingleUseResourceStore } from "../src/objects/single-use-store";
import { TokenFamily } from "../src/objects/token-family";
import { errorOf, makeClient, postAs, userinfoWith, type TestClient, type Tokens } from "./helpers/back-channel";
import { Browser, REDIRECT_URI, authorizeParams, authorizeUrl, decide, followLink, followLocal, requestLink, uniqueEmail } from "./helpers/front-channel";

/**
 * The storage calls one request of each hot endpoint makes, as docs/round-trips.md lists them: D1 calls (a batch is
 * one) and Durable Object RPC calls, counted in this isolate (the Worker and its objects run here). Each is a network
 * round trip in production and a share of the CPU the bench measures, so one more is a regression this test names.
 * D1 writes of audit events (an object's alarm delivering its outbox) are not the request's and are not counted.
 */

interface Calls {
  d1: string[];
  objects: string[];
  /** Both kinds, in the order they reached their store. */
  order: string[];
}

const calls: Calls = { d1: [], objects: [], order: [] };
let instrumented = false;

const sqlOf = new WeakMap<object, string>();

function instrument(): void {
  if (instrumented) return;
  instrumented = true;
  const rpc: [object, string, string[]][] = [
    [RateLimiter.prototype, "RATE_LIMITER", ["hit", "peekUsage"]],
    [SingleUseResourceStore.prototype, "SINGLE_USE", ["put", "peek", "consume"]],
    [UserSessions.prototype, "SESSIONS", ["createSession", "getSession", "touchSession", "recordClient", "revokeSession", "listSessions"]],
    [TokenFamily.prototype, "TOKEN_FAMILIES", ["createFamily", "rotateRefreshToken", "checkAccessToken", "inspectRefreshToken", "revokeFamily", "isAccessTokenRevoked", "isRevoked"]],
    [KeyManager.prototype, "KEY_MANAGER", ["getSigningKey", "getJwks"]],
    [JtiStore.prototype, "JTIS", ["recordJti"]],
  ];
  for (const [proto, binding, names] of rpc) {
    const methods = proto as Record<string, (...args: unknown[]) => unknown>;
    for (const name of names) {
      const original = methods[name];
      if (typeof original !== "function") throw new Error(`${binding}.${name} is not a method`);
      methods[name] = function (...args) {
        calls.objects.push(`${binding}.${name}`);
        calls.order.push(`${binding}.${name}`);
        return original.apply(this, args);
      };
    }
  }
  const database = Object.getPrototypeOf(env.DB) as Record<string, (...args: unknown[]) => unknown>;
  const statement = Object.getPrototypeOf(env.DB.prepare("SELECT 1")) as Record<string, (...args: unknown[]) => unknown>;
  const prepare = database.prepare!;
  database.prepare = function (...args) {
    const prepared = prepare.apply(this, args) as object;
    sqlOf.set(prepared, String(args[0]));
    return prepared;
  };
  const bind = statement.bind!;
  statement.bind = function (...args) {
    const bound = bind.apply(this, args) as object;
    sqlOf.set(bound, sqlOf.get(this as object) ?? "?");
    return bound;
  };
  const counted = (sqls: string[]) => {
    // An object's alarm delivering its audit outbox to D1 is not the request's round trip.
    if (sqls.some((sql) => /INSERT\s+INTO\s+audit_log/i.test(sql))) return;
    calls.d1.push(sqls.length === 1 ? sqls[0]!.replace(/\s+/g, " ").slice(0, 60) : `batch of ${sqls.length}`);
    calls.order.push("D1");
  };
  for (const name of ["first", "all", "run", "raw"]) {
    const original = statement[name]!;
    statement[name] = function (...args) {
      counted([sqlOf.get(this as object) ?? "?"]);
      return original.apply(this, args);
    };
  }
  const batch = database.batch!;
  database.batch = function (...args) {
    counted((args[0] as object[]).map((s) => sqlOf.get(s) ?? "?"));
    return batch.apply(this, args);
  };
}

/** The calls `request` makes, including what it leaves running after its answer (waitUntil), given a moment to start. */
async function callsOf(request: () => Promise<Response>): Promise<{ response: Response; d1: number; objects: string[]; order: string[]; trace: string }> {
  await new Promise((resolve) => setTimeout(resolve, 300)); // earlier requests' background work and alarms are done
  calls.d1.length = 0;
  calls.objects.length = 0;
  calls.order.length = 0;
  const response = await request();
  const body = await response.clone().arrayBuffer();
  await new Promise((resolve) => setTimeout(resolve, 300));
  const trace = JSON.stringify({ status: response.status, bytes: body.byteLength, d1: calls.d1, order: calls.order });
  return { response, d1: calls.d1.length, objects: [...calls.objects].sort(), order: [...calls.order], trace };
}

describe("storage round trips per request (docs/round-trips.md)", () => {
  it("each hot endpoint makes the D1 calls and object calls the table lists, and no more", { timeout: 60_000 }, async () => {
    instrument();
    const rp: TestClient = await makeClient({ grant_types: ["authorization_code", "refresh_token"], scope: "openid profile email offline_access" });
    const api: TestClient = await makeClient({ grant_types: ["client_credentials"], scope: "reports:read" });
    await SELF.fetch("http://localhost/jwks.json"); // the isolate's key cache, not a per-request cost

    // A user signs in and consents once; afterwards their browser has a session and the consent is remembered.
    const browser = new Browser();
    const signIn = async () => {
      const { verifier, params } = await authorizeParams(rp.clientId, { scope: "openid profile email offline_access" });
      let answer = await browser.get(authorizeUrl(params));
      if (answer.headers.get("location")?.startsWith("/login")) {
        answer = await followLocal(browser, await followLink(browser, await requestLink(browser, answer.headers.get("location")!, uniqueEmail("rt"))));
      }
      if (answer.status === 200) answer = await decide(browser, answer, "allow");
      const code = new URL(answer.headers.get("location")!).searchParams.get("code")!;
      return { verifier, params, code };
    };
    const first = await signIn();
    const redeem = (code: string, verifier: string) =>
      postAs(rp, "/token", { grant_type: "authorization_code", code, redirect_uri: REDIRECT_URI, code_verifier: verifier });
    const tokens = await (await redeem(first.code, first.verifier)).json<Tokens>();
    await postAs(api, "/token", { grant_type: "client_credentials" }); // warm: the client's key and shard objects

    // GET /authorize, signed in, consent remembered: the rate limit beside one D1 batch (client, user, consent), the
    // session, the code. The session knows this client already, so it is not told again.
    const { verifier, params } = await authorizeParams(rp.clientId, { scope: "openid profile email offline_access" });
    const authorize = await callsOf(() => browser.get(authorizeUrl(params)));
    expect(authorize.response.status, authorize.trace).toBe(303);
    expect(authorize.d1, authorize.trace).toBe(1);
    expect(authorize.objects, authorize.trace).toEqual(["RATE_LIMITER.hit", "SESSIONS.touchSession", "SINGLE_USE.put"]);
    const code = new URL(authorize.response.headers.get("location")!).searchParams.get("code")!;

    // POST /token, authorization_code: the rate limit, the client, the code, then the user beside the new grant.
    const exchange = await callsOf(() => redeem(code, verifier));
    expect(exchange.response.status, exchange.trace).toBe(200);
    expect(exchange.d1, exchange.trace).toBe(2);
    expect(exchange.objects, exchange.trace).toEqual(["RATE_LIMITER.hit", "SESSIONS.recordClient", "SINGLE_USE.consume", "TOKEN_FAMILIES.createFamily"]);

    // Without offline_access the grant lives in its access tokens: the code's exchange makes no object, it only asks
    // whether a replay revoked the grant already (C1); /userinfo asks the same of the grant's id.
    const online = await authorizeParams(rp.clientId, { scope: "openid profile email" });
    const onlineCode = new URL((await browser.get(authorizeUrl(online.params))).headers.get("location")!).searchParams.get("code")!;
    const onlineExchange = await callsOf(() => redeem(onlineCode, online.verifier));
    expect(onlineExchange.response.status, onlineExchange.trace).toBe(200);
    expect(onlineExchange.d1, onlineExchange.trace).toBe(2);
    expect(onlineExchange.objects, onlineExchange.trace).toEqual(["RATE_LIMITER.hit", "SESSIONS.recordClient", "SINGLE_USE.consume", "TOKEN_FAMILIES.isRevoked"]);
    const onlineTokens = await onlineExchange.response.json<Tokens>();
    const onlineUserinfo = await callsOf(() => userinfoWith(onlineTokens.access_token));
    expect(onlineUserinfo.response.status, onlineUserinfo.trace).toBe(200);
    expect(onlineUserinfo.d1, onlineUserinfo.trace).toBe(1);
    expect(onlineUserinfo.objects, onlineUserinfo.trace).toEqual(["TOKEN_FAMILIES.isAccessTokenRevoked"]);

    // POST /token, refresh_token: the rate limit, one D1 batch of the client and the user the token names, the rotation.
    const refresh = await callsOf(() => postAs(rp, "/token", { grant_type: "refresh_token", refresh_token: tokens.refresh_token! }));
    expect(refresh.response.status, refresh.trace).toBe(200);
    expect(refresh.d1, refresh.trace).toBe(1);
    expect(refresh.objects, refresh.trace).toEqual(["RATE_LIMITER.hit", "TOKEN_FAMILIES.rotateRefreshToken"]);
    // The rate limit first (issue 6): a refused request reads nothing.
    expect(refresh.order, refresh.trace).toEqual(["RATE_LIMITER.hit", "D1", "TOKEN_FAMILIES.rotateRefreshToken"]);
    const refreshed = await refresh.response.json<Tokens>();

    // GET /userinfo: one D1 batch (client, user) beside the grant's object.
    const userinfo = await callsOf(() => userinfoWith(refreshed.access_token));
    expect(userinfo.response.status, userinfo.trace).toBe(200);
    expect(userinfo.d1, userinfo.trace).toBe(1);
    expect(userinfo.objects, userinfo.trace).toEqual(["TOKEN_FAMILIES.checkAccessToken"]);

    // POST /introspect: the rate limit, then the caller's row and the token's user in one D1 batch beside the grant's object.
    const introspect = await callsOf(() => postAs(rp, "/introspect", { token: refreshed.access_token }));
    expect(introspect.response.status, introspect.trace).toBe(200);
    expect(await introspect.response.json(), introspect.trace).toMatchObject({ active: true });
    expect(introspect.d1, introspect.trace).toBe(1);
    expect(introspect.objects, introspect.trace).toEqual(["RATE_LIMITER.hit", "TOKEN_FAMILIES.checkAccessToken"]);
    expect(introspect.order[0], introspect.trace).toBe("RATE_LIMITER.hit");

    // POST /token, client_credentials: the rate limit and the client; no object for the grant.
    const cc = await callsOf(() => postAs(api, "/token", { grant_type: "client_credentials" }));
    expect(cc.response.status, cc.trace).toBe(200);
    expect(cc.d1, cc.trace).toBe(1);
    expect(cc.objects, cc.trace).toEqual(["RATE_LIMITER.hit"]);
    expect(cc.order, cc.trace).toEqual(["RATE_LIMITER.hit", "D1"]);

    // Introspection by another client reads only the caller, and says inactive (C14).
    const other = await makeClient();
    const foreign = await callsOf(() => postAs(other, "/introspect", { token: refreshed.access_token }));
    expect(await foreign.response.json(), foreign.trace).toEqual({ active: false });
    expect(foreign.d1, foreign.trace).toBe(1);
    expect(foreign.objects, foreign.trace).toEqual(["RATE_LIMITER.hit"]);
    // The token's own client with a wrong secret: the lookups that started beside its row are left unused, and the
    // answer is the authentication failure, nothing about the token.
    const badCaller = await callsOf(() => postAs({ ...rp, secret: "not-the-secret-not-the-secret-xx" }, "/introspect", { token: refreshed.access_token }));
    expect(badCaller.response.status, badCaller.trace).toBe(401);
    expect(await badCaller.response.json(), badCaller.trace).toMatchObject({ error: "invalid_client" });
    expect(badCaller.order[0], badCaller.trace).toBe("RATE_LIMITER.hit");
    // A refresh whose client fails to authenticate rotates nothing; the token still works.
    const wrong = await callsOf(() => postAs({ ...rp, secret: "not-the-secret-not-the-secret-xx" }, "/token", { grant_type: "refresh_token", refresh_token: refreshed.refresh_token! }));
    expect((await errorOf(wrong.response)).error, wrong.trace).toBe("invalid_client");
    expect(wrong.objects, wrong.trace).toEqual(["RATE_LIMITER.hit"]);
    expect((await postAs(rp, "/token", { grant_type: "refresh_token", refresh_token: refreshed.refresh_token! })).status).toBe(200);
  });
});
