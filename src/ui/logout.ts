import { escapeHtml } from "../routes/respond";

/**
 * The pages of RP-initiated logout: "Sign out?" (when the request is not tied to a valid ID token), "signed out",
 * "still signed in", and the error page (never a redirect to an unregistered URI). Server-rendered, no script.
 */

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;background:#f5f5f7;color:#1d1d1f;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center}
main{background:#fff;border-radius:12px;box-shadow:0 2px 12px rgba(0,0,0,.08);padding:2rem;max-width:26rem;width:100%}
h1{font-size:1.4rem;margin:0 0 1rem}
p{line-height:1.5}
.actions{display:flex;gap:.75rem;margin-top:1.5rem}
button{font:inherit;padding:.6rem 1.2rem;border-radius:8px;border:1px solid #c7c7cc;background:#fff;cursor:pointer}
button.primary{background:#0a66c2;border-color:#0a66c2;color:#fff}
</style>
</head>
<body>
<main>
<h1>${escapeHtml(title)}</h1>
${body}
</main>
</body>
</html>`;
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

function hidden(name: string, value: string | null): string {
  return value === null ? "" : `<input type="hidden" name="${name}" value="${escapeHtml(value)}">`;
}

export function logoutConfirmPage(c: LogoutConfirmation): string {
  const who = c.clientName === null ? "An application" : `<strong>${escapeHtml(c.clientName)}</strong>`;
  return page(
    "Sign out?",
    `<p>${who} asked to sign you out. Do you want to sign out of this identity provider?</p>
<form method="post" action="/logout/confirm">
${hidden("csrf_token", c.csrfToken)}${hidden("client_id", c.clientId)}${hidden("post_logout_redirect_uri", c.postLogoutRedirectUri)}${hidden("state", c.state)}
<div class="actions">
<button class="primary" type="submit" name="decision" value="yes">Yes, sign out</button>
<button type="submit" name="decision" value="no">No, stay signed in</button>
</div>
</form>`,
  );
}

export function signedOutPage(): string {
  return page("Signed out", `<p>You have been signed out. You can close this window.</p>`);
}

export function stillSignedInPage(): string {
  return page("Still signed in", `<p>You are still signed in. You can close this window.</p>`);
}

export function logoutErrorPage(description: string): string {
  return page("Sign-out request not accepted", `<p>${escapeHtml(description)}</p><p>You have not been redirected. You can close this window.</p>`);
}
