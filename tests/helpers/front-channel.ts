import { SELF, env } from "cloudflare:test";
import { expect } from "vitest";
import type { ClientFields, StoredClient } from "../../src/db/clients";
import type { DevMessage } from "../../src/db/dev-mailbox";
import type { AuthorizationCodeGrant } from "../../src/objects/auth-codes";
import { authCodeStoreFor } from "../../src/objects/locate";
import { randomToken } from "../../src/lib/crypto";
import { s256Challenge } from "../../src/lib/pkce";
import { registerClient } from "./clients";

/** Shared by the front-channel tests: a browser with a cookie jar, clients made directly in D1, and the email-link dance. */

export const ORIGIN = "http://localhost";
export const REDIRECT_URI = "https://rp.example/callback";

export function makeClient(fields: Partial<ClientFields> = {}): Promise<StoredClient> {
  return registerClient({ client_name: "Front Channel Test App", scope: "openid profile email offline_access", ...fields }, null, "fc");
}

/** A client address of its own: an IPv6 address in a random /64 of the documentation prefix (rate limits count by /64). */
export function uniqueAddress(): string {
  const [a, b] = crypto.getRandomValues(new Uint16Array(2));
  return `2001:db8:${a!.toString(16)}:${b!.toString(16)}::1`;
}

/** A browser: cookies kept per name, redirects not followed, its own client address (rate limits are per address). */
export class Browser {
  readonly cookies = new Map<string, string>();
  readonly ip = uniqueAddress();

  /** `send`: how requests reach the Worker — the test Worker by default, or the Worker's fetch with other settings. */
  constructor(private readonly send: (request: Request) => Promise<Response> = (request) => SELF.fetch(request)) {}

  async fetch(path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.cookies.size > 0) headers.set("cookie", [...this.cookies].map(([k, v]) => `${k}=${v}`).join("; "));
    headers.set("cf-connecting-ip", this.ip);
    const response = await this.send(new Request(new URL(path, ORIGIN).toString(), { ...init, headers, redirect: "manual" }));
    for (const header of response.headers.getAll("set-cookie")) {
      const [pair] = header.split(";");
      const eq = pair!.indexOf("=");
      const name = pair!.slice(0, eq);
      const value = pair!.slice(eq + 1);
      if (/max-age=0/i.test(header)) this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
    return response;
  }

  get(path: string): Promise<Response> {
    return this.fetch(path);
  }

  post(path: string, form: Record<string, string>): Promise<Response> {
    return this.fetch(path, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form).toString(),
    });
  }
}

function unescapeHtml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_m, e: string) => ({ amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'" })[e]!);
}

/** The name/value pairs of the inputs of a page (hidden fields, prefilled email). */
export function formFields(html: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const match of html.matchAll(/<input\b[^>]*>/g)) {
    const name = /\bname="([^"]*)"/.exec(match[0])?.[1];
    const value = /\bvalue="([^"]*)"/.exec(match[0])?.[1];
    if (name !== undefined) out[unescapeHtml(name)] = unescapeHtml(value ?? "");
  }
  return out;
}

export async function pkcePair(): Promise<{ verifier: string; challenge: string }> {
  const verifier = randomToken(32);
  return { verifier, challenge: await s256Challenge(verifier) };
}

/** A code request's parameters with PKCE (S256) and a fresh state and nonce, for `clientId`; `extra` adds or overrides. */
export async function authorizeParams(clientId: string, extra: Record<string, string> = {}): Promise<{ verifier: string; params: Record<string, string> }> {
  const { verifier, challenge } = await pkcePair();
  const params: Record<string, string> = {
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    scope: "openid email",
    state: `st-${crypto.randomUUID()}`,
    nonce: `n-${crypto.randomUUID()}`,
    code_challenge: challenge,
    code_challenge_method: "S256",
    ...extra,
  };
  return { verifier, params };
}

export function authorizeUrl(params: Record<string, string>): string {
  return `/authorize?${new URLSearchParams(params).toString()}`;
}

/** The parameters of a 303 authorization response (query or fragment). */
export function responseParams(response: Response): { base: string; params: URLSearchParams } {
  expect(response.status).toBe(303);
  const location = response.headers.get("location")!;
  const url = new URL(location);
  const params = url.hash ? new URLSearchParams(url.hash.slice(1)) : url.searchParams;
  return { base: `${url.origin}${url.pathname}`, params };
}


export async function mailbox(to: string): Promise<DevMessage[]> {
  const response = await SELF.fetch(`${ORIGIN}/dev/mailbox?to=${encodeURIComponent(to)}`);
  expect(response.status).toBe(200);
  return (await response.json()) as DevMessage[];
}

export function tokenOfLink(link: string): string {
  return new URL(link, ORIGIN).searchParams.get("token")!;
}

/** From the sign-in page of an interaction to the email sent: returns the link's path. */
export async function requestLink(browser: Browser, loginPath: string, email: string): Promise<string> {
  const page = await browser.get(loginPath);
  expect(page.status).toBe(200);
  const fields = formFields(await page.text());
  const sent = await browser.post("/login", { ...fields, email });
  expect(sent.status).toBe(200);
  expect(await sent.text()).toContain("Check your email");
  const [latest] = await mailbox(email.toLowerCase());
  const url = new URL(latest!.link!);
  return `${url.pathname}${url.search}`;
}

/** Opens the link (GET: the confirmation page) and presses the button (POST). */
export async function followLink(browser: Browser, linkPath: string): Promise<Response> {
  const confirm = await browser.get(linkPath);
  expect(confirm.status).toBe(200);
  return browser.post("/login/email", formFields(await confirm.text()));
}

/** The whole sign-in from the login page: returns the response of the link POST (a 303 to resume the request). */
export async function signIn(browser: Browser, loginPath: string, email: string): Promise<Response> {
  return followLink(browser, await requestLink(browser, loginPath, email));
}

/** Follows same-origin 303s (sign-in and consent steps) until the answer leaves the OP or is a page. */
export async function followLocal(browser: Browser, response: Response): Promise<Response> {
  let current = response;
  for (let i = 0; i < 10 && current.status === 303; i++) {
    const location = current.headers.get("location")!;
    if (!location.startsWith("/")) break;
    current = await browser.get(location);
  }
  return current;
}

/** Presses Allow (or Deny) on a consent page. */
export async function decide(browser: Browser, consentPage: Response, decision: "allow" | "deny"): Promise<Response> {
  expect(consentPage.status).toBe(200);
  const fields = formFields(await consentPage.text());
  return browser.post("/consent", { ...fields, decision });
}

/** Redeems a code the way /token does (atomically, with PKCE), returning what it stood for. */
export async function redeem(code: string, clientId: string, verifier: string | null, redirectUri = REDIRECT_URI): Promise<AuthorizationCodeGrant> {
  const result = await authCodeStoreFor(env, code)!.consume(code, { clientId, redirectUri, codeVerifier: verifier }, { grantId: randomToken(16) });
  expect(result.status).toBe("ok");
  if (result.status !== "ok") throw new Error("not redeemed");
  return result.value;
}

export function uniqueEmail(prefix = "user"): string {
  return `${prefix}-${randomToken(6).toLowerCase().replace(/[^a-z0-9]/g, "x")}@example.com`;
}
