import { html, type SafeHtml } from "./html";
import { hidden, layout, titledPage, type Page, type View } from "./layout";
import { passkeyScriptTag, passkeySignInForm } from "./passkeys";

/**
 * The pages of the sign-in flow: sign-in form, "check your email", the link confirmation, "signed in", consent.
 * Every value goes through the `html` template; every form carries the CSRF token and posts to this origin.
 */

/** The app a request comes from, as its registration (RFC 7591 §2) describes it; every URI is https (client-metadata.ts). */
export interface AppInfo {
  name: string;
  logoUri: string | null;
  clientUri: string | null;
  policyUri: string | null;
  tosUri: string | null;
}

/** The app's logo and name (linked to its home page), and its privacy policy and terms when it registered them. */
function appBlock(view: View, app: AppInfo, lead: (name: SafeHtml) => SafeHtml): SafeHtml {
  const { t } = view;
  const name = app.clientUri ? html`<a href="${app.clientUri}" rel="noopener noreferrer"><strong>${app.name}</strong></a>` : html`<strong>${app.name}</strong>`;
  const links = [
    app.policyUri ? html`<a href="${app.policyUri}" rel="noopener noreferrer">${t.text("app.policy")}</a>` : null,
    app.tosUri ? html`<a href="${app.tosUri}" rel="noopener noreferrer">${t.text("app.tos")}</a>` : null,
  ].filter((l): l is SafeHtml => l !== null);
  return html`<div class="app">${app.logoUri ? html`<img src="${app.logoUri}" alt="" width="40" height="40">` : null}<div>${lead(name)}</div></div>
${links.length > 0 ? html`<p class="muted">${t.html("app.links", { app: app.name, links: links.map((l, i) => (i === 0 ? l : html` · ${l}`)) })}</p>` : null}`;
}

export interface SignInPageInput {
  csrfToken: string;
  interaction: string | null;
  email: string;
  app: AppInfo | null;
  /** A fixed message of the catalogue (never text from the request). */
  error?: string;
  /** Whether passkeys can work on this issuer (a domain, not an IP address): else no passkey button. */
  passkeys: boolean;
  /** What the request's acr allows (routes/support/passkey-policy.ts): both methods, the passkey first, or only it. */
  methods: "either" | "passkey_first" | "passkey_only";
}

/**
 * The sign-in form: one input named `email`; submitting it sends a sign-in link. Above it, "Sign in with a passkey"
 * (shown by /passkeys.js where WebAuthn exists), and the email field offers passkeys in the browser's autofill
 * (`autocomplete="username webauthn"`, WebAuthn conditional mediation).
 */
export function signInPage(view: View, input: SignInPageInput): Page {
  const { t } = view;
  const app = input.app;
  return titledPage(
    view,
    t.text("signIn.title"),
    html`${app ? appBlock(view, app, (name) => html`<p>${t.html("signIn.continueTo", { app: name })}</p>`) : null}
${input.error ? html`<p class="error" role="alert">${input.error}</p>` : null}
${input.methods === "either" ? null : html`<p class="notice">${t.html("signIn.passkeyNotice", { app: app?.name ?? t.text("signIn.theApp") })}</p>`}
${input.passkeys ? passkeySignInForm(view, { csrfToken: input.csrfToken, interaction: input.interaction, only: input.methods === "passkey_only" }) : null}
${
  input.methods === "passkey_only"
    ? html`<p class="muted">${t.text(input.passkeys ? "signIn.noPasskeyYet" : "signIn.passkeysImpossible")} ${t.html("signIn.thenAddPasskey", { link: html`<a href="/login">${t.text("signIn.byEmail")}</a>` })}</p>`
    : html`<form method="post" action="/login">
${hidden("csrf_token", input.csrfToken)}
${hidden("interaction", input.interaction)}
<label for="email">${t.text("signIn.email")}</label>
<input type="email" id="email" name="email" value="${input.email}" required autocomplete="${input.passkeys ? "username webauthn" : "email"}" autofocus maxlength="254">
<button type="submit">${t.text("signIn.send")}</button>
</form>`
}
${passkeyScriptTag()}`,
    { images: [app?.logoUri ?? null] },
  );
}

