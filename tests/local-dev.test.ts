import { SELF, createExecutionContext, env } from "cloudflare:test";
import worker from "../src/index";
import { beforeAll, describe, expect, it } from "vitest";
import { getClient, insertClient } from "../src/db/clients";
import { storeDevMessage } from "../src/db/dev-mailbox";
import type { Env } from "../src/env";
import { DEMO_CLIENT_ID, demo, demoScript } from "../src/routes/demo";
import { DEMO_SCRIPT_VERSION } from "../src/ui/demo";
import { CLIENT_DEFAULTS } from "./helpers/clients";
import { ORIGIN, uniqueEmail } from "./helpers/front-channel";

/**
 * A deployed OP: ISSUER set to its origin (with ISSUER unset, a host that is not loopback is refused outright, see
 * tests/config-guard.test.ts), whatever host the request names.
 */
const DEPLOYED = { ...env, ISSUER: "https://op.example" } as Env;
async function deployedFetch(url: string, init?: RequestInit): Promise<Response> {
  return await worker.fetch(new Request(url, init) as Parameters<typeof worker.fetch>[0], DEPLOYED, createExecutionContext());
}

/**
 * What a developer meets first: the demo app at /demo (a public PKCE client, loopback issuers only), the dev mailbox
 * as a page for a person and JSON for scripts, the icon every browser asks for, and HTML (never JSON) for a person
 * who navigates to an API endpoint. The flow in a real browser is tests/e2e/demo.test.ts.
 */

const HTML = { accept: "text/html,application/xhtml+xml" };
const NAVIGATION = { ...HTML, "sec-fetch-mode": "navigate" };

describe("the demo app", () => {
  beforeAll(async () => {
    if ((await getClient(env.DB, DEMO_CLIENT_ID)) !== null) return;
    await insertClient(
      env.DB,
      DEMO_CLIENT_ID,
      {
        ...CLIENT_DEFAULTS,
        client_name: "Demo app",
        redirect_uris: [`${ORIGIN}/demo/callback`],
        post_logout_redirect_uris: [`${ORIGIN}/demo`],
        token_endpoint_auth_method: "none",
        scope: "openid profile email offline_access",
      },
      null,
      { actor: "test", data: {} },
    );
  });

  it("on a loopback issuer is a page carrying the public client's id, the issuer and the scope, under a CSP that lets its own script call this origin only", async () => {
    const response = await SELF.fetch(`${ORIGIN}/demo`, { headers: NAVIGATION });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toContain("text/html");
    const csp = response.headers.get("content-security-policy")!;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).not.toContain("unsafe-eval");
    expect(csp).not.toMatch(/script-src[^;]*unsafe-inline/);
    const page = await response.text();
    expect(page).toContain(`data-client-id="demo" data-issuer="${ORIGIN}" data-scope="openid profile email offline_access"`);
    expect(page).toContain(`<script src="/demo/app.js?v=${DEMO_SCRIPT_VERSION}"></script>`);
    // No inline script: the only <script> is the external one.
    expect(page.match(/<script\b/g)).toHaveLength(1);
    expect(page).toContain('id="sign-in"');
    // The callback is the same page (the script redeems the code).
    const callback = await SELF.fetch(`${ORIGIN}/demo/callback?code=x&state=y`, { headers: NAVIGATION });
    expect(callback.status).toBe(200);
    expect(await callback.text()).toContain('data-client-id="demo"');
  });

  it("serves its script as JavaScript, cacheable for a year, at a URL that changes with it", async () => {
    const response = await SELF.fetch(`${ORIGIN}/demo/app.js?v=${DEMO_SCRIPT_VERSION}`);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(response.headers.get("cache-control")).toBe("public, max-age=31536000");
    expect(response.headers.get("x-content-type-options")).toBe("nosniff");
    const script = await response.text();
    expect(script).toContain('fetch("/token"');
    expect(script).toContain('code_challenge_method: "S256"');
    // Text only: nothing from the OP or the tokens is ever parsed as markup.
    expect(script).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/);
  });

  it("says what is missing when the demo client is not registered for the address it is opened on", async () => {
    const response = await SELF.fetch("http://127.0.0.1:8799/demo", { headers: NAVIGATION });
    expect(response.status).toBe(200);
    const page = await response.text();
    expect(page).toContain("The demo client is not registered for http://127.0.0.1:8799.");
    expect(page).toContain("npm start");
    expect(page).not.toContain("<script");
  });

  it("off a loopback issuer does not exist: /demo, /demo/callback and /demo/app.js are the 404 of any unknown path", async () => {
    for (const path of ["/demo", "/demo/callback?code=x&state=y", "/demo/app.js"]) {
      for (const origin of ["https://op.example", "http://localhost.example", "http://127.0.0.2"]) {
        const page = await deployedFetch(`${origin}${path}`, { headers: NAVIGATION });
        expect(page.status, `${origin}${path}`).toBe(404);
        expect(await page.text()).toContain("Page not found");
        const api = await deployedFetch(`${origin}${path}`);
        expect(api.status).toBe(404);
        expect(await api.json()).toEqual({ error: "not_found", error_description: "There is nothing at this address." });
      }
    }
    // ISSUER configured to a real origin: 404 whatever the Host header says.
    const deployed = { ...env, ISSUER: "https://op.example" } as Env;
    expect((await demo(new Request(`${ORIGIN}/demo`), deployed)).status).toBe(404);
    expect(demoScript(new Request(`${ORIGIN}/demo/app.js`), deployed).status).toBe(404);
  });
});

