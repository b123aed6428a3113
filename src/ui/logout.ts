import { html, type SafeHtml } from "./html";
import { hidden, titledPage, type Page, type View } from "./layout";

/**
 * The pages of RP-initiated logout: "Sign out?" (when the request is not tied to a valid ID token), "signed out",
 * "still signed in", and "not signed in" (there was no session to end). Errors are the front channel's one error page
 * (never a redirect to an unregistered URI).
 */

export interface LogoutConfirmation {
  /** The client that asked, when known (shown by name). */
  clientName: string | null;
  csrfToken: string;
  /** Carried to the confirmation POST, where they are checked again (never trusted from the form). */
  clientId: string | null;
  postLogoutRedirectUri: string | null;
  state: string | null;
  /** The request's ui_locales, carried so the answer is in the same language. */
  uiLocales?: string | null;
}

export function logoutConfirmPage(view: View, c: LogoutConfirmation): Page {
  const { t } = view;
  const who: SafeHtml | string = c.clientName === null ? t.text("logout.anApp") : html`<strong>${c.clientName}</strong>`;
  return titledPage(
    view,
    t.text("logout.title"),
    html`<p>${t.html("logout.asked", { app: who })}</p>
<form method="post" action="/logout/confirm">
${hidden("csrf_token", c.csrfToken)}${hidden("client_id", c.clientId)}${hidden("post_logout_redirect_uri", c.postLogoutRedirectUri)}${hidden("state", c.state)}${hidden("ui_locales", c.uiLocales)}
<button type="submit" name="decision" value="yes">${t.text("logout.yes")}</button>
<button class="secondary" type="submit" name="decision" value="no">${t.text("logout.no")}</button>
</form>`,
  );
}

export function signedOutPage(view: View): Page {
  return titledPage(view, view.t.text("logout.done"), html`<p>${view.t.text("logout.doneText")}</p>`);
}

export function stillSignedInPage(view: View): Page {
  return titledPage(view, view.t.text("logout.kept"), html`<p>${view.t.text("logout.keptText")}</p>`);
}

/** A logout that found no session: nothing was signed out, so the page does not say it was. */
export function notSignedInPage(view: View): Page {
  return titledPage(view, view.t.text("logout.none"), html`<p>${view.t.text("logout.noneText")}</p>`);
}
