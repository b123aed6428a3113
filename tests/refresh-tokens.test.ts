import { abortAllDurableObjects, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { tokenFamilyFor } from "../src/objects/locate";
import { familyIdOfRefreshToken, newFamilyId, userOfRefreshToken, type FamilyInit, type RotateRequest, type TokenFamily } from "../src/objects/token-family";
import { isScopeSubset, normalizeScope, parseScope } from "../src/lib/scope";

const CLIENT = "client-a";
const SCOPE = "openid profile email offline_access";
/** When CLIENT was registered (ms): the registration its grants are made under. */
const REGISTERED_AT = 1_690_000_000_000;

function family(id = newFamilyId()) {
  const stub = tokenFamilyFor(env, id);
  if (!stub) throw new Error(`not a family id: ${id}`);
  return { id, stub };
}

function init(familyId: string, overrides: Partial<FamilyInit> = {}): FamilyInit {
  return {
    familyId,
    clientId: CLIENT,
    clientRegisteredAt: REGISTERED_AT,
    sub: `user-${crypto.randomUUID()}`,
    scope: SCOPE,
    sid: "sid-1",
    authTime: 1_700_000_000,
    amr: ["hwk", "user"],
    acr: null,
    claims: null,
    dpopJkt: null,
    issueRefreshToken: true,
    ...overrides,
  };
}

const asClient: RotateRequest = { clientId: CLIENT, clientRegisteredAt: REGISTERED_AT, scope: null, dpopJkt: null };

type Stub = ReturnType<typeof family>["stub"];

async function created(stub: Stub, value: FamilyInit): Promise<string> {
  const result = await stub.createFamily(value);
  if (result.status !== "created" || result.refreshToken === null) throw new Error(`createFamily: ${result.status}`);
  return result.refreshToken;
}

async function rotated(stub: Stub, token: string, request: RotateRequest = asClient): Promise<string> {
  const result = await stub.rotateRefreshToken(token, request);
  if (result.status !== "ok") throw new Error(`rotate: ${result.status}`);
  return result.refreshToken;
}

function rows(stub: Stub) {
  return runInDurableObject(stub, (_o, state) => {
    // A table that is not there holds nothing: an object with no storage yet, or one that deleted its storage (C15).
    const exists = (table: string) => state.storage.sql.exec(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?`, table).toArray().length > 0;
    const count = (table: string) => (exists(table) ? state.storage.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM ${table}`).one().n : 0);
    return { family: count("family"), tokens: count("refresh_tokens"), jtis: count("revoked_access_tokens") };
  });
}

/**
 * The audit events of one family, wherever they are now. The alarm may deliver the outbox to D1 at any moment, so both
 * are read: the outbox first, then D1 — an event leaves the outbox only after D1 has it, so none is missed.
 */
async function auditTypes(stub: Stub, familyId: string): Promise<string[]> {
  const pending = await runInDurableObject(stub, (_o, state) =>
    state.storage.sql
      .exec<{ event: string }>("SELECT event FROM audit_outbox")
      .toArray()
      .map((r) => JSON.parse(r.event) as { eventId: string; type: string; occurredAt: number; data?: { familyId?: string } }),
  );
  const { results } = await env.DB.prepare("SELECT event_id, type, occurred_at FROM audit_log WHERE json_extract(data, '$.familyId') = ?")
    .bind(familyId)
    .all<{ event_id: string; type: string; occurred_at: number }>();
  const all = new Map<string, { type: string; at: number }>();
  for (const e of pending) if (e.data?.familyId === familyId) all.set(e.eventId, { type: e.type, at: e.occurredAt });
  for (const r of results) all.set(r.event_id, { type: r.type, at: r.occurred_at });
  return [...all.values()].sort((a, b) => a.at - b.at).map((e) => e.type);
}

async function auditLog(subject: string) {
  const { results } = await env.DB.prepare("SELECT type, source, client_id, data FROM audit_log WHERE subject = ? ORDER BY occurred_at, type")
    .bind(subject)
    .all<{ type: string; source: string; client_id: string | null; data: string | null }>();
  return results;
}

