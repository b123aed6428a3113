import { html, type HtmlValue, type SafeHtml } from "../html";
import { en, type Catalogue, type MessageKey } from "./en";
import { ja } from "./ja";

/**
 * The languages of the pages and emails: one catalogue per language (en.ts, ja.ts), the choice of one for a request,
 * and the `Translator` the pages are written with. The routes choose; the pages only look strings up.
 */

export type { MessageKey };

const CATALOGUES = { en, ja } satisfies Record<string, Catalogue>;

export type Language = keyof typeof CATALOGUES;

/** Every language the pages speak, the default first (discovery's `ui_locales_supported`). */
export const LANGUAGES = Object.keys(CATALOGUES) as Language[];

export function isLanguage(tag: string): tag is Language {
  return Object.hasOwn(CATALOGUES, tag);
}

/** The language of a BCP 47 tag we have, by its primary subtag (`ja-JP` → `ja`), or null. */
function supported(tag: string): Language | null {
  const primary = tag.trim().split("-")[0]!.toLowerCase();
  return isLanguage(primary) ? primary : null;
}

/** Accept-Language (RFC 9110 §12.5.4): the tags by weight, highest first; `q=0` and `*` name nothing. */
function acceptedTags(header: string): string[] {
  return header
    .split(",")
    .slice(0, 32)
    .map((part, i) => {
      const [tag, ...params] = part.split(";");
      const q = params.map((p) => /^\s*q\s*=\s*([0-9.]+)\s*$/i.exec(p)?.[1]).find((v) => v !== undefined);
      return { tag: tag!.trim(), q: q === undefined ? 1 : Number(q), i };
    })
    .filter((t) => t.tag !== "" && t.tag !== "*" && t.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i)
    .map((t) => t.tag);
}

/**
 * The language of a page or email: the first of `ui_locales` (OIDC Core §3.1.2.1, space-separated, in order of
 * preference) that we have, then the browser's Accept-Language, then the operator's default.
 */
export function chooseLanguage(uiLocales: string | null | undefined, acceptLanguage: string | null | undefined, fallback: Language): Language {
  for (const tag of (uiLocales ?? "").split(" ").slice(0, 16)) {
    const found = tag === "" ? null : supported(tag);
    if (found) return found;
  }
  for (const tag of acceptedTags((acceptLanguage ?? "").slice(0, 1024))) {
    const found = supported(tag);
    if (found) return found;
  }
  return fallback;
}

export type Params = Record<string, HtmlValue>;

/** The strings of one language, looked up by key; `{name}` in a string is filled from `params`. */
export interface Translator {
  readonly lang: Language;
  /** Plain text: a title, an attribute, an email's text part. */
  text(key: MessageKey, params?: Record<string, string | number>): string;
  /** Markup: the string escaped, each `{name}` replaced by its value (escaped, unless it is markup of the template). */
  html(key: MessageKey, params?: Params): SafeHtml;
  /** A moment as people of this language write it, to the minute, in UTC (the page cannot know the user's zone). */
  date(ms: number): string;
  /** A number of minutes, spelled for this language ("15 minutes", "15 分"). */
  minutes(n: number): string;
  /** A list joined for this language ("a, b and c"). */
  list(items: string[]): string;
}

const PLACEHOLDER = /\{(\w+)\}/;

function pieces(message: string, params: Params): HtmlValue[] {
  return message.split(PLACEHOLDER).map((part, i) => (i % 2 === 1 ? (params[part] ?? "") : part));
}

const translators = new Map<Language, Translator>();

export function translator(lang: Language): Translator {
  const known = translators.get(lang);
  if (known) return known;
  const catalogue: Catalogue = CATALOGUES[lang];
  const dates = new Intl.DateTimeFormat(lang, { dateStyle: "medium", timeStyle: "short", timeZone: "UTC" });
  const lists = new Intl.ListFormat(lang, { type: "unit" });
  const t: Translator = {
    lang,
    text: (key, params = {}) => pieces(catalogue[key], params).join(""),
    html: (key, params = {}) => html`${pieces(catalogue[key], params)}`,
    date: (ms) => `${dates.format(ms)} UTC`,
    minutes: (n) => new Intl.NumberFormat(lang, { style: "unit", unit: "minute", unitDisplay: "long" }).format(n),
    list: (items) => lists.format(items),
  };
  translators.set(lang, t);
  return t;
}

/** The catalogues themselves, for the test that every key is in every language. */
export const CATALOGUE_ENTRIES: ReadonlyArray<[Language, Catalogue]> = Object.entries(CATALOGUES) as Array<[Language, Catalogue]>;
