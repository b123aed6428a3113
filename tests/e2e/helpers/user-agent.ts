/**
 * A scripted browser for the OP's pages over real HTTP: plain fetch, redirects followed by hand, a cookie jar for the
 * OP's origin, forms read from the HTML the OP serves. It goes only where the pages send it, so it sees exactly what
 * a user's browser would (minus rendering): the sign-in form, the emailed link (from the dev mailbox), the
 * confirmation, the consent screen, and the final redirect to the client.
 */

export interface Step {
  method: string;
  url: string;
  status: number;
  location: string | null;
}

/** Cookies of one origin, as a browser keeps them (name → value; Max-Age=0 deletes). */
export class CookieJar {
  readonly cookies = new Map<string, string>();

  store(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const [pair, ...attributes] = header.split(";");
      const eq = pair!.indexOf("=");
      if (eq <= 0) continue;
      const name = pair!.slice(0, eq).trim();
      const value = pair!.slice(eq + 1).trim();
      const expired = attributes.some((a) => /^\s*max-age\s*=\s*0\s*$/i.test(a));
      if (expired || value === "") this.cookies.delete(name);
      else this.cookies.set(name, value);
    }
  }

  header(): string | null {
    return this.cookies.size === 0 ? null : [...this.cookies].map(([n, v]) => `${n}=${v}`).join("; ");
  }
}

