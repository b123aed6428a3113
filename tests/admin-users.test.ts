import { SELF, env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { grantedScopes, rememberConsent } from "../src/db/consents";
import { randomToken } from "../src/lib/crypto";
import { userSessionsFor } from "../src/objects/locate";
import { newSessionId } from "../src/objects/sessions";
import { ISSUER, errorOf, makeClient, makeCode, makeUser, postAs, redeem, userinfoWith, verifyIdToken, type TestClient } from "./helpers/back-channel";

/** The admin API's users (issue 12): CRUD with compare-and-swap, disable / enable / delete, consents, groups and custom claims. */

type Json = Record<string, unknown>;
const AUTH = { authorization: `Bearer ${env.ADMIN_TOKEN}` };

function adminFetch(method: string, path: string, body?: unknown, headers: Record<string, string> = AUTH): Promise<Response> {
  const raw = typeof body === "string";
  return SELF.fetch(`${ISSUER}${path}`, {
    method,
    headers: body === undefined ? headers : { ...headers, "content-type": "application/json" },
    body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
  });
}

async function json(response: Response, status: number): Promise<Json> {
  const text = await response.text();
  expect(response.status, text).toBe(status);
  return JSON.parse(text) as Json;
}

function email(tag = "u"): string {
  return `${tag}-${randomToken(6).toLowerCase()}@example.com`;
}

async function createUser(body: Json): Promise<Json> {
  return json(await adminFetch("POST", "/admin/users", body), 201);
}

/** Everything an admin change could touch, to prove a refused request changed nothing. */
async function snapshot(userId?: string) {
  const count = async (sql: string, ...binds: unknown[]) => (await env.DB.prepare(sql).bind(...binds).first<{ n: number }>())!.n;
  return {
    users: await count("SELECT COUNT(*) AS n FROM users"),
    audit: await count("SELECT COUNT(*) AS n FROM audit_log WHERE source = 'admin'"),
    row: userId === undefined ? null : await env.DB.prepare("SELECT * FROM users WHERE id = ?").bind(userId).first(),
    revocations: await count("SELECT COUNT(*) AS n FROM grant_revocations"),
    consents: await count("SELECT COUNT(*) AS n FROM consents"),
  };
}

async function adminEvents(userId: string): Promise<Array<{ type: string; data: Json }>> {
  const { results } = await env.DB.prepare("SELECT type, data FROM audit_log WHERE subject = ? AND source = 'admin' ORDER BY occurred_at, rowid")
    .bind(userId)
    .all<{ type: string; data: string }>();
  return results.map((r) => ({ type: r.type, data: JSON.parse(r.data) as Json }));
}

async function sessionFor(userId: string): Promise<string> {
  const sid = newSessionId();
  const created = await userSessionsFor(env, userId)!.createSession({ sid, userId, authTime: Math.floor(Date.now() / 1000), amr: ["email"], acr: null });
  expect(created.created).toBe(true);
  return sid;
}

/** A user who signed in to `rp`, with a session and tokens (access, refresh, ID). */
async function signedIn(rp: TestClient, scope = "openid profile email offline_access", claims: string | null = null) {
  const user = await makeUser({ name: "Grace Hopper" });
  const sid = await sessionFor(user.id);
  const tokens = await redeem(rp, await makeCode(rp.clientId, user.id, { scope, claims, sid }));
  return { user, sid, tokens };
}

async function introspect(rp: TestClient, token: string): Promise<boolean> {
  const body = await json(await postAs(rp, "/introspect", { token }), 200);
  return body.active as boolean;
}

async function refresh(rp: TestClient, refreshToken: string): Promise<Response> {
  return postAs(rp, "/token", { grant_type: "refresh_token", refresh_token: refreshToken });
}

describe("admin API: users", () => {
  it("every users endpoint refuses a missing or wrong token with 401 and changes nothing", async () => {
    const user = await makeUser();
    const rp = await makeClient();
    await rememberConsent(env.DB, user.id, rp.clientId, ["openid"]);
    const before = await snapshot(user.id);
    const endpoints: Array<[string, string, unknown?]> = [
      ["POST", "/admin/users", { email: email() }],
      ["GET", "/admin/users"],
      ["GET", `/admin/users/${user.id}`],
      ["PATCH", `/admin/users/${user.id}`, { name: "Mallory" }],
      ["DELETE", `/admin/users/${user.id}`],
      ["POST", `/admin/users/${user.id}/disable`],
      ["POST", `/admin/users/${user.id}/enable`],
      ["GET", `/admin/users/${user.id}/consents`],
      ["DELETE", `/admin/users/${user.id}/consents/${rp.clientId}`],
    ];
    for (const [method, path, body] of endpoints) {
      for (const headers of [{}, { authorization: "Bearer wrong-token" }, { authorization: `Bearer ${env.ADMIN_TOKEN}x` }] as Record<string, string>[]) {
        const response = await adminFetch(method, path, body, headers);
        expect(response.status, `${method} ${path}`).toBe(401);
        expect(response.headers.get("www-authenticate")).toMatch(/^Bearer realm="admin"/);
      }
    }
    expect(await snapshot(user.id)).toEqual(before);
  });

  it("creates a user: 201 with the profile, the address lower-cased, audited by member names only", async () => {
    const address = email("Ada").replace("ada", "ADA");
    const created = await createUser({
      email: address,
      email_verified: true,
      name: "Ada Lovelace",
      given_name: "Ada",
      locale: "en-GB",
      zoneinfo: "Europe/London",
      phone_number: "+44 20 7946 0000",
      address: { locality: "London", country: "UK" },
      groups: ["staff", "engineering"],
      claims: { department: "Analytical Engines", employee_id: 1815, "https://example.com/roles": ["author"] },
    });
    expect(created).toMatchObject({
      email: address.toLowerCase(),
      email_verified: true,
      name: "Ada Lovelace",
      family_name: null,
      groups: ["staff", "engineering"],
      claims: { department: "Analytical Engines", employee_id: 1815, "https://example.com/roles": ["author"] },
      disabled: false,
    });
    expect(typeof created.version).toBe("number");
    const id = created.id as string;
    expect(await json(await adminFetch("GET", `/admin/users/${id}`), 200)).toEqual(created);
    const events = await adminEvents(id);
    expect(events.map((e) => e.type)).toEqual(["admin.user.created"]);
    expect(events[0]!.data.members).toContain("claims");
    expect(JSON.stringify(events)).not.toContain("Analytical");
    // The address is taken, whatever its case.
    await expect(errorOf(await adminFetch("POST", "/admin/users", { email: address.toUpperCase() }))).resolves.toEqual({ status: 409, error: "invalid_request" });
    // Defaults.
    const plain = await createUser({ email: email() });
    expect(plain).toMatchObject({ email_verified: false, groups: [], claims: {}, name: null });
  });

  it("concurrent creates of one address: one 201, the rest 409, one user, one event", async () => {
    const address = email("race");
    const responses = await Promise.all(Array.from({ length: 6 }, () => adminFetch("POST", "/admin/users", { email: address })));
    expect(responses.map((r) => r.status).sort()).toEqual([201, 409, 409, 409, 409, 409]);
    const { results } = await env.DB.prepare("SELECT id FROM users WHERE email = ?").bind(address).all<{ id: string }>();
    expect(results).toHaveLength(1);
    expect(await adminEvents(results[0]!.id)).toHaveLength(1);
  });

  it("refuses bad input with 400 and changes nothing: bad email, unknown members, oversized or reserved claims, bad groups", async () => {
    const user = await makeUser();
    const bad: Array<[string, unknown]> = [
      ["no email", { name: "X" }],
      ["bad email", { email: "not-an-address" }],
      ["email with a space", { email: "a b@example.com" }],
      ["email list", { email: "a@example.com,b@example.com" }],
      ["unknown member", { email: email(), nmae: "typo" }],
      ["id is not settable", { email: email(), id: "chosen" }],
      ["disabled is not a member", { email: email(), disabled: true }],
      ["reserved claim", { email: email(), claims: { sub: "someone-else" } }],
      ["reserved claim, other case", { email: email(), claims: { Email: "x@evil.example" } }],
      ["reserved groups as a claim", { email: email(), claims: { groups: ["admin"] } }],
      ["bad claim name", { email: email(), claims: { "bad name": 1 } }],
      ["__proto__ claim", JSON.parse(`{"email": "${email()}", "claims": {"__proto__": {"x": 1}}}`)],
      ["null claim", { email: email(), claims: { department: null } }],
      ["too many claims", { email: email(), claims: Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`c${i}`, i])) }],
      ["oversized claims", { email: email(), claims: { a: "x".repeat(1000), b: "x".repeat(1000), c: "x".repeat(1000), d: "x".repeat(1000), e: "x".repeat(500) } }],
      ["oversized claim value", { email: email(), claims: { notes: "x".repeat(1001) } }],
      ["deep claim", { email: email(), claims: { a: { b: { c: { d: 1 } } } } }],
      ["claims not an object", { email: email(), claims: ["a"] }],
      ["groups not a list", { email: email(), groups: "staff" }],
      ["group with control characters", { email: email(), groups: ["a\nb"] }],
      ["duplicate group", { email: email(), groups: ["a", "a"] }],
      ["too many groups", { email: email(), groups: Array.from({ length: 101 }, (_, i) => `g${i}`) }],
      ["name too long", { email: email(), name: "N".repeat(201) }],
      ["name with a newline", { email: email(), name: "a\r\nb" }],
      ["javascript picture", { email: email(), picture: "javascript:alert(1)" }],
      ["bad locale", { email: email(), locale: "english please" }],
      ["bad phone", { email: email(), phone_number: "call me" }],
      ["address with an unknown member", { email: email(), address: { planet: "Mars" } }],
      ["email_verified a string", { email: email(), email_verified: "true" }],
      ["array body", []],
    ];
    const before = await snapshot(user.id);
    for (const [name, body] of bad) {
      const response = await adminFetch("POST", "/admin/users", body);
      expect(response.status, name).toBe(400);
      expect(((await response.json()) as Json).error, name).toMatch(/^invalid_/);
      if (typeof body === "object" && body !== null && !Array.isArray(body) && "email" in body && Object.keys(body).length > 1) {
        const { email: _email, ...change } = body as Json;
        const patch = await adminFetch("PATCH", `/admin/users/${user.id}`, change);
        expect(patch.status, `PATCH ${name}`).toBe(400);
      }
    }
    for (const raw of ["{", "null", '"x"', "", "[".repeat(5000)]) expect((await adminFetch("POST", "/admin/users", raw)).status, raw).toBe(400);
    expect((await adminFetch("PATCH", `/admin/users/${user.id}`, {})).status).toBe(400);
    expect(await snapshot(user.id)).toEqual(before);
  });

  it("404 for a user that does not exist, for every endpoint; nothing is created", async () => {
    const before = await snapshot();
    for (const id of [randomToken(16), "not%20an%20id", "x".repeat(300)]) {
      for (const [method, path, body] of [
        ["GET", `/admin/users/${id}`],
        ["PATCH", `/admin/users/${id}`, { name: "X" }],
        ["DELETE", `/admin/users/${id}`],
        ["POST", `/admin/users/${id}/disable`],
        ["POST", `/admin/users/${id}/enable`],
        ["GET", `/admin/users/${id}/consents`],
        ["DELETE", `/admin/users/${id}/consents/some-client`],
      ] as Array<[string, string, unknown?]>) {
        await expect(errorOf(await adminFetch(method, path, body)), `${method} ${path}`).resolves.toEqual({ status: 404, error: "not_found" });
      }
    }
    expect(await snapshot()).toEqual(before);
  });

  it("lists by email with cursor pagination: every user once, in address order; bad parameters are 400", async () => {
    const tag = randomToken(6).toLowerCase();
    const made = await Promise.all(Array.from({ length: 7 }, (_, i) => createUser({ email: `${tag}-${i}@list.example` })));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const query: string = `email=${tag}&limit=3${cursor ? `&cursor=${cursor}` : ""}`;
      const page = await json(await adminFetch("GET", `/admin/users?${query}`), 200);
      seen.push(...(page.users as Json[]).map((u) => u.email as string));
      cursor = page.next_cursor as string | null;
      pages++;
    } while (cursor !== null && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(made.map((u) => u.email).sort());
    // Case-insensitive, and LIKE's wildcards are taken literally.
    expect(((await json(await adminFetch("GET", `/admin/users?email=${tag.toUpperCase()}-3`), 200)).users as Json[]).map((u) => u.id)).toEqual([made[3]!.id]);
    expect(((await json(await adminFetch("GET", `/admin/users?email=${tag}%25`), 200)).users as Json[])).toEqual([]);
    for (const query of ["limit=0", "limit=201", "limit=abc", "cursor=!!!", "emial=x", "email=a&email=b"]) {
      expect((await adminFetch("GET", `/admin/users?${query}`)).status, query).toBe(400);
    }
  });

  it("updates: members replaced, null clears, audited; If-Match on a stale version is 409 with nothing changed", async () => {
    const created = await createUser({ email: email(), name: "Old Name", given_name: "Old", groups: ["a"] });
    const id = created.id as string;
    const updated = await json(await adminFetch("PATCH", `/admin/users/${id}`, { name: "New Name", given_name: null, groups: ["b", "c"], claims: { team: "x" } }), 200);
    expect(updated).toMatchObject({ name: "New Name", given_name: null, groups: ["b", "c"], claims: { team: "x" }, email: created.email });
    expect(updated.version).toBeGreaterThan(created.version as number);
    const events = await adminEvents(id);
    expect(events.map((e) => e.type)).toEqual(["admin.user.created", "admin.user.updated"]);
    expect(events[1]!.data.members).toEqual(["claims", "given_name", "groups", "name"]);

    // A stale version: the compare-and-swap is lost, 409, nothing written, no event.
    const before = await snapshot(id);
    const stale = await adminFetch("PATCH", `/admin/users/${id}`, { name: "Lost" }, { ...AUTH, "if-match": `"${created.version}"` });
    expect(stale.status).toBe(409);
    expect(await snapshot(id)).toEqual(before);
    // The current version: applied.
    const fresh = await adminFetch("PATCH", `/admin/users/${id}`, { name: "Won" }, { ...AUTH, "if-match": `"${updated.version}"` });
    expect(((await json(fresh, 200)) as Json).name).toBe("Won");
    // Two writers with the same version: one wins, the other gets 409.
    const version = ((await json(await adminFetch("GET", `/admin/users/${id}`), 200)) as Json).version;
    const race = await Promise.all(
      ["One", "Two"].map((name) => adminFetch("PATCH", `/admin/users/${id}`, { name }, { ...AUTH, "if-match": `"${version}"` })),
    );
    expect(race.map((r) => r.status).sort()).toEqual([200, 409]);
    expect((await adminEvents(id)).filter((e) => e.type === "admin.user.updated")).toHaveLength(3);
  });

  it("concurrent updates of different members all take effect (compare-and-swap, re-applied)", async () => {
    const { id } = await createUser({ email: email() });
    const changes = [{ name: "N" }, { given_name: "G" }, { family_name: "F" }, { locale: "fr" }, { zoneinfo: "Europe/Paris" }];
    const responses = await Promise.all(changes.map((change) => adminFetch("PATCH", `/admin/users/${id}`, change)));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200]);
    expect(await json(await adminFetch("GET", `/admin/users/${id}`), 200)).toMatchObject(Object.assign({}, ...changes));
    expect((await adminEvents(id as string)).filter((e) => e.type === "admin.user.updated")).toHaveLength(5);
  });

  it("a new email address is unverified unless said; a taken one is 409", async () => {
    const other = await createUser({ email: email() });
    const { id } = await createUser({ email: email(), email_verified: true });
    const moved = await json(await adminFetch("PATCH", `/admin/users/${id}`, { email: email("moved") }), 200);
    expect(moved.email_verified).toBe(false);
    await expect(errorOf(await adminFetch("PATCH", `/admin/users/${id}`, { email: other.email }))).resolves.toEqual({ status: 409, error: "invalid_request" });
  });

  it("C5: once an update returns, /userinfo answers with it", async () => {
    const rp = await makeClient();
    const { user, tokens } = await signedIn(rp);
    await json(await adminFetch("PATCH", `/admin/users/${user.id}`, { name: "Rear Admiral Hopper" }), 200);
    expect(await (await userinfoWith(tokens.access_token)).json()).toMatchObject({ name: "Rear Admiral Hopper" });
  });

  it("disabling ends the sessions and the tokens: userinfo 401, introspect inactive, refresh invalid_grant; enabling revives none", async () => {
    const rp = await makeClient();
    const { user, tokens } = await signedIn(rp);
    await sessionFor(user.id);
    expect(await introspect(rp, tokens.access_token)).toBe(true);
    const disabled = await json(await adminFetch("POST", `/admin/users/${user.id}/disable`), 200);
    expect(disabled).toMatchObject({ disabled: true, sessions_ended: 2 });
    expect(await userSessionsFor(env, user.id)!.listSessions()).toEqual([]);
    expect((await userinfoWith(tokens.access_token)).status).toBe(401);
    expect(await introspect(rp, tokens.access_token)).toBe(false);
    expect(await introspect(rp, tokens.refresh_token!)).toBe(false);
    await expect(errorOf(await refresh(rp, tokens.refresh_token!))).resolves.toEqual({ status: 400, error: "invalid_grant" });
    // Again: harmless, no second event.
    await json(await adminFetch("POST", `/admin/users/${user.id}/disable`), 200);
    const enabled = await json(await adminFetch("POST", `/admin/users/${user.id}/enable`), 200);
    expect(enabled.disabled).toBe(false);
    expect((await userinfoWith(tokens.access_token)).status).toBe(401);
    expect(await introspect(rp, tokens.access_token)).toBe(false);
    // A new sign-in works again (a moment later: grants made up to the disabling, to the millisecond, are ended).
    await new Promise((r) => setTimeout(r, 5));
    const again = await redeem(rp, await makeCode(rp.clientId, user.id, { issuedAt: Date.now(), authTime: Math.floor(Date.now() / 1000) }));
    expect((await userinfoWith(again.access_token)).status).toBe(200);
    expect((await adminEvents(user.id)).map((e) => e.type)).toEqual(["admin.user.disabled", "admin.user.enabled"]);
    // The sessions object records the ending with its own event (delivered by its alarm).
    await expect
      .poll(async () => (await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log WHERE subject = ? AND type = 'session.revoked_all'").bind(user.id).first<{ n: number }>())!.n)
      .toBeGreaterThanOrEqual(1);
  });

  it("deleting: 204, sessions and tokens end, consents go, the audit log keeps the events; then 404", async () => {
    const rp = await makeClient();
    const { user, tokens } = await signedIn(rp);
    await rememberConsent(env.DB, user.id, rp.clientId, ["openid", "profile"]);
    const response = await adminFetch("DELETE", `/admin/users/${user.id}`);
    expect(response.status).toBe(204);
    expect(await getRow(user.id)).toBeNull();
    expect(await userSessionsFor(env, user.id)!.listSessions()).toEqual([]);
    expect((await userinfoWith(tokens.access_token)).status).toBe(401);
    expect(await introspect(rp, tokens.refresh_token!)).toBe(false);
    await expect(errorOf(await refresh(rp, tokens.refresh_token!))).resolves.toEqual({ status: 400, error: "invalid_grant" });
    expect(await grantedScopes(env.DB, user.id, rp.clientId)).toEqual(new Set());
    expect((await adminEvents(user.id)).map((e) => e.type)).toEqual(["admin.user.deleted"]);
    await expect(errorOf(await adminFetch("DELETE", `/admin/users/${user.id}`))).resolves.toEqual({ status: 404, error: "not_found" });
    await expect(errorOf(await adminFetch("GET", `/admin/users/${user.id}`))).resolves.toEqual({ status: 404, error: "not_found" });
  });
});

