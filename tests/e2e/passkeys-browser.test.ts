import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import * as client from "openid-client";
import { chromium, type Browser, type BrowserContext, type CDPSession, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DevServer, queryStoppedD1, type RegisteredClient } from "./helpers/dev-server.ts";
import { newMailboxLink, seenLinks, uniqueEmail } from "./helpers/user-agent.ts";

/**
 * Passkeys in a real browser: Debian's Chromium, headless, driven by playwright-core, with a CDP virtual authenticator
 * (ctap2, internal transport, resident keys, user verification) — a real WebAuthn ceremony through /passkeys.js, the
 * OP on http://localhost:PORT (an IP address is not a valid RP ID), and openid-client as the relying party.
 */

const CHROMIUM = "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available) console.warn(`passkeys-browser.test.ts skipped: ${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`);

interface VirtualCredential {
  credentialId: string;
  isResidentCredential: boolean;
  rpId: string;
  privateKey: string;
  userHandle: string;
  signCount: number;
}

describe.skipIf(!available)("passkeys in headless Chromium with a virtual authenticator", () => {
  let server: DevServer;
  let browser: Browser;
  let rp: Server;
  let callbackBase: string;
  let app: RegisteredClient;
  let config: client.Configuration;
  let context: BrowserContext;
  let page: Page;
  let cdp: CDPSession;
  let authenticatorId: string;
  const problems: string[] = [];
  const email = uniqueEmail("passkey");
  let userId = "";

  beforeAll(async () => {
    rp = createServer((req, res) => {
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end("<!doctype html><title>Relying party</title><h1>Back at the app</h1>");
    });
    await new Promise<void>((resolve) => rp.listen(0, "127.0.0.1", resolve));
    const address = rp.address();
    callbackBase = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
    [server, browser] = await Promise.all([
      DevServer.start({ host: "localhost" }),
      chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      }),
    ]);
    app = await server.registerClient({
      client_name: "Passkey Demo App",
      redirect_uris: [`${callbackBase}/callback`],
      token_endpoint_auth_method: "client_secret_basic",
      scope: "openid email",
    });
    config = await client.discovery(new URL(server.issuer), app.client_id, app.client_secret, client.ClientSecretBasic(app.client_secret!), {
      execute: [client.allowInsecureRequests],
    });

    context = await browser.newContext();
    page = await context.newPage();
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      if (message.type() === "error" && !message.text().startsWith("Failed to load resource")) problems.push(`console: ${message.text()}`);
    });
    // Chromium's virtual authenticator answers a conditional (autofill) request at once with the first passkey it
    // holds, which would race every click on "Sign in with a passkey". So the tests that use the button behave as a
    // browser without conditional mediation (localStorage "conditional" = "off"); the conditional test turns it on.
    await context.addInitScript(() => {
      if (typeof PublicKeyCredential !== "undefined" && window.localStorage?.getItem("conditional") === "off") {
        Object.defineProperty(PublicKeyCredential, "isConditionalMediationAvailable", { value: async () => false });
      }
    });
    cdp = await context.newCDPSession(page);
    await cdp.send("WebAuthn.enable", { enableUI: false });
    ({ authenticatorId } = await cdp.send("WebAuthn.addVirtualAuthenticator", {
      options: {
        protocol: "ctap2",
        transport: "internal",
        hasResidentKey: true,
        hasUserVerification: true,
        isUserVerified: true,
        automaticPresenceSimulation: true,
      },
    }));
  }, 120_000);

  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await server?.dispose();
    await new Promise((resolve) => rp?.close(resolve));
  });

  async function credentials(): Promise<VirtualCredential[]> {
    return ((await cdp.send("WebAuthn.getCredentials", { authenticatorId })) as { credentials: VirtualCredential[] }).credentials;
  }

  /** An authorization request from openid-client, opened in the page: resolves with what the RP learns. */
  async function authorization(extra: Record<string, string> = {}) {
    const codeVerifier = client.randomPKCECodeVerifier();
    const state = client.randomState();
    const nonce = client.randomNonce();
    const url = client.buildAuthorizationUrl(config, {
      redirect_uri: `${callbackBase}/callback`,
      scope: "openid email",
      code_challenge: await client.calculatePKCECodeChallenge(codeVerifier),
      code_challenge_method: "S256",
      state,
      nonce,
      ...extra,
    });
    return {
      url,
      async redeem() {
        const landed = new URL(page.url());
        expect(landed.href.startsWith(`${callbackBase}/callback`)).toBe(true);
        const tokens = await client.authorizationCodeGrant(config, landed, { pkceCodeVerifier: codeVerifier, expectedState: state, expectedNonce: nonce });
        return { tokens, claims: tokens.claims()! };
      },
    };
  }

  const atCallback = (url: URL) => url.href.startsWith(`${callbackBase}/callback`);

  async function conditionalMediation(on: boolean): Promise<void> {
    if (!page.url().startsWith(server.issuer)) await page.goto(`${server.issuer}/health`);
    await page.evaluate((value) => (value ? localStorage.removeItem("conditional") : localStorage.setItem("conditional", "off")), on);
  }

  /** "Sign in with a passkey" on the sign-in page: resolves when the browser has left /login for `where`. */
  async function passkeyButton(where: (url: URL) => boolean): Promise<void> {
    await page.goto(`${server.issuer}/login`);
    const button = page.locator("button", { hasText: "Sign in with a passkey" });
    await button.waitFor({ state: "visible" });
    await Promise.all([page.waitForURL(where), button.click()]);
  }

  it("email sign-in → 'Sign in faster next time' → a passkey → sign out → 'Sign in with a passkey', no email → an ID token with the passkey amr and acr", async () => {
    await conditionalMediation(false);
    // 1. The first sign-in is by email; the sign-in page also shows the passkey button (the script found WebAuthn).
    const first = await authorization();
    await page.goto(first.url.href);
    expect(new URL(page.url()).pathname).toBe("/login");
    await page.locator("button", { hasText: "Sign in with a passkey" }).waitFor({ state: "visible" });
    await page.fill('input[name="email"]', email);
    await page.click('form[action="/login"] button[type="submit"]');
    await page.waitForLoadState();
    expect(await page.locator("h1").textContent()).toBe("Check your email");
    await page.goto(await newMailboxLink(server.issuer, email, seenLinks));
    expect(await page.locator("h1").textContent()).toBe("Finish signing in");
    await Promise.all([page.waitForURL((url) => url.pathname === "/passkeys/offer"), page.click('form[action="/login/email"] button[type="submit"]')]);

    // 2. The offer: "Add a passkey" runs navigator.credentials.create with the virtual authenticator.
    expect(await page.locator("h1").textContent()).toBe("Sign in faster next time");
    expect(await page.textContent("main")).toContain(email);
    await page.locator("button", { hasText: "Not now" }).waitFor();
    await Promise.all([page.waitForURL((url) => url.pathname === "/consent"), page.click('button:has-text("Add a passkey")')]);
    const stored = await credentials();
    expect(stored).toHaveLength(1);
    expect(stored[0]).toMatchObject({ isResidentCredential: true, rpId: "localhost" });

    await Promise.all([page.waitForURL(atCallback), page.click('button[name="decision"][value="allow"]')]);
    const emailLogin = await first.redeem();
    expect(emailLogin.claims.amr).toEqual(["email"]);
    userId = emailLogin.claims.sub;

    // 3. Signed out (RP-initiated logout with the ID token).
    await page.goto(client.buildEndSessionUrl(config, { id_token_hint: emailLogin.tokens.id_token! }).href);
    expect(await page.locator("h1").textContent()).toBe("Signed out");
    expect((await context.cookies(server.issuer)).find((c) => c.name === "oidc_session")).toBeUndefined();

    // 4. Back with the passkey button: no email typed, no mail sent, consent remembered, straight to the app.
    const mailBefore = (await (await fetch(`${server.issuer}/dev/mailbox?to=${encodeURIComponent(email)}`)).json()) as unknown[];
    // The app asks for a phishing-resistant, hardware-protected sign-in (OpenID EAP ACR values; acr_values is voluntary).
    const second = await authorization({ acr_values: "phrh" });
    await page.goto(second.url.href);
    expect(new URL(page.url()).pathname).toBe("/login");
    const button = page.locator("button", { hasText: "Sign in with a passkey" });
    await button.waitFor({ state: "visible" });
    await Promise.all([page.waitForURL(atCallback), button.click()]);
    const passkeyLogin = await second.redeem();
    expect(passkeyLogin.claims.sub).toBe(userId);
    expect(passkeyLogin.claims.amr).toEqual(["hwk", "user", "mfa"]);
    expect(passkeyLogin.claims.acr).toBe("phrh");
    expect(passkeyLogin.claims.auth_time).toBeGreaterThanOrEqual(emailLogin.claims.auth_time!);
    const mailAfter = (await (await fetch(`${server.issuer}/dev/mailbox?to=${encodeURIComponent(email)}`)).json()) as unknown[];
    expect(mailAfter).toHaveLength(mailBefore.length);
    const session = (await context.cookies(server.issuer)).find((c) => c.name === "oidc_session");
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Lax", path: "/" });
    expect(problems).toEqual([]);
  });

  it("conditional mediation: the passkey offered by the email field's autofill signs the user in", async () => {
    const supported = await page.evaluate(async () => {
      const pkc = window.PublicKeyCredential as unknown as { isConditionalMediationAvailable?: () => Promise<boolean> };
      return typeof pkc.isConditionalMediationAvailable === "function" && (await pkc.isConditionalMediationAvailable());
    });
    expect(supported).toBe(true);
    await context.clearCookies({ name: "oidc_session" });
    await conditionalMediation(true);
    const third = await authorization();
    // The virtual authenticator answers the pending conditional request on its own: the page signs in without a click.
    await page.goto(third.url.href);
    await page.waitForURL(atCallback, { timeout: 15_000 });
    const conditional = await third.redeem();
    expect(conditional.claims.sub).toBe(userId);
    expect(conditional.claims.amr).toEqual(["hwk", "user", "mfa"]);
    await conditionalMediation(false);
    expect(problems).toEqual([]);
  });

  it("a copy of the passkey with its counter set back (CDP addCredential, lower signCount) is refused with a clear page", async () => {
    await context.clearCookies({ name: "oidc_session" });
    const [original] = await credentials();
    expect(original!.signCount).toBeGreaterThanOrEqual(2);
    // The same key, as a clone that has been used less.
    await cdp.send("WebAuthn.removeCredential", { authenticatorId, credentialId: original!.credentialId });
    await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: { ...original!, signCount: 0 } });
    await passkeyButton((url) => url.pathname === "/login/passkey");
    expect(await page.locator("h1").textContent()).toBe("This passkey was not accepted");
    expect(await page.textContent("main")).toContain("copied");
    expect((await context.cookies(server.issuer)).find((c) => c.name === "oidc_session")).toBeUndefined();
    // Put the real one back (its counter ahead of what the OP saw) for the next test.
    await cdp.send("WebAuthn.removeCredential", { authenticatorId, credentialId: original!.credentialId });
    await cdp.send("WebAuthn.addCredential", { authenticatorId, credential: { ...original!, signCount: original!.signCount + 10 } });
  });

  it("the account page lists the passkey and deletes it; then it no longer signs in", async () => {
    await context.clearCookies({ name: "oidc_session" });
    // Without an authorization request, a passkey sign-in lands on the account page.
    await passkeyButton((url) => url.pathname === "/account");
    expect(await page.locator("h1").textContent()).toBe("Your account");
    const main = (await page.textContent("main")) ?? "";
    expect(main).toContain(email);
    expect(main).toContain("via built into a device");
    expect(main).toMatch(/last used [A-Z][a-z]{2} \d{1,2}, \d{4}/);
    await page.locator('form[data-passkey="register"]').waitFor({ state: "visible" });

    await Promise.all([page.waitForURL((url) => url.search === "?done=deleted"), page.click('li.passkey button:has-text("Delete")')]);
    expect(await page.textContent("main")).toContain("You have no passkeys yet");
    const listed = await server.admin<{ passkeys: unknown[] }>("GET", `/admin/users/${userId}/passkeys`);
    expect(listed.body.passkeys).toEqual([]);

    // The authenticator still holds the key, but the OP no longer knows it.
    await context.clearCookies({ name: "oidc_session" });
    await passkeyButton((url) => url.pathname === "/login/passkey");
    expect(await page.locator("h1").textContent()).toBe("Passkey not recognised");
    expect(problems).toEqual([]);
  });

  it("the clone's refusal is in the audit log, next to the registration and the deletion (D1 read after the server stops)", async () => {
    await server.stop();
    const [events] = await queryStoppedD1(server.stateDir, [
      `SELECT type, actor FROM audit_log WHERE subject = '${userId}' AND type LIKE 'passkey.%' ORDER BY occurred_at`,
    ]);
    expect(events!.map((e) => e.type)).toEqual(["passkey.registered", "passkey.counter_regression", "passkey.deleted"]);
  });
});
