import { escapeHtml as e } from "../routes/respond";

/**
 * Server-rendered pages of the sign-in flow. Every value that comes from a request, a client registration or a user
 * is escaped here; every form carries the CSRF token (routes/cookies.ts) and posts to this origin.
 */

const STYLE = `
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: #f4f5f7; color: #1d1f23; }
  main { max-width: 26rem; margin: 4rem auto; background: #fff; padding: 2rem; border-radius: 10px; box-shadow: 0 1px 4px #0002; }
  h1 { font-size: 1.3rem; margin-top: 0; }
  label { display: block; margin: 1rem 0 .25rem; }
  input[type=email] { width: 100%; box-sizing: border-box; padding: .55rem; font-size: 1rem; border: 1px solid #aab; border-radius: 6px; }
  button { margin-top: 1rem; padding: .55rem 1.1rem; font-size: 1rem; border-radius: 6px; border: 1px solid #245; background: #245; color: #fff; cursor: pointer; }
  button.secondary { background: #fff; color: #245; }
  .error { color: #a11; }
  .muted { color: #667; font-size: .9rem; }
  ul.scopes { padding-left: 1.2rem; }
`;

/** The frame of every page the OP serves. */
export function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${e(title)}</title>
<style>${STYLE}</style>
</head>
<body><main>
${body}
</main></body>
</html>`;
}

export function hidden(name: string, value: string | null | undefined): string {
  return value === null || value === undefined ? "" : `<input type="hidden" name="${e(name)}" value="${e(value)}">`;
}

export function errorPage(title: string, message: string, code?: string): string {
  return layout(
    title,
    `<h1>${e(title)}</h1>
<p>${e(message)}</p>
${code ? `<p class="muted">Error: <code>${e(code)}</code></p>` : ""}`,
  );
}

export interface SignInPageInput {
  csrfToken: string;
  interaction: string | null;
  email: string;
  clientName: string | null;
  error?: string;
}

/** The sign-in form: one input named `email`; submitting it sends a sign-in link. */
export function signInPage(input: SignInPageInput): string {
  return layout(
    "Sign in",
    `<h1>Sign in</h1>
${input.clientName ? `<p>to continue to <strong>${e(input.clientName)}</strong></p>` : ""}
${input.error ? `<p class="error" role="alert">${e(input.error)}</p>` : ""}
<form method="post" action="/login">
${hidden("csrf_token", input.csrfToken)}
${hidden("interaction", input.interaction)}
<label for="email">Email address</label>
<input type="email" id="email" name="email" value="${e(input.email)}" required autocomplete="email" autofocus maxlength="254">
<button type="submit">Email me a sign-in link</button>
</form>`,
  );
}

export function checkEmailPage(email: string): string {
  return layout(
    "Check your email",
    `<h1>Check your email</h1>
<p>If <strong>${e(email)}</strong> can receive email, a sign-in link is on its way. Open it on this device to continue.</p>
<p class="muted">The link works once and expires soon. Nothing arrived? Go back and ask for a new one.</p>`,
  );
}

/** Shown for GET of a sign-in link: link scanners that fetch the URL must not use it up, so only this POST does. */
export interface ConfirmLinkPageInput {
  csrfToken: string;
  token: string;
  email: string;
  /** False when the link is opened in another browser than the one that asked for it. */
  sameBrowser: boolean;
}

export function confirmLinkPage(input: ConfirmLinkPageInput): string {
  const elsewhere = input.sameBrowser
    ? ""
    : `<p class="error">This link was requested from another browser or device. Continue only if you asked for it yourself.</p>`;
  return layout(
    "Finish signing in",
    `<h1>Finish signing in</h1>
<p>Sign in as <strong>${e(input.email)}</strong> on this device.</p>
${elsewhere}
<form method="post" action="/login/email">
${hidden("csrf_token", input.csrfToken)}
${hidden("token", input.token)}
<button type="submit">Sign in</button>
</form>`,
  );
}

export function signedInPage(email: string | null): string {
  return layout(
    "Signed in",
    `<h1>You are signed in</h1>
<p>${email ? `Signed in as <strong>${e(email)}</strong>. ` : ""}You can close this page and return to the application.</p>`,
  );
}

const SCOPE_DESCRIPTIONS: Record<string, string> = {
  openid: "Sign you in with your account identifier",
  profile: "Your name and basic profile",
  email: "Your email address",
  address: "Your postal address",
  phone: "Your phone number",
  offline_access: "Stay connected when you are not using it",
};

export interface ConsentPageInput {
  csrfToken: string;
  interaction: string;
  sid: string;
  clientName: string;
  userEmail: string | null;
  scopes: string[];
}

/** The consent screen: names the client and the scopes; `decision` is `allow` or `deny`. */
export function consentPage(input: ConsentPageInput): string {
  const items = input.scopes.map((s) => `<li>${e(SCOPE_DESCRIPTIONS[s] ?? s)} <span class="muted">(${e(s)})</span></li>`).join("\n");
  return layout(
    "Allow access?",
    `<h1><strong>${e(input.clientName)}</strong> wants to access your account</h1>
${input.userEmail ? `<p class="muted">Signed in as ${e(input.userEmail)}</p>` : ""}
<p>It asks to:</p>
<ul class="scopes">
${items}
</ul>
<form method="post" action="/consent">
${hidden("csrf_token", input.csrfToken)}
${hidden("interaction", input.interaction)}
${hidden("sid", input.sid)}
<button type="submit" name="decision" value="allow">Allow</button>
<button type="submit" name="decision" value="deny" class="secondary">Deny</button>
</form>`,
  );
}
