import { SELF, createExecutionContext, env, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it, vi } from "vitest";
import { devMessagesTo } from "../src/db/dev-mailbox";
import { findUserByEmail } from "../src/db/users";
import type { Env } from "../src/env";
import worker from "../src/index";
import { randomToken } from "../src/lib/crypto";
import { mayCreateAccount } from "../src/oauth/sign-up-policy";
import { Browser, formFields, makeClient } from "./helpers/front-channel";

/** SIGNUP_POLICY (issue 12): open, domains, invite. A refused address gets the same page, no account and no mail. */

/** The Worker with other settings: the same bindings (D1, objects), a config of its own. */
function workerWith(settings: Partial<Env>): (request: Request) => Promise<Response> {
  const configured = { ...env, ...settings } as Env;
  return async (request) => {
    const ctx = createExecutionContext();
    const response = await worker.fetch(request as Request<unknown, IncomingRequestCfProperties>, configured, ctx);
    await waitOnExecutionContext(ctx);
    return response;
  };
}

function address(domain = "example.com"): string {
  return `signup-${randomToken(6).toLowerCase()}@${domain}`;
}

/** The sign-in page, then POST /login with `email`: the answer (a "check your email" page either way). */
async function askForLink(browser: Browser, email: string): Promise<{ status: number; html: string }> {
  const page = await browser.get("/login");
  expect(page.status).toBe(200);
  const response = await browser.post("/login", { ...formFields(await page.text()), email });
  // A refusal is logged as one line without the address.
  return { status: response.status, html: await response.text() };
}

/** The page with the address and the per-request values taken out, to compare two answers. */
function shape(html: string, email: string): string {
  return html.replaceAll(email, "EMAIL").replace(/value="[A-Za-z0-9_-]{43}"/g, 'value="TOKEN"');
}

describe("sign-up policy", () => {
  it("the rule: open admits anyone, domains the exact domains listed, invite nobody new", () => {
    const domains = { signupPolicy: "domains" as const, signupDomains: "example.com,example.org" };
    expect(mayCreateAccount({ signupPolicy: "open", signupDomains: "" }, "a@anything.example")).toBe(true);
    expect(mayCreateAccount(domains, "a@example.org")).toBe(true);
    expect(mayCreateAccount(domains, "a@EXAMPLE.com")).toBe(true);
    expect(mayCreateAccount(domains, "a@sub.example.com")).toBe(false);
    expect(mayCreateAccount(domains, "a@example.com.evil.example")).toBe(false);
    expect(mayCreateAccount(domains, "a@evilexample.com")).toBe(false);
    expect(mayCreateAccount({ signupPolicy: "invite", signupDomains: "" }, "a@example.com")).toBe(false);
  });

  it("invite: a stranger gets the same page, no account and no mail; a user an admin created gets the link and signs in", async () => {
    const send = workerWith({ SIGNUP_POLICY: "invite" });
    const info = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      const stranger = address();
      const refused = await askForLink(new Browser(send), stranger);
      expect(refused.status).toBe(200);
      expect(refused.html).toContain("Check your email");
      expect(await devMessagesTo(env.DB, stranger)).toEqual([]);
      expect(await findUserByEmail(env.DB, stranger)).toBeNull();
      expect(info.mock.calls.map((c) => String(c[0])).some((l) => l.includes('"event":"login.sign_up_refused"') && !l.includes(stranger))).toBe(true);

      // An invited user: created by an admin, then signs in by the link as anyone would.
      const invited = address();
      const created = await SELF.fetch("http://localhost/admin/users", {
        method: "POST",
        headers: { authorization: `Bearer ${env.ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ email: invited, name: "Invited" }),
      });
      expect(created.status).toBe(201);
      const browser = new Browser(send);
      const allowed = await askForLink(browser, invited);
      // No account enumeration: the two answers are the same page.
      expect(shape(allowed.html, invited)).toBe(shape(refused.html, stranger));
      const [message] = await devMessagesTo(env.DB, invited);
      expect(message).toBeDefined();
      const link = new URL(message!.link!);
      const confirm = await browser.get(`${link.pathname}${link.search}`);
      const finished = await browser.post("/login/email", formFields(await confirm.text()));
      expect(finished.status).toBe(200);
      expect(finished.headers.getAll("set-cookie").some((c) => c.startsWith("oidc_session="))).toBe(true);
      expect((await findUserByEmail(env.DB, invited))!.emailVerified).toBe(true);
    } finally {
      info.mockRestore();
    }
  });

  it("domains: addresses at a listed domain sign up; others (subdomains included) get no mail and no account", async () => {
    const send = workerWith({ SIGNUP_POLICY: "domains", SIGNUP_DOMAINS: "allowed.example" });
    const info = vi.spyOn(console, "log").mockImplementation(() => {});
    try {
      const [inside, outside, sub] = [address("allowed.example"), address("other.example"), address("sub.allowed.example")];
      for (const email of [inside, outside, sub]) expect((await askForLink(new Browser(send), email)).status).toBe(200);
      expect(await devMessagesTo(env.DB, inside)).toHaveLength(1);
      expect(await devMessagesTo(env.DB, outside)).toEqual([]);
      expect(await devMessagesTo(env.DB, sub)).toEqual([]);
      for (const email of [outside, sub]) expect(await findUserByEmail(env.DB, email)).toBeNull();
    } finally {
      info.mockRestore();
    }
  });

  it("a link sent while sign-up was open makes no account once it is closed, and stays unused", async () => {
    await makeClient();
    const email = address();
    const open = new Browser();
    await askForLink(open, email);
    const link = new URL((await devMessagesTo(env.DB, email))[0]!.link!);
    const closed = new Browser(workerWith({ SIGNUP_POLICY: "invite" }));
    const confirm = await closed.get(`${link.pathname}${link.search}`);
    const refused = await closed.post("/login/email", formFields(await confirm.text()));
    expect(refused.status).toBe(403);
    expect(await refused.text()).toContain("new accounts are not open");
    expect(await findUserByEmail(env.DB, email)).toBeNull();
    // Open again: the same link still works (it was not used).
    const again = await open.get(`${link.pathname}${link.search}`);
    const finished = await open.post("/login/email", formFields(await again.text()));
    expect(finished.status).toBe(200);
    expect(await findUserByEmail(env.DB, email)).not.toBeNull();
  });
});
