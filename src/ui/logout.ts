import { escapeHtml } from "../routes/respond";
import { hidden, layout } from "./pages";

/**
 * The pages of RP-initiated logout: "Sign out?" (when the request is not tied to a valid ID token), "signed out" and
 * "still signed in". Errors are the front channel's one error page (never a redirect to an unregistered URI).
 * Server-rendered, no script.
 */

/** The shared page frame, with the title as the heading. */
function page(title: string, body: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1>\n${body}`);
}

export interface LogoutConfirmation {
  /** The client that asked, when known (shown by name). */
  clientName: string | null;
  csrfToken: string;
  /** Carried to the confirmation POST, where they are checked again (never trusted from the form). */
  clientId: string | null;
  postLogoutRedirectUri: string | null;
  state: string | null;
}

export function logoutConfirmPage(c: LogoutConfirmation): string {
  const who = c.clientName === null ? "An application" : `<strong>${escapeHtml(c.clientName)}</strong>`;
  return page(
    "Sign out?",
    `<p>${who} asked to sign you out. Do you want to sign out of this identity provider?</p>
<form method="post" action="/logout/confirm">
${hidden("csrf_token", c.csrfToken)}${hidden("client_id", c.clientId)}${hidden("post_logout_redirect_uri", c.postLogoutRedirectUri)}${hidden("state", c.state)}
<button type="submit" name="decision" value="yes">Yes, sign out</button>
<button class="secondary" type="submit" name="decision" value="no">No, stay signed in</button>
</form>`,
  );
}

export function signedOutPage(): string {
  return page("Signed out", `<p>You have been signed out. You can close this window.</p>`);
}

export function stillSignedInPage(): string {
  return page("Still signed in", `<p>You are still signed in. You can close this window.</p>`);
}
