import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from "@simplewebauthn/server";
import { env } from "cloudflare:test";
import { expect } from "vitest";
import { listPasskeys } from "../../src/db/passkeys";
import { findUserByEmail } from "../../src/db/users";
import { SoftAuthenticator, type Tamper } from "./authenticator";
import { Browser, ORIGIN, formFields, requestLink } from "./front-channel";

/** The passkey ceremonies as the OP's pages and /passkeys.js run them, driven from a test Browser. */

export interface Options<T> {
  challenge: string;
  publicKey: T;
}

/** POST to an options endpoint with the page's CSRF token (and interaction), as the script does. */
export async function fetchOptions<T>(browser: Browser, path: string, fields: { csrf_token?: string; interaction?: string }): Promise<Options<T>> {
  const form: Record<string, string> = {};
  if (fields.csrf_token !== undefined) form.csrf_token = fields.csrf_token;
  if (fields.interaction !== undefined) form.interaction = fields.interaction;
  const response = await browser.post(path, form);
  const body = await response.text();
  if (response.status !== 200) throw new Error(`${path} answered ${response.status}: ${body}`);
  return JSON.parse(body) as Options<T>;
}

export function signInOptions(browser: Browser, fields: { csrf_token?: string; interaction?: string }) {
  return fetchOptions<PublicKeyCredentialRequestOptionsJSON>(browser, "/login/passkey/options", fields);
}

export function registrationOptions(browser: Browser, fields: { csrf_token?: string; interaction?: string }) {
  return fetchOptions<PublicKeyCredentialCreationOptionsJSON>(browser, "/passkeys/register/options", fields);
}

/** The fields of the sign-in page's passkey form (CSRF token, interaction). */
export async function signInPageFields(browser: Browser, loginPath = "/login"): Promise<{ csrf_token: string; interaction?: string }> {
  const page = await browser.get(loginPath);
  expect(page.status).toBe(200);
  const fields = formFields(await page.text());
  return { csrf_token: fields.csrf_token!, ...(fields.interaction ? { interaction: fields.interaction } : {}) };
}

/**
 * An email sign-in in a browser whose script says it can make passkeys: the answer is the 303 to the offer page
 * (or wherever the OP sends the user).
 */
export async function emailSignIn(browser: Browser, loginPath: string, email: string, passkeyCapable = true): Promise<Response> {
  const link = await requestLink(browser, loginPath, email);
  const confirm = await browser.get(link);
  expect(confirm.status).toBe(200);
  const fields = formFields(await confirm.text());
  return browser.post("/login/email", { ...fields, ...(passkeyCapable ? { passkey_capable: "1" } : {}) });
}

/** The finishing POST of a registration, as the script submits it. */
export function submitRegistration(
  browser: Browser,
  fields: { csrf_token: string; interaction?: string; from?: "offer" | "account" },
  challenge: string,
  response: unknown,
): Promise<Response> {
  return browser.post("/passkeys/register", {
    ...fields,
    from: fields.from ?? "account",
    challenge,
    response: typeof response === "string" ? response : JSON.stringify(response),
  });
}

/** Adds a passkey for the signed-in browser (the account page's button). */
export async function addPasskey(browser: Browser, authenticator: SoftAuthenticator, csrfToken: string, tamper: Tamper = {}): Promise<Response> {
  const options = await registrationOptions(browser, { csrf_token: csrfToken });
  return submitRegistration(browser, { csrf_token: csrfToken }, options.challenge, await authenticator.create(options.publicKey, tamper));
}

/** The sign-in form's POST: the challenge id and the assertion. */
export function submitAssertion(browser: Browser, fields: { csrf_token: string; interaction?: string }, challenge: string, response: unknown): Promise<Response> {
  return browser.post("/login/passkey", { ...fields, challenge, response: typeof response === "string" ? response : JSON.stringify(response) });
}

/** "Sign in with a passkey" from a sign-in page: options, the authenticator, the POST. */
export async function passkeySignIn(browser: Browser, authenticator: SoftAuthenticator, loginPath = "/login", tamper: Tamper = {}): Promise<Response> {
  const fields = await signInPageFields(browser, loginPath);
  const options = await signInOptions(browser, fields);
  return submitAssertion(browser, fields, options.challenge, await authenticator.get(options.publicKey, tamper));
}

/** A user signed in by email with one passkey added from the account page: the browser, the user and the authenticator. */
export async function userWithPasskey(email: string, options: ConstructorParameters<typeof SoftAuthenticator>[1] = {}) {
  const browser = new Browser();
  const signedIn = await emailSignIn(browser, "/login", email, false);
  expect(signedIn.status).toBe(200);
  const authenticator = new SoftAuthenticator(ORIGIN, options);
  const csrf = browser.cookies.get("oidc_csrf")!;
  const added = await addPasskey(browser, authenticator, csrf);
  expect(added.status, await added.clone().text()).toBe(303);
  const user = (await findUserByEmail(env.DB, email))!;
  const [passkey] = await listPasskeys(env.DB, user.id);
  return { browser, user, authenticator, passkey: passkey!, csrf };
}

/** Rows in the audit log of one type for one subject (written by D1 batches, so they are there at once). */
export async function auditEvents(type: string, subject: string): Promise<{ data: string | null; actor: string | null }[]> {
  const { results } = await env.DB.prepare(`SELECT data, actor FROM audit_log WHERE type = ? AND subject = ? ORDER BY occurred_at`).bind(type, subject).all<{
    data: string | null;
    actor: string | null;
  }>();
  return results;
}

export function sessionCookieOf(response: Response): string | null {
  const header = response.headers.getAll("set-cookie").find((c) => c.startsWith("oidc_session="));
  return header === undefined ? null : header.split(";")[0]!.slice("oidc_session=".length) || null;
}
