import { html, SafeHtml, trustedHtml } from "./html";
import type { Translator } from "./i18n";

/**
 * The frame and the small shared pieces of every page the OP serves: the operator's brand at the top, the support
 * contact at the bottom, one style sheet (light and dark, phone and desktop). Server-rendered; the one script is
 * /passkeys.js.
 */

/** The operator's branding (settings BRAND_*), as the pages and the email show it. */
export interface Brand {
  /** BRAND_NAME, or the issuer's host. */
  name: string;
  /** BRAND_LOGO_URL: an https image, or null. */
  logoUrl: string | null;
  /** BRAND_COLOR, `#rrggbb`, or null for the default. */
  color: string | null;
  /** BRAND_SUPPORT: an email address or an https URL, or null. */
  support: string | null;
}

/** What every page is written with: the language the route chose and the operator's brand. */
export interface View {
  t: Translator;
  brand: Brand;
}

/** A whole page, with the origins of the images it shows: the response's CSP allows exactly those (routes/support/respond.ts). */
export class Page extends SafeHtml {
  constructor(
    value: string,
    readonly imageOrigins: readonly string[],
  ) {
    super(value);
  }
}

const STYLE = trustedHtml(`
  :root { color-scheme: light dark; --bg: #f4f5f7; --card: #fff; --text: #1d1f23; --muted: #555c68; --line: #6b7280; --soft: #d5d9e0;
    --accent: #245; --on-accent: #fff; --link: var(--link-light, #245); --error: #a11; --ok-bg: #eef6ee; --ok: #3a7d44; --code: #eef0f3; }
  @media (prefers-color-scheme: dark) { :root { --bg: #111316; --card: #1c1f24; --text: #e6e8eb; --muted: #a9b0bb; --line: #8b94a3;
    --soft: #3a3f47; --link: var(--link-dark, #9cc3ff); --error: #ff8f85; --ok-bg: #1f3324; --ok: #6fbf7b; --code: #2a2e35; } }
  body { font: 16px/1.5 system-ui, sans-serif; margin: 0; background: var(--bg); color: var(--text); }
  main { max-width: 26rem; margin: 3rem auto 1rem; background: var(--card); padding: 2rem; border-radius: 10px; box-shadow: 0 1px 4px #0003; }
  @media (max-width: 32rem) { main { margin: 1rem; padding: 1.25rem; } }
  header.brand { display: flex; align-items: center; gap: .6rem; margin: -.5rem 0 1.25rem; color: var(--muted); font-weight: 600; }
  header.brand img, .app img { max-height: 40px; max-width: 120px; }
  footer { text-align: center; color: var(--muted); font-size: .9rem; margin: 0 1rem 2rem; }
  h1 { font-size: 1.3rem; margin-top: 0; }
  h2 { font-size: 1.1rem; margin: 1.8rem 0 .5rem; }
  label { display: block; margin: 1rem 0 .25rem; }
  input[type=email], input[type=text] { width: 100%; box-sizing: border-box; min-height: 44px; padding: .5rem; font-size: 1rem; color: inherit;
    background: var(--card); border: 1px solid var(--line); border-radius: 6px; }
  button, a.button { display: inline-flex; align-items: center; justify-content: center; box-sizing: border-box; min-height: 44px; min-width: 44px;
    margin: 1rem .5rem 0 0; padding: .5rem 1.1rem; font: inherit; border-radius: 6px; border: 1px solid var(--accent); background: var(--accent);
    color: var(--on-accent); cursor: pointer; text-decoration: none; }
  button.secondary, a.button.secondary { background: transparent; color: var(--link); border-color: var(--line); }
  a { color: var(--link); }
  .error { color: var(--error); }
  .muted { color: var(--muted); font-size: .9rem; }
  ul.scopes { padding-left: 1.2rem; }
  .app { display: flex; align-items: center; gap: .75rem; }
  .status:empty { display: none; }
  .notice { background: var(--ok-bg); border-left: 4px solid var(--ok); padding: .5rem .75rem; }
  .divider { display: flex; align-items: center; gap: .75rem; color: var(--muted); font-size: .9rem; margin: 1.4rem 0 0; }
  .divider::before, .divider::after { content: ""; flex: 1; border-top: 1px solid var(--soft); }
  ul.passkeys, ul.consents { list-style: none; padding: 0; margin: 0; }
  li.passkey, li.consent { border: 1px solid var(--soft); border-radius: 8px; padding: .25rem .9rem .9rem; margin-bottom: .75rem; }
  li.passkey form, li.consent form { display: inline-block; }
  li.passkey details form { display: block; }
  summary { display: flex; align-items: center; min-height: 44px; cursor: pointer; color: var(--link); }
  details.technical { margin-top: 1.5rem; } details.technical code { overflow-wrap: anywhere; }
  code, pre { background: var(--code); border-radius: 4px; overflow-wrap: anywhere; }
  dl { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; }
  dt { color: var(--muted); } dd { margin: 0; overflow-wrap: anywhere; }
`);