async function getRow(userId: string) {
  return env.DB.prepare("SELECT id FROM users WHERE id = ?").bind(userId).first();
}

describe("admin API: consents", () => {
  it("lists a user's consents and revokes one: that client's grants end, the others' do not", async () => {
    const [rp, other] = [await makeClient({ client_name: "Revoked app" }), await makeClient()];
    const { user, tokens } = await signedIn(rp);
    const kept = await redeem(other, await makeCode(other.clientId, user.id));
    await rememberConsent(env.DB, user.id, rp.clientId, ["openid", "profile", "offline_access"]);
    await rememberConsent(env.DB, user.id, other.clientId, ["openid"]);
    const { consents } = (await json(await adminFetch("GET", `/admin/users/${user.id}/consents`), 200)) as { consents: Json[] };
    expect(consents.map((c) => c.client_id).sort()).toEqual([rp.clientId, other.clientId].sort());
    expect(consents.find((c) => c.client_id === rp.clientId)).toMatchObject({ client_name: "Revoked app", scopes: ["offline_access", "openid", "profile"], expires_at: null });

    expect((await adminFetch("DELETE", `/admin/users/${user.id}/consents/${rp.clientId}`)).status).toBe(204);
    expect(await grantedScopes(env.DB, user.id, rp.clientId)).toEqual(new Set());
    expect((await userinfoWith(tokens.access_token)).status).toBe(401);
    expect(await introspect(rp, tokens.access_token)).toBe(false);
    await expect(errorOf(await refresh(rp, tokens.refresh_token!))).resolves.toEqual({ status: 400, error: "invalid_grant" });
    // The other client's grant is untouched.
    expect((await userinfoWith(kept.access_token)).status).toBe(200);
    const events = await env.DB.prepare("SELECT type, client_id FROM audit_log WHERE subject = ? AND type = 'admin.user.consent_revoked'").bind(user.id).all();
    expect(events.results).toEqual([{ type: "admin.user.consent_revoked", client_id: rp.clientId }]);

    // Revoked already, or never given: 404 and nothing changes (no grant is ended either).
    const third = await makeClient();
    const before = await snapshot(user.id);
    await expect(errorOf(await adminFetch("DELETE", `/admin/users/${user.id}/consents/${rp.clientId}`))).resolves.toEqual({ status: 404, error: "not_found" });
    await expect(errorOf(await adminFetch("DELETE", `/admin/users/${user.id}/consents/${third.clientId}`))).resolves.toEqual({ status: 404, error: "not_found" });
    await expect(errorOf(await adminFetch("DELETE", `/admin/users/${user.id}/consents/no-such-client`))).resolves.toEqual({ status: 404, error: "not_found" });
    expect(await snapshot(user.id)).toEqual(before);
  });
});

