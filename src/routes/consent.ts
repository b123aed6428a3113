import { issuerOf } from "../config";
import { getUser } from "../db/users";
import type { Env } from "../env";
import { OAuthError } from "../oauth/errors";
import { grantableScope } from "../oauth/scope-policy";
import { consentPage } from "../ui/pages";
import { answeringClient, continueAuthorization } from "./support/authorization-flow";
import { currentSession } from "./support/browser-session";
import { csrfTokenFor, verifyFormPost } from "./support/cookies";
import { appInfo } from "./support/app-info";
import { frontChannel } from "./support/errors";
import { clientOfPending, completeInteraction, loadInteraction, pageError } from "./support/interactions";
import { readParams } from "./support/params";
import { htmlResponse, redirectResponse } from "./support/respond";

/**
 * The consent screen.
 *   GET  /consent?interaction=ID   names the client and the scopes; buttons `decision=allow` / `decision=deny`
 *   POST /consent                  allow: remembered per user, client and scopes, then the code; deny: access_denied
 * The POST must come from the session the page was shown to (its sid is in the form).
 */

/** GET /consent */
export function consentScreen(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async (page) => {
    const interaction = new URL(request.url).searchParams.get("interaction");
    const pending = await loadInteraction(env, interaction);
    page.use(pending.uiLocales);
    const client = await clientOfPending(env, pending);
    const session = await currentSession(env, request);
    if (session === null) return redirectResponse(`/login?interaction=${encodeURIComponent(interaction!)}`);
    let scope = "";
    const failed = await answeringClient(issuerOf(env, request), pending, async () => {
      scope = grantableScope(pending.scope, client);
      return null;
    });
    if (failed !== null) return failed;
    const user = await getUser(env.DB, session.userId);
    const csrf = csrfTokenFor(request, issuerOf(env, request));
    const html = consentPage(page.view, {
      csrfToken: csrf.token,
      interaction: interaction!,
      sid: session.sid,
      app: appInfo(client),
      userEmail: user?.email ?? null,
      scopes: scope.split(" "),
    });
    return htmlResponse(html, { headers: csrf.setCookie ? { "set-cookie": csrf.setCookie } : {} });
  });
}

/** POST /consent */
export function submitConsent(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  return frontChannel(request, env, async (page) => {
    const issuer = issuerOf(env, request);
    const params = await readParams(request, "body");
    await verifyFormPost(request, issuer, params.csrf_token);
    const interaction = params.interaction;
    const pending = await loadInteraction(env, interaction);
    page.use(pending.uiLocales);
    const client = await clientOfPending(env, pending);
    const session = await currentSession(env, request);
    if (session === null || params.sid !== session.sid) throw pageError("otherPerson", 403);
    const decision = params.decision;
    if (decision !== "allow" && decision !== "deny") throw pageError("chooseDecision");
    return answeringClient(issuer, pending, async () => {
      if (decision === "allow") return continueAuthorization(env, ctx, request, client, pending, interaction!, { consentGiven: true });
      // Used up like a completed request, so the same interaction cannot be allowed afterwards.
      await completeInteraction(env, interaction!, { sessionId: session.sid, userId: session.userId });
      throw new OAuthError("access_denied", "the user denied access");
    });
  });
}
