import { SELF, env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { decodeJwt } from "jose";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { ClientFields } from "../src/db/clients";
import { randomToken } from "../src/lib/crypto";
import { userSessionsFor } from "../src/objects/locate";
import { formatSessionCookie, newSessionId } from "../src/objects/sessions";
import { ISSUER, REDIRECT_URI, errorOf, makeClient, makeCode, makeUser, postAs, redeem, userinfoWith, type TestClient, type Tokens } from "./helpers/back-channel";
import { patchClient } from "./helpers/clients";
import { TestRp, validateLogoutToken } from "./helpers/rp";

/**
 * OIDC Back-Channel Logout 1.0 through the durable outbox (C21) and what ends with what (C22). The RPs are real HTTP
 * endpoints on loopback (tests/e2e/helpers/rp-receiver.ts, in Node); the Worker POSTs Logout Tokens to them from the
 * alarm of the user's session object. Most tests control time: the objects' clocks are years ahead, so no alarm fires
 * by itself and each delivery attempt happens exactly when the test runs the alarm.
 */

const ADMIN = { authorization: `Bearer ${env.ADMIN_TOKEN}` };
const FORM = { "content-type": "application/x-www-form-urlencoded" };
const T0 = Date.UTC(2043, 0, 1);
const HOUR = 3600_000;

function adminFetch(method: string, path: string, body?: unknown): Promise<Response> {
  return SELF.fetch(`${ISSUER}${path}`, {
    method,
    headers: { ...ADMIN, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

interface Signed {
  userId: string;
  sid: string;
  secret: string;
  cookie: string;
}

/** A signed-in browser: a user in D1 and a session, as the sign-in flow makes them. */
async function signIn(userId?: string): Promise<Signed> {
  const id = userId ?? (await makeUser()).id;
  const sid = newSessionId();
  const result = await userSessionsFor(env, id)!.createSession({ sid, userId: id, authTime: Math.floor(Date.now() / 1000), amr: ["email"], acr: null });
  if (!result.created) throw new Error("no session");
  return { userId: id, sid, secret: result.secret, cookie: `oidc_session=${formatSessionCookie(id, sid, result.secret)}` };
}

const sessions = (s: { userId: string }) => userSessionsFor(env, s.userId)!;

/** The session signs in to the client through /token (a code with the session's sid); the session learns the client off the response's path. */
async function signInTo(c: TestClient, s: Signed, scope = "openid profile email offline_access"): Promise<Tokens> {
  const tokens = await redeem(c, await makeCode(c.clientId, s.userId, { sid: s.sid, scope, issuedAt: Date.now() }));
  await expect.poll(async () => (await sessions(s).getSession(s.sid, s.secret))?.clients ?? []).toContain(c.clientId);
  return tokens;
}

async function rpClient(rp: TestRp | null, fields: Partial<ClientFields> = {}): Promise<TestClient> {
  return makeClient({ backchannel_logout_uri: rp === null ? null : rp.uri, post_logout_redirect_uris: ["https://rp.example/bye"], ...fields });
}

function logoutWithHint(idToken: string, cookie: string, extra: Record<string, string> = {}): Promise<Response> {
  return SELF.fetch(`${ISSUER}/logout?${new URLSearchParams({ id_token_hint: idToken, ...extra })}`, { redirect: "manual", headers: { cookie } });
}

async function auditOf(userId: string): Promise<Array<{ type: string; client_id: string | null; data: Record<string, unknown> }>> {
  const { results } = await env.DB.prepare("SELECT type, client_id, data FROM audit_log WHERE subject = ? ORDER BY occurred_at, type")
    .bind(userId)
    .all<{ type: string; client_id: string | null; data: string }>();
  return results.map((r) => ({ ...r, data: JSON.parse(r.data ?? "{}") as Record<string, unknown> }));
}

const countOf = async (userId: string, type: string) => (await auditOf(userId)).filter((e) => e.type === type).length;

/** Keeps the expected warning and error lines of failed deliveries instead of printing them; returns them parsed. */
function keepLogLines() {
  const lines: Array<Record<string, unknown>> = [];
  const keep = (line: unknown) => {
    try {
      lines.push(JSON.parse(String(line)) as Record<string, unknown>);
    } catch {
      lines.push({ raw: String(line) });
    }
  };
  const spies = [vi.spyOn(console, "warn").mockImplementation(keep), vi.spyOn(console, "error").mockImplementation(keep)];
  return { lines, restore: () => spies.forEach((s) => s.mockRestore()) };
}

async function refresh(c: TestClient, tokens: Tokens): Promise<Response> {
  return postAs(c, "/token", { grant_type: "refresh_token", refresh_token: tokens.refresh_token! });
}

async function introspect(c: TestClient, token: string): Promise<{ active: boolean }> {
  return (await postAs(c, "/introspect", { token })).json();
}

describe("with controlled time", () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(T0);
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.restoreAllMocks();
  });

  describe("RP-initiated logout tells every client of the session (§2.5)", () => {
    it("two RPs signed in through one session each get one valid Logout Token (jose: signature, typ, claims, no nonce)", async () => {
      const [rpA, rpB] = [new TestRp(), new TestRp()];
      const [a, b] = await Promise.all([rpClient(rpA, { client_name: "App A" }), rpClient(rpB, { client_name: "App B" })]);
      const s = await signIn();
      const tokensA = await signInTo(a, s);
      await signInTo(b, s);
      expect(decodeJwt(tokensA.id_token!).sid).toBe(s.sid);

      const response = await logoutWithHint(tokensA.id_token!, s.cookie);
      expect(response.status).toBe(200);
      const page = await response.text();
      expect(page).toContain("These apps were told to sign you out too:");
      expect(page).toContain("<li>App A</li>");
      expect(page).toContain("<li>App B</li>");
      // The answer went out before any RP was contacted: the notices wait in the object.
      expect(await rpA.received()).toEqual([]);
      expect((await sessions(s).logoutNotices()).pending).toBe(2);

      const sentAt = Date.now();
      await runDurableObjectAlarm(sessions(s));
      const tokens: string[] = [];
      for (const [rp, c] of [[rpA, a], [rpB, b]] as const) {
        const got = await rp.received();
        expect(got).toHaveLength(1);
        expect(got[0]).toMatchObject({ method: "POST", contentType: "application/x-www-form-urlencoded", answered: 200 });
        const { payload, header } = await validateLogoutToken(got[0]!.logoutToken!, { clientId: c.clientId, sub: s.userId, sid: s.sid });
        expect(header.typ).toBe("logout+jwt");
        expect(payload.events).toEqual({ "http://schemas.openid.net/event/backchannel-logout": {} });
        expect(payload.exp! - payload.iat!).toBe(120);
        expect(payload.iat).toBe(Math.floor(sentAt / 1000));
        expect(payload).not.toHaveProperty("nonce");
        expect(new URLSearchParams(got[0]!.body).getAll("logout_token")).toHaveLength(1);
        tokens.push(got[0]!.logoutToken!);
      }
      expect(new Set(tokens.map((t) => decodeJwt(t).jti)).size).toBe(2);
      expect(await sessions(s).logoutNotices()).toEqual({ pending: 0, deadLettered: 0, notices: [] });
      const delivered = (await auditOf(s.userId)).filter((e) => e.type === "logout_notice.delivered");
      expect(delivered.map((e) => e.client_id).sort()).toEqual([a.clientId, b.clientId].sort());
      expect(delivered[0]!.data).toMatchObject({ sid: s.sid, attempts: 1, http_status: 200 });
    });

    it("a client without a back-channel URI gets no request: its notice is closed and audited; the pages say so", async () => {
      const rp = new TestRp();
      const told = await rpClient(rp, { client_name: "Told App" });
      const silent = await rpClient(null, { client_name: "Silent App" });
      const s = await signIn();
      await signInTo(told, s);
      const silentTokens = await signInTo(silent, s);

      const confirm = await SELF.fetch(`${ISSUER}/logout?client_id=${silent.clientId}`, { headers: { cookie: s.cookie } });
      const html = await confirm.text();
      expect(html).toContain("These apps will be signed out too:");
      expect(html).toContain("<li>Told App</li>");
      expect(html).toContain("These apps are not told; sign out there too:");
      expect(html).toContain("<li>Silent App</li>");
      expect(html).toContain('name="decision" value="everywhere"');

      await logoutWithHint(silentTokens.id_token!, s.cookie);
      await runDurableObjectAlarm(sessions(s));
      expect(await rp.delivered()).toHaveLength(1);
      const skipped = (await auditOf(s.userId)).filter((e) => e.type === "logout_notice.skipped");
      expect(skipped).toEqual([expect.objectContaining({ client_id: silent.clientId, data: { sid: s.sid, reason: "the client has no backchannel_logout_uri" } })]);
    });

    it("the client's metadata at delivery decides (C5): a URI changed after the logout gets the token; a client deleted since gets none", async () => {
      const [oldRp, newRp, goneRp] = [new TestRp(), new TestRp(), new TestRp()];
      const moved = await rpClient(oldRp);
      const gone = await rpClient(goneRp);
      const s = await signIn();
      const tokens = await signInTo(moved, s);
      await signInTo(gone, s);
      await logoutWithHint(tokens.id_token!, s.cookie);

      await patchClient(moved.clientId, { backchannel_logout_uri: newRp.uri });
      expect((await adminFetch("DELETE", `/admin/clients/${gone.clientId}`)).status).toBe(204);
      await runDurableObjectAlarm(sessions(s));
      expect(await oldRp.received()).toEqual([]);
      expect(await goneRp.received()).toEqual([]);
      const [got] = await newRp.delivered();
      await validateLogoutToken(got!.logoutToken!, { clientId: moved.clientId, sub: s.userId, sid: s.sid });
      expect((await auditOf(s.userId)).find((e) => e.type === "logout_notice.skipped")).toMatchObject({
        client_id: gone.clientId,
        data: { reason: "the client is no longer registered" },
      });
    });

    it("a new sign-in that replaces the session tells the old session's clients (via revokeSession, any caller)", async () => {
      const rp = new TestRp();
      const c = await rpClient(rp);
      const s = await signIn();
      await signInTo(c, s);
      // login.ts ends a replaced session with this very call.
      expect(await sessions(s).revokeSession(s.sid, "replaced by a new sign-in")).toEqual({ revoked: true, clients: [c.clientId] });
      await runDurableObjectAlarm(sessions(s));
      const [got] = await rp.delivered();
      await validateLogoutToken(got!.logoutToken!, { clientId: c.clientId, sub: s.userId, sid: s.sid });
    });

    it("a client learned of only after its session ended (a code redeemed after the logout) is told at once", async () => {
      const rp = new TestRp();
      const c = await rpClient(rp);
      const s = await signIn();
      const code = await makeCode(c.clientId, s.userId, { sid: s.sid, issuedAt: Date.now() });
      expect(await sessions(s).revokeSession(s.sid, "rp_initiated_logout")).toEqual({ revoked: true, clients: [] });
      // The code was issued before the logout; its redemption is a plain logout's business (§2.7): tokens, and the client told.
      await redeem(c, code);
      await expect.poll(async () => (await sessions(s).logoutNotices()).pending).toBe(1);
      await runDurableObjectAlarm(sessions(s));
      const [got] = await rp.delivered();
      await validateLogoutToken(got!.logoutToken!, { clientId: c.clientId, sub: s.userId, sid: s.sid });
      expect(await countOf(s.userId, "session.client_added_after_end")).toBe(1);
    });

    it("50 concurrent ends of one session (logout, admin, revoke-all) queue exactly one notice per client, and each RP gets exactly one token", async () => {
      const [rpA, rpB] = [new TestRp(), new TestRp()];
      const [a, b] = await Promise.all([rpClient(rpA), rpClient(rpB)]);
      const s = await signIn();
      await signInTo(a, s);
      await signInTo(b, s);
      const stub = sessions(s);
      const results = await Promise.all(
        Array.from({ length: 50 }, (_, i) => (i % 5 === 0 ? stub.revokeAllSessions("race", "test").then((r) => r.notices) : stub.revokeSession(s.sid, "race").then((r) => r.clients.length))),
      );
      expect(results.reduce((x, y) => x + y, 0)).toBe(2);
      expect((await stub.logoutNotices()).pending).toBe(2);
      await runDurableObjectAlarm(stub);
      await runDurableObjectAlarm(stub);
      expect(await rpA.delivered()).toHaveLength(1);
      expect(await rpB.delivered()).toHaveLength(1);
      expect((await rpA.received()).length + (await rpB.received()).length).toBe(2);
    });
  });

  describe("delivery under failure (C21)", () => {
    it("the RP answers 500 three times, then 200: backoff between attempts, exactly one successful delivery, every attempt audited", async () => {
      const rp = new TestRp();
      await rp.script({ statuses: [500, 500, 500] });
      const c = await rpClient(rp);
      const s = await signIn();
      const tokens = await signInTo(c, s);
      await logoutWithHint(tokens.id_token!, s.cookie);
      const log = keepLogLines();
      // (expect.poll moves the faked clock while it waits, so the time is read here rather than assumed to be T0.)
      let t = Date.now();
      try {
        for (let attempt = 1; attempt <= 3; attempt++) {
          await runDurableObjectAlarm(sessions(s));
          expect(await rp.received()).toHaveLength(attempt);
          const [notice] = (await sessions(s).logoutNotices()).notices;
          expect(notice).toMatchObject({ attempts: attempt, lastError: "the RP answered HTTP 500", deadLetteredAt: null });
          // Backoff: 5 s, 10 s, 20 s (BACKCHANNEL_LOGOUT_RETRY_BASE = 5). Running the alarm before then sends nothing.
          expect(notice!.nextAttemptAt).toBe(t + 5000 * 2 ** (attempt - 1));
          await runDurableObjectAlarm(sessions(s));
          expect(await rp.received()).toHaveLength(attempt);
          t = notice!.nextAttemptAt;
          vi.setSystemTime(t);
        }
        await runDurableObjectAlarm(sessions(s));
      } finally {
        log.restore();
      }
      const got = await rp.received();
      expect(got.map((r) => r.answered)).toEqual([500, 500, 500, 200]);
      expect(await rp.delivered()).toHaveLength(1);
      // Each attempt carried a Logout Token minted at that attempt.
      for (const r of got) await validateLogoutToken(r.logoutToken!, { clientId: c.clientId, sub: s.userId, sid: s.sid });
      expect(new Set(got.map((r) => decodeJwt(r.logoutToken!).iat)).size).toBe(4);
      expect(await sessions(s).logoutNotices()).toEqual({ pending: 0, deadLettered: 0, notices: [] });
      expect(await countOf(s.userId, "logout_notice.delivery_failed")).toBe(3);
      expect(await countOf(s.userId, "logout_notice.delivered")).toBe(1);
      const mine = log.lines.filter((l) => l.object === `user:${s.userId}`);
      expect(mine.filter((l) => l.event === "logout.delivery_failed")).toHaveLength(3);
      expect(mine.filter((l) => l.event === "logout.dead_letter")).toEqual([]);
      // More alarms deliver nothing more.
      await runDurableObjectAlarm(sessions(s));
      expect(await rp.received()).toHaveLength(4);
    });

    it("an RP down beyond the attempts: a dead letter — counted, logged, in the admin API — redriven, then delivered exactly once", async () => {
      const rp = new TestRp();
      await rp.script({ statuses: Array.from({ length: 12 }, () => 503) });
      const c = await rpClient(rp);
      const s = await signIn();
      const tokens = await signInTo(c, s);
      await logoutWithHint(tokens.id_token!, s.cookie);
      const log = keepLogLines();
      try {
        let t = Date.now();
        for (let i = 0; i < 30 && (await sessions(s).logoutNotices()).deadLettered === 0; i++) {
          await runDurableObjectAlarm(sessions(s));
          t += 2 * HOUR;
          vi.setSystemTime(t);
        }
      } finally {
        log.restore();
      }
      expect((await rp.received()).map((r) => r.answered)).toEqual(Array.from({ length: 12 }, () => 503));
      expect(await rp.delivered()).toEqual([]);
      const alert = log.lines.find((l) => l.event === "logout.dead_letter");
      expect(alert).toMatchObject({ level: "error", metric: "logout_dead_letter_total", source: "sessions", object: `user:${s.userId}`, count: 1, total: 1 });
      expect(log.lines.filter((l) => l.event === "logout.delivery_failed" && l.object === `user:${s.userId}`)).toHaveLength(12);
      expect(await countOf(s.userId, "logout_notice.dead_lettered")).toBe(1);

      // Visible: per user, and in the list of every user with dead letters.
      const mine = (await (await adminFetch("GET", `/admin/users/${s.userId}/logout-notices`)).json()) as { pending: number; dead_lettered: number; notices: Array<Record<string, unknown>> };
      expect(mine).toMatchObject({ pending: 0, dead_lettered: 1 });
      expect(mine.notices[0]).toMatchObject({ sid: s.sid, client_id: c.clientId, attempts: 12, next_attempt_at: null, last_error: "the RP answered HTTP 503" });
      const all = (await (await adminFetch("GET", "/admin/logout-notices/dead-letters")).json()) as { users: Array<{ user_id: string; dead_lettered: number }> };
      expect(all.users).toContainEqual(expect.objectContaining({ user_id: s.userId, dead_lettered: 1 }));
      // The dead letter keeps the object alive, its sessions long gone (C15 with C21).
      vi.setSystemTime(T0 + 400 * 24 * HOUR);
      await runDurableObjectAlarm(sessions(s));
      expect((await sessions(s).logoutNotices()).deadLettered).toBe(1);
      expect(await sessions(s).size()).toEqual({ sessions: 0, clients: 0 });

      // The RP is back (the script is used up: it answers 200). Redrive through the admin API.
      const redriven = await adminFetch("POST", `/admin/users/${s.userId}/logout-notices/redrive`);
      expect(await redriven.json()).toEqual({ redriven: 1 });
      await runDurableObjectAlarm(sessions(s));
      expect(await rp.delivered()).toHaveLength(1);
      await validateLogoutToken((await rp.delivered())[0]!.logoutToken!, { clientId: c.clientId, sub: s.userId, sid: s.sid });
      expect(await countOf(s.userId, "logout_notice.redriven")).toBe(1);
      expect(await countOf(s.userId, "logout_notice.delivered")).toBe(1);
      expect(await (await adminFetch("POST", "/admin/logout-notices/redrive")).json()).toMatchObject({ redriven: 0 });
      const after = (await (await adminFetch("GET", "/admin/logout-notices/dead-letters")).json()) as { users: Array<{ user_id: string }> };
      expect(after.users.map((u) => u.user_id)).not.toContain(s.userId);
      await runDurableObjectAlarm(sessions(s));
      expect(await rp.received()).toHaveLength(13);
      // Nothing left: the object deletes its storage (C15).
      const tables = await runInDurableObject(sessions(s), (_o, state) =>
        state.storage.sql.exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\'`).toArray(),
      );
      expect(tables).toEqual([]);
    });

    it("the global redrive puts back every user's dead letters", async () => {
      const rp = new TestRp();
      await rp.script({ statuses: Array.from({ length: 24 }, () => 503) });
      const c = await rpClient(rp);
      const users = [await signIn(), await signIn()];
      for (const s of users) await signInTo(c, s);
      for (const s of users) await sessions(s).revokeSession(s.sid, "logout");
      const log = keepLogLines();
      try {
        let t = Date.now();
        for (let i = 0; i < 30 && (await Promise.all(users.map(async (s) => (await sessions(s).logoutNotices()).deadLettered))).some((n) => n === 0); i++) {
          for (const s of users) await runDurableObjectAlarm(sessions(s));
          t += 2 * HOUR;
          vi.setSystemTime(t);
        }
      } finally {
        log.restore();
      }
      const redrive = (await (await adminFetch("POST", "/admin/logout-notices/redrive")).json()) as { redriven: number; users: number };
      expect(redrive.redriven).toBeGreaterThanOrEqual(2);
      for (const s of users) await runDurableObjectAlarm(sessions(s));
      expect(await rp.delivered()).toHaveLength(2);
    });

    it("each POST has a timeout: an RP that never answers is a failed attempt, retried later", async () => {
      const rp = new TestRp();
      await rp.script({ hold: true });
      const c = await rpClient(rp);
      const s = await signIn();
      await signInTo(c, s);
      await sessions(s).revokeSession(s.sid, "logout");
      const log = keepLogLines();
      try {
        await runDurableObjectAlarm(sessions(s));
      } finally {
        log.restore();
      }
      expect((await rp.state()).held).toBe(1);
      expect((await sessions(s).logoutNotices()).notices[0]).toMatchObject({ attempts: 1, lastError: "no answer within 5 s" });
      await rp.release();
      vi.setSystemTime(Date.now() + 10_000);
      await runDurableObjectAlarm(sessions(s));
      expect((await rp.received()).length).toBe(2);
      expect((await sessions(s).logoutNotices()).pending).toBe(0);
      expect(await countOf(s.userId, "logout_notice.delivered")).toBe(1);
    }, 30_000);
  });

  describe("what ends with what (C22, Back-Channel Logout §2.7)", () => {
    it("a plain RP-initiated logout ends the session and tells the RP; the offline_access grant survives: refresh works", async () => {
      const rp = new TestRp();
      const c = await rpClient(rp);
      const s = await signIn();
      const tokens = await signInTo(c, s);
      expect(tokens.refresh_token).toBeDefined();
      await logoutWithHint(tokens.id_token!, s.cookie);
      expect(await sessions(s).getSession(s.sid, s.secret)).toBeNull();
      await runDurableObjectAlarm(sessions(s));
      expect(await rp.delivered()).toHaveLength(1);

      expect((await introspect(c, tokens.access_token)).active).toBe(true);
      expect((await userinfoWith(tokens.access_token)).status).toBe(200);
      const refreshed = await refresh(c, tokens);
      expect(refreshed.status).toBe(200);
    });

    it("the admin's revoke-all ends every session and every grant (refresh fails, access tokens inactive and 401), and says how many of each and how many notices", async () => {
      const [rpA, rpB] = [new TestRp(), new TestRp()];
      const [a, b] = await Promise.all([rpClient(rpA), rpClient(rpB)]);
      const s1 = await signIn();
      const s2 = await signIn(s1.userId);
      const t1 = await signInTo(a, s1);
      const t2 = await signInTo(b, s1);
      const t3 = await signInTo(a, s2);
      vi.setSystemTime(Date.now() + 1000);
      const response = await adminFetch("POST", `/admin/users/${s1.userId}/sessions/revoke-all`);
      expect(response.status).toBe(200);
      const body = (await response.json()) as { revoked: number; sessions: string[]; grants_ended: number; notices_queued: number };
      expect(body).toEqual({ revoked: 2, sessions: expect.arrayContaining([s1.sid, s2.sid]), grants_ended: 3, notices_queued: 3 });
      for (const [c, tokens] of [[a, t1], [b, t2], [a, t3]] as const) {
        expect(await errorOf(await refresh(c, tokens))).toEqual({ status: 400, error: "invalid_grant" });
        expect(await introspect(c, tokens.access_token)).toEqual({ active: false });
        expect((await userinfoWith(tokens.access_token)).status).toBe(401);
      }
      await runDurableObjectAlarm(sessions(s1));
      const toA = await rpA.delivered();
      expect(toA.map((r) => decodeJwt(r.logoutToken!).sid).sort()).toEqual([s1.sid, s2.sid].sort());
      expect(await rpB.delivered()).toHaveLength(1);
      // Again: nothing left to end.
      expect(await (await adminFetch("POST", `/admin/users/${s1.userId}/sessions/revoke-all`)).json()).toEqual({ revoked: 0, sessions: [], grants_ended: 0, notices_queued: 0 });
    });

    it("the user's own 'sign out everywhere' on the logout page does the same, CSRF-checked", async () => {
      const rp = new TestRp();
      const c = await rpClient(rp);
      const s = await signIn();
      const other = await signIn(s.userId);
      const tokens = await signInTo(c, s);
      const page = await SELF.fetch(`${ISSUER}/logout`, { headers: { cookie: s.cookie } });
      const html = await page.text();
      const csrf = /name="csrf_token" value="([^"]+)"/.exec(html)![1]!;
      const csrfCookie = page.headers.get("set-cookie")!.split(";")[0]!;
      const post = (body: Record<string, string>, cookie: string) =>
        SELF.fetch(`${ISSUER}/logout/confirm`, { method: "POST", redirect: "manual", headers: { ...FORM, cookie }, body: new URLSearchParams(body).toString() });

      // Without the CSRF cookie: refused, nothing ends.
      expect((await post({ csrf_token: csrf, decision: "everywhere" }, s.cookie)).status).toBe(403);
      expect(await sessions(s).getSession(other.sid, other.secret)).not.toBeNull();
      expect((await refresh(c, tokens)).status).toBe(200);

      const fresh = await signInTo(c, s);
      vi.setSystemTime(Date.now() + 1000);
      const done = await post({ csrf_token: csrf, decision: "everywhere" }, `${s.cookie}; ${csrfCookie}`);
      expect(done.status).toBe(200);
      expect(done.headers.get("set-cookie")).toMatch(/^oidc_session=; .*Max-Age=0/);
      expect(await done.text()).toContain("2 sessions were ended");
      expect(await sessions(s).listSessions()).toEqual([]);
      expect(await errorOf(await refresh(c, fresh))).toEqual({ status: 400, error: "invalid_grant" });
      expect(await introspect(c, fresh.access_token)).toEqual({ active: false });
      expect(await countOf(s.userId, "user.grants_ended")).toBe(1);
      await runDurableObjectAlarm(sessions(s));
      expect(await rp.delivered()).toHaveLength(1);
    });

    it("the admin ends one session: its RPs are told, the user's other session and the grants survive; 404 for an unknown or ended one", async () => {
      const rp = new TestRp();
      const c = await rpClient(rp);
      const s = await signIn();
      const other = await signIn(s.userId);
      const tokens = await signInTo(c, s);
      const listed = (await (await adminFetch("GET", `/admin/users/${s.userId}/sessions`)).json()) as { sessions: Array<{ sid: string; clients: string[] }> };
      expect(listed.sessions.find((x) => x.sid === s.sid)?.clients).toEqual([c.clientId]);

      const ended = await adminFetch("DELETE", `/admin/users/${s.userId}/sessions/${s.sid}`);
      expect(await ended.json()).toEqual({ revoked: 1, sid: s.sid, clients: [c.clientId], notices_queued: 1 });
      expect((await adminFetch("DELETE", `/admin/users/${s.userId}/sessions/${s.sid}`)).status).toBe(404);
      expect((await adminFetch("DELETE", `/admin/users/${s.userId}/sessions/${newSessionId()}`)).status).toBe(404);
      expect((await adminFetch("DELETE", `/admin/users/${s.userId}/sessions/not%20a%20sid`)).status).toBe(404);
      expect(await sessions(s).getSession(other.sid, other.secret)).not.toBeNull();
      expect((await refresh(c, tokens)).status).toBe(200);
      await runDurableObjectAlarm(sessions(s));
      expect(await rp.delivered()).toHaveLength(1);
    });

    it("revoking a consent ends that client's grants only, and the next authorization asks again", async () => {
      const [a, b] = await Promise.all([rpClient(null), rpClient(null)]);
      const s = await signIn();
      const ta = await signInTo(a, s);
      const tb = await signInTo(b, s);
      await env.DB.prepare("INSERT INTO consents (user_id, client_id, scopes, granted_at) VALUES (?, ?, 'openid', ?)").bind(s.userId, a.clientId, Date.now()).run();
      vi.setSystemTime(Date.now() + 1000);
      expect((await adminFetch("DELETE", `/admin/users/${s.userId}/consents/${a.clientId}`)).status).toBe(204);
      expect(await errorOf(await refresh(a, ta))).toEqual({ status: 400, error: "invalid_grant" });
      expect(await introspect(a, ta.access_token)).toEqual({ active: false });
      expect((await refresh(b, tb)).status).toBe(200);
      expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM consents WHERE user_id = ? AND client_id = ?").bind(s.userId, a.clientId).first("n")).toBe(0);
      expect(await countOf(s.userId, "admin.user.consent_revoked")).toBe(1);
      expect((await adminFetch("DELETE", `/admin/users/not-a-real-user-0123/consents/${a.clientId}`)).status).toBe(404);
      expect((await adminFetch("DELETE", `/admin/users/${s.userId}/consents/bad%20id`)).status).toBe(404);
      // A client that does not exist: 404, and nothing is written for it.
      expect((await adminFetch("DELETE", `/admin/users/${s.userId}/consents/no-such-client-0123`)).status).toBe(404);
      expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM grant_revocations WHERE user_id = ? AND client_id = 'no-such-client-0123'").bind(s.userId).first("n")).toBe(0);
    });
  });
});

