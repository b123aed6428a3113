import { randomBytes } from "node:crypto";
import { createLocalJWKSet, createRemoteJWKSet, decodeJwt, jwtVerify, type JSONWebKeySet, type JWTVerifyGetKey } from "jose";
import * as client from "openid-client";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DevServer, type RegisteredClient } from "./helpers/dev-server.ts";
import { RpReceiver } from "./helpers/rp-receiver.ts";
import { UserAgent, authorizeAsUser, uniqueEmail } from "./helpers/user-agent.ts";
import { WorkerProcess, buildWorkerBundle, newTempDir, removeDir, type WorkerBundle } from "./helpers/worker-process.ts";

/**
 * OIDC Back-Channel Logout 1.0 end to end, in real processes: two apps registered through the admin API with
 * back-channel logout URIs on a loopback receiver in this process, a person signed in to both through one session
 * (the emailed link, consent, openid-client 6 for the code), RP-initiated logout from one app — and each app's
 * endpoint gets a Logout Token that validates against the OP's jwks_uri. Then the one-time session token (C8) as the
 * docs show it. Last, the crash rig of restart.test.ts: the Worker is SIGKILLed while a notice is on its way, and the
 * notice is still delivered after the restart (C21).
 */

const insecureOnLoopback = { execute: [client.allowInsecureRequests] };
const EVENT = "http://schemas.openid.net/event/backchannel-logout";

async function validate(token: string, keys: JWTVerifyGetKey, issuer: string, clientId: string) {
  const { payload, protectedHeader } = await jwtVerify(token, keys, { issuer, audience: clientId, typ: "logout+jwt", requiredClaims: ["iat", "exp", "jti", "sid", "sub", "events"] });
  expect(protectedHeader.kid).toBeTruthy();
  expect(payload.events).toEqual({ [EVENT]: {} });
  expect(payload).not.toHaveProperty("nonce");
  return payload;
}

describe("RP-initiated logout tells both apps of the session (wrangler dev, openid-client)", () => {
  let server: DevServer;
  let receiver: RpReceiver;
  const apps: Array<{ name: string; rp: string; registered: RegisteredClient; config: client.Configuration; callback: string }> = [];

  beforeAll(async () => {
    [server, receiver] = await Promise.all([DevServer.start(), RpReceiver.start()]);
    for (const name of ["Alpha", "Beta"]) {
      const rp = `${name.toLowerCase()}-${randomBytes(4).toString("hex")}`;
      const callback = `https://${name.toLowerCase()}.example/callback`;
      const registered = await server.registerClient({
        client_name: name,
        redirect_uris: [callback],
        post_logout_redirect_uris: [`https://${name.toLowerCase()}.example/bye`],
        grant_types: ["authorization_code", "refresh_token"],
        token_endpoint_auth_method: "client_secret_post",
        backchannel_logout_uri: receiver.uri(rp),
        backchannel_logout_session_required: true,
      });
      const config = await client.discovery(new URL(server.issuer), registered.client_id, registered.client_secret, undefined, insecureOnLoopback);
      apps.push({ name, rp, registered, config, callback });
    }
  }, 180_000);

  afterAll(async () => {
    await Promise.all([server?.dispose(), receiver?.stop()]);
  });

  it("discovery says so, and after the logout each app's endpoint gets one Logout Token for the session, valid against jwks_uri", async () => {
    const metadata = apps[0]!.config.serverMetadata();
    expect(metadata.backchannel_logout_supported).toBe(true);
    expect(metadata.backchannel_logout_session_supported).toBe(true);
    expect(metadata).not.toHaveProperty("frontchannel_logout_supported");

    const ua = new UserAgent(server.issuer);
    const email = uniqueEmail("bcl");
    const idTokens: string[] = [];
    for (const app of apps) {
      const codeVerifier = client.randomPKCECodeVerifier();
      const state = client.randomState();
      const nonce = client.randomNonce();
      const url = client.buildAuthorizationUrl(app.config, {
        redirect_uri: app.callback,
        scope: "openid email offline_access",
        code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
        code_challenge_method: "S256",
        state,
        nonce,
      });
      const { callback } = await authorizeAsUser(ua, url, { email, redirectUri: app.callback });
      const tokens = await client.authorizationCodeGrant(app.config, callback, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
      idTokens.push(tokens.id_token!);
    }
    const [sidA, sidB] = idTokens.map((t) => decodeJwt(t).sid);
    expect(sidA).toBe(sidB); // one session, two apps
    const sub = decodeJwt(idTokens[0]!).sub!;
    // The session knows both apps (recorded off the token response's path).
    await expect
      .poll(async () => (await server.admin<{ sessions: Array<{ clients: string[] }> }>("GET", `/admin/users/${sub}/sessions`)).body.sessions[0]?.clients.length, { timeout: 10_000 })
      .toBe(2);

    const logout = client.buildEndSessionUrl(apps[0]!.config, { id_token_hint: idTokens[0]!, post_logout_redirect_uri: "https://alpha.example/bye", state: "bye-1" });
    const answer = await ua.get(logout);
    expect(answer.status).toBe(303);
    expect(answer.headers.get("location")).toBe("https://alpha.example/bye?state=bye-1");

    const keys = createRemoteJWKSet(new URL(metadata.jwks_uri!));
    for (const app of apps) {
      await expect.poll(() => receiver.delivered(app.rp).length, { timeout: 20_000, interval: 100 }).toBe(1);
      const [got] = receiver.received(app.rp);
      expect(got).toMatchObject({ method: "POST", contentType: "application/x-www-form-urlencoded", answered: 200 });
      const payload = await validate(got!.logoutToken!, keys, server.issuer, app.registered.client_id);
      expect(payload).toMatchObject({ sub, sid: sidA });
    }
    // Exactly one each, and nothing pending.
    expect(apps.map((app) => receiver.received(app.rp).length)).toEqual([1, 1]);
    const notices = await server.admin<{ pending: number; dead_lettered: number }>("GET", `/admin/users/${sub}/logout-notices`);
    expect(notices.body).toMatchObject({ pending: 0, dead_lettered: 0 });
  });

  it("the one-time session token, as docs/session-token.md shows it: the browser visits the OP, the app's backend redeems once", async () => {
    const ua = new UserAgent(server.issuer);
    const email = uniqueEmail("st");
    const app = apps[1]!;
    const codeVerifier = client.randomPKCECodeVerifier();
    const url = client.buildAuthorizationUrl(app.config, {
      redirect_uri: app.callback,
      scope: "openid email",
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
      state: "s",
    });
    await authorizeAsUser(ua, url, { email, redirectUri: app.callback });

    const visit = await ua.get(`/session-token?${new URLSearchParams({ client_id: app.registered.client_id, redirect_uri: app.callback, state: "st-9" })}`);
    expect(visit.status).toBe(303);
    const back = new URL(visit.headers.get("location")!);
    expect(back.origin + back.pathname).toBe(app.callback);
    expect(back.searchParams.get("state")).toBe("st-9");
    const token = back.searchParams.get("session_token")!;

    const redeem = () =>
      fetch(`${server.issuer}/session-token/redeem`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ session_token: token, client_id: app.registered.client_id, client_secret: app.registered.client_secret! }),
      });
    const first = await redeem();
    expect(first.status).toBe(200);
    const session = (await first.json()) as { sub: string; sid: string; auth_time: number; amr: string[]; iss: string };
    expect(session).toMatchObject({ iss: server.issuer, client_id: app.registered.client_id, amr: ["email"] });
    expect(session.sid).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect((await redeem()).status).toBe(400);
  });
});

