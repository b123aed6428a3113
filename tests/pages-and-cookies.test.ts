import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { serializeCookie } from "../src/routes/support/cookies";
import { html, trustedHtml } from "../src/ui/html";
import { Browser, ORIGIN, formFields, requestLink, uniqueEmail } from "./helpers/front-channel";

/** The page and cookie rules every browser-facing endpoint relies on (one template, one cookie helper, one error page). */

describe("the html template", () => {
  it("escapes every interpolated value, in text and in quoted attributes", () => {
    const hostile = `"><script>alert('x')</script>&`;
    const page = html`<p title="${hostile}">${hostile}</p>`;
    expect(page.value).toBe(`<p title="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;">&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;</p>`);
  });

  it("keeps its own fragments and trusted markup as they are, joins arrays, and renders null, undefined and false as nothing", () => {
    const items = ["a<b", "c"].map((s) => html`<li>${s}</li>`);
    const page = html`<ul>${items}</ul>${null}${undefined}${false}${trustedHtml("<hr>")}${0}`;
    expect(page.value).toBe("<ul><li>a&lt;b</li><li>c</li></ul><hr>0");
  });
});

describe("cookies", () => {
  const https = { path: "/", secure: true, httpOnly: true, sameSite: "Lax" as const, maxAge: null };

  it("writes a __Host- cookie only with Secure, Path=/ and no Domain (RFC 6265bis §4.1.3.2)", () => {
    expect(serializeCookie("__Host-s", "v", https)).toBe("__Host-s=v; Path=/; HttpOnly; SameSite=Lax; Secure");
    expect(() => serializeCookie("__Host-s", "v", { ...https, secure: false })).toThrow(/Secure/);
    expect(() => serializeCookie("__Host-s", "v", { ...https, path: "/login" })).toThrow(/Path=\//);
    expect(() => serializeCookie("__Host-s", "v", { ...https, domain: "op.example" })).toThrow(/Domain/);
    expect(() => serializeCookie("__Secure-s", "v", { ...https, secure: false })).toThrow(/Secure/);
  });

  it("refuses names and values a cookie cannot carry, so nothing from a request can split the header", () => {
    expect(() => serializeCookie("a b", "v", https)).toThrow();
    expect(() => serializeCookie("s", "v; Domain=evil.example", https)).toThrow();
    expect(() => serializeCookie("s", "v\r\nSet-Cookie: x=y", https)).toThrow();
  });
});

describe("form posts", () => {
  async function signInForm(browser: Browser): Promise<Record<string, string>> {
    const page = await browser.get("/login");
    expect(page.status).toBe(200);
    return { ...formFields(await page.text()), email: uniqueEmail("origin") };
  }

  it("are refused, with nothing sent, when the browser says they come from another site (Sec-Fetch-Site) even with a valid CSRF token", async () => {
    for (const site of ["cross-site", "same-site"]) {
      const browser = new Browser();
      const fields = await signInForm(browser);
      const response = await browser.fetch("/login", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": site },
        body: new URLSearchParams(fields).toString(),
      });
      expect(response.status, site).toBe(403);
      expect(response.headers.get("content-type")).toContain("text/html");
      const mail = await SELF.fetch(`${ORIGIN}/dev/mailbox?to=${encodeURIComponent(fields.email!)}`);
      expect(await mail.json(), site).toEqual([]);
    }
  });

  it("are refused when an old browser names another origin, and accepted from our own pages (same-origin, or Origin null under no-referrer)", async () => {
    const foreign = new Browser();
    const refused = await foreign.fetch("/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: "https://attacker.example" },
      body: new URLSearchParams(await signInForm(foreign)).toString(),
    });
    expect(refused.status).toBe(403);

    const ownPages: Record<string, string>[] = [{ "sec-fetch-site": "same-origin", origin: "null" }, { origin: ORIGIN }, { origin: "null" }];
    for (const headers of ownPages) {
      const browser = new Browser();
      const fields = await signInForm(browser);
      const response = await browser.fetch("/login", {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
        body: new URLSearchParams(fields).toString(),
      });
      expect(response.status, JSON.stringify(headers)).toBe(200);
    }
  });

  it("the same check guards the link confirmation: a cross-site POST does not sign anyone in", async () => {
    const browser = new Browser();
    const email = uniqueEmail("origin-link");
    const confirm = await browser.get(await requestLink(browser, "/login", email));
    const fields = formFields(await confirm.text());
    const response = await browser.fetch("/login/email", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", "sec-fetch-site": "cross-site" },
      body: new URLSearchParams(fields).toString(),
    });
    expect(response.status).toBe(403);
    expect(browser.cookies.has("oidc_session")).toBe(false);
  });
});

describe("unknown paths", () => {
  it("answer a browser with an HTML page and an API caller with JSON, both 404", async () => {
    const page = await SELF.fetch(`${ORIGIN}/no/such/page`, { headers: { accept: "text/html,application/xhtml+xml" } });
    expect(page.status).toBe(404);
    expect(page.headers.get("content-type")).toContain("text/html");
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(await page.text()).toContain("Page not found");

    const api = await SELF.fetch(`${ORIGIN}/no/such/page`, { headers: { accept: "application/json" } });
    expect(api.status).toBe(404);
    expect(await api.json()).toEqual({ error: "not_found", error_description: "There is nothing at this address." });
  });
});
