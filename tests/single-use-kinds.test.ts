import { abortAllDurableObjects, env, runDurableObjectAlarm } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { challengeStoreFor, jtiStoreFor, newChallengeId, newParRequestUri, parRequestStoreFor } from "../src/objects/locate";

describe("PAR request URIs (C9, RFC 9126)", () => {
  it("bound to the client that pushed them and usable once, even under 50 concurrent uses", async () => {
    const uri = newParRequestUri(env);
    const store = parRequestStoreFor(env, uri)!;
    await store.put(uri, { clientId: "client-a", params: { scope: "openid" } }, 60);
    expect(await store.consume(uri, { clientId: "client-b" })).toMatchObject({ status: "rejected" });
    const results = await Promise.all(Array.from({ length: 50 }, () => store.consume(uri, { clientId: "client-a" })));
    expect(results.filter((r) => r.status === "ok")).toHaveLength(1);
    // The refusals were audited; deliver them now, so that no alarm of this object is still running when a later test
    // aborts every object (an alarm cut off by abortAllDurableObjects is reported as an uncaught exception).
    // (The alarm may already be running by itself: then wait for it.)
    for (let i = 0; i < 100 && (await store.outboxStatus()).pending > 0; i++) {
      if (!(await runDurableObjectAlarm(store))) await new Promise((r) => setTimeout(r, 20));
    }
    expect(await store.outboxStatus()).toMatchObject({ pending: 0 });
  });

  it("a request_uri that is not ours resolves to no object", () => {
    expect(parRequestStoreFor(env, "urn:ietf:params:oauth:request_uri:../../etc")).toBeNull();
    expect(parRequestStoreFor(env, "https://evil.example/req")).toBeNull();
    expect(parRequestStoreFor(env, `urn:ietf:params:oauth:request_uri:zzzz.${"a".repeat(43)}`)).toBeNull();
  });
});

describe("proof jtis: DPoP (C10, RFC 9449 §11.1) and client assertions (RFC 7523)", () => {
  it("of 50 concurrent presentations of one jti exactly one is accepted", async () => {
    const scope = `dpop:${crypto.randomUUID()}`;
    const store = jtiStoreFor(env, scope);
    const use = { htm: "POST", htu: "https://op.example/token" };
    const results = await Promise.all(Array.from({ length: 50 }, () => store.recordJti(scope, "jti-1", use, 300)));
    expect(results.filter(Boolean)).toHaveLength(1);
    // The same jti under another key or client is a different proof.
    expect(await jtiStoreFor(env, "client_assertion:c1").recordJti("client_assertion:c1", "jti-1", {}, 300)).toBe(true);
    await abortAllDurableObjects();
    expect(await jtiStoreFor(env, scope).recordJti(scope, "jti-1", use, 300)).toBe(false);
  });
});

describe("login challenges (C8, C11)", () => {
  it.each(["magic_link", "passkey_registration", "passkey_authentication", "session_token"] as const)(
    "a %s challenge is single-use under 50 concurrent submissions and checked for its kind",
    async (kind) => {
      const id = newChallengeId(env);
      const store = challengeStoreFor(env, id)!;
      await store.put(id, { kind, userId: "u1" }, 300);
      const other = kind === "magic_link" ? "session_token" : "magic_link";
      expect(await store.consume(id, { kind: other })).toMatchObject({ status: "rejected" });
      const results = await Promise.all(Array.from({ length: 50 }, (_, i) => store.consume(id, { kind }, { sessionId: `s${i}` })));
      expect(results.filter((r) => r.status === "ok")).toHaveLength(1);
      const winner = results.findIndex((r) => r.status === "ok");
      // Every loser sees the tombstone with what the winner produced (C12: a retry finishes the same session).
      for (const r of results) if (r.status !== "ok") expect(r).toMatchObject({ status: "consumed", outcome: { sessionId: `s${winner}` } });
    },
  );
});
