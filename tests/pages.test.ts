import { SELF, createExecutionContext, env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { readSettings } from "../src/config";
import type { Env } from "../src/env";
import worker from "../src/index";
import { providerMetadata } from "../src/routes/discovery";
import { CATALOGUE_ENTRIES, LANGUAGES, chooseLanguage } from "../src/ui/i18n";
import { en } from "../src/ui/i18n/en";
import { Browser, ORIGIN, authorizeUrl, formFields, mailbox, makeClient, pkcePair, requestLink, signIn, uniqueEmail, followLink, followLocal } from "./helpers/front-channel";

/**
 * The pages (issue 13, items 7–11): one catalogue per language and the choice among them, the operator's brand, the
 * app's own links, wording a person can act on, and the sign-in email's two parts.
 */

afterEach(() => vi.restoreAllMocks());

const PLACEHOLDERS = /\{(\w+)\}/g;
const placeholders = (text: string) => [...text.matchAll(PLACEHOLDERS)].map((m) => m[1]).sort();

/** The Worker with some settings changed (settings are read per env object). */
function withSettings(settings: Record<string, string>) {
  const changed = { ...env, ...settings } as Env;
  return async (path: string, init: RequestInit = {}): Promise<Response> =>
    worker.fetch(new Request(new URL(path, ORIGIN), { redirect: "manual", ...init }) as Parameters<typeof worker.fetch>[0], changed, createExecutionContext());
}

async function startAt(browser: Browser, clientId: string, extra: Record<string, string> = {}): Promise<string> {
  const { challenge } = await pkcePair();
  const response = await browser.get(
    authorizeUrl({
      response_type: "code",
      client_id: clientId,
      redirect_uri: "https://rp.example/callback",
      scope: "openid email",
      code_challenge: challenge,
      code_challenge_method: "S256",
      ...extra,
    }),
  );
  expect(response.status).toBe(303);
  return response.headers.get("location")!;
}

describe("the message catalogues", () => {
  it("every key of every catalogue is in every other, none is empty, and each keeps the same {placeholders}", () => {
    expect(LANGUAGES).toEqual(["en", "ja"]);
    const keys = Object.keys(en).sort();
    for (const [lang, catalogue] of CATALOGUE_ENTRIES) {
      expect(Object.keys(catalogue).sort(), lang).toEqual(keys);
      for (const key of keys) {
        const text = catalogue[key as keyof typeof en];
        expect(text.trim(), `${lang} ${key}`).not.toBe("");
        expect(placeholders(text), `${lang} ${key}`).toEqual(placeholders(en[key as keyof typeof en]));
      }
      expect(catalogue["lang.tag"]).toBe(lang);
    }
  });

  it("the Japanese catalogue is Japanese: no message is left in English (names such as USB and NFC aside)", () => {
    const ja = CATALOGUE_ENTRIES.find(([lang]) => lang === "ja")![1];
    const untranslated = Object.entries(ja).filter(([key, text]) => text === en[key as keyof typeof en] && !/^(lang\.tag|via\.(usb|nfc|ble)|app\.links)$/.test(key));
    expect(untranslated).toEqual([]);
  });

  it("DEFAULT_LANGUAGE allows exactly the languages there are catalogues for", () => {
    for (const lang of LANGUAGES) expect(readSettings({ DEFAULT_LANGUAGE: lang }).problems).toEqual([]);
    expect(readSettings({ DEFAULT_LANGUAGE: "fr" }).problems.map((p) => p.message)).toEqual(["DEFAULT_LANGUAGE=fr: must be en or ja"]);
  });
});

describe("choosing the language", () => {
  it("ui_locales first (in its order, by primary subtag), then Accept-Language by weight, then the default", () => {
    expect(chooseLanguage("ja", "en", "en")).toBe("ja");
    expect(chooseLanguage("fr-CA ja-JP en", "en", "en")).toBe("ja");
    expect(chooseLanguage("fr de", "ja,en;q=0.5", "en")).toBe("ja");
    expect(chooseLanguage(null, "fr-CH, fr;q=0.9, en;q=0.8, ja;q=0.9", "en")).toBe("ja");
    expect(chooseLanguage(null, "ja;q=0, en;q=0.1", "ja")).toBe("en");
    expect(chooseLanguage(null, "*", "ja")).toBe("ja");
    expect(chooseLanguage("", "", "ja")).toBe("ja");
    expect(chooseLanguage(null, "JA-jp", "en")).toBe("ja");
    expect(chooseLanguage("x".repeat(300), ";;;,,q=", "en")).toBe("en");
  });

  it("ui_locales=ja on /authorize is carried with the pending request: the sign-in page, the email, the link page and consent are Japanese", async () => {
    const client = await makeClient();
    const browser = new Browser();
    const login = await startAt(browser, client.client_id, { ui_locales: "ja-JP en" });
    const page = await browser.get(login);
    const html = await page.text();
    expect(html).toContain('<html lang="ja">');
    expect(html).toContain("<h1>ログイン</h1>");
    expect(html).toContain("ログイン用リンクをメールで受け取る");

    const email = uniqueEmail("ja");
    const sent = await browser.post("/login", { ...formFields(html), email });
    const checkEmail = await sent.text();
    expect(checkEmail).toContain("メールを確認してください");
    expect(checkEmail).toContain("15 分");
    const [message] = await mailbox(email);
    expect(message!.subject).toBe("ログイン用リンク");
    expect(message!.text).toContain("ログインしてください");
    expect(message!.html).toContain('lang="ja"');

    // The link, opened on a browser that prefers English, speaks the language of its email.
    const url = new URL(message!.link!);
    const confirm = await browser.fetch(`${url.pathname}${url.search}`, { headers: { "accept-language": "en" } });
    const confirmHtml = await confirm.text();
    expect(confirmHtml).toContain("ログインを完了する");
    const consent = await followLocal(browser, await browser.post("/login/email", formFields(confirmHtml)));
    expect(await consent.text()).toContain("があなたのアカウントへのアクセスを求めています");
  });

  it("without ui_locales the browser's Accept-Language decides, then DEFAULT_LANGUAGE", async () => {
    const ja = await SELF.fetch(`${ORIGIN}/login`, { headers: { "accept-language": "ja,en-US;q=0.9" } });
    expect(await ja.text()).toContain('<html lang="ja">');
    const en = await SELF.fetch(`${ORIGIN}/login`, { headers: { "accept-language": "fr, en-GB;q=0.5" } });
    expect(await en.text()).toContain('<html lang="en">');
    const japaneseOp = withSettings({ DEFAULT_LANGUAGE: "ja" });
    expect(await (await japaneseOp("/login", { headers: { "accept-language": "fr" } })).text()).toContain("<h1>ログイン</h1>");
    expect(await (await japaneseOp("/login", { headers: { "accept-language": "en" } })).text()).toContain("<h1>Sign in</h1>");
  });

  it("error pages speak it too, with the OAuth code under the technical details; JSON errors stay English", async () => {
    const page = await SELF.fetch(`${ORIGIN}/authorize?client_id=nobody&ui_locales=ja`, { headers: { accept: "text/html" } });
    expect(page.status).toBe(400);
    const html = await page.text();
    expect(html).toContain("このアプリのログイン要求は無効です");
    expect(html).toContain("<summary>技術的な詳細</summary>");
    expect(html).toContain("<code>invalid_client</code>");
    const notFound = await SELF.fetch(`${ORIGIN}/nothing-here`, { headers: { accept: "text/html", "accept-language": "ja" } });
    expect(await notFound.text()).toContain("ページが見つかりません");
    const api = await SELF.fetch(`${ORIGIN}/nothing-here`, { headers: { "accept-language": "ja" } });
    expect(await api.json()).toEqual({ error: "not_found", error_description: "There is nothing at this address." });
  });

  it("/logout honours ui_locales (RP-Initiated Logout §2), and says 'not signed in' when there was no session", async () => {
    const page = await SELF.fetch(`${ORIGIN}/logout?ui_locales=ja`);
    const html = await page.text();
    expect(html).toContain('<html lang="ja">');
    expect(html).toContain("<h1>ログインしていません</h1>");
    const english = await (await SELF.fetch(`${ORIGIN}/logout`)).text();
    expect(english).toContain("<h1>You are not signed in</h1>");
    expect(english).not.toContain("Signed out");
  });

  it("discovery advertises the languages of the pages, and no claims_locales_supported (claims have no language variants)", async () => {
    const metadata = (await (await SELF.fetch(`${ORIGIN}/.well-known/openid-configuration`)).json()) as Record<string, unknown>;
    expect(metadata.ui_locales_supported).toEqual(["en", "ja"]);
    expect(metadata).not.toHaveProperty("claims_locales_supported");
    expect(providerMetadata("https://op.example").ui_locales_supported).toEqual(LANGUAGES);
  });
});

describe("the operator's brand", () => {
  const BRAND = {
    BRAND_NAME: "Example <Identity>",
    BRAND_LOGO_URL: "https://cdn.example.com/logo.png",
    BRAND_COLOR: "#FFCC00",
    BRAND_SUPPORT: "help@example.com",
  };

  it("each setting has a rule: a line of text, an https image, #rrggbb, an address or an https URL", () => {
    expect(readSettings(BRAND).problems).toEqual([]);
    expect(readSettings(BRAND).config).toMatchObject({ brandName: "Example <Identity>", brandColor: "#ffcc00", brandSupport: "help@example.com" });
    expect(readSettings({ BRAND_SUPPORT: "https://help.example.com/" }).problems).toEqual([]);
    const refused = readSettings({
      BRAND_NAME: "two\nlines",
      BRAND_LOGO_URL: "http://cdn.example.com/logo.png",
      BRAND_COLOR: "red;}body{display:none",
      BRAND_SUPPORT: "javascript:alert(1)",
    }).problems.map((p) => p.setting);
    expect(refused).toEqual(["BRAND_NAME", "BRAND_LOGO_URL", "BRAND_COLOR", "BRAND_SUPPORT"]);
    expect(readSettings({ BRAND_SUPPORT: "http://help.example.com" }).problems).toHaveLength(1);
  });

  it("is on every page: the name (escaped) in the header and title, the logo (its origin alone added to img-src), the colour, the support contact", async () => {
    const op = withSettings(BRAND);
    for (const path of ["/login", "/account", "/logout", "/no/such/page"]) {
      const page = await op(path, { headers: { accept: "text/html" } });
      const html = await page.text();
      expect(html, path).toContain("<span>Example &lt;Identity&gt;</span>");
      expect(html, path).toContain("– Example &lt;Identity&gt;</title>");
      expect(html, path).toContain('<img src="https://cdn.example.com/logo.png" alt="">');
      expect(html, path).toContain("--accent: #ffcc00; --on-accent: #000;");
      expect(html, path).toContain('<a href="mailto:help@example.com">help@example.com</a>');
      const csp = page.headers.get("content-security-policy")!;
      expect(csp, path).toContain("img-src 'self' data: https://cdn.example.com;");
      expect(csp, path).toContain("script-src 'self';");
    }
    // Yellow cannot carry white text or be a link colour on white: black text, and links keep the default.
    const html = await (await op("/login")).text();
    expect(html).toContain("--link-light: #245;");
  });

  it("without settings, the name is the issuer's host and the policy allows no other image origin", async () => {
    const page = await SELF.fetch(`${ORIGIN}/login`);
    expect(await page.text()).toContain("<span>localhost</span>");
    expect(page.headers.get("content-security-policy")).toContain("img-src 'self' data:;");
  });

  it("is in the email: both parts name it, the HTML part has the link as a button and the logo; the sender is EMAIL_FROM", async () => {
    const op = withSettings({ ...BRAND, EMAIL_FROM: "Example <no-reply@example.com>" });
    const ip = `2001:db8:ee::${Math.floor(Math.random() * 65535).toString(16)}`;
    const form = await op("/login", { headers: { "cf-connecting-ip": ip } });
    const csrf = form.headers.getAll("set-cookie").find((c) => c.startsWith("oidc_csrf="))!.split(";")[0]!;
    const email = uniqueEmail("brand");
    const sent = await op("/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: csrf, "cf-connecting-ip": ip },
      body: new URLSearchParams({ ...formFields(await form.text()), email }).toString(),
    });
    expect(sent.status).toBe(200);
    const [message] = await mailbox(email);
    expect(message!.from).toBe("Example <no-reply@example.com>");
    expect(message!.text).toContain("Use this link to sign in to Example <Identity>:");
    expect(message!.text).toContain(message!.link!);
    expect(message!.text).toContain("Need help? help@example.com");
    const html = message!.html!;
    expect(html).toContain("Example &lt;Identity&gt;");
    expect(html).toContain(`<a href="${message!.link!}" style="display:inline-block;padding:12px 24px;border-radius:6px;background:#ffcc00;color:#000000`);
    expect(html).toContain('<img src="https://cdn.example.com/logo.png"');
    expect(html).toContain("expires in 15 minutes");
  });
});

