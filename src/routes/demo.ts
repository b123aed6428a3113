import { isLocalIssuer, issuerOf } from "../config";
import { getClient } from "../db/clients";
import type { Env } from "../env";
import { DEMO_SCRIPT, DEMO_SCRIPT_VERSION, demoPage } from "../ui/demo";
import { notFound } from "./support/errors";
import { viewFor } from "./support/page-view";
import { contentSecurityPolicy, htmlResponse, staticResponse } from "./support/respond";
import { translator } from "../ui/i18n";

/**
 * The demo app that `npm start` points a newcomer to: GET /demo (start, and where logout returns), GET
 * /demo/callback (the redirect URI) and GET /demo/app.js (its script). It is a public client — `client_id` "demo",
 * `token_endpoint_auth_method` "none", PKCE S256 — registered by `npm start` through the admin API; the page is only
 * its user interface and holds no secret. Loopback issuers only, like the dev mailbox; anywhere else these paths are
 * the same 404 as any unknown path.
 */

export const DEMO_CLIENT_ID = "demo";
const DEMO_SCOPE = "openid profile email offline_access";


/** What keeps the demo from running on this issuer, or null. */
async function demoProblem(env: Env, issuer: string): Promise<string | null> {
  const client = await getClient(env.DB, DEMO_CLIENT_ID);
  if (client === null) return "The demo client is not registered.";
  if (client.token_endpoint_auth_method !== "none") return "The client \"demo\" is not a public client, so this page cannot use it.";
  if (!client.redirect_uris.includes(`${issuer}/demo/callback`)) return `The demo client is not registered for ${issuer}.`;
  return null;
}

/** GET /demo and GET /demo/callback: one page; its script tells them apart. */
export async function demo(request: Request, env: Env): Promise<Response> {
  const issuer = issuerOf(env, request);
  if (!isLocalIssuer(issuer)) return notFound(request, env);
  // The OP's frame and brand; the demo's own words are English (it is an app, and apps bring their own languages).
  const page = demoPage({ ...viewFor(env, request), t: translator("en") }, {
    clientId: DEMO_CLIENT_ID,
    issuer,
    scope: DEMO_SCOPE,
    problem: await demoProblem(env, issuer),
    scriptUrl: `/demo/app.js?v=${DEMO_SCRIPT_VERSION}`,
  });
  // The pages' policy (connect-src 'self': the script calls /token and /userinfo on this origin), with no form leaving it.
  return htmlResponse(page, { headers: { "content-security-policy": contentSecurityPolicy(page, { formAction: "'self'" }) } });
}

/** GET /demo/app.js: the script, cached for a year (its URL carries its version). */
export function demoScript(request: Request, env: Env): Response {
  if (!isLocalIssuer(issuerOf(env, request))) return notFound(request, env);
  return staticResponse(DEMO_SCRIPT, "text/javascript; charset=utf-8", 31536000);
}