afterEach(() => vi.useRealTimers());

describe("scopes (RFC 6749 §3.3)", () => {
  it("is a set of case-sensitive tokens", () => {
    expect(isScopeSubset("openid", SCOPE)).toBe(true);
    expect(isScopeSubset("email openid", SCOPE)).toBe(true);
    expect(isScopeSubset("openid openid  profile", SCOPE)).toBe(true);
    expect(isScopeSubset(SCOPE, SCOPE)).toBe(true);
    expect(isScopeSubset("openid admin", SCOPE)).toBe(false);
    expect(isScopeSubset("OpenID", SCOPE)).toBe(false);
    expect(isScopeSubset("", SCOPE)).toBe(false);
    expect(isScopeSubset("   ", SCOPE)).toBe(false);
    expect(isScopeSubset('openid "x"', 'openid "x"')).toBe(false);
    expect(isScopeSubset("openid\tprofile", SCOPE)).toBe(false);
    expect(parseScope("a b a")).toEqual(["a", "b"]);
    expect(normalizeScope(" profile  openid profile ")).toBe("profile openid");
    expect(normalizeScope("")).toBeNull();
  });
});

describe("refresh token format", () => {
  it("names its family, and anything else names none", () => {
    const id = newFamilyId();
    expect(familyIdOfRefreshToken(`${id}.${"A".repeat(43)}`)).toBe(id);
    expect(familyIdOfRefreshToken(id)).toBeNull();
    expect(familyIdOfRefreshToken(`${id}.short`)).toBeNull();
    expect(familyIdOfRefreshToken(`${id}.${"A".repeat(43)}.x`)).toBeNull();
    expect(familyIdOfRefreshToken(`bad id.${"A".repeat(43)}`)).toBeNull();
    expect(familyIdOfRefreshToken(`${"a".repeat(129)}.${"A".repeat(43)}`)).toBeNull();
    expect(familyIdOfRefreshToken("")).toBeNull();
  });

  it("may name its user too (<family>.<sub>.<secret>), as a hint; the older form names none", () => {
    const id = newFamilyId();
    const sub = `user-${crypto.randomUUID()}`;
    expect(familyIdOfRefreshToken(`${id}.${sub}.${"A".repeat(43)}`)).toBe(id);
    expect(userOfRefreshToken(`${id}.${sub}.${"A".repeat(43)}`)).toBe(sub);
    expect(userOfRefreshToken(`${id}.${"A".repeat(43)}`)).toBeNull();
    expect(userOfRefreshToken(`${id}.not a user.${"A".repeat(43)}`)).toBeNull();
    expect(familyIdOfRefreshToken(`${id}.${sub}.${sub}.${"A".repeat(43)}`)).toBeNull();
    expect(familyIdOfRefreshToken(`${id}.${"u".repeat(129)}.${"A".repeat(43)}`)).toBeNull();
  });
});