// ── The crash rig (restart.test.ts): SIGKILL while a logout notice is on its way ──

const USER = "user-bcl-crash-01";
const CLIENT = "client-bcl-crash";
const SID = "sid-bcl-crash-0123456789";

describe("a SIGKILL between the logout and the delivery (C21)", () => {
  let bundle: WorkerBundle | undefined;
  let stateDir: string | undefined;
  let receiver: RpReceiver | undefined;

  beforeAll(async () => {
    [bundle, receiver] = await Promise.all([buildWorkerBundle(), RpReceiver.start()]);
    stateDir = newTempDir("oidc-bcl-crash-");
  }, 120_000);

  afterAll(async () => {
    await WorkerProcess.killAll();
    await receiver?.stop();
    removeDir(stateDir);
    removeDir(bundle?.dir);
  });

  it("the notice committed with the logout is delivered after the restart, exactly once, with a valid Logout Token", async () => {
    const rp = "crash-rp";
    // The RP takes the first attempt and never answers it: the crash comes while the delivery is in flight.
    receiver!.script(rp, { hold: true });
    const first = await WorkerProcess.start(bundle!, stateDir!);
    await first.d1("INSERT INTO users (id, email, email_verified) VALUES (?, ?, 1)", USER, "crash@example.com");
    await first.d1(
      `INSERT INTO clients (id, client_name, redirect_uris, post_logout_redirect_uris, grant_types, response_types, token_endpoint_auth_method, scope, backchannel_logout_uri)
       VALUES (?, 'Crash RP', '["https://crash.example/cb"]', '[]', '["authorization_code"]', '["code"]', 'none', 'openid', ?)`,
      CLIENT,
      receiver!.uri(rp),
    );
    const created = await first.call<{ secret: string }>("SESSIONS", `user:${USER}`, "createSession", { sid: SID, userId: USER, authTime: Math.floor(Date.now() / 1000), amr: ["email"], acr: null });
    await first.call("SESSIONS", `user:${USER}`, "recordClient", SID, CLIENT, { issuer: "http://localhost" });

    // The user confirms "sign out" in the browser (the real route: session cookie, CSRF double submit).
    const csrf = randomBytes(32).toString("base64url");
    const answer = await first.fetch("/logout/confirm", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: `oidc_session=${USER}.${SID}.${created.secret}; oidc_csrf=${csrf}` },
      body: new URLSearchParams({ csrf_token: csrf, decision: "yes" }).toString(),
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toContain("Signed out");
    await expect.poll(() => receiver!.heldCount(rp), { timeout: 15_000, interval: 50 }).toBe(1);
    await first.crash();

    // The RP is back and answers at once; the host starts again on the same state, and nothing calls the object.
    receiver!.script(rp, {});
    const second = await WorkerProcess.start(bundle!, stateDir!);
    await expect.poll(() => receiver!.delivered(rp).length, { timeout: 60_000, interval: 200 }).toBe(1);
    const jwks = JSON.parse((await second.fetch("/jwks.json")).body) as JSONWebKeySet;
    const [delivered] = receiver!.delivered(rp);
    const payload = await validate(delivered!.logoutToken!, createLocalJWKSet(jwks), "http://localhost", CLIENT);
    expect(payload).toMatchObject({ sub: USER, sid: SID });
    await expect
      .poll(async () => (await second.d1<{ n: number }>("SELECT COUNT(*) AS n FROM audit_log WHERE type = 'logout_notice.delivered' AND subject = ?", USER))[0]?.n, { timeout: 15_000 })
      .toBe(1);
    expect(await second.call("SESSIONS", `user:${USER}`, "logoutNotices")).toMatchObject({ pending: 0, deadLettered: 0 });
    // The held first attempt never got an answer; the one after the restart is the only delivery.
    expect(receiver!.received(rp).map((r) => r.answered)).toEqual([null, 200]);
  }, 180_000);
});
