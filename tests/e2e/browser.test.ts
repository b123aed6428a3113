import { existsSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { createHash, randomBytes } from "node:crypto";
import { chromium, type Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DevServer, type RegisteredClient } from "./helpers/dev-server.ts";
import { newMailboxLink, seenLinks, uniqueEmail } from "./helpers/user-agent.ts";

/**
 * The sign-in UI in a real browser: Debian's Chromium, headless, driven by playwright-core (never a downloaded
 * browser). A person opens the app's authorize URL, types an address, follows the emailed link (read from the dev
 * mailbox), confirms, sees the consent screen naming the app and the scopes, allows, and the browser lands on the
 * app's callback — a tiny HTTP server on loopback standing in for the relying party — with code and state.
 */

const CHROMIUM = "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available) console.warn(`browser.test.ts skipped: ${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`);

describe.skipIf(!available)("sign-in and consent in headless Chromium", () => {
  let server: DevServer;
  let browser: Browser;
  let rp: Server;
  let callbackBase: string;
  let app: RegisteredClient;
  const arrivals: URL[] = [];

  beforeAll(async () => {
    rp = createServer((req, res) => {
      const url = new URL(req.url ?? "/", callbackBase);
      // Only the redirect counts: Chromium also asks this origin for /favicon.ico.
      if (url.pathname === "/callback") arrivals.push(url);
      res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end("<!doctype html><title>Relying party</title><h1>Back at the app</h1>");
    });
    await new Promise<void>((resolve) => rp.listen(0, "127.0.0.1", resolve));
    const address = rp.address();
    callbackBase = `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}`;
    [server, browser] = await Promise.all([
      DevServer.start(),
      chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      }),
    ]);
    app = await server.registerClient({
      client_name: "Browser Demo App",
      redirect_uris: [`${callbackBase}/callback`],
      token_endpoint_auth_method: "client_secret_basic",
      scope: "openid email profile",
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
    await new Promise((resolve) => rp?.close(resolve));
  });

  it("authorize URL → sign-in page → email → link → confirm → consent → Allow → the app's callback with code and state", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
    page.on("console", (message) => {
      // CSP violations land here, and failed loads (the OP serves /favicon.ico, so the browser's own request succeeds).
      if (message.type() === "error") problems.push(`console: ${message.text()}`);
    });
    page.on("response", (response) => {
      if (response.status() >= 400) problems.push(`${response.status()} for ${new URL(response.url()).pathname}`);
    });

    const verifier = randomBytes(32).toString("base64url");
    const state = randomBytes(16).toString("base64url");
    const authorize = new URL(`${server.issuer}/authorize`);
    for (const [k, v] of Object.entries({
      client_id: app.client_id,
      redirect_uri: `${callbackBase}/callback`,
      response_type: "code",
      scope: "openid email profile",
      state,
      nonce: "browser-nonce",
      code_challenge: createHash("sha256").update(verifier).digest("base64url"),
      code_challenge_method: "S256",
    })) {
      authorize.searchParams.set(k, v);
    }

    // The sign-in page, with the app's name and one email field.
    await page.goto(authorize.href);
    expect(new URL(page.url()).pathname).toBe("/login");
    await expect.poll(() => page.locator("h1").textContent()).toBe("Sign in");
    expect(await page.textContent("main")).toContain("Browser Demo App");
    const email = uniqueEmail("chromium");
    await page.fill('input[name="email"]', email);
    await page.click('button[type="submit"]');
    await page.waitForLoadState();
    expect(await page.locator("h1").textContent()).toBe("Check your email");

    // The link from the email, opened in the same browser, and confirmed.
    const link = await newMailboxLink(server.issuer, email, seenLinks);
    await page.goto(link);
    expect(await page.locator("h1").textContent()).toBe("Finish signing in");
    await Promise.all([page.waitForURL((url) => url.pathname === "/consent"), page.click('button[type="submit"]')]);

    // The session cookie as the browser keeps it.
    const cookies = await context.cookies(server.issuer);
    const session = cookies.find((c) => c.name === "oidc_session");
    expect(session).toMatchObject({ httpOnly: true, sameSite: "Lax", secure: false, path: "/" });

    // The consent screen names the app and what it asks for.
    const consentText = (await page.textContent("main")) ?? "";
    expect(consentText).toContain("Browser Demo App");
    expect(consentText).toContain("Your email address");
    expect(consentText).toContain("Your name and basic profile");
    expect(consentText).toContain(email);
    await expect.poll(() => page.locator('button[name="decision"]').count()).toBe(2);

    // Allow: the browser lands on the app's callback with the code.
    await Promise.all([page.waitForURL((url) => url.href.startsWith(`${callbackBase}/callback`)), page.click('button[name="decision"][value="allow"]')]);
    const landed = new URL(page.url());
    expect(landed.searchParams.get("state")).toBe(state);
    expect(landed.searchParams.get("iss")).toBe(server.issuer);
    const code = landed.searchParams.get("code");
    expect(code).toBeTruthy();
    expect(arrivals.map((u) => u.searchParams.get("code"))).toEqual([code]);
    expect(await page.locator("h1").textContent()).toBe("Back at the app");

    // The code is good at the token endpoint.
    const token = await fetch(`${server.issuer}/token`, {
      method: "POST",
      headers: {
        "content-type": "application/x-www-form-urlencoded",
        authorization: `Basic ${Buffer.from(`${app.client_id}:${app.client_secret}`).toString("base64")}`,
      },
      body: new URLSearchParams({ grant_type: "authorization_code", code: code!, redirect_uri: `${callbackBase}/callback`, code_verifier: verifier }),
    });
    expect(token.status).toBe(200);
    expect(await token.json()).toMatchObject({ token_type: "Bearer", id_token: expect.any(String) });

    expect(problems).toEqual([]);
    await context.close();
  });
});