describe("the dev mailbox", () => {
  it("for a browser without an address is a form asking for one; for a script it stays a JSON invalid_request", async () => {
    const page = await SELF.fetch(`${ORIGIN}/dev/mailbox`, { headers: NAVIGATION });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const html = await page.text();
    expect(html).toContain('<form method="get" action="/dev/mailbox">');
    expect(html).toContain('name="to"');

    const api = await SELF.fetch(`${ORIGIN}/dev/mailbox`);
    expect(api.status).toBe(400);
    expect(await api.json()).toEqual({ error: "invalid_request", error_description: "to: an email address is required" });
  });

  it("lists an address's messages for a person, newest first, with the link clickable and everything escaped; JSON is unchanged", async () => {
    const to = uniqueEmail("mailbox");
    const older = { to, from: null, subject: "Your sign-in link", text: "first <b>one</b>", html: null, link: `${ORIGIN}/login/email?token=a.1&x=<y>`, sentAt: Date.now() - 60_000 };
    const newer = { to, from: null, subject: "Your sign-in link", text: "second", html: null, link: `${ORIGIN}/login/email?token=b.2`, sentAt: Date.now() };
    await storeDevMessage(env.DB, older);
    await storeDevMessage(env.DB, newer);

    const page = await SELF.fetch(`${ORIGIN}/dev/mailbox?to=${encodeURIComponent(to.toUpperCase())}`, { headers: HTML });
    expect(page.status).toBe(200);
    const html = await page.text();
    expect(html).toContain(`2 messages for <strong>${to.toUpperCase()}</strong>`);
    expect(html).toContain(`<a class="button" href="${ORIGIN}/login/email?token=b.2">Open the sign-in link</a>`);
    expect(html).toContain(`href="${ORIGIN}/login/email?token=a.1&amp;x=&lt;y&gt;"`);
    expect(html).toContain("first &lt;b&gt;one&lt;/b&gt;");
    expect(html.indexOf("token=b.2")).toBeLessThan(html.indexOf("token=a.1"));

    const json = await SELF.fetch(`${ORIGIN}/dev/mailbox?to=${encodeURIComponent(to)}`);
    expect(json.headers.get("content-type")).toBe("application/json");
    expect(await json.json()).toEqual([newer, older]);

    const none = await SELF.fetch(`${ORIGIN}/dev/mailbox?to=nobody-${encodeURIComponent(to)}`, { headers: HTML });
    expect(await none.text()).toContain("No messages for");
  });

  it("off a loopback issuer is a 404 page for a browser too", async () => {
    const page = await deployedFetch("https://op.example/dev/mailbox", { headers: NAVIGATION });
    expect(page.status).toBe(404);
    expect(await page.text()).toContain("Page not found");
  });
});

describe("what a browser gets", () => {
  it("/favicon.ico: an icon, cacheable, on any issuer", async () => {
    for (const fetchIcon of [() => SELF.fetch(`${ORIGIN}/favicon.ico`), () => deployedFetch("https://op.example/favicon.ico")]) {
      const response = await fetchIcon();
      expect(response.status).toBe(200);
      expect(response.headers.get("content-type")).toBe("image/x-icon");
      expect(response.headers.get("cache-control")).toBe("public, max-age=86400");
      const bytes = new Uint8Array(await response.arrayBuffer());
      // ICONDIR: reserved 0, type 1 (icon), one image; the image is a PNG.
      expect([...bytes.slice(0, 6)]).toEqual([0, 0, 1, 0, 1, 0]);
      expect([...bytes.slice(22, 26)]).toEqual([0x89, 0x50, 0x4e, 0x47]);
    }
  });

  it("a person who navigates to an API endpoint gets a page; API callers keep their JSON whatever they accept", async () => {
    // GET /userinfo without a token (401 for an API caller; a page has no challenge to go with it), GET of POST-only endpoints (405).
    for (const [path, status] of [["/userinfo", 400], ["/token", 405], ["/introspect", 405], ["/revoke", 405]] as const) {
      const page = await SELF.fetch(`${ORIGIN}${path}`, { headers: NAVIGATION });
      expect(page.status, path).toBe(status);
      expect(page.headers.get("content-type"), path).toContain("text/html");
    }
    const post = await SELF.fetch(`${ORIGIN}/token`, { method: "POST", headers: { ...NAVIGATION, "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=nope" });
    expect(post.headers.get("content-type")).toContain("text/html");
    expect(await post.text()).toContain("unsupported_grant_type");

    // An HTTP library that sends Accept: text/html by default (Java's HttpURLConnection does) still gets JSON.
    const api = await SELF.fetch(`${ORIGIN}/token`, { method: "POST", headers: { accept: "text/html, image/gif, */*; q=.2", "content-type": "application/x-www-form-urlencoded" }, body: "grant_type=nope" });
    expect(api.status).toBe(400);
    expect(await api.json()).toMatchObject({ error: "unsupported_grant_type" });
    const userinfo = await SELF.fetch(`${ORIGIN}/userinfo`);
    expect(userinfo.status).toBe(401);
    expect(userinfo.headers.get("www-authenticate")).toContain("Bearer");
  });
});
