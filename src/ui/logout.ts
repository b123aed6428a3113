import { html, type SafeHtml } from "./html";
import { hidden, titledPage } from "./layout";

/**
 * The pages of RP-initiated logout: "Sign out?" (when the request is not tied to a valid ID token), "signed out",
 * "signed out everywhere" and "still signed in". Errors are the front channel's one error page (never a redirect to an
 * unregistered URI). The apps a session signed in to are named, split by whether the OP tells them (back-channel
 * logout) or the user has to sign out there too.
 */

export interface SessionApps {
  /** Apps that are sent a logout notice. */
  told: string[];
  /** Apps the session signed in to that registered no back-channel logout URI: the OP cannot sign the user out there. */
  notTold: string[];
}

export const NO_APPS: SessionApps = { told: [], notTold: [] };

export interface LogoutConfirmation {
  /** The client that asked, when known (shown by name). */
  clientName: string | null;
  csrfToken: string;
  /** Carried to the confirmation POST, where they are checked again (never trusted from the form). */
  clientId: string | null;
  postLogoutRedirectUri: string | null;
  state: string | null;
  apps: SessionApps;
}

function appList(names: string[]): SafeHtml {
  return html`<ul class="scopes">${names.map((name) => html`<li>${name}</li>`)}</ul>`;
}

function appsPart(apps: SessionApps, told: string, notTold: string): SafeHtml {
  return html`${apps.told.length > 0 ? html`<p>${told}</p>\n${appList(apps.told)}` : null}
${apps.notTold.length > 0 ? html`<p class="muted">${notTold}</p>\n${appList(apps.notTold)}` : null}`;
}

export function logoutConfirmPage(c: LogoutConfirmation): SafeHtml {
  const who = c.clientName === null ? "An application" : html`<strong>${c.clientName}</strong>`;
  return titledPage(
    "Sign out?",
    html`<p>${who} asked to sign you out. Do you want to sign out of this identity provider?</p>
${appsPart(c.apps, "These apps will be signed out too:", "These apps are not told; sign out there too:")}
<form method="post" action="/logout/confirm">
${hidden("csrf_token", c.csrfToken)}${hidden("client_id", c.clientId)}${hidden("post_logout_redirect_uri", c.postLogoutRedirectUri)}${hidden("state", c.state)}
<button type="submit" name="decision" value="yes">Yes, sign out</button>
<button class="secondary" type="submit" name="decision" value="no">No, stay signed in</button>
<p class="muted">Lost a device, or signed in somewhere you should not be? Sign out everywhere ends every session of
yours, on every device, and the access every app was given to your account.</p>
<button class="secondary" type="submit" name="decision" value="everywhere">Sign out everywhere</button>
</form>`,
  );
}

export function signedOutPage(apps: SessionApps = NO_APPS): SafeHtml {
  return titledPage(
    "Signed out",
    html`<p>You have been signed out. You can close this window.</p>
${appsPart(apps, "These apps were told to sign you out too:", "These apps were not told; sign out there too:")}`,
  );
}

export function signedOutEverywherePage(sessions: number): SafeHtml {
  const ended = sessions === 1 ? "1 session was ended" : `${sessions} sessions were ended`;
  return titledPage(
    "Signed out everywhere",
    html`<p>You have been signed out on every device: ${ended}, and every app's access to your account was withdrawn.</p>
<p class="muted">Apps that stay open will ask you to sign in again. You can close this window.</p>`,
  );
}

export function stillSignedInPage(): SafeHtml {
  return titledPage("Still signed in", html`<p>You are still signed in. You can close this window.</p>`);
}
