import { html, type SafeHtml } from "./html";
import { titledPage } from "./layout";

/** The one error page of the front channel: what happened, and the OAuth error code when there is one. */
export function errorPage(title: string, message: string, code?: string): SafeHtml {
  return titledPage(title, html`<p>${message}</p>
${code ? html`<p class="muted">Error: <code>${code}</code></p>` : null}`);
}
