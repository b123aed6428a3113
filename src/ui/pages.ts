import { html, type SafeHtml } from "./html";
import { hidden, layout, titledPage } from "./layout";
import { passkeyScriptTag, passkeySignInForm } from "./passkeys";

/**
 * The pages of the sign-in flow: sign-in form, "check your email", the link confirmation, "signed in", consent.
 * Every value goes through the `html` template; every form carries the CSRF token and posts to this origin.
 */

export interface SignInPageInput {
  csrfToken: string;
  interaction: string | null;
  email: string;
  clientName: string | null;
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
export function signInPage(input: SignInPageInput): SafeHtml {
  return titledPage(
    "Sign in",
    html`${input.clientName ? html`<p>to continue to <strong>${input.clientName}</strong></p>` : null}
${input.error ? html`<p class="error" role="alert">${input.error}</p>` : null}
${input.methods === "either" ? null : html`<p class="notice">${input.clientName ?? "The application"} asks you to sign in with a passkey, which cannot be phished.</p>`}
${input.passkeys ? passkeySignInForm({ csrfToken: input.csrfToken, interaction: input.interaction, only: input.methods === "passkey_only" }) : null}
${
  input.methods === "passkey_only"
    ? html`<p class="muted">${input.passkeys ? "No passkey yet?" : "Passkeys cannot be used at this address."} <a href="/login">Sign in by email</a>, add a passkey on your account page, then start again from the application.</p>`
    : html`<form method="post" action="/login">
${hidden("csrf_token", input.csrfToken)}
${hidden("interaction", input.interaction)}
<label for="email">Email address</label>
<input type="email" id="email" name="email" value="${input.email}" required autocomplete="${input.passkeys ? "username webauthn" : "email"}" autofocus maxlength="254">
<button type="submit">Email me a sign-in link</button>
</form>`
}
${passkeyScriptTag()}`,
  );
}

export function checkEmailPage(email: string): SafeHtml {
  return titledPage(
    "Check your email",
    html`<p>If <strong>${email}</strong> can receive email, a sign-in link is on its way. Open it on this device to continue.</p>
<p class="muted">The link works once and expires soon. Nothing arrived? Go back and ask for a new one. After many requests no new email is sent for a while; the last link sent still works.</p>`,
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

export function confirmLinkPage(input: ConfirmLinkPageInput): SafeHtml {
  return titledPage(
    "Finish signing in",
    html`<p>Sign in as <strong>${input.email}</strong> on this device.</p>
${input.sameBrowser ? null : html`<p class="error">This link was requested from another browser or device. Continue only if you asked for it yourself.</p>`}
<form method="post" action="/login/email">
${hidden("csrf_token", input.csrfToken)}
${hidden("token", input.token)}
<input type="hidden" name="passkey_capable">
<button type="submit">Sign in</button>
</form>
${passkeyScriptTag()}`,
  );
}

export function signedInPage(email: string | null): SafeHtml {
  return layout(
    "Signed in",
    html`<h1>You are signed in</h1>
<p>${email ? html`Signed in as <strong>${email}</strong>. ` : null}You can close this page and return to the application.</p>
<p><a href="/account">Your account and passkeys</a></p>`,
  );
}

const SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: "Sign you in with your account identifier",
  profile: "Your name and basic profile",
  email: "Your email address",
  address: "Your postal address",
  phone: "Your phone number",
  groups: "The groups you belong to",
  offline_access: "Stay connected when you are not using it",
};

export interface ConsentPageInput {
  csrfToken: string;
  interaction: string;
  sid: string;
  clientName: string;
  userEmail: string | null;
  scopes: string[];
}

/** The consent screen: names the client and the scopes; `decision` is `allow` or `deny`. */
export function consentPage(input: ConsentPageInput): SafeHtml {
  const items = input.scopes.map((s) => html`<li>${SCOPE_DESCRIPTIONS[s] ?? s} <span class="muted">(${s})</span></li>\n`);
  return layout(
    "Allow access?",
    html`<h1><strong>${input.clientName}</strong> wants to access your account</h1>
${input.userEmail ? html`<p class="muted">Signed in as ${input.userEmail}</p>` : null}
<p>It asks to:</p>
<ul class="scopes">
${items}</ul>
<form method="post" action="/consent">
${hidden("csrf_token", input.csrfToken)}
${hidden("interaction", input.interaction)}
${hidden("sid", input.sid)}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`,
  );
}
