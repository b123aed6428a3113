import { html, type SafeHtml } from "./html";
import type { MessageKey } from "./i18n";
import { hidden, titledPage, type Page, type View } from "./layout";
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
  notice: MessageKey | null;
  /** Whether email-link sign-in is open to this user (else passkeys are their only way in). */
  emailLinkOpen: boolean;
}

const TRANSPORTS = new Set(["internal", "hybrid", "usb", "nfc", "ble", "smart-card"]);

export interface AccountConsent {
  clientId: string;
  clientName: string;
  scopes: string[];
  /** ms since the epoch */
  grantedAt: number;
}

function consentItem(view: View, csrfToken: string, consent: AccountConsent): SafeHtml {
  const { t } = view;
  const what = consent.scopes.filter((s) => s !== "openid");
  return html`<li class="consent">
<p><strong>${consent.clientName}</strong><br>
<span class="muted">${what.length > 0 ? html`${what.join(", ")} · ` : null}${t.text("account.since", { date: t.date(consent.grantedAt) })}</span></p>
<form method="post" action="/account/consents/revoke">
${hidden("csrf_token", csrfToken)}${hidden("client_id", consent.clientId)}
<button type="submit" class="secondary" aria-label="${t.text("account.removeAccessLabel", { name: consent.clientName })}">${t.text("account.removeAccess")}</button>
</form>
</li>
`;
}

function kind(passkey: AccountPasskey): MessageKey {
  if (passkey.deviceType === "multiDevice") return passkey.backedUp ? "kind.synced" : "kind.syncable";
  if (passkey.deviceType === "singleDevice") {
    return passkey.transports.some((t) => t === "usb" || t === "nfc" || t === "ble") ? "kind.key" : "kind.bound";
  }
  return "kind.passkey";
}

function passkeyItem(view: View, csrfToken: string, passkey: AccountPasskey): SafeHtml {
  const { t } = view;
  // caBLE is the old name of hybrid (a phone).
  const via = [...new Set(passkey.transports.map((x) => (x === "cable" ? "hybrid" : x)).filter((x) => TRANSPORTS.has(x)))].map((x) => t.text(`via.${x}` as MessageKey));
  // Unnamed, a passkey is called by its kind, which the line below then does not repeat.
  const label = passkey.name ?? t.text(kind(passkey));
  const details = [...(passkey.name === null ? [] : [t.text(kind(passkey))]), ...(via.length > 0 ? [t.text("account.via", { list: t.list(via) })] : [])];
  return html`<li class="passkey">
<p><strong>${label}</strong><br>
<span class="muted">${details.length > 0 ? html`${details.join(" · ")}<br>` : null}
${t.text("account.added", { date: t.date(passkey.createdAt) })} · ${passkey.lastUsedAt === null ? t.text("account.unused") : t.text("account.lastUsed", { date: t.date(passkey.lastUsedAt) })}</span></p>
<details><summary>${t.text("account.rename")}</summary>
<form method="post" action="/account/passkeys/rename" class="inline">
${hidden("csrf_token", csrfToken)}${hidden("id", passkey.id)}
<label for="name-${passkey.id}">${t.text("account.newName")}</label>
<input type="text" id="name-${passkey.id}" name="name" value="${passkey.name ?? ""}" maxlength="64" autocomplete="off">
<button type="submit">${t.text("account.save")}</button>
</form>
</details>
${
  passkey.deletable
    ? html`<form method="post" action="/account/passkeys/delete">
${hidden("csrf_token", csrfToken)}${hidden("id", passkey.id)}
<button type="submit" class="secondary" aria-label="${t.text("account.deleteLabel", { name: label })}">${t.text("account.delete")}</button>
</form>`
    : html`<p class="muted">${t.text("account.onlyOne")}</p>`
}
</li>
`;
}

export function accountPage(view: View, input: AccountPageInput): Page {
  const { t } = view;
  return titledPage(
    view,
    t.text("account.title"),
    html`${input.notice ? html`<p class="notice" role="status">${t.text(input.notice)}</p>` : null}
<dl>
<dt>${t.text("account.email")}</dt><dd>${input.email}</dd>
${input.name ? html`<dt>${t.text("account.name")}</dt><dd>${input.name}</dd>` : null}
</dl>
<h2>${t.text("account.passkeys")}</h2>
${
  input.passkeys.length === 0
    ? html`<p>${t.text("account.none")} ${input.emailLinkOpen ? t.text("account.byEmail") : null}</p>`
    : html`<ul class="passkeys">
${input.passkeys.map((p) => passkeyItem(view, input.csrfToken, p))}</ul>`
}
${passkeyRegisterForm(view, input.csrfToken, null, "account")}
<h2>${t.text("account.apps")}</h2>
${
  input.consents.length === 0
    ? html`<p>${t.text("account.noApps")}</p>`
    : html`<ul class="consents">
${input.consents.map((c) => consentItem(view, input.csrfToken, c))}</ul>`
}
<h2>${t.text("account.sessions")}</h2>
<p>${input.sessionCount <= 1 ? t.text("account.sessionOne") : t.text("account.sessionMany", { count: input.sessionCount })}</p>
<form method="post" action="/account/sign-out-everywhere">
${hidden("csrf_token", input.csrfToken)}
<button type="submit" class="secondary">${t.text("account.signOutAll")}</button>
</form>
${passkeyScriptTag()}`,
  );
}

/** /account without a session. */
export function accountSignInPage(view: View): Page {
  const { t } = view;
  return titledPage(view, t.text("account.title"), html`<p>${t.text("account.signInFirst")}</p>
<p><a class="button" href="/login">${t.text("account.signIn")}</a></p>`);
}
