import { ConfigError, ISSUER_REQUIRED, loadConfig, type SettingProblem } from "./config";
import type { Env } from "./env";
import { log } from "./lib/log";
import { isLoopbackUrl } from "./lib/loopback";
import { OAuthError } from "./oauth/errors";
import { audienceOf, renderError } from "./routes/support/errors";
import { viewFor } from "./routes/support/page-view";

/**
 * The first thing every request meets: a Worker whose settings break their rules (src/config.ts), or whose ISSUER
 * is unset while the request arrived on a host that is not loopback, serves nothing. The caller gets a 500 that
 * names the settings and what they must be — an HTML page for a browser, OAuth-style JSON for anyone else — with no
 * value in it (so never a secret); the operator gets one structured log line per request. Nothing else runs, so
 * there is no stack trace and no half-served request.
 */
export function configRefusal(request: Request, env: Env): Response | null {
  let issuer: string;
  try {
    issuer = loadConfig(env).issuer;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    log("error", "config.invalid", { settings: error.problems.map((p) => p.setting), problems: error.problems.map((p) => p.message) });
    return refusal(request, env, "The server's configuration is invalid", error.problems);
  }
  if (issuer === "" && !isLoopbackUrl(request.url)) {
    // The issuer would come from the Host header, which the caller chose: refuse rather than mint links for it.
    log("error", "config.issuer_required", { host: new URL(request.url).host.slice(0, 200), problems: [ISSUER_REQUIRED.message] });
    return refusal(request, env, "The server is not configured for this address", [ISSUER_REQUIRED]);
  }
  return null;
}

function refusal(request: Request, env: Env, headline: string, problems: readonly SettingProblem[]): Response {
  const description = `${headline}: ${problems.map((p) => `${p.setting} ${p.rule}`).join("; ")}. The operator must fix ${problems.length > 1 ? "these settings" : "this setting"}.`;
  const error = new OAuthError("server_error", description, { status: 500 });
  return renderError(error, audienceOf(request), viewFor(env, request));
}

/** For the cron trigger: true when the settings are valid; otherwise one log line and the run is skipped. */
export function configUsable(env: Env): boolean {
  try {
    loadConfig(env);
    return true;
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    log("error", "config.invalid", { settings: error.problems.map((p) => p.setting), problems: error.problems.map((p) => p.message), during: "scheduled" });
    return false;
  }
}