export function unescapeHtml(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (_, e: string) => ({ amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'" })[e]!);
}

export interface HtmlForm {
  action: string;
  method: string;
  /** Hidden inputs and other inputs with a value. */
  fields: Record<string, string>;
  /** Submit buttons: name → values. */
  buttons: { name: string; value: string }[];
  /** Names of every input (e.g. to check the sign-in form has `email`). */
  inputs: string[];
}

function attribute(tag: string, name: string): string | null {
  const match = new RegExp(`\\s${name}="([^"]*)"`, "i").exec(tag);
  return match ? unescapeHtml(match[1]!) : null;
}

/** The forms of a page (the OP's pages are simple, server-rendered HTML with double-quoted attributes). */
export function parseForms(html: string): HtmlForm[] {
  const forms: HtmlForm[] = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const open = match[1]!;
    const body = match[2]!;
    const form: HtmlForm = { action: attribute(open, "action") ?? "", method: (attribute(open, "method") ?? "get").toLowerCase(), fields: {}, buttons: [], inputs: [] };
    for (const input of body.matchAll(/<input\b[^>]*>/gi)) {
      const name = attribute(input[0], "name");
      if (name === null) continue;
      form.inputs.push(name);
      const value = attribute(input[0], "value");
      if (value !== null) form.fields[name] = value;
    }
    for (const button of body.matchAll(/<button\b[^>]*>/gi)) {
      const name = attribute(button[0], "name");
      const value = attribute(button[0], "value");
      if (name !== null && value !== null) form.buttons.push({ name, value });
    }
    forms.push(form);
  }
  return forms;
}

export function formWithAction(html: string, action: string): HtmlForm {
  const form = parseForms(html).find((f) => f.action === action);
  if (!form) throw new Error(`no form with action ${action} in:\n${html.slice(0, 2000)}`);
  return form;
}

/** One browser: a cookie jar for the OP's origin and a record of every request it made. */
export class UserAgent {
  readonly jar = new CookieJar();
  readonly steps: Step[] = [];

  constructor(readonly issuer: string) {}

  /** One request, no redirect following; cookies are sent to and kept from the OP's origin only. */
  async request(url: string | URL, init: { method?: string; form?: Record<string, string>; headers?: Record<string, string> } = {}): Promise<Response> {
    const target = new URL(url, this.issuer);
    const headers: Record<string, string> = { ...init.headers };
    const ours = target.origin === new URL(this.issuer).origin;
    const cookie = this.jar.header();
    if (ours && cookie !== null) headers.cookie = cookie;
    let body: string | undefined;
    if (init.form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(init.form).toString();
    }
    const method = init.method ?? (init.form ? "POST" : "GET");
    const response = await fetch(target, { method, headers, body, redirect: "manual" });
    if (ours) this.jar.store(response);
    this.steps.push({ method, url: target.href, status: response.status, location: response.headers.get("location") });
    return response;
  }

  get(url: string | URL): Promise<Response> {
    return this.request(url);
  }

  post(url: string | URL, form: Record<string, string>): Promise<Response> {
    return this.request(url, { form });
  }

  /** Submits a form of the page like a browser: its fields, plus `extra` (typed values, the pressed button). */
  submit(form: HtmlForm, extra: Record<string, string> = {}): Promise<Response> {
    return this.post(form.action, { ...form.fields, ...extra });
  }
}

/** The newest message the dev mailbox holds for `to` whose link is not in `seen` (waits a little for it). */
export async function newMailboxLink(issuer: string, to: string, seen: Set<string>, timeoutMs = 10_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const response = await fetch(`${issuer}/dev/mailbox?to=${encodeURIComponent(to)}`);
    if (response.status !== 200) throw new Error(`GET /dev/mailbox answered ${response.status}`);
    const messages = (await response.json()) as { to: string; subject: string; text: string; link: string | null; sentAt: number }[];
    const fresh = messages.find((m) => m.link !== null && !seen.has(m.link));
    if (fresh) {
      seen.add(fresh.link!);
      return fresh.link!;
    }
    if (Date.now() > deadline) throw new Error(`no new sign-in link for ${to} in the dev mailbox`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Links already followed in this test run (every mailbox read shares it, so a link is never taken twice). */
export const seenLinks = new Set<string>();

export interface AuthorizationOutcome {
  /** The URL the OP finally sent the browser to (the client's redirect_uri with the response parameters). */
  callback: URL;
  /** Which pages the user went through. */
  signedIn: boolean;
  consented: boolean;
}

/**
 * Follows an authorization request to its end like a user would: redirects, the sign-in form (typing `email`), the
 * emailed link and its confirmation, the consent screen (pressing `decision`). Stops at the first redirect that leaves
 * the OP for `redirectUri`. Fails on any other page, with the page's text.
 */
export async function authorizeAsUser(
  ua: UserAgent,
  authorizationUrl: string | URL,
  options: { email: string; redirectUri: string; decision?: "allow" | "deny" },
): Promise<AuthorizationOutcome> {
  const outcome = { signedIn: false, consented: false };
  let url = new URL(authorizationUrl);
  let response = await ua.get(url);
  for (let hops = 0; hops < 20; hops++) {
    if (response.status >= 300 && response.status < 400) {
      const next = new URL(response.headers.get("location")!, url);
      await response.body?.cancel();
      if (next.href.startsWith(options.redirectUri)) return { callback: next, ...outcome };
      if (next.origin !== new URL(ua.issuer).origin) throw new Error(`redirected to an unexpected place: ${next.href}`);
      url = next;
      response = await ua.get(url);
      continue;
    }
    const html = await response.text();
    if (response.status !== 200) throw new Error(`${url.pathname} answered ${response.status}:\n${html.slice(0, 1500)}`);
    const forms = parseForms(html);
    const signIn = forms.find((f) => f.action === "/login");
    const confirm = forms.find((f) => f.action === "/login/email");
    const consent = forms.find((f) => f.action === "/consent");
    if (signIn) {
      const sent = await ua.submit(signIn, { email: options.email });
      if (sent.status !== 200) throw new Error(`POST /login answered ${sent.status}: ${await sent.text()}`);
      await sent.body?.cancel();
      url = new URL(await newMailboxLink(ua.issuer, options.email, seenLinks));
      response = await ua.get(url);
      outcome.signedIn = true;
    } else if (confirm) {
      url = new URL(confirm.action, url);
      response = await ua.submit(confirm);
    } else if (consent) {
      outcome.consented = true;
      url = new URL(consent.action, url);
      response = await ua.submit(consent, { decision: options.decision ?? "allow" });
    } else {
      throw new Error(`unexpected page at ${url.href}:\n${html.slice(0, 1500)}`);
    }
  }
  throw new Error("too many steps");
}

let counter = 0;
export function uniqueEmail(tag = "user"): string {
  return `${tag}-${Date.now().toString(36)}-${(counter++).toString(36)}@example.com`;
}