describe("the app's own links (RFC 7591 logo_uri, client_uri, policy_uri, tos_uri)", () => {
  const ADMIN = { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" };
  const register = (metadata: Record<string, unknown>) =>
    SELF.fetch(`${ORIGIN}/admin/clients`, {
      method: "POST",
      headers: ADMIN,
      body: JSON.stringify({ client_name: "Links App", redirect_uris: ["https://rp.example/callback"], ...metadata }),
    });

  it("are https URLs only: http, javascript:, data:, relative, with credentials or whitespace are refused with invalid_client_metadata", async () => {
    const bad = ["http://rp.example/logo.png", "javascript:alert(1)", "data:image/png;base64,AAAA", "/logo.png", "https://user:pw@rp.example/", "https://rp.example/a b", "https:rp.example", ""];
    for (const member of ["logo_uri", "client_uri", "policy_uri", "tos_uri"]) {
      for (const uri of bad) {
        const response = await register({ [member]: uri });
        expect(response.status, `${member} ${uri}`).toBe(400);
        expect(((await response.json()) as { error: string }).error).toBe("invalid_client_metadata");
      }
    }
    const ok = await register({ logo_uri: "https://rp.example/logo.png", client_uri: "https://rp.example/", policy_uri: "https://rp.example/privacy", tos_uri: "https://rp.example/terms" });
    expect(ok.status).toBe(201);
    const created = (await ok.json()) as Record<string, unknown>;
    expect(created).toMatchObject({ logo_uri: "https://rp.example/logo.png", client_uri: "https://rp.example/", policy_uri: "https://rp.example/privacy", tos_uri: "https://rp.example/terms" });
    const cleared = await SELF.fetch(`${ORIGIN}/admin/clients/${created.client_id as string}`, { method: "PATCH", headers: ADMIN, body: JSON.stringify({ logo_uri: null }) });
    expect(((await cleared.json()) as Record<string, unknown>).logo_uri).toBeNull();
  });

  it("are shown on the sign-in and consent pages, escaped, and the page's CSP allows the logo's origin and no other", async () => {
    const client = await makeClient({
      client_name: `Photo "Lab" <b>`,
      logo_uri: 'https://img.rp.example/logo.png?x="><script>alert(1)</script>',
      client_uri: "https://rp.example/",
      policy_uri: "https://rp.example/privacy?a=1&b=2",
      tos_uri: "https://rp.example/terms",
    });
    const browser = new Browser();
    const login = await browser.get(await startAt(browser, client.client_id));
    const loginHtml = await login.text();
    expect(loginHtml).toContain('<img src="https://img.rp.example/logo.png?x=&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" alt=""');
    expect(loginHtml).not.toContain("<script>alert");
    expect(loginHtml).toContain('<a href="https://rp.example/" rel="noopener noreferrer"><strong>Photo &quot;Lab&quot; &lt;b&gt;</strong></a>');
    expect(loginHtml).toContain('<a href="https://rp.example/privacy?a=1&amp;b=2" rel="noopener noreferrer">Privacy policy</a>');
    expect(loginHtml).toContain('<a href="https://rp.example/terms" rel="noopener noreferrer">Terms of service</a>');
    expect(login.headers.get("content-security-policy")).toContain("img-src 'self' data: https://img.rp.example;");

    const consent = await followLocal(browser, await signIn(browser, new URL(login.url, ORIGIN).pathname + new URL(login.url, ORIGIN).search, uniqueEmail("links")));
    const consentHtml = await consent.text();
    expect(consentHtml).toContain('<img src="https://img.rp.example/logo.png?x=&quot;');
    expect(consentHtml).toContain("Terms of service");
    expect(consent.headers.get("content-security-policy")).toContain("img-src 'self' data: https://img.rp.example;");
  });
});

describe("wording a person can act on", () => {
  it("'check your email' offers 'send again' (the same POST, under the same limits) and 'use a different address'", async () => {
    const client = await makeClient();
    const browser = new Browser();
    const login = await startAt(browser, client.client_id);
    const interaction = new URL(login, ORIGIN).searchParams.get("interaction")!;
    const email = uniqueEmail("again");
    const first = await browser.post("/login", { ...formFields(await (await browser.get(login)).text()), email });
    const html = await first.text();
    expect(html).toContain(">Send again</button>");
    expect(html).toContain(`<a class="button secondary" href="/login?interaction=${encodeURIComponent(interaction)}">Use a different address</a>`);
    const again = formFields(html);
    expect(again).toMatchObject({ email, interaction });
    const second = await browser.post("/login", again);
    expect(second.status).toBe(200);
    expect(await mailbox(email)).toHaveLength(2);
  });

  it("a used link says so, with a button to get a new one for the same sign-in", async () => {
    const client = await makeClient();
    const browser = new Browser();
    const login = await startAt(browser, client.client_id);
    const interaction = new URL(login, ORIGIN).searchParams.get("interaction")!;
    const link = await requestLink(browser, login, uniqueEmail("used"));
    expect((await followLink(browser, link)).status).toBe(303);
    const again = await browser.get(link);
    const html = await again.text();
    expect(again.status).toBe(400);
    expect(html).toContain("<h1>This link has already been used</h1>");
    expect(html).toContain(`<a class="button" href="/login?interaction=${encodeURIComponent(interaction)}">Get a new link</a>`);
    const expired = await browser.get("/login/email?token=0.nothing");
    expect(await expired.text()).toContain("<h1>This link has expired</h1>");
  });

  it("an invalid request names the app when it is known and keeps the OAuth error out of the headline", async () => {
    const client = await makeClient({ client_name: "Known App" });
    const response = await SELF.fetch(`${ORIGIN}/authorize?client_id=${client.client_id}&redirect_uri=https://evil.example/cb`, { headers: { accept: "text/html" } });
    const html = await response.text();
    expect(html).toContain("<h1>This app&#39;s sign-in request is not valid</h1>");
    expect(html).toContain("Known App made a sign-in request this service cannot accept");
    expect(html).toContain("<code>redirect_uri is not registered for this application</code>");
    expect(html.slice(html.indexOf("<h1>"), html.indexOf("</h1>"))).not.toContain("client_id");
  });

  it("consent offers 'Not you? Use another account'", async () => {
    const client = await makeClient();
    const browser = new Browser();
    const login = await startAt(browser, client.client_id);
    const consent = await followLocal(browser, await signIn(browser, login, uniqueEmail("notyou")));
    const html = await consent.text();
    const interaction = new URL(login, ORIGIN).searchParams.get("interaction")!;
    expect(html).toContain(`<a href="/login?interaction=${encodeURIComponent(interaction)}">Not you? Use another account</a>`);
  });
});

describe("the email's parts", () => {
  it("the HTTP transport sends the text and the HTML part, with EMAIL_FROM as the sender", async () => {
    const sent: unknown[] = [];
    vi.spyOn(globalThis, "fetch").mockImplementation(async (_url, init) => {
      sent.push(JSON.parse(String(init?.body)));
      return new Response(null, { status: 200 });
    });
    const op = withSettings({ EMAIL_TRANSPORT: "http", EMAIL_API_URL: "https://email-api.example/emails", EMAIL_API_KEY: "k", EMAIL_FROM: "Sign-in <no-reply@op.example>" });
    const ip = `2001:db8:ef::${Math.floor(Math.random() * 65535).toString(16)}`;
    const form = await op("/login", { headers: { "cf-connecting-ip": ip, "accept-language": "ja" } });
    const csrf = form.headers.getAll("set-cookie").find((c) => c.startsWith("oidc_csrf="))!.split(";")[0]!;
    const email = uniqueEmail("http");
    const response = await op("/login", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", cookie: csrf, "cf-connecting-ip": ip, "accept-language": "ja" },
      body: new URLSearchParams({ ...formFields(await form.text()), email }).toString(),
    });
    expect(response.status).toBe(200);
    expect(sent).toHaveLength(1);
    const body = sent[0] as Record<string, string>;
    expect(Object.keys(body).sort()).toEqual(["from", "html", "subject", "text", "to"]);
    expect(body).toMatchObject({ from: "Sign-in <no-reply@op.example>", to: email, subject: "ログイン用リンク" });
    const link = /http:\/\/localhost\/login\/email\?token=[^\s"]+/.exec(body.text!)![0];
    expect(body.html).toContain(`<a href="${link}"`);
  });
});
