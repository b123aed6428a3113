import { html, trustedHtml, type SafeHtml } from "./html";
import { translator, type Translator } from "./i18n";

/**
 * OAuth 2.0 Form Post Response Mode: a page that posts the authorization response to the client's redirect URI by
 * itself. Its one script is allowed by its hash (the route's CSP) and nothing else.
 */

const FORM_POST_SCRIPT = "document.forms[0].submit();";
/** base64(sha256(FORM_POST_SCRIPT)); tests check it against the script. */
export const FORM_POST_SCRIPT_HASH = "sha256-8lDeP0UDwCO6/RhblgeH/ctdBzjVpJxrXizsnIk3cEQ=";

/** `t`: the language of the request being answered (English when there is none). */
export function formPostPage(redirectUri: string, params: Record<string, string>, t: Translator = translator("en")): SafeHtml {
  const fields = Object.entries(params).map(([name, value]) => html`<input type="hidden" name="${name}" value="${value}">\n`);
  return html`<!doctype html>
<html lang="${t.lang}"><head><meta charset="utf-8"><title>${t.text("formPost.title")}</title></head>
<body>
<form method="post" action="${redirectUri}">
${fields}<noscript><p>${t.text("formPost.noscript")}</p><button type="submit">${t.text("formPost.button")}</button></noscript>
</form>
<script>${trustedHtml(FORM_POST_SCRIPT)}</script>
</body></html>`;
}