describe("TokenFamily (C3)", () => {
  it("creates a family and rotates along a chain; only the newest token is active", async () => {
    const { id, stub } = family();
    const value = init(id);
    const first = await stub.createFamily(value);
    expect(first).toMatchObject({
      status: "created",
      family: { familyId: id, clientId: CLIENT, sub: value.sub, scope: SCOPE, amr: ["hwk", "user"], status: "active" },
    });
    if (first.status !== "created" || first.refreshToken === null) throw new Error("not created");
    const t1 = first.refreshToken;
    expect(familyIdOfRefreshToken(t1)).toBe(id);
    const t2 = await rotated(stub, t1);
    const t3 = await rotated(stub, t2);
    expect(new Set([t1, t2, t3]).size).toBe(3);
    expect(familyIdOfRefreshToken(t3)).toBe(id);
    expect(await stub.inspectRefreshToken(t1)).toEqual({ active: false });
    expect(await stub.inspectRefreshToken(t2)).toEqual({ active: false });
    expect(await stub.inspectRefreshToken(t3)).toMatchObject({ active: true, family: { familyId: id, sub: value.sub } });
    // Only hashes are stored, never the token.
    const stored = await runInDurableObject(stub, (_o, state) =>
      state.storage.sql.exec<{ token_hash: string; generation: number; status: string }>("SELECT token_hash, generation, status FROM refresh_tokens ORDER BY generation").toArray(),
    );
    expect(stored.map((r) => [r.generation, r.status])).toEqual([
      [1, "rotated"],
      [2, "rotated"],
      [3, "active"],
    ]);
    expect(stored.some((r) => [t1, t2, t3].some((t) => t.includes(r.token_hash) || r.token_hash.includes(t)))).toBe(false);
    expect((await auditTypes(stub, id)).sort()).toEqual(["refresh_token.rotated", "refresh_token.rotated", "token_family.created"]);
    // Creating the same family again changes nothing.
    expect(await stub.createFamily(value)).toEqual({ status: "exists" });
  });

  it("refuses to create a family in an object addressed by another family id", async () => {
    const a = family();
    // On the instance: a rejected stub call is also reported as an "uncaught exception" by the test pool (workers-sdk#14736).
    const failure = async (value: FamilyInit) => {
      try {
        await runInDurableObject(a.stub, (o) => (o as unknown as TokenFamily).createFamily(value));
        return "created";
      } catch (error) {
        return error instanceof Error ? error.message : String(error);
      }
    };
    expect(await failure(init(newFamilyId()))).toMatch(/does not name this object/);
    expect(await failure(init("bad id"))).toMatch(/malformed familyId/);
    expect(await a.stub.getFamily()).toBeNull();
  });

  it("garbage, a token of another family and a family without refresh tokens are unknown", async () => {
    const a = family();
    const b = family();
    const tokenA = await created(a.stub, init(a.id));
    await b.stub.createFamily(init(b.id, { issueRefreshToken: false }));
    expect(await b.stub.rotateRefreshToken(tokenA, asClient)).toEqual({ status: "unknown" });
    expect(await a.stub.rotateRefreshToken("not-a-token", asClient)).toEqual({ status: "unknown" });
    expect(await a.stub.rotateRefreshToken(`${a.id}.${"A".repeat(43)}`, asClient)).toEqual({ status: "unknown" });
    expect(await b.stub.getFamily()).toMatchObject({ familyId: b.id, status: "active" });
    // A guessed token of the right shape is unknown and burns nothing.
    expect((await a.stub.rotateRefreshToken(tokenA, asClient)).status).toBe("ok");
  });

  it("presenting a rotated token revokes the whole family, newest token included, and is audited", async () => {
    const { id, stub } = family();
    const value = init(id);
    const t1 = await created(stub, value);
    const t2 = await rotated(stub, t1);
    const t3 = await rotated(stub, t2);
    expect(await stub.rotateRefreshToken(t2, asClient)).toEqual({ status: "reused" });
    expect(await stub.rotateRefreshToken(t3, asClient)).toEqual({ status: "revoked" });
    expect(await stub.inspectRefreshToken(t3)).toEqual({ active: false });
    expect(await stub.getFamily()).toMatchObject({ status: "revoked" });
    expect(await stub.checkAccessToken("any-jti")).toEqual({ active: false });
    expect(await auditTypes(stub, id)).toEqual(
      expect.arrayContaining(["refresh_token.reuse_detected", "token_family.revoked"]),
    );
    const reason = await runInDurableObject(stub, (_o, state) =>
      state.storage.sql.exec<{ revoked_reason: string }>("SELECT revoked_reason FROM family").one().revoked_reason,
    );
    expect(reason).toBe("refresh_token_reuse");
  });

  for (const n of [10, 50]) {
    it(`of ${n} concurrent rotations of one token exactly one succeeds, and the replays revoke the family`, async () => {
      const { id, stub } = family();
      const t1 = await created(stub, init(id));
      const results = await Promise.all(Array.from({ length: n }, () => stub.rotateRefreshToken(t1, asClient)));
      const count = (status: string) => results.filter((r) => r.status === status).length;
      expect(count("ok")).toBe(1);
      // The first replay is the reuse that revokes; the rest find the family already revoked.
      expect(count("reused")).toBe(1);
      expect(count("revoked")).toBe(n - 2);
      const winner = results.find((r) => r.status === "ok");
      if (winner?.status !== "ok") throw new Error("no winner");
      expect(await stub.rotateRefreshToken(winner.refreshToken, asClient)).toEqual({ status: "revoked" });
      expect(await stub.getFamily()).toMatchObject({ status: "revoked" });
      expect(await rows(stub)).toMatchObject({ family: 1, tokens: 2 });
    });
  }

  it("a narrower scope may be requested, a wider one is invalid_scope and changes nothing (RFC 6749 §6)", async () => {
    const { id, stub } = family();
    const t1 = await created(stub, init(id));
    const narrow = await stub.rotateRefreshToken(t1, { ...asClient, scope: "profile  openid" });
    expect(narrow).toMatchObject({ status: "ok", scope: "profile openid", family: { scope: SCOPE } });
    if (narrow.status !== "ok") throw new Error("not ok");
    const before = await auditTypes(stub, id);
    for (const scope of ["openid admin", "OPENID", "", "openid\u00e9"]) {
      expect(await stub.rotateRefreshToken(narrow.refreshToken, { ...asClient, scope })).toEqual({ status: "invalid_scope" });
    }
    expect(await auditTypes(stub, id)).toEqual(before);
    expect(await stub.inspectRefreshToken(narrow.refreshToken)).toMatchObject({ active: true });
    // The family keeps its original grant: without a scope parameter the whole scope comes back.
    const full = await stub.rotateRefreshToken(narrow.refreshToken, asClient);
    expect(full).toMatchObject({ status: "ok", scope: SCOPE });
  });

  it("another client is rejected and changes nothing, even with a rotated token", async () => {
    const { id, stub } = family();
    const t1 = await created(stub, init(id));
    const t2 = await rotated(stub, t1);
    const before = await auditTypes(stub, id);
    const other = { ...asClient, clientId: "client-b" };
    expect(await stub.rotateRefreshToken(t2, other)).toMatchObject({ status: "rejected" });
    expect(await stub.rotateRefreshToken(t1, other)).toMatchObject({ status: "rejected" });
    expect(await auditTypes(stub, id)).toEqual(before);
    expect(await stub.getFamily()).toMatchObject({ status: "active" });
    expect((await stub.rotateRefreshToken(t2, asClient)).status).toBe("ok");
  });

  it("a grant of an earlier registration of its client_id is refused in the rotation's transaction, and changes nothing (RFC 9700 §4.14)", async () => {
    const { id, stub } = family();
    const t1 = await created(stub, init(id));
    expect((await stub.getFamily())!.clientRegisteredAt).toBe(REGISTERED_AT);
    const t2 = await rotated(stub, t1);
    const before = await auditTypes(stub, id);
    // The client_id was deleted and registered again: both the current and a rotated token are refused, nothing written.
    const reborn = { ...asClient, clientRegisteredAt: REGISTERED_AT + 1 };
    for (const token of [t2, t1]) {
      expect(await stub.rotateRefreshToken(token, reborn)).toEqual({ status: "rejected", reason: "refresh token was issued to an earlier registration of this client" });
    }
    expect(await auditTypes(stub, id)).toEqual(before);
    expect((await stub.inspectRefreshToken(t2)).active).toBe(true);

    // A grant stored before grants recorded their registration is judged by its age.
    const legacy = family();
    const l1 = await created(legacy.stub, init(legacy.id));
    const createdAt = await runInDurableObject(legacy.stub, (_o, state) => {
      state.storage.sql.exec("UPDATE family SET client_registered_at = NULL");
      return state.storage.sql.exec<{ created_at: number }>("SELECT created_at FROM family").one().created_at;
    });
    expect(await legacy.stub.rotateRefreshToken(l1, { ...asClient, clientRegisteredAt: createdAt + 1 })).toMatchObject({ status: "rejected" });
    expect((await legacy.stub.rotateRefreshToken(l1, { ...asClient, clientRegisteredAt: createdAt })).status).toBe("ok");
  });

  it("a DPoP-bound family only rotates with a proof of the same key (RFC 9449 §5)", async () => {
    const { id, stub } = family();
    const t1 = await created(stub, init(id, { dpopJkt: "jkt-1" }));
    expect(await stub.rotateRefreshToken(t1, asClient)).toMatchObject({ status: "rejected" });
    expect(await stub.rotateRefreshToken(t1, { ...asClient, dpopJkt: "jkt-2" })).toMatchObject({ status: "rejected" });
    const ok = await stub.rotateRefreshToken(t1, { ...asClient, dpopJkt: "jkt-1" });
    expect(ok).toMatchObject({ status: "ok", family: { dpopJkt: "jkt-1" } });
    // An unbound family accepts a refresh with or without a proof.
    const unbound = family();
    const u1 = await created(unbound.stub, init(unbound.id));
    expect((await unbound.stub.rotateRefreshToken(u1, { ...asClient, dpopJkt: "jkt-9" })).status).toBe("ok");
  });

  it("a family revoked before it was created is never created (RFC 6749 §4.1.2, C1)", async () => {
    const { id, stub } = family();
    expect(await stub.revokeFamily("authorization_code_replay", "auth_code")).toEqual({ revoked: true });
    expect(await stub.createFamily(init(id))).toEqual({ status: "revoked" });
    expect(await stub.getFamily()).toBeNull();
    expect(await stub.checkAccessToken("jti-1")).toEqual({ active: false });
    expect(await stub.revokeFamily("again")).toEqual({ revoked: false });
    expect(await rows(stub)).toEqual({ family: 1, tokens: 0, jtis: 0 });
    expect(await auditTypes(stub, id)).toEqual(["token_family.revoked"]);
  });

  it("revokeFamily revokes a live family once", async () => {
    const { id, stub } = family();
    const t1 = await created(stub, init(id));
    expect(await stub.checkAccessToken("jti-1")).toMatchObject({ active: true });
    expect(await stub.revokeFamily("user_logout", "admin")).toEqual({ revoked: true });
    expect(await stub.revokeFamily("user_logout", "admin")).toEqual({ revoked: false });
    expect(await stub.rotateRefreshToken(t1, asClient)).toEqual({ status: "revoked" });
    expect(await stub.checkAccessToken("jti-1")).toEqual({ active: false });
    expect((await auditTypes(stub, id)).filter((t) => t === "token_family.revoked")).toHaveLength(1);
  });

  it("two families of the same user and client are independent (a second device is not theft)", async () => {
    const sub = `user-${crypto.randomUUID()}`;
    const laptop = family();
    const phone = family();
    const l1 = await created(laptop.stub, init(laptop.id, { sub }));
    const p1 = await created(phone.stub, init(phone.id, { sub }));
    const l2 = await rotated(laptop.stub, l1);
    const p2 = await rotated(phone.stub, p1);
    expect(await laptop.stub.rotateRefreshToken(l1, asClient)).toEqual({ status: "reused" });
    expect(await laptop.stub.rotateRefreshToken(l2, asClient)).toEqual({ status: "revoked" });
    expect((await phone.stub.rotateRefreshToken(p2, asClient)).status).toBe("ok");
    expect(await phone.stub.getFamily()).toMatchObject({ status: "active" });
  });

  it("a revoked access-token jti and a revoked family both make checkAccessToken inactive", async () => {
    const { id, stub } = family();
    await stub.createFamily(init(id, { issueRefreshToken: false }));
    expect(await stub.checkAccessToken("jti-1")).toMatchObject({ active: true });
    await stub.revokeAccessToken("jti-1", Date.now() + 600_000);
    await stub.revokeAccessToken("jti-1", Date.now() + 600_000); // idempotent
    expect(await stub.checkAccessToken("jti-1")).toEqual({ active: false });
    expect(await stub.checkAccessToken("jti-2")).toMatchObject({ active: true });
    expect((await auditTypes(stub, id)).filter((t) => t === "access_token.revoked")).toHaveLength(1);
    await stub.revokeFamily("admin_revoke", "admin");
    expect(await stub.checkAccessToken("jti-2")).toEqual({ active: false });
    // A family that does not exist anchors no live access token.
    expect(await family().stub.checkAccessToken("jti-2")).toEqual({ active: false });
  });

  it("RFC 7009: only the owning client can revoke a refresh token, and that revokes the family", async () => {
    const { id, stub } = family();
    const t1 = await created(stub, init(id));
    const t2 = await rotated(stub, t1);
    expect(await stub.revokeRefreshToken(t2, "client-b")).toEqual({ status: "wrong_client" });
    expect(await stub.revokeRefreshToken(`${id}.${"B".repeat(43)}`, CLIENT)).toEqual({ status: "unknown" });
    expect(await stub.revokeRefreshToken("junk", CLIENT)).toEqual({ status: "unknown" });
    expect(await stub.inspectRefreshToken(t2)).toMatchObject({ active: true });
    expect(await stub.revokeRefreshToken(t2, CLIENT)).toEqual({ status: "revoked" });
    expect(await stub.inspectRefreshToken(t2)).toEqual({ active: false });
    expect(await stub.checkAccessToken("jti")).toEqual({ active: false });
    expect(await stub.revokeRefreshToken(t2, CLIENT)).toEqual({ status: "revoked" });
    expect((await auditTypes(stub, id)).filter((t) => t === "token_family.revoked")).toHaveLength(1);
  });

  it("expires with controlled time, and the alarm purges revoked jtis, then the whole family (C15)", async () => {
    const { id, stub } = family();
    // A day ahead of the runtime's clock: no alarm fires by itself mid-test, only the ones the test runs.
    const start = Date.now() + 86_400_000;
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(start);
    const t1 = await created(stub, init(id, { lifetimeSeconds: 3600 }));
    const t2 = await rotated(stub, t1);
    await stub.revokeAccessToken("jti-short", start + 600_000);
    await stub.revokeAccessToken("jti-long", start + 3_000_000);
    expect(await rows(stub)).toEqual({ family: 1, tokens: 2, jtis: 2 });

    vi.setSystemTime(start + 601_000);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await rows(stub)).toEqual({ family: 1, tokens: 2, jtis: 1 });
    expect(await stub.checkAccessToken("jti-long")).toEqual({ active: false });
    expect((await stub.rotateRefreshToken(t2, asClient)).status).toBe("ok");

    vi.setSystemTime(start + 3_600_000);
    expect(await stub.rotateRefreshToken(t2, asClient)).toEqual({ status: "expired" });
    expect(await stub.checkAccessToken("jti-other")).toEqual({ active: false });
    expect(await stub.inspectRefreshToken(t2)).toEqual({ active: false });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await rows(stub)).toEqual({ family: 0, tokens: 0, jtis: 0 });
    expect(await stub.getFamily()).toBeNull();
    expect(await stub.rotateRefreshToken(t2, asClient)).toEqual({ status: "unknown" });
  });

  it("a revoked family stays a tombstone until its original expiry, then goes", async () => {
    const { id, stub } = family();
    // A day ahead of the runtime's clock: no alarm fires by itself mid-test, only the ones the test runs.
    const start = Date.now() + 86_400_000;
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(start);
    const t1 = await created(stub, init(id, { lifetimeSeconds: 3600 }));
    await stub.revokeFamily("admin_revoke", "admin");
    vi.setSystemTime(start + 1_800_000);
    await runDurableObjectAlarm(stub);
    expect(await rows(stub)).toMatchObject({ family: 1, tokens: 1 });
    expect(await stub.rotateRefreshToken(t1, asClient)).toEqual({ status: "revoked" });
    vi.setSystemTime(start + 3_600_001);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect(await rows(stub)).toEqual({ family: 0, tokens: 0, jtis: 0 });
    expect(await stub.outboxStatus()).toMatchObject({ pending: 0 });
  });

  it("survives a restart of every object (C2)", async () => {
    // Clock ahead of the runtime's, so no audit-delivery alarm is mid-flight when the objects are torn down.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 86_400_000);
    const id = newFamilyId();
    const t1 = await created(family(id).stub, init(id, { dpopJkt: "jkt-1" }));
    const t2 = await rotated(family(id).stub, t1, { ...asClient, dpopJkt: "jkt-1" });
    await family(id).stub.revokeAccessToken("jti-1", Date.now() + 600_000);
    expect((await family(id).stub.outboxStatus()).pending).toBe(3);
    const before = await family(id).stub.getFamily();
    await abortAllDurableObjects();
    const { stub } = family(id);
    expect(await stub.getFamily()).toEqual(before);
    // The audit events committed before the restart are still there to deliver.
    expect((await stub.outboxStatus()).pending).toBe(3);
    expect(await stub.checkAccessToken("jti-1")).toEqual({ active: false });
    expect(await stub.checkAccessToken("jti-2")).toMatchObject({ active: true });
    const t3 = await rotated(stub, t2, { ...asClient, dpopJkt: "jkt-1" });
    await abortAllDurableObjects();
    expect(await family(id).stub.rotateRefreshToken(t2, { ...asClient, dpopJkt: "jkt-1" })).toEqual({ status: "reused" });
    expect(await family(id).stub.rotateRefreshToken(t3, { ...asClient, dpopJkt: "jkt-1" })).toEqual({ status: "revoked" });
  });

  it("its audit events reach D1 audit_log through the alarm (C4)", async () => {
    const { id, stub } = family();
    const value = init(id);
    // The object's clock a day ahead of the runtime's: the alarm it asks for "now" does not fire by itself,
    // so the events provably wait in the outbox until the alarm runs.
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 86_400_000);
    const t1 = await created(stub, value);
    await rotated(stub, t1);
    expect(await stub.rotateRefreshToken(t1, asClient)).toEqual({ status: "reused" });
    expect((await stub.outboxStatus()).pending).toBe(4);
    expect(await auditLog(value.sub)).toEqual([]);
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const logged = await auditLog(value.sub);
    expect(logged.map((r) => r.type).sort()).toEqual([
      "refresh_token.reuse_detected",
      "refresh_token.rotated",
      "token_family.created",
      "token_family.revoked",
    ]);
    expect(logged.every((r) => r.source === "token_family" && r.client_id === CLIENT)).toBe(true);
    const reuse = logged.find((r) => r.type === "refresh_token.reuse_detected");
    expect(JSON.parse(reuse?.data ?? "{}")).toMatchObject({ familyId: id, generation: 1 });
    expect((await stub.outboxStatus()).pending).toBe(0);
  });
});

