import { html, type SafeHtml } from "./html";
import { hidden, titledPage } from "./layout";

/**
 * The passkey parts of the pages: the sign-in button, the "Sign in faster next time" offer and the pages that say
 * what went wrong. The controls are `hidden` until /passkeys.js finds WebAuthn in the browser (ui/passkeys-script.ts).
 */

export const PASSKEY_SCRIPT_PATH = "/passkeys.js";

export function passkeyScriptTag(): SafeHtml {
  return html`<script src="${PASSKEY_SCRIPT_PATH}" defer></script>`;
}

/**
 * The fields /passkeys.js fills in before it submits a ceremony's form: the challenge id that came with the options,
 * and the browser's response as JSON. Empty until then (the server refuses an empty one).
 */
function ceremonyFields(csrfToken: string, interaction: string | null): SafeHtml {
  return html`${hidden("csrf_token", csrfToken)}${hidden("interaction", interaction)}<input type="hidden" name="challenge"><input type="hidden" name="response">`;
}

/** "Sign in with a passkey" (a discoverable credential: no email typed), above the email form of the sign-in page. */
export function passkeySignInForm(input: { csrfToken: string; interaction: string | null; only: boolean }): SafeHtml {
  return html`<form method="post" action="/login/passkey" data-passkey="sign-in" data-options="/login/passkey/options" hidden>
${ceremonyFields(input.csrfToken, input.interaction)}
<button type="submit">Sign in with a passkey</button>
<p class="status" role="status" aria-live="polite"></p>
${input.only ? null : html`<p class="divider"><span>or get a link by email</span></p>`}
</form>`;
}

/** "Add a passkey": a registration ceremony; `from` says where the user goes back to. */
export function passkeyRegisterForm(csrfToken: string, interaction: string | null, from: "offer" | "account"): SafeHtml {
  return html`<form method="post" action="/passkeys/register" data-passkey="register" data-options="/passkeys/register/options" hidden>
${ceremonyFields(csrfToken, interaction)}${hidden("from", from)}
<button type="submit">Add a passkey</button>
<p class="status" role="status" aria-live="polite"></p>
</form>`;
}

export interface PasskeyOfferInput {
  csrfToken: string;
  interaction: string | null;
  email: string;
}

/** After an email sign-in: add a passkey now, or "Not now" (asked again after a while). */
export function passkeyOfferPage(input: PasskeyOfferInput): SafeHtml {
  return titledPage(
    "Sign in faster next time",
    html`<p>You are signed in as <strong>${input.email}</strong>.</p>
<p>Add a passkey and next time you sign in with your fingerprint, face or screen lock — no email to wait for, and nothing
anyone can trick you into typing on another site.</p>
${passkeyRegisterForm(input.csrfToken, input.interaction, "offer")}
<form method="post" action="/passkeys/offer">
${hidden("csrf_token", input.csrfToken)}${hidden("interaction", input.interaction)}
<button type="submit" name="decision" value="later" class="secondary">Not now</button>
</form>
${passkeyScriptTag()}`,
  );
}

/** A passkey step that did not work: what happened, that nothing else changed, and where to try again. */
export function passkeyProblemPage(title: string, message: string, retry: { href: string; label: string }): SafeHtml {
  return titledPage(title, html`<p>${message}</p>
<p><a href="${retry.href}">${retry.label}</a></p>`);
}

/** C7: the passkey's signature counter went backwards — it may have been copied. */
export function counterRegressionPage(retryHref: string): SafeHtml {
  return titledPage(
    "This passkey was not accepted",
    html`<p>The passkey you used reported that it has been used fewer times than we have already seen. That can mean the
passkey was copied to another device, so for your safety it was not accepted, and this was recorded.</p>
<p>Sign in another way, then check the passkeys on your account page and remove any you do not recognise.</p>
<p><a href="${retryHref}">Back to sign-in</a></p>`,
  );
}
