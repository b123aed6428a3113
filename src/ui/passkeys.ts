import { html, type SafeHtml } from "./html";
import type { MessageKey } from "./i18n";
import { hidden, titledPage, type Page, type View } from "./layout";

/**
 * The passkey parts of the pages: the sign-in button and the "Sign in faster next time" offer. The controls are
 * `hidden` until /passkeys.js finds WebAuthn in the browser (ui/passkeys-script.ts). What went wrong in a passkey step
 * is the one error page (routes/support/errors.ts).
 */

export const PASSKEY_SCRIPT_PATH = "/passkeys.js";

export function passkeyScriptTag(): SafeHtml {
  return html`<script src="${PASSKEY_SCRIPT_PATH}" defer></script>`;
}

/** What the script may say while a ceremony runs, in the page's language: `data-say-NAME` on the form. */
const SCRIPT_MESSAGES: Record<string, MessageKey> = {
  waiting: "js.waiting",
  "signing-in": "js.signingIn",
  creating: "js.creating",
  saving: "js.saving",
  cancelled: "js.cancelled",
  exists: "js.exists",
  "bad-address": "js.badAddress",
  failed: "js.failed",
  "signed-out": "js.signedOut",
  "too-many": "js.tooMany",
};

function scriptMessages(view: View): SafeHtml {
  return html`${Object.entries(SCRIPT_MESSAGES).map(([name, key]) => html` data-say-${name}="${view.t.text(key)}"`)}`;
}

/**
 * The fields /passkeys.js fills in before it submits a ceremony's form: the challenge id that came with the options,
 * and the browser's response as JSON. Empty until then (the server refuses an empty one).
 */
function ceremonyFields(csrfToken: string, interaction: string | null): SafeHtml {
  return html`${hidden("csrf_token", csrfToken)}${hidden("interaction", interaction)}<input type="hidden" name="challenge"><input type="hidden" name="response">`;
}

/** "Sign in with a passkey" (a discoverable credential: no email typed), above the email form of the sign-in page. */
export function passkeySignInForm(view: View, input: { csrfToken: string; interaction: string | null; only: boolean }): SafeHtml {
  const { t } = view;
  return html`<form method="post" action="/login/passkey" data-passkey="sign-in" data-options="/login/passkey/options"${scriptMessages(view)} hidden>
${ceremonyFields(input.csrfToken, input.interaction)}
<button type="submit">${t.text("passkey.signIn")}</button>
<p class="status" role="status" aria-live="polite"></p>
${input.only ? null : html`<p class="divider"><span>${t.text("passkey.orEmail")}</span></p>`}
</form>`;
}

/** "Add a passkey": a registration ceremony; `from` says where the user goes back to. */
export function passkeyRegisterForm(view: View, csrfToken: string, interaction: string | null, from: "offer" | "account"): SafeHtml {
  return html`<form method="post" action="/passkeys/register" data-passkey="register" data-options="/passkeys/register/options"${scriptMessages(view)} hidden>
${ceremonyFields(csrfToken, interaction)}${hidden("from", from)}
<button type="submit">${view.t.text("passkey.add")}</button>
<p class="status" role="status" aria-live="polite"></p>
</form>`;
}

export interface PasskeyOfferInput {
  csrfToken: string;
  interaction: string | null;
  email: string;
}

/** After an email sign-in: add a passkey now, or "Not now" (asked again after a while). */
export function passkeyOfferPage(view: View, input: PasskeyOfferInput): Page {
  const { t } = view;
  return titledPage(
    view,
    t.text("offer.title"),
    html`<p>${t.html("offer.as", { email: html`<strong>${input.email}</strong>` })}</p>
<p>${t.text("offer.why")}</p>
${passkeyRegisterForm(view, input.csrfToken, input.interaction, "offer")}
<form method="post" action="/passkeys/offer">
${hidden("csrf_token", input.csrfToken)}${hidden("interaction", input.interaction)}
<button type="submit" name="decision" value="later" class="secondary">${t.text("offer.later")}</button>
</form>
${passkeyScriptTag()}`,
  );
}
