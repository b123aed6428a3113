import { html, type SafeHtml } from "./html";
import { hidden, titledPage } from "./layout";

/**
 * The pages of RP-initiated logout: "Sign out?" (when the request is not tied to a valid ID token), "signed out" and
 * "still signed in". Errors are the front channel's one error page (never a redirect to an unregistered URI).
 */

export interface LogoutConfirmation {
  /** The client that asked, when known (shown by name). */
  clientName: string | null;
  csrfToken: string;
  /** Carried to the confirmation POST, where they are checked again (never trusted from the form). */
  clientId: string | null;
  postLogoutRedirectUri: string | null;
  state: string | null;
}

export function logoutConfirmPage(c: LogoutConfirmation): SafeHtml {
  const who = c.clientName === null ? "An application" : html`<strong>${c.clientName}</strong>`;
  return titledPage(
    "Sign out?",
    html`<p>${who} asked to sign you out. Do you want to sign out of this identity provider?</p>
<form method="post" action="/logout/confirm">
${hidden("csrf_token", c.csrfToken)}${hidden("client_id", c.clientId)}${hidden("post_logout_redirect_uri", c.postLogoutRedirectUri)}${hidden("state", c.state)}
<button type="submit" name="decision" value="yes">Yes, sign out</button>
<button class="secondary" type="submit" name="decision" value="no">No, stay signed in</button>
</form>`,
  );
}

export function signedOutPage(): SafeHtml {
  return titledPage("Signed out", html`<p>You have been signed out. You can close this window.</p>`);
}

export function stillSignedInPage(): SafeHtml {
  return titledPage("Still signed in", html`<p>You are still signed in. You can close this window.</p>`);
}
