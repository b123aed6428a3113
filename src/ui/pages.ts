import { html, type SafeHtml } from "./html";
import { hidden, layout, titledPage } from "./layout";

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
}

/** The sign-in form: one input named `email`; submitting it sends a sign-in link. */
export function signInPage(input: SignInPageInput): SafeHtml {
  return titledPage(
    "Sign in",
    html`${input.clientName ? html`<p>to continue to <strong>${input.clientName}</strong></p>` : null}
${input.error ? html`<p class="error" role="alert">${input.error}</p>` : null}
<form method="post" action="/login">
${hidden("csrf_token", input.csrfToken)}
${hidden("interaction", input.interaction)}
<label for="email">Email address</label>
<input type="email" id="email" name="email" value="${input.email}" required autocomplete="email" autofocus maxlength="254">
<button type="submit">Email me a sign-in link</button>
</form>`,
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
<button type="submit">Sign in</button>
</form>`,
  );
}

export function signedInPage(email: string | null): SafeHtml {
  return layout(
    "Signed in",
    html`<h1>You are signed in</h1>
<p>${email ? html`Signed in as <strong>${email}</strong>. ` : null}You can close this page and return to the application.</p>`,
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
