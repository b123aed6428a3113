import { issuerOf, loadConfig } from "../../config";
import type { Env } from "../../env";
import { chooseLanguage, translator } from "../../ui/i18n";
import type { Brand, View } from "../../ui/layout";

/**
 * How a route writes its pages: the language it chose (the request's `ui_locales` — or the pending request's, carried
 * with it — then Accept-Language, then DEFAULT_LANGUAGE) and the operator's brand (BRAND_* settings).
 */

export function brandOf(env: Env, request: Request): Brand {
  const config = loadConfig(env);
  let name = config.brandName;
  if (name === "") {
    try {
      name = new URL(issuerOf(env, request)).host;
    } catch {
      name = ""; // no issuer for this host: the refusal page has no name to show
    }
  }
  return {
    name,
    logoUrl: config.brandLogoUrl || null,
    color: config.brandColor || null,
    support: config.brandSupport || null,
  };
}

/** The view of a page for this request; `uiLocales`: the ui_locales that apply (the request's or its pending request's). */
export function viewFor(env: Env, request: Request, uiLocales?: string | null): View {
  const accepted = request.headers.get("accept-language");
  try {
    return { t: translator(chooseLanguage(uiLocales, accepted, loadConfig(env).defaultLanguage)), brand: brandOf(env, request) };
  } catch {
    // Invalid settings (config-guard.ts's refusal page): the browser's language, and no brand.
    return { t: translator(chooseLanguage(uiLocales, accepted, "en")), brand: { name: "", logoUrl: null, color: null, support: null } };
  }
}

/**
 * The page context of one front-channel request: `view` is how its pages — and the error page, if it fails — are
 * written. A route that learns the applicable ui_locales (from the pending request it loaded) says so with `use`.
 */
export class PageContext {
  private uiLocales: string | null;
  private cached: View | null = null;

  constructor(
    private readonly env: Env,
    private readonly request: Request,
  ) {
    this.uiLocales = new URL(request.url).searchParams.get("ui_locales");
  }

  /** The ui_locales that apply from now on (null or empty: keep what the request said). */
  use(uiLocales: string | null | undefined): void {
    if (uiLocales) {
      this.uiLocales = uiLocales;
      this.cached = null;
    }
  }

  get view(): View {
    return (this.cached ??= viewFor(this.env, this.request, this.uiLocales));
  }
}
