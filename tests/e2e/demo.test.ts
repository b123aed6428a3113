import { existsSync } from "node:fs";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DevServer } from "./helpers/dev-server.ts";
import { uniqueEmail } from "./helpers/user-agent.ts";

/**
 * The demo app as a newcomer meets it, in Debian's headless Chromium: /demo → "Sign in" → the OP's sign-in page →
 * the dev mailbox (a page, in a second tab, as a person would use it) → the emailed link → consent → back on
 * /demo/callback, where the page's own script redeems the code (public client, PKCE S256) and shows "Signed in as …"
 * with the ID token's claims and the userinfo answer; then refresh, and RP-initiated logout back to /demo. Every
 * request the pages make succeeds, and nothing breaks the CSP (`script-src 'self'`, no inline script).
 *
 * The demo client is registered with the metadata `npm start` uses (scripts/start.mjs, seedDemo); start.test.ts checks
 * that the client `npm start` registers is the one this page runs with.
 */

const CHROMIUM = "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available) console.warn(`demo.test.ts skipped: ${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`);

/** Console errors (CSP violations land here), page errors and failed requests of a page. */
function watch(page: Page, problems: string[]): void {
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error") problems.push(`console: ${message.text()}`);
  });
  page.on("response", (response) => {
    if (response.status() >= 400) problems.push(`${response.status()} for ${new URL(response.url()).pathname}`);
  });
}

describe.skipIf(!available)("the demo app in headless Chromium", () => {
  let server: DevServer;
  let browser: Browser;

  beforeAll(async () => {
    [server, browser] = await Promise.all([
      DevServer.start(),
      chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      }),
    ]);
    await server.registerClient({
      client_id: "demo",
      client_name: "Demo app",
      redirect_uris: [`${server.issuer}/demo/callback`],
      post_logout_redirect_uris: [`${server.issuer}/demo`],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "none",
      scope: "openid profile email offline_access",
      skip_consent: false,
    });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  it("Sign in → the OP's pages → the mailbox page → back on /demo/callback signed in, with claims and userinfo; refresh and logout work", async () => {
    const context = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const problems: string[] = [];
    const demo = await context.newPage();
    watch(demo, problems);
    const tokenAnswers: number[] = [];
    context.on("response", (response) => {
      if (new URL(response.url()).pathname === "/token") tokenAnswers.push(response.status());
    });

    await demo.goto(`${server.issuer}/demo`);
    expect(await demo.locator("h1").textContent()).toBe("Demo app");
    await Promise.all([demo.waitForURL((url) => url.pathname === "/login"), demo.click("#sign-in")]);
    expect(await demo.textContent("main")).toContain("Demo app");
    const email = uniqueEmail("demo-page");
    await demo.fill('input[name="email"]', email);
    await Promise.all([demo.waitForLoadState(), demo.click('button[type="submit"]')]);
    expect(await demo.locator("h1").textContent()).toBe("Check your email");

    // The mailbox as a person reads it, in another tab: a form for the address, then the message with its link.
    const mailbox = await context.newPage();
    watch(mailbox, problems);
    await mailbox.goto(`${server.issuer}/dev/mailbox`);
    expect(await mailbox.locator("h1").textContent()).toBe("Dev mailbox");
    await mailbox.fill('input[name="to"]', email);
    await Promise.all([mailbox.waitForURL((url) => url.searchParams.get("to") === email), mailbox.click('button[type="submit"]')]);
    expect(await mailbox.textContent("main")).toContain(`1 message for ${email}`);
    expect(await mailbox.locator("article h2").textContent()).toBe("Your sign-in link");

    // The link, followed in that tab: the sign-in finishes there (the demo's request in flight is found by its state).
    await Promise.all([mailbox.waitForURL((url) => url.pathname === "/login/email"), mailbox.click("text=Open the sign-in link")]);
    expect(await mailbox.locator("h1").textContent()).toBe("Finish signing in");
    await Promise.all([mailbox.waitForURL((url) => url.pathname === "/consent"), mailbox.click('button[type="submit"]')]);
    expect(await mailbox.textContent("main")).toContain("Demo app");
    await Promise.all([mailbox.waitForURL((url) => url.pathname === "/demo/callback"), mailbox.click('button[value="allow"]')]);

    // Redeemed in the page: "Signed in as …", the claims (decoded, said to be unverified) and the userinfo answer.
    await expect.poll(() => mailbox.locator("h1").textContent(), { timeout: 15_000 }).toBe(`Signed in as ${email}`);
    // The code left the address bar.
    expect(new URL(mailbox.url()).search).toBe("");
    const claims = JSON.parse((await mailbox.textContent("#claims"))!) as Record<string, unknown>;
    expect(claims).toMatchObject({ iss: server.issuer, aud: "demo", azp: "demo", amr: ["email"] });
    expect(claims).toHaveProperty("nonce");
    expect(claims).toHaveProperty("auth_time");
    expect(await mailbox.textContent("#result")).toContain("does not verify the token's signature");
    const userinfo = JSON.parse((await mailbox.textContent("#userinfo"))!) as Record<string, unknown>;
    expect(userinfo).toMatchObject({ sub: claims.sub, email, email_verified: true });
    expect(await mailbox.locator("#status").textContent()).toBe("");

    // Refresh: a new token set from /token (the refresh token rotated), and userinfo still answers.
    const before = await mailbox.textContent("#tokens");
    await mailbox.click("#refresh");
    await expect.poll(() => mailbox.locator("#status").textContent()).toContain("Tokens refreshed");
    const after = await mailbox.textContent("#tokens");
    expect(after).not.toBe(before);
    expect(JSON.parse((await mailbox.textContent("#userinfo"))!)).toMatchObject({ sub: claims.sub, email });
    expect(await mailbox.locator("h1").textContent()).toBe(`Signed in as ${email}`);

    // A reload shows the same signed-in state (the tokens are kept in the tab), without redeeming anything again.
    await mailbox.reload();
    await expect.poll(() => mailbox.locator("h1").textContent()).toBe(`Signed in as ${email}`);

    // Logout (RP-initiated, with the ID token as hint): back on /demo, signed out, and the OP's session is gone.
    await Promise.all([mailbox.waitForURL((url) => url.pathname === "/demo"), mailbox.click("#sign-out")]);
    await expect.poll(() => mailbox.locator("#status").textContent()).toContain("You are signed out");
    expect(await mailbox.locator("h1").textContent()).toBe("Demo app");
    expect(await mailbox.isVisible("#sign-in")).toBe(true);
    const cookies = await context.cookies(server.issuer);
    expect(cookies.find((c) => c.name === "oidc_session")).toBeUndefined();
    await Promise.all([mailbox.waitForURL((url) => url.pathname === "/login"), mailbox.click("#sign-in")]);

    expect(tokenAnswers).toEqual([200, 200]);
    expect(problems).toEqual([]);
    await context.close();
  });

  it("an answer this browser's demo page did not ask for is not redeemed: the page says so and shows the code (the curl walkthrough)", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    const problems: string[] = [];
    watch(page, problems);
    let tokenCalls = 0;
    page.on("request", (request) => {
      if (new URL(request.url()).pathname === "/token") tokenCalls++;
    });
    await page.goto(`${server.issuer}/demo/callback?code=1.some-code&state=unknown&iss=${encodeURIComponent(server.issuer)}`);
    await expect.poll(() => page.locator("#status").textContent()).toContain("did not start this request");
    expect(await page.locator("#status").textContent()).toContain("1.some-code");
    expect(tokenCalls).toBe(0);
    expect(problems).toEqual([]);
    await context.close();
  });
});
