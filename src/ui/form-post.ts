import { html, trustedHtml, type SafeHtml } from "./html";

/**
 * OAuth 2.0 Form Post Response Mode: a page that posts the authorization response to the client's redirect URI by
 * itself. Its one script is allowed by its hash (the route's CSP) and nothing else.
 */

const FORM_POST_SCRIPT = "document.forms[0].submit();";
/** base64(sha256(FORM_POST_SCRIPT)); tests check it against the script. */
export const FORM_POST_SCRIPT_HASH = "sha256-8lDeP0UDwCO6/RhblgeH/ctdBzjVpJxrXizsnIk3cEQ=";

export function formPostPage(redirectUri: string, params: Record<string, string>): SafeHtml {
  const fields = Object.entries(params).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">\n`);
  return html`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Submit this form</title></head>
<body>
<form method="post" action="${redirectUri}">
${fields}<noscript><p>JavaScript is off: press the button to continue.</p><button type="submit">Continue</button></noscript>
</form>
<script>${trustedHtml(FORM_POST_SCRIPT)}</script>
</body></html>`;
}
