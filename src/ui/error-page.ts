import { html, type SafeHtml } from "./html";
import { titledPage, type Page, type View } from "./layout";

/**
 * The one error page of the front channel: a title that says what happened, what to do next (a button when there is
 * somewhere to go), and — folded away — the technical details (the OAuth error code). The operator's support contact
 * is at the foot of every page.
 */

export interface ErrorPageInput {
  title: string;
  message: SafeHtml | string;
  /** The next step: where to go and what the button says. */
  action?: { href: string; label: string } | null;
  /** For whoever debugs it: the OAuth error code and its (English) description. */
  details?: { code: string; description: string | null } | null;
}

export function errorPage(view: View, input: ErrorPageInput): Page {
  const { t } = view;
  return titledPage(
    view,
    input.title,
    html`<p>${input.message}</p>
${input.action ? html`<p><a class="button" href="${input.action.href}">${input.action.label}</a></p>` : null}
${
  input.details
    ? html`<details class="technical"><summary>${t.text("error.details")}</summary>
<p class="muted">${t.html("error.code", { code: html`<code>${input.details.code}</code>` })}</p>
${input.details.description ? html`<p class="muted"><code>${input.details.description}</code></p>` : null}
</details>`
    : null
}`,
  );
}
