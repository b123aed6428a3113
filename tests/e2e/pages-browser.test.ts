import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DevServer, type RegisteredClient } from "./helpers/dev-server.ts";
import { newMailboxLink, seenLinks, uniqueEmail } from "./helpers/user-agent.ts";

/**
 * Every page of the OP in a real browser (Debian's Chromium, headless, playwright-core), at a phone's size (390×844)
 * and a desktop's (1280×800), light and dark: axe-core finds no violation on any of them (its source is injected
 * into the page, past the page's CSP, by the driver), the card keeps a margin on the phone, and every control is at
 * least 44 px high. Also: a page in Japanese through ui_locales=ja, the app's logo on the consent page (served by the
 * test: the browser reaches no network), the operator's brand, and dark mode as the browser renders it.
 * PAGES_SHOTS=/some/dir keeps a screenshot of each page there.
 */

const CHROMIUM = "/usr/bin/chromium";
const available = existsSync(CHROMIUM);
if (!available) console.warn(`pages-browser.test.ts skipped: ${CHROMIUM} is not installed (apt-get install chromium; .ci/run installs it)`);

const AXE_SOURCE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
const SHOTS = process.env.PAGES_SHOTS ?? null;
const SIZES = [
  { name: "phone", width: 390, height: 844 },
  { name: "desktop", width: 1280, height: 800 },
] as const;
const SCHEMES = ["light", "dark"] as const;

/** A 40×40 PNG (a filled square), the logos' stand-in. */
const LOGO_PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAACgAAAAoCAYAAACM/rhtAAAAOElEQVR42u3OIQ0AAAgAMDzxqEZfSMGGuLh/ZPV8FoKCgoKCgoKCgoKCgoKCgoKCgoKCgoKCgjcWHMoi9e4dDlUAAAAASUVORK5CYII=",
  "base64",
);
const BRAND_LOGO = "https://brand.example/logo.png";
const APP_LOGO = "https://logos.rp.example/app.png";

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: { target: string[]; failureSummary?: string }[];
}

