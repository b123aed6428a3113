import { html, trustedHtml } from "./html";
import { titledPage, type Page, type View } from "./layout";

/**
 * The dev mailbox for a person (GET /dev/mailbox in a browser; scripts get JSON): a form for the address, then that
 * address's messages, newest first, each with its sign-in link as a link and both of its parts — the text, and the
 * HTML shown in a sandboxed frame (no script, no navigation of this page). Local development only (routes/dev-mailbox.ts).
 */

export interface MailboxMessage {
  from: string | null;
  subject: string;
  text: string;
  html: string | null;
  link: string | null;
  sentAt: number;
}

const STYLE = trustedHtml(`<style>
  main { max-width: 40rem; }
  article { border-top: 1px solid var(--soft); padding: .75rem 0; }
  article h2 { font-size: 1rem; margin: 0; }
  pre { white-space: pre-wrap; overflow-wrap: anywhere; padding: .6rem; font-size: .85rem; }
  iframe { width: 100%; height: 22rem; border: 1px solid var(--soft); border-radius: 6px; background: #fff; }
  h3 { font-size: .9rem; margin: .75rem 0 .25rem; }
</style>`);

/** `to`: the address asked for (null: only the form); `messages`: its messages, newest first. */
export function mailboxPage(view: View, to: string | null, messages: readonly MailboxMessage[]): Page {
  const { t } = view;
  const reload = (label: string) => html`<a href="/dev/mailbox?to=${encodeURIComponent(to ?? "")}">${label}</a>`;
  const list =
    to === null
      ? null
      : messages.length === 0
        ? html`<p>${t.html("mailbox.empty", { to: html`<strong>${to}</strong>`, reload: reload(t.text("mailbox.reloadPage")) })}</p>`
        : html`<p>${t.html(messages.length === 1 ? "mailbox.countOne" : "mailbox.countMany", { count: messages.length, to: html`<strong>${to}</strong>` })} ${reload(t.text("mailbox.reload"))}</p>
${messages.map(
  (m, i) => html`<article>
<h2>${m.subject}</h2>
<p class="muted">${m.from === null ? null : html`${t.text("mailbox.from", { from: m.from })} · `}${t.date(m.sentAt)}</p>
${m.link === null ? null : html`<a class="button" href="${m.link}">${t.text("mailbox.open")}</a>`}
<h3>${t.text("mailbox.text")}</h3>
<pre>${m.text}</pre>
${m.html === null ? null : html`<h3>${t.text("mailbox.html")}</h3>
<iframe sandbox srcdoc="${m.html}" title="${t.text("mailbox.html")} ${i + 1}"></iframe>`}
</article>
`,
)}`;
  return titledPage(
    view,
    t.text("mailbox.title"),
    html`${STYLE}<p class="muted">${t.text("mailbox.about")}</p>
<form method="get" action="/dev/mailbox">
<label for="to">${t.text("mailbox.address")}</label>
<input type="email" id="to" name="to" value="${to ?? ""}" required maxlength="320" autocomplete="email"${to === null ? trustedHtml(" autofocus") : null}>
<button type="submit">${t.text("mailbox.show")}</button>
</form>
${list}`,
  );
}
