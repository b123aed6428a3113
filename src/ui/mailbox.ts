import { html, trustedHtml, type SafeHtml } from "./html";
import { titledPage } from "./layout";

/**
 * The dev mailbox for a person (GET /dev/mailbox in a browser; scripts get JSON): a form for the address, then that
 * address's messages, newest first, each with its sign-in link as a link. Local development only (routes/dev-mailbox.ts).
 */

export interface MailboxMessage {
  subject: string;
  text: string;
  link: string | null;
  sentAt: number;
}

const STYLE = trustedHtml(`<style>
  main { max-width: 40rem; }
  article { border-top: 1px solid #dde; padding: .75rem 0; }
  article h2 { font-size: 1rem; margin: 0; }
  pre { white-space: pre-wrap; overflow-wrap: anywhere; background: #f4f5f7; padding: .6rem; border-radius: 6px; font-size: .85rem; }
  a.button { display: inline-block; margin: .5rem 0; padding: .45rem 1rem; border-radius: 6px; background: #245; color: #fff; text-decoration: none; }
</style>`);

function when(sentAt: number): string {
  return `${new Date(sentAt).toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

/** `to`: the address asked for (null: only the form); `messages`: its messages, newest first. */
export function mailboxPage(to: string | null, messages: readonly MailboxMessage[]): SafeHtml {
  const list =
    to === null
      ? null
      : messages.length === 0
        ? html`<p>No messages for <strong>${to}</strong> yet. Ask for a sign-in link, then <a href="/dev/mailbox?to=${encodeURIComponent(to)}">reload this page</a>.</p>`
        : html`<p>${messages.length} message${messages.length === 1 ? "" : "s"} for <strong>${to}</strong>, newest first. <a href="/dev/mailbox?to=${encodeURIComponent(to)}">Reload</a></p>
${messages.map(
  (m) => html`<article>
<h2>${m.subject}</h2>
<p class="muted">${when(m.sentAt)}</p>
${m.link === null ? null : html`<a class="button" href="${m.link}">Open the sign-in link</a>`}
<pre>${m.text}</pre>
</article>
`,
)}`;
  return titledPage(
    "Dev mailbox",
    html`${STYLE}<p class="muted">Local development only: with <code>EMAIL_TRANSPORT=dev</code> on a loopback issuer, email is kept here instead of being sent.</p>
<form method="get" action="/dev/mailbox">
<label for="to">Email address</label>
<input type="email" id="to" name="to" value="${to ?? ""}" required maxlength="320" autocomplete="email"${to === null ? trustedHtml(" autofocus") : null}>
<button type="submit">Show messages</button>
</form>
${list}`,
  );
}
