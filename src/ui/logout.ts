import { html, type SafeHtml } from "./html";
import { hidden, titledPage, type Page, type View } from "./layout";

/**
 * The pages of RP-initiated logout: "Sign out?" (when the request is not tied to a valid ID token), "signed out",
 * "signed out everywhere", "still signed in", and "not signed in" (there was no session to end). Errors are the front
 * channel's one error page (never a redirect to an unregistered URI). The apps a session signed in to are named,
 * split by whether the OP tells them (back-channel logout) or the user has to sign out there too.
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
  /** The request's ui_locales, carried so the answer is in the same language. */
  uiLocales?: string | null;
  apps: SessionApps;
}

function appList(names: string[]): SafeHtml {
  return html`<ul class="scopes">${names.map((name) => html`<li>${name}</li>`)}</ul>`;
}

function appsPart(apps: SessionApps, told: string, notTold: string): SafeHtml {
  return html`${apps.told.length > 0 ? html`<p>${told}</p>\n${appList(apps.told)}` : null}
${apps.notTold.length > 0 ? html`<p class="muted">${notTold}</p>\n${appList(apps.notTold)}` : null}`;
}

export function logoutConfirmPage(view: View, c: LogoutConfirmation): Page {
  const { t } = view;
  const who: SafeHtml | string = c.clientName === null ? t.text("logout.anApp") : html`<strong>${c.clientName}</strong>`;
  return titledPage(
    view,
    t.text("logout.title"),
    html`<p>${t.html("logout.asked", { app: who })}</p>
${appsPart(c.apps, t.text("logout.appsTold"), t.text("logout.appsNotTold"))}
<form method="post" action="/logout/confirm">
${hidden("csrf_token", c.csrfToken)}${hidden("client_id", c.clientId)}${hidden("post_logout_redirect_uri", c.postLogoutRedirectUri)}${hidden("state", c.state)}${hidden("ui_locales", c.uiLocales)}
<button type="submit" name="decision" value="yes">${t.text("logout.yes")}</button>
<button class="secondary" type="submit" name="decision" value="no">${t.text("logout.no")}</button>
<p class="muted">${t.text("logout.everywhereWhy")}</p>
<button class="secondary" type="submit" name="decision" value="everywhere">${t.text("account.signOutAll")}</button>
</form>`,
  );
}

export function signedOutPage(view: View, apps: SessionApps = NO_APPS): Page {
  const { t } = view;
  return titledPage(
    view,
    t.text("logout.done"),
    html`<p>${t.text("logout.doneText")}</p>
${appsPart(apps, t.text("logout.appsWereTold"), t.text("logout.appsWereNotTold"))}`,
  );
}

export function signedOutEverywherePage(view: View, sessions: number): Page {
  const { t } = view;
  return titledPage(
    view,
    t.text("logout.everywhereTitle"),
    html`<p>${sessions === 1 ? t.text("logout.everywhereOne") : t.text("logout.everywhereMany", { count: sessions })}</p>
<p class="muted">${t.text("logout.everywhereAfter")}</p>`,
  );
}

export function stillSignedInPage(view: View): Page {
  return titledPage(view, view.t.text("logout.kept"), html`<p>${view.t.text("logout.keptText")}</p>`);
}

/** A logout that found no session: nothing was signed out, so the page does not say it was. */
export function notSignedInPage(view: View): Page {
  return titledPage(view, view.t.text("logout.none"), html`<p>${view.t.text("logout.noneText")}</p>`);
}
