import { html, type SafeHtml } from "./html";
import { hidden, titledPage } from "./layout";
import { passkeyRegisterForm, passkeyScriptTag } from "./passkeys";

/** The user's account page: who they are, their passkeys (add, rename, delete), the apps they gave access, and "Sign out everywhere". */

export interface AccountPasskey {
  id: string;
  name: string | null;
  /** ms since the epoch */
  createdAt: number;
  lastUsedAt: number | null;
  transports: string[];
  deviceType: string | null;
  backedUp: boolean;
  /** False when this is the user's last way in (EMAIL_LINK_SIGN_IN=without_passkey). */
  deletable: boolean;
}

export interface AccountPageInput {
  csrfToken: string;
  email: string;
  name: string | null;
  passkeys: AccountPasskey[];
  sessionCount: number;
  /** The apps the user consented to (remembered consents), newest first. */
  consents: AccountConsent[];
  /** A fixed notice after a change (never text from the request). */
  notice: string | null;
  /** Whether email-link sign-in is open to this user (else passkeys are their only way in). */
  emailLinkOpen: boolean;
}

export interface AccountConsent {
  clientId: string;
  clientName: string;
  scopes: string[];
  /** ms since the epoch */
  grantedAt: number;
}

function consentItem(csrfToken: string, consent: AccountConsent): SafeHtml {
  const what = consent.scopes.filter((s) => s !== "openid");
  return html`<li class="consent">
<p><strong>${consent.clientName}</strong><br>
<span class="muted">${what.length > 0 ? html`${what.join(", ")} · ` : null}since ${when(consent.grantedAt)}</span></p>
<form method="post" action="/account/consents/revoke">
${hidden("csrf_token", csrfToken)}${hidden("client_id", consent.clientId)}
<button type="submit" class="secondary" aria-label="Remove the access of ${consent.clientName}">Remove access</button>
</form>
</li>
`;
}

const TRANSPORT_NAMES: Record<string, string> = {
  internal: "built into a device",
  hybrid: "phone",
  usb: "USB",
  nfc: "NFC",
  ble: "Bluetooth",
  "smart-card": "smart card",
  cable: "phone",
};

/** A date as people read it everywhere: ISO day and minute, in UTC. */
export function when(ms: number): string {
  return `${new Date(ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function kind(passkey: AccountPasskey): string {
  if (passkey.deviceType === "multiDevice") return passkey.backedUp ? "Synced passkey" : "Passkey that can sync";
  if (passkey.deviceType === "singleDevice") {
    return passkey.transports.some((t) => t === "usb" || t === "nfc" || t === "ble") ? "Security key" : "Device-bound passkey";
  }
  return "Passkey";
}

function passkeyItem(csrfToken: string, passkey: AccountPasskey): SafeHtml {
  const via = [...new Set(passkey.transports.map((t) => TRANSPORT_NAMES[t]).filter((t): t is string => t !== undefined))];
  // Unnamed, a passkey is called by its kind, which the line below then does not repeat.
  const label = passkey.name ?? kind(passkey);
  const details = [...(passkey.name === null ? [] : [kind(passkey)]), ...(via.length > 0 ? [`via ${via.join(", ")}`] : [])];
  return html`<li class="passkey">
<p><strong>${label}</strong><br>
<span class="muted">${details.length > 0 ? html`${details.join(" · ")}<br>` : null}
Added ${when(passkey.createdAt)} · ${passkey.lastUsedAt === null ? "not used yet" : html`last used ${when(passkey.lastUsedAt)}`}</span></p>
<details><summary>Rename</summary>
<form method="post" action="/account/passkeys/rename" class="inline">
${hidden("csrf_token", csrfToken)}${hidden("id", passkey.id)}
<label for="name-${passkey.id}">New name</label>
<input type="text" id="name-${passkey.id}" name="name" value="${passkey.name ?? ""}" maxlength="64" autocomplete="off">
<button type="submit">Save name</button>
</form>
</details>
${
  passkey.deletable
    ? html`<form method="post" action="/account/passkeys/delete">
${hidden("csrf_token", csrfToken)}${hidden("id", passkey.id)}
<button type="submit" class="secondary" aria-label="Delete ${label}">Delete</button>
</form>`
    : html`<p class="muted">This is your only way to sign in, so it cannot be deleted. Add another passkey first.</p>`
}
</li>
`;
}

export function accountPage(input: AccountPageInput): SafeHtml {
  return titledPage(
    "Your account",
    html`${input.notice ? html`<p class="notice" role="status">${input.notice}</p>` : null}
<dl>
<dt>Email</dt><dd>${input.email}</dd>
${input.name ? html`<dt>Name</dt><dd>${input.name}</dd>` : null}
</dl>
<h2>Passkeys</h2>
${
  input.passkeys.length === 0
    ? html`<p>You have no passkeys yet. ${input.emailLinkOpen ? "You sign in with a link sent to your email." : null}</p>`
    : html`<ul class="passkeys">
${input.passkeys.map((p) => passkeyItem(input.csrfToken, p))}</ul>`
}
${passkeyRegisterForm(input.csrfToken, null, "account")}
<h2>Apps with access</h2>
${
  input.consents.length === 0
    ? html`<p>No app has access to your account.</p>`
    : html`<ul class="consents">
${input.consents.map((c) => consentItem(input.csrfToken, c))}</ul>`
}
<h2>Where you are signed in</h2>
<p>${input.sessionCount <= 1 ? "You have 1 active session: this browser." : `You have ${input.sessionCount} active sessions, this browser included.`}</p>
<form method="post" action="/account/sign-out-everywhere">
${hidden("csrf_token", input.csrfToken)}
<button type="submit" class="secondary">Sign out everywhere</button>
</form>
${passkeyScriptTag()}`,
  );
}

/** /account without a session. */
export function accountSignInPage(): SafeHtml {
  return titledPage("Your account", html`<p>Sign in to see your account and your passkeys.</p>
<p><a href="/login">Sign in</a></p>`);
}