export interface CheckEmailPageInput {
  email: string;
  csrfToken: string;
  interaction: string | null;
  /** How long the link works, in minutes. */
  minutes: number;
}

/** "Check your email", with "Send again" (the same POST, rate-limited like the first) and "Use a different address". */
export function checkEmailPage(view: View, input: CheckEmailPageInput): Page {
  const { t } = view;
  const back = input.interaction === null ? "/login" : `/login?interaction=${encodeURIComponent(input.interaction)}`;
  return titledPage(
    view,
    t.text("checkEmail.title"),
    html`<p>${t.html("checkEmail.sent", { email: html`<strong>${input.email}</strong>` })}</p>
<p>${t.text("checkEmail.expires", { duration: t.minutes(input.minutes) })}</p>
<p class="muted">${t.text("checkEmail.limits")}</p>
<form method="post" action="/login">
${hidden("csrf_token", input.csrfToken)}${hidden("interaction", input.interaction)}${hidden("email", input.email)}
<button type="submit">${t.text("checkEmail.again")}</button><a class="button secondary" href="${back}">${t.text("checkEmail.other")}</a>
</form>`,
  );
}

/** Shown for GET of a sign-in link: link scanners that fetch the URL must not use it up, so only this POST does. */
export interface ConfirmLinkPageInput {
  csrfToken: string;
  token: string;
  email: string;
  /** False when the link is opened in another browser than the one that asked for it. */
  sameBrowser: boolean;
}

export function confirmLinkPage(view: View, input: ConfirmLinkPageInput): Page {
  const { t } = view;
  return titledPage(
    view,
    t.text("confirm.title"),
    html`<p>${t.html("confirm.as", { email: html`<strong>${input.email}</strong>` })}</p>
${input.sameBrowser ? null : html`<p class="error">${t.text("confirm.otherBrowser")}</p>`}
<form method="post" action="/login/email">
${hidden("csrf_token", input.csrfToken)}
${hidden("token", input.token)}
<input type="hidden" name="passkey_capable">
<button type="submit">${t.text("confirm.button")}</button>
</form>
${passkeyScriptTag()}`,
  );
}

export function signedInPage(view: View, email: string | null): Page {
  const { t } = view;
  return layout(
    view,
    t.text("signedIn.title"),
    html`<h1>${t.text("signedIn.heading")}</h1>
<p>${email ? html`${t.html("signedIn.as", { email: html`<strong>${email}</strong>` })} ` : null}${t.text("signedIn.close")}</p>
<p><a href="/account">${t.text("signedIn.account")}</a></p>`,
  );
}

/** The scopes the catalogue describes; any other is shown by its name. */
const DESCRIBED_SCOPES = new Set(["openid", "profile", "email", "address", "phone", "groups", "offline_access"]);

export interface ConsentPageInput {
  csrfToken: string;
  interaction: string;
  sid: string;
  app: AppInfo;
  userEmail: string | null;
  scopes: string[];
}

/** The consent screen: names the client and the scopes; `decision` is `allow` or `deny`; "Not you?" signs in as someone else. */
export function consentPage(view: View, input: ConsentPageInput): Page {
  const { t } = view;
  const items = input.scopes.map(
    (s) => html`<li>${DESCRIBED_SCOPES.has(s) ? t.text(`scope.${s}` as "scope.openid") : s} <span class="muted">(${s})</span></li>\n`,
  );
  return layout(
    view,
    t.text("consent.title"),
    html`${appBlock(view, input.app, (name) => html`<h1>${t.html("consent.heading", { app: name })}</h1>`)}
${input.userEmail ? html`<p class="muted">${t.text("consent.as", { email: input.userEmail })} <a href="/login?interaction=${encodeURIComponent(input.interaction)}">${t.text("consent.notYou")}</a></p>` : null}
<p>${t.text("consent.asks")}</p>
<ul class="scopes">
${items}</ul>
<form method="post" action="/consent">
${hidden("csrf_token", input.csrfToken)}
${hidden("interaction", input.interaction)}
${hidden("sid", input.sid)}
<button type="submit" name="decision" value="allow">${t.text("consent.allow")}</button>
<button type="submit" name="decision" value="deny" class="secondary">${t.text("consent.deny")}</button>
</form>`,
    { images: [input.app.logoUri] },
  );
}