describe("reuse interval: a retry after a lost answer (RFC 9700 §4.14.2)", () => {
  const withInterval: RotateRequest = { ...asClient, reuseIntervalSeconds: 30 };

  function clock() {
    vi.useFakeTimers({ toFake: ["Date"] });
    const start = Date.now() + 86_400_000;
    vi.setSystemTime(start);
    return start;
  }

  it("a family's refresh tokens name its user, and a successor keeps the form of the token it replaces, retries included", async () => {
    const { id, stub } = family();
    const value = init(id);
    const t1 = await created(stub, value);
    expect(userOfRefreshToken(t1)).toBe(value.sub);
    const t2 = await rotated(stub, t1, withInterval);
    expect(userOfRefreshToken(t2)).toBe(value.sub);
    expect(await stub.rotateRefreshToken(t1, withInterval)).toMatchObject({ status: "ok", refreshToken: t2 });
    // A user id that could not ride along (not shaped like an id): the older form, kept along the chain.
    const older = family();
    const o1 = await created(older.stub, init(older.id, { sub: "user@legacy" }));
    expect(o1).toMatch(new RegExp(`^${older.id}\\.[A-Za-z0-9_-]{43}$`));
    const o2 = await rotated(older.stub, o1, withInterval);
    expect(o2).toMatch(new RegExp(`^${older.id}\\.[A-Za-z0-9_-]{43}$`));
    expect(await older.stub.rotateRefreshToken(o1, withInterval)).toMatchObject({ status: "ok", refreshToken: o2 });
  });

  it("interval 0 is today's strict rule: the rotated token again revokes the family", async () => {
    const { id, stub } = family();
    const t1 = await created(stub, init(id));
    await rotated(stub, t1, { ...asClient, reuseIntervalSeconds: 0 });
    expect(await stub.rotateRefreshToken(t1, { ...asClient, reuseIntervalSeconds: 0 })).toEqual({ status: "reused" });
    expect(await stub.getFamily()).toMatchObject({ status: "revoked" });
  });

  it("inside the interval, the rotated token gets the identical successor, audited, and the chain goes on from it", async () => {
    const start = clock();
    const { id, stub } = family();
    const t1 = await created(stub, init(id));
    const t2 = await rotated(stub, t1, withInterval);
    vi.setSystemTime(start + 29_000);
    const retry = await stub.rotateRefreshToken(t1, withInterval);
    expect(retry).toMatchObject({ status: "ok", refreshToken: t2 });
    expect(await auditTypes(stub, id)).toContain("refresh_token.retry_answered");
    const t3 = await rotated(stub, t2, withInterval);
    expect(await stub.inspectRefreshToken(t3)).toMatchObject({ active: true });
    expect(await rows(stub)).toMatchObject({ tokens: 3 });
  });

  it("20 concurrent presentations of one token: one rotation, every answer the same successor, one new generation", async () => {
    const { id, stub } = family();
    const t1 = await created(stub, init(id));
    const results = await Promise.all(Array.from({ length: 20 }, () => stub.rotateRefreshToken(t1, withInterval)));
    const tokens = new Set(results.map((r) => (r.status === "ok" ? r.refreshToken : r.status)));
    expect([...tokens]).toHaveLength(1);
    expect([...tokens][0]).toMatch(new RegExp(`^${id}\\.`));
    expect(await rows(stub)).toMatchObject({ tokens: 2 });
    const types = await auditTypes(stub, id);
    expect(types.filter((t) => t === "refresh_token.rotated")).toHaveLength(1);
    expect(types.filter((t) => t === "refresh_token.retry_answered")).toHaveLength(19);
  });

  it("once the successor was used, the rotated token is reuse: the family is revoked (C3)", async () => {
    const { id, stub } = family();
    const t1 = await created(stub, init(id));
    const t2 = await rotated(stub, t1, withInterval);
    await rotated(stub, t2, withInterval);
    expect(await stub.rotateRefreshToken(t1, withInterval)).toEqual({ status: "reused" });
    expect(await stub.getFamily()).toMatchObject({ status: "revoked" });
  });

  it("after the interval, the rotated token is reuse: the family is revoked (C3)", async () => {
    const start = clock();
    const { id, stub } = family();
    const t1 = await created(stub, init(id));
    await rotated(stub, t1, withInterval);
    vi.setSystemTime(start + 30_001);
    expect(await stub.rotateRefreshToken(t1, withInterval)).toEqual({ status: "reused" });
    expect(await stub.getFamily()).toMatchObject({ status: "revoked" });
  });

  it("another client, or a DPoP-bound grant with another key, is refused and changes nothing", async () => {
    const { id, stub } = family();
    const t1 = await created(stub, init(id, { dpopJkt: "jkt-1" }));
    const t2 = await rotated(stub, t1, { ...withInterval, dpopJkt: "jkt-1" });
    expect(await stub.rotateRefreshToken(t1, { ...withInterval, clientId: "client-b", dpopJkt: "jkt-1" })).toMatchObject({ status: "rejected" });
    expect(await stub.rotateRefreshToken(t1, { ...withInterval, dpopJkt: "jkt-2" })).toMatchObject({ status: "rejected" });
    expect(await stub.getFamily()).toMatchObject({ status: "active" });
    expect(await stub.rotateRefreshToken(t1, { ...withInterval, dpopJkt: "jkt-1" })).toMatchObject({ status: "ok", refreshToken: t2 });
  });
});
