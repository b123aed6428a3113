import { html, trustedHtml, type SafeHtml } from "./html";

/** The frame and the small shared pieces of every page the OP serves. Server-rendered; the one script is /passkeys.js. */

const STYLE = trustedHtml(`
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
  h2 { font-size: 1.1rem; margin: 1.8rem 0 .5rem; }
  a { color: #245; }
  input[type=text] { width: 100%; box-sizing: border-box; padding: .45rem; font-size: 1rem; border: 1px solid #aab; border-radius: 6px; }
  .status:empty { display: none; }
  .notice { background: #eef6ee; border-left: 4px solid #3a7d44; padding: .5rem .75rem; }
  .divider { display: flex; align-items: center; gap: .75rem; color: #556; font-size: .9rem; margin: 1.4rem 0 0; }
  .divider::before, .divider::after { content: ""; flex: 1; border-top: 1px solid #ccd; }
  ul.passkeys { list-style: none; padding: 0; margin: 0; }
  li.passkey { border: 1px solid #dde; border-radius: 8px; padding: .25rem .9rem .9rem; margin-bottom: .75rem; }
  li.passkey form { display: inline-block; margin-right: .5rem; }
  li.passkey details form { display: block; }
  summary { cursor: pointer; color: #245; margin-top: .25rem; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
  dt { color: #556; } dd { margin: 0; overflow-wrap: anywhere; }
`);

/** A whole page: `title` in the tab, `body` inside the card. */
export function layout(title: string, body: SafeHtml): SafeHtml {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${title}</title>
<style>${STYLE}</style>
</head>
<body><main>
${body}
</main></body>
</html>`;
}

/** A page whose heading is its title. */
export function titledPage(title: string, body: SafeHtml): SafeHtml {
  return layout(title, html`<h1>${title}</h1>\n${body}`);
}

/** A hidden form field; nothing when there is no value to carry. */
export function hidden(name: string, value: string | null | undefined): SafeHtml | null {
  return value === null || value === undefined ? null : html`<input type="hidden" name="${name}" value="${value}">`;
}