describe.skipIf(!available)("every page, at phone and desktop sizes, light and dark, in headless Chromium", () => {
  let server: DevServer;
  let browser: Browser;
  let app: RegisteredClient;
  const callback = "https://rp.example/callback";

  beforeAll(async () => {
    [server, browser] = await Promise.all([
      DevServer.start({
        host: "localhost",
        // In an env file a bare # starts a comment: the colour is quoted, as .dev.vars needs it.
        vars: { BRAND_NAME: "Example Identity", BRAND_LOGO_URL: BRAND_LOGO, BRAND_COLOR: '"#0b5394"', BRAND_SUPPORT: "help@example.com", RATE_LIMIT_LOGIN: "1000" },
      }),
      chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      }),
    ]);
    app = await server.registerClient({
      client_name: "Photo Lab",
      redirect_uris: [callback],
      post_logout_redirect_uris: ["https://rp.example/"],
      token_endpoint_auth_method: "client_secret_basic",
      scope: "openid email profile offline_access",
      logo_uri: APP_LOGO,
      client_uri: "https://rp.example/",
      policy_uri: "https://rp.example/privacy",
      tos_uri: "https://rp.example/terms",
    });
    if (SHOTS) mkdirSync(SHOTS, { recursive: true });
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.dispose();
  });

  /** A browser context of one size and colour scheme; the logos and the app's callback are answered here, nothing leaves. */
  async function contextOf(size: (typeof SIZES)[number], scheme: (typeof SCHEMES)[number], locale = "en-US"): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport: { width: size.width, height: size.height }, colorScheme: scheme, locale });
    await context.route(/^https:\/\//, (route) => {
      const url = route.request().url();
      if (url === BRAND_LOGO || url === APP_LOGO) return route.fulfill({ status: 200, contentType: "image/png", body: LOGO_PNG });
      return route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><title>Relying party</title><h1>Back at the app</h1>" });
    });
    return context;
  }

  function authorizeUrl(extra: Record<string, string> = {}): string {
    const url = new URL(`${server.issuer}/authorize`);
    const params = { client_id: app.client_id, redirect_uri: callback, response_type: "code", scope: "openid email profile", state: "s", nonce: "n", ...extra };
    for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
    // A confidential client: PKCE is optional, and these pages do not need the code.
    return url.href;
  }

  /** axe-core on the page as it is; the source goes in through the driver (CDP), not as a script the CSP would refuse. */
  async function axe(page: Page): Promise<AxeViolation[]> {
    await page.evaluate(AXE_SOURCE);
    const result = (await page.evaluate(async () => {
      const run = (globalThis as unknown as { axe: { run(context: Document, options: object): Promise<{ violations: AxeViolation[] }> } }).axe.run;
      return run(document, { resultTypes: ["violations"] });
    })) as { violations: AxeViolation[] };
    return result.violations;
  }

  /** The layout rules of every page: the card keeps a margin on a phone; every control is ≥ 44 px high. */
  async function layoutProblems(page: Page, size: (typeof SIZES)[number]): Promise<string[]> {
    return page.evaluate((width) => {
      const problems: string[] = [];
      const main = document.querySelector("main")!.getBoundingClientRect();
      if (main.left < 8 || width - main.right < 8) problems.push(`the card touches the edge (${main.left}..${main.right} of ${width})`);
      if (document.documentElement.scrollWidth > width) problems.push(`the page scrolls sideways (${document.documentElement.scrollWidth} > ${width})`);
      for (const element of document.querySelectorAll<HTMLElement>("button, a.button, input:not([type=hidden]), summary")) {
        const box = element.getBoundingClientRect();
        if (box.width === 0 && box.height === 0) continue; // hidden until /passkeys.js shows it
        if (box.height < 44) problems.push(`${element.tagName.toLowerCase()} "${element.textContent?.trim().slice(0, 30)}" is ${box.height}px high`);
      }
      return problems;
    }, size.width);
  }

  const checked: string[] = [];

  /** Checks the page the browser shows now, under `name`: axe, the layout, and (with PAGES_SHOTS) a screenshot. */
  async function check(page: Page, name: string, size: (typeof SIZES)[number], scheme: string): Promise<void> {
    await page.waitForLoadState("load");
    const label = `${name} (${size.name}, ${scheme})`;
    expect(await axe(page), label).toEqual([]);
    expect(await layoutProblems(page, size), label).toEqual([]);
    if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `${name}-${size.name}-${scheme}.png`), fullPage: true });
    checked.push(label);
  }

  for (const size of SIZES) {
    for (const scheme of SCHEMES) {
      it(`${size.name}, ${scheme}: sign-in, check your email, the link, the passkey offer, consent, account, logout, errors, the mailbox and the demo pass axe-core`, async () => {
        const context = await contextOf(size, scheme);
        const page = await context.newPage();
        const failures: string[] = [];
        page.on("pageerror", (error) => failures.push(`page error: ${error.message}`));
        page.on("console", (message) => {
          // Error pages answer 4xx by design. The mailbox shows the email's HTML in a sandboxed srcdoc frame, whose
          // requests the driver does not route: its logo finds no network here (the pages' logos are checked below).
          if (message.type() !== "error" || message.text().includes("status of 4") || message.location().url === BRAND_LOGO) return;
          failures.push(`console: ${message.text()} at ${message.location().url}`);
        });

        await page.goto(authorizeUrl());
        await expect.poll(() => page.locator("h1").textContent()).toBe("Sign in");
        await check(page, "sign-in", size, scheme);

        const email = uniqueEmail(`pages-${size.name}-${scheme}`);
        await page.fill('input[name="email"]', email);
        await Promise.all([page.waitForURL((u) => u.pathname === "/login"), page.click('form[action="/login"] button[type="submit"]')]);
        expect(await page.locator("h1").textContent()).toBe("Check your email");
        await check(page, "check-email", size, scheme);

        const link = await newMailboxLink(server.issuer, email, seenLinks);
        await page.goto(`${server.issuer}/dev/mailbox?to=${encodeURIComponent(email)}`);
        await check(page, "dev-mailbox", size, scheme);
        // Both parts: the text, and the HTML (in a sandboxed frame) with the brand and the link as a button.
        expect(await page.locator("pre").textContent()).toContain(link);
        const htmlPart = page.frames().find((f) => f !== page.mainFrame())!;
        expect(await htmlPart.locator(`a[href="${link}"]`).textContent()).toBe("Sign in");
        expect(await htmlPart.locator("body").textContent()).toContain("Example Identity");
        if (SHOTS) {
          await page.locator("iframe").scrollIntoViewIfNeeded();
          await page.locator("iframe").screenshot({ path: path.join(SHOTS, `email-html-part-${size.name}-${scheme}.png`) });
        }

        await page.goto(link);
        expect(await page.locator("h1").textContent()).toBe("Finish signing in");
        await check(page, "confirm-link", size, scheme);
        await Promise.all([page.waitForURL((u) => u.pathname === "/passkeys/offer"), page.click('button[type="submit"]')]);
        await expect.poll(() => page.locator('form[data-passkey="register"]').isVisible()).toBe(true);
        await check(page, "passkey-offer", size, scheme);
        await Promise.all([page.waitForURL((u) => u.pathname === "/consent"), page.click('button[value="later"]')]);

        expect(await page.locator("main").textContent()).toContain("Photo Lab");
        await check(page, "consent", size, scheme);
        // Allowed, the app is listed on the account page with its "Remove access" (checked there).
        // The driver's routes do not see a redirect's target (the app's callback has no DNS here): the consent's answer
        // is read without following it, and the browser shows a stand-in for the app.
        let backAtTheApp = "";
        await page.route(`${server.issuer}/consent`, async (route) => {
          if (route.request().method() !== "POST") return route.continue();
          backAtTheApp = (await route.fetch({ maxRedirects: 0 })).headers()["location"] ?? "";
          await route.fulfill({ status: 200, contentType: "text/html", body: "<!doctype html><html lang=en><title>Relying party</title><h1>Back at the app</h1>" });
        });
        await page.click('button[value="allow"]');
        await expect.poll(() => page.locator("h1").textContent()).toBe("Back at the app");
        expect(backAtTheApp.startsWith(`${callback}?code=`)).toBe(true);
        await page.unroute(`${server.issuer}/consent`);

        // The link again, now that it made a session: used.
        await page.goto(link);
        expect(await page.locator("h1").textContent()).toBe("This link has already been used");
        await check(page, "error-link-used", size, scheme);

        await page.goto(`${server.issuer}/account`);
        expect(await page.locator("h1").textContent()).toBe("Your account");
        expect(await page.locator("li.consent").textContent()).toContain("Photo Lab");
        await check(page, "account", size, scheme);

        await page.goto(`${server.issuer}/logout`);
        expect(await page.locator("h1").textContent()).toBe("Sign out?");
        await check(page, "logout-confirm", size, scheme);
        await page.click('button[value="no"]');
        await page.waitForLoadState();
        expect(await page.locator("h1").textContent()).toBe("Still signed in");
        await check(page, "still-signed-in", size, scheme);
        await page.goto(`${server.issuer}/logout`);
        await page.click('button[value="yes"]');
        await page.waitForLoadState();
        expect(await page.locator("h1").textContent()).toBe("Signed out");
        await check(page, "signed-out", size, scheme);

        // Signed in again without an app: "You are signed in" (the passkey offer was declined for this user).
        await page.goto(`${server.issuer}/login`);
        await page.fill('input[name="email"]', email);
        await Promise.all([page.waitForURL((u) => u.pathname === "/login"), page.click('form[action="/login"] button[type="submit"]')]);
        await page.goto(await newMailboxLink(server.issuer, email, seenLinks));
        await Promise.all([page.waitForURL((u) => u.pathname === "/login/email"), page.click('button[type="submit"]')]);
        expect(await page.locator("h1").textContent()).toBe("You are signed in");
        await check(page, "signed-in", size, scheme);
        await page.goto(`${server.issuer}/logout`);
        await page.click('button[value="everywhere"]');
        await page.waitForLoadState();
        expect(await page.locator("h1").textContent()).toBe("Signed out everywhere");
        await check(page, "signed-out-everywhere", size, scheme);
        await page.goto(`${server.issuer}/logout`);
        expect(await page.locator("h1").textContent()).toBe("You are not signed in");
        await check(page, "not-signed-in", size, scheme);
        await page.goto(`${server.issuer}/account`);
        await check(page, "account-signed-out", size, scheme);

        await page.goto(authorizeUrl({ redirect_uri: "https://evil.example/cb" }));
        expect(await page.locator("h1").textContent()).toBe("This app's sign-in request is not valid");
        await page.click("summary");
        await check(page, "error-invalid-request", size, scheme);
        await page.goto(`${server.issuer}/no/such/page`);
        expect(await page.locator("h1").textContent()).toBe("Page not found");
        await check(page, "error-not-found", size, scheme);

        await page.goto(`${server.issuer}/demo`);
        await check(page, "demo", size, scheme);

        expect(failures).toEqual([]);
        await context.close();
      });
    }
  }

  for (const [size, scheme] of [[SIZES[0], "light"], [SIZES[1], "dark"]] as const) {
  it(`ui_locales=ja (${size.name}, ${scheme}): the sign-in page, its email, the offer and consent are Japanese, and they pass axe-core`, async () => {
    const context = await contextOf(size, scheme, "en-US");
    const page = await context.newPage();
    await page.goto(authorizeUrl({ ui_locales: "ja" }));
    expect(await page.getAttribute("html", "lang")).toBe("ja");
    expect(await page.locator("h1").textContent()).toBe("ログイン");
    expect(await page.locator('form[action="/login"] button').textContent()).toBe("ログイン用リンクをメールで受け取る");
    await check(page, "ja-sign-in", size, scheme);
    const email = uniqueEmail(`pages-ja-${size.name}`);
    await page.fill('input[name="email"]', email);
    await Promise.all([page.waitForURL((u) => u.pathname === "/login"), page.click('form[action="/login"] button[type="submit"]')]);
    expect(await page.locator("h1").textContent()).toBe("メールを確認してください");
    await check(page, "ja-check-email", size, scheme);
    await page.goto(await newMailboxLink(server.issuer, email, seenLinks));
    expect(await page.locator("h1").textContent()).toBe("ログインを完了する");
    await Promise.all([page.waitForURL((u) => u.pathname === "/passkeys/offer"), page.click('button[type="submit"]')]);
    expect(await page.locator("h1").textContent()).toBe("次回からもっと速くログイン");
    await check(page, "ja-passkey-offer", size, scheme);
    await Promise.all([page.waitForURL((u) => u.pathname === "/consent"), page.click('button[value="later"]')]);
    expect(await page.locator("h1").textContent()).toBe("Photo Lab があなたのアカウントへのアクセスを求めています");
    expect(await page.locator("button[value=allow]").textContent()).toBe("許可");
    await check(page, "ja-consent", size, scheme);
    await context.close();
  });
  }

  it("the consent page shows the app's logo (loaded under the page's CSP) and links, and the operator's brand", async () => {
    const context = await contextOf(SIZES[1], "light");
    const page = await context.newPage();
    const blocked: string[] = [];
    page.on("console", (message) => {
      if (/Content Security Policy/i.test(message.text())) blocked.push(message.text());
    });
    await page.goto(authorizeUrl({ prompt: "consent" }));
    const email = uniqueEmail("pages-logo");
    await page.fill('input[name="email"]', email);
    await Promise.all([page.waitForURL((u) => u.pathname === "/login"), page.click('form[action="/login"] button[type="submit"]')]);
    await page.goto(await newMailboxLink(server.issuer, email, seenLinks));
    await Promise.all([page.waitForURL((u) => u.pathname === "/passkeys/offer"), page.click('button[type="submit"]')]);
    await Promise.all([page.waitForURL((u) => u.pathname === "/consent"), page.click('button[value="later"]')]);
    const logo = page.locator(`.app img[src="${APP_LOGO}"]`);
    await expect.poll(() => logo.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(40);
    const brand = page.locator(`header.brand img[src="${BRAND_LOGO}"]`);
    await expect.poll(() => brand.evaluate((img: HTMLImageElement) => img.complete && img.naturalWidth)).toBe(40);
    expect(await page.locator("header.brand").textContent()).toBe("Example Identity");
    expect(await page.locator('a[href="https://rp.example/privacy"]').textContent()).toBe("Privacy policy");
    expect(await page.locator('a[href="https://rp.example/terms"]').textContent()).toBe("Terms of service");
    expect(await page.locator('footer a[href="mailto:help@example.com"]').textContent()).toBe("help@example.com");
    expect(blocked).toEqual([]);
    await context.close();
  });

  it("dark mode: the browser renders the dark palette (page, card, text, inputs), light mode the light one", async () => {
    const colours: Record<string, Record<string, string>> = {};
    for (const scheme of SCHEMES) {
      const context = await contextOf(SIZES[1], scheme);
      const page = await context.newPage();
      await page.goto(`${server.issuer}/login`);
      colours[scheme] = await page.evaluate(() => {
        const style = (selector: string) => getComputedStyle(document.querySelector(selector)!);
        return {
          page: style("body").backgroundColor,
          card: style("main").backgroundColor,
          text: style("main").color,
          input: style("input[type=email]").borderColor,
          button: style('form[action="/login"] button').backgroundColor,
        };
      });
      if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `scheme-${scheme}.png`) });
      await context.close();
    }
    expect(colours.light).toMatchObject({ page: "rgb(244, 245, 247)", card: "rgb(255, 255, 255)", text: "rgb(29, 31, 35)", input: "rgb(107, 114, 128)" });
    expect(colours.dark).toMatchObject({ page: "rgb(17, 19, 22)", card: "rgb(28, 31, 36)", text: "rgb(230, 232, 235)", input: "rgb(139, 148, 163)" });
    // The brand colour stays the buttons' colour in both.
    expect(colours.light!.button).toBe("rgb(11, 83, 148)");
    expect(colours.dark!.button).toBe("rgb(11, 83, 148)");
  });

  it("checked every page at both sizes and in both schemes", () => {
    for (const size of SIZES) for (const scheme of SCHEMES) expect(checked.filter((c) => c.endsWith(`(${size.name}, ${scheme})`)).length, `${size.name} ${scheme}`).toBeGreaterThanOrEqual(18);
  });
});