describe("a slow RP never delays the user (real time: the alarm runs by itself)", () => {
  it("the logout answers while the RP holds the request; the object keeps answering; the notice is delivered once the RP answers", async () => {
    const rp = new TestRp();
    await rp.script({ hold: true });
    const c = await rpClient(rp);
    const s = await signIn();
    const tokens = await signInTo(c, s);
    const response = await logoutWithHint(tokens.id_token!, s.cookie, { post_logout_redirect_uri: "https://rp.example/bye", state: "s1" });
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("https://rp.example/bye?state=s1");
    // The delivery is under way, held by the RP …
    await expect.poll(async () => (await rp.state()).held, { timeout: 10_000 }).toBe(1);
    // … and meanwhile the user signs in again and the same object serves them.
    const again = await signIn(s.userId);
    expect(await sessions(s).getSession(again.sid, again.secret)).toMatchObject({ sid: again.sid });
    expect((await SELF.fetch(`${ISSUER}/logout?client_id=${c.clientId}`, { headers: { cookie: again.cookie } })).status).toBe(200);
    await rp.release();
    await expect.poll(async () => (await sessions(s).logoutNotices()).pending, { timeout: 30_000 }).toBe(0);
    await expect.poll(() => countOf(s.userId, "logout_notice.delivered"), { timeout: 10_000 }).toBe(1);
    expect((await rp.delivered()).length).toBeGreaterThanOrEqual(1);
  }, 60_000);
});