describe("groups and custom claims (released by the same rules as the standard claims)", () => {
  it("groups: released with the groups scope, at userinfo and, when asked, in the ID token; never without it", async () => {
    const rp = await makeClient({ scope: "openid profile email groups offline_access" });
    const user = await makeUser({ groups: ["staff", "ops"] });
    const withScope = await redeem(rp, await makeCode(rp.clientId, user.id, { scope: "openid groups", claims: JSON.stringify({ id_token: { groups: null } }) }));
    expect(await (await userinfoWith(withScope.access_token)).json()).toEqual({ sub: user.id, groups: ["staff", "ops"] });
    expect((await verifyIdToken(withScope.id_token!, rp.clientId)).payload.groups).toEqual(["staff", "ops"]);
    const without = await redeem(rp, await makeCode(rp.clientId, user.id, { scope: "openid profile", claims: JSON.stringify({ userinfo: { groups: null }, id_token: { groups: null } }) }));
    expect(await (await userinfoWith(without.access_token)).json()).not.toHaveProperty("groups");
    expect((await verifyIdToken(without.id_token!, rp.clientId)).payload).not.toHaveProperty("groups");
    // An admin change is in force at once.
    await json(await adminFetch("PATCH", `/admin/users/${user.id}`, { groups: ["staff"] }), 200);
    expect(await (await userinfoWith(withScope.access_token)).json()).toEqual({ sub: user.id, groups: ["staff"] });
  });

  it("the groups scope is only granted to a client registered for it, and discovery lists it", async () => {
    const discovery = (await (await SELF.fetch(`${ISSUER}/.well-known/openid-configuration`)).json()) as { scopes_supported: string[]; claims_supported: string[] };
    expect(discovery.scopes_supported).toContain("groups");
    expect(discovery.claims_supported).toContain("groups");
  });

  it("custom claims: only to a client registered for them (extra_claims), with the profile scope; the claims request selects for the ID token", async () => {
    const registered = await makeClient({ extra_claims: ["department", "https://example.com/roles"] });
    const unregistered = await makeClient();
    const user = await makeUser({ name: "Ada", claims: { department: "Engines", "https://example.com/roles": ["author"], secret_level: 3 } });
    const tokens = await redeem(registered, await makeCode(registered.clientId, user.id, { scope: "openid profile", claims: JSON.stringify({ id_token: { department: { essential: true } } }) }));
    const info = (await (await userinfoWith(tokens.access_token)).json()) as Json;
    expect(info).toMatchObject({ sub: user.id, name: "Ada", department: "Engines", "https://example.com/roles": ["author"] });
    expect(info).not.toHaveProperty("secret_level");
    const idToken = (await verifyIdToken(tokens.id_token!, registered.clientId)).payload;
    expect(idToken.department).toBe("Engines");
    expect(idToken).not.toHaveProperty("secret_level");
    // Without the profile scope: none.
    const noProfile = await redeem(registered, await makeCode(registered.clientId, user.id, { scope: "openid email" }));
    expect(await (await userinfoWith(noProfile.access_token)).json()).not.toHaveProperty("department");
    // A client not registered for them: none, even when it asks.
    const other = await redeem(unregistered, await makeCode(unregistered.clientId, user.id, { scope: "openid profile", claims: JSON.stringify({ userinfo: { department: null }, id_token: { department: null } }) }));
    expect(await (await userinfoWith(other.access_token)).json()).not.toHaveProperty("department");
    expect((await verifyIdToken(other.id_token!, unregistered.clientId)).payload).not.toHaveProperty("department");
  });

  it("a client's extra_claims are set by the admin API, validated by the one client metadata validator", async () => {
    const response = await adminFetch("POST", "/admin/clients", { client_name: "HR", redirect_uris: ["https://hr.example/cb"], extra_claims: ["department"] });
    const client = await json(response, 201);
    expect(client.extra_claims).toEqual(["department"]);
    for (const bad of [["sub"], ["bad name"], "department", Array.from({ length: 21 }, (_, i) => `c${i}`)]) {
      const refused = await adminFetch("PATCH", `/admin/clients/${client.client_id}`, { extra_claims: bad });
      expect(refused.status, JSON.stringify(bad)).toBe(400);
    }
    const updated = await json(await adminFetch("PATCH", `/admin/clients/${client.client_id}`, { extra_claims: ["department", "cost_center"] }), 200);
    expect(updated.extra_claims).toEqual(["department", "cost_center"]);
  });
});