/** WCAG 2 relative luminance and contrast ratio of two `#rrggbb` colours. */
function luminance(hex: string): number {
  const [r, g, b] = [1, 3, 5].map((i) => {
    const c = parseInt(hex.slice(i, i + 2), 16) / 255;
    return c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * r! + 0.7152 * g! + 0.0722 * b!;
}

export function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (hi! + 0.05) / (lo! + 0.05);
}

/**
 * The brand colour as the style sheet's variables: buttons take it with whichever of white or black reads on it
 * (one of them always reaches 4.5:1), links take it only where it reads on the card (4.5:1), light and dark.
 */
function brandColours(color: string | null): SafeHtml | null {
  if (color === null) return null;
  const onAccent = contrast(color, "#ffffff") >= contrast(color, "#000000") ? "#fff" : "#000";
  const link = contrast(color, "#ffffff") >= 4.5 ? color : "#245";
  const linkDark = contrast(color, "#1c1f24") >= 4.5 ? color : "#9cc3ff";
  // The colour is `#rrggbb` (config.ts), so it is nothing but a value here.
  return html`:root { --accent: ${color}; --on-accent: ${onAccent}; --link-light: ${link}; --link-dark: ${linkDark}; }`;
}

/** The origin of an image URL, for the CSP's img-src. */
export function imageOrigin(url: string | null | undefined): string | null {
  if (!url) return null;
  try {
    return new URL(url).origin;
  } catch {
    return null;
  }
}

/** The support contact as a link: `mailto:` for an address, else the URL. */
export function supportLink(support: string): SafeHtml {
  return support.includes("@") && !support.includes("/")
    ? html`<a href="mailto:${support}">${support}</a>`
    : html`<a href="${support}">${support.replace(/^https:\/\//, "")}</a>`;
}

/** A whole page: `title` in the tab, `body` inside the card; `images`: the URLs of the images the body shows. */
export function layout(view: View, title: string, body: SafeHtml, options: { images?: ReadonlyArray<string | null> } = {}): Page {
  const { t, brand } = view;
  const images = [brand.logoUrl, ...(options.images ?? [])].map(imageOrigin).filter((o): o is string => o !== null);
  const page = html`<!doctype html>
<html lang="${t.lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex">
<title>${title} – ${brand.name}</title>
<style>${STYLE}${brandColours(brand.color)}</style>
</head>
<body><main>
<header class="brand">${brand.logoUrl ? html`<img src="${brand.logoUrl}" alt="">` : null}<span>${brand.name}</span></header>
${body}
</main>
${brand.support ? html`<footer>${t.html("footer.help", { contact: supportLink(brand.support) })}</footer>` : null}
</body>
</html>`;
  return new Page(page.value, [...new Set(images)]);
}

/** A page whose heading is its title. */
export function titledPage(view: View, title: string, body: SafeHtml, options: { images?: ReadonlyArray<string | null> } = {}): Page {
  return layout(view, title, html`<h1>${title}</h1>\n${body}`, options);
}

/** A hidden form field; nothing when there is no value to carry. */
export function hidden(name: string, value: string | null | undefined): SafeHtml | null {
  return value === null || value === undefined ? null : html`<input type="hidden" name="${name}" value="${value}">`;
}