describe("registration of back-channel logout (OIDC Back-Channel Logout §2.2)", () => {
  const create = (metadata: Record<string, unknown>) =>
    adminFetch("POST", "/admin/clients", { client_name: "BCL", redirect_uris: ["https://rp.example/cb"], ...metadata });

  it("takes https, and http on loopback only; refuses a fragment, another scheme, credentials, whitespace or an unparseable value with 400", async () => {
    for (const uri of ["https://rp.example/bcl", "https://rp.example:8443/bcl?tenant=a", "http://127.0.0.1:9999/bcl", "http://localhost/bcl", "http://[::1]/bcl"]) {
      const response = await create({ backchannel_logout_uri: uri, backchannel_logout_session_required: true });
      expect(response.status, uri).toBe(201);
      expect(await response.json()).toMatchObject({ backchannel_logout_uri: uri, backchannel_logout_session_required: true });
    }
    const before = await env.DB.prepare("SELECT COUNT(*) AS n FROM clients").first("n");
    for (const uri of [
      "https://rp.example/bcl#frag",
      "http://rp.example/bcl",
      "ftp://rp.example/bcl",
      "javascript:alert(1)",
      "not a url",
      "//rp.example/bcl",
      "https://user:pw@rp.example/bcl",
      "https:/rp.example/bcl",
      " https://rp.example/bcl",
      "https://rp.example/b\ncl",
      "",
      "https://" + "a".repeat(2100),
    ]) {
      const response = await create({ backchannel_logout_uri: uri });
      expect(response.status, uri).toBe(400);
      expect(((await response.json()) as { error: string }).error, uri).toBe("invalid_client_metadata");
    }
    for (const value of [42, true, ["https://rp.example/bcl"]]) {
      expect((await create({ backchannel_logout_uri: value })).status).toBe(400);
    }
    expect((await create({ backchannel_logout_session_required: "yes" })).status).toBe(400);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM clients").first("n")).toBe(before);
  });

  it("PATCH sets, changes and clears it, checked the same way", async () => {
    const created = (await (await create({})).json()) as { client_id: string; backchannel_logout_uri: string | null };
    expect(created.backchannel_logout_uri).toBeNull();
    const path = `/admin/clients/${created.client_id}`;
    expect(await (await adminFetch("PATCH", path, { backchannel_logout_uri: "https://rp.example/bcl" })).json()).toMatchObject({ backchannel_logout_uri: "https://rp.example/bcl" });
    expect((await adminFetch("PATCH", path, { backchannel_logout_uri: "http://rp.example/bcl" })).status).toBe(400);
    expect(await (await adminFetch("GET", path)).json()).toMatchObject({ backchannel_logout_uri: "https://rp.example/bcl" });
    expect(await (await adminFetch("PATCH", path, { backchannel_logout_uri: null })).json()).toMatchObject({ backchannel_logout_uri: null });
    const { results } = await env.DB.prepare("SELECT data FROM audit_log WHERE subject = ? AND type = 'admin.client.updated'").bind(created.client_id).all<{ data: string }>();
    expect(results.map((r) => JSON.parse(r.data).changed)).toEqual([["backchannel_logout_uri"], ["backchannel_logout_uri"]]);
  });
});

