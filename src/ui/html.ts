/**
 * The one way HTML is written: a tagged template that escapes every interpolated value, unless the value is itself
 * `SafeHtml` (made by this template, or by `trustedHtml` for text that is ours and never from a request).
 * Arrays are joined; `null`, `undefined` and `false` render as nothing, so `${cond ? html`…` : null}` reads plainly.
 */

export class SafeHtml {
  constructor(readonly value: string) {}
  toString(): string {
    return this.value;
  }
}

export type HtmlValue = SafeHtml | string | number | boolean | null | undefined | readonly HtmlValue[];

const ESCAPES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

/** Text content and quoted attribute values alike: the five characters that can end either are replaced. */
function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ESCAPES[c]!);
}

function render(value: HtmlValue): string {
  if (value === null || value === undefined || value === false) return "";
  if (value instanceof SafeHtml) return value.value;
  if (Array.isArray(value)) return value.map(render).join("");
  return escape(String(value));
}

export function html(strings: TemplateStringsArray, ...values: HtmlValue[]): SafeHtml {
  let out = strings[0]!;
  for (let i = 0; i < values.length; i++) out += render(values[i]!) + strings[i + 1]!;
  return new SafeHtml(out);
}

/** Marks markup written in this code base (a style sheet, a fixed script) as safe. Never for anything from a request. */
export function trustedHtml(markup: string): SafeHtml {
  return new SafeHtml(markup);
}