describe("admin endpoints refuse what is not theirs", () => {
  it("needs the admin token; bad ids are 404, never a 500", async () => {
    const userId = `user-${randomToken(8)}`;
    for (const [method, path] of [
      ["GET", `/admin/users/${userId}/logout-notices`],
      ["POST", `/admin/users/${userId}/logout-notices/redrive`],
      ["DELETE", `/admin/users/${userId}/sessions/${newSessionId()}`],
      ["GET", "/admin/logout-notices/dead-letters"],
      ["POST", "/admin/logout-notices/redrive"],
      ["DELETE", `/admin/users/${userId}/consents/some-client`],
    ] as const) {
      expect((await SELF.fetch(`${ISSUER}${path}`, { method })).status, path).toBe(401);
    }
    expect(await (await adminFetch("GET", `/admin/users/${userId}/logout-notices`)).json()).toEqual({ pending: 0, dead_lettered: 0, notices: [] });
    expect(await (await adminFetch("POST", `/admin/users/${userId}/logout-notices/redrive`)).json()).toEqual({ redriven: 0 });
    for (const bad of ["bad%20id!", "a".repeat(300), "..%2F.."]) {
      expect((await adminFetch("GET", `/admin/users/${bad}/logout-notices`)).status).toBe(404);
      expect((await adminFetch("DELETE", `/admin/users/${bad}/sessions/${newSessionId()}`)).status).toBe(404);
    }
    // Asking about a made-up user made no storage.
    expect(await sessions({ userId }).size()).toEqual({ sessions: 0, clients: 0 });
    expect(REDIRECT_URI).toBe("https://rp.example/callback");
  });
});
