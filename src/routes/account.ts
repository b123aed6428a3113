import { issuerOf, loadConfig } from "../config";
import { listConsents, revokeConsentAndGrants } from "../db/consents";
import { signOutEverywhere } from "./support/sign-out";
import { deletePasskey, listPasskeys, renamePasskey } from "../db/passkeys";
import { getUser } from "../db/users";
import type { Env } from "../env";
import { isClientId } from "../lib/ids";
import { userSessionsFor } from "../objects/locate";
import { param, parseWith } from "../oauth/schema";
import { emailLinkAllowed, keepsLastPasskey, mayDeletePasskey, passkeyName } from "../oauth/webauthn";
import { accountPage, accountSignInPage } from "../ui/account";
import type { MessageKey } from "../ui/i18n";
import { signedOutPage } from "../ui/logout";
import * as z from "zod/mini";
import { currentSession, sessionCookie, type CurrentSession } from "./support/browser-session";
import { csrfTokenFor, verifyFormPost } from "./support/cookies";
import { frontChannel } from "./support/errors";
import { pageError } from "./support/interactions";
import { readParams } from "./support/params";
import { clientAddress } from "./support/rate-limit";
import { htmlResponse, redirectResponse } from "./support/respond";

/**
 * The account page of the signed-in user (session cookie; CSRF on every form). It is no client: the OP links it from
 * its own pages.
 *   GET  /account                        email, name, passkeys, the apps given access (consents), sessions
 *   POST /account/passkeys/rename        `id`, `name`
 *   POST /account/passkeys/delete        `id` (never the last way in while email-link sign-in is closed to the user)
 *   POST /account/consents/revoke        `client_id`: the consent goes, and that app's grants with it (C22)
 *   POST /account/sign-out-everywhere    every grant (C22) and every session of the user, one call to one object (C18)
 */

/** Fixed texts after a change, chosen by `?done=` (the query only selects; it is never shown). */
const NOTICES: Record<string, MessageKey> = { added: "notice.added", renamed: "notice.renamed", deleted: "notice.deleted", revoked: "notice.revoked" };

const BACK = { href: "/account", label: "action.account" } as const;

const ConsentForm = z.object({ csrf_token: z.optional(param(64)), client_id: param(128) });

const PasskeyForm = z.object({
  csrf_token: z.optional(param(64)),
  id: param(1364),
  name: z.optional(param(256)),
});

const SignOutForm = z.object({ csrf_token: z.optional(param(64)) });

async function signedIn(env: Env, request: Request): Promise<CurrentSession> {
  const session = await currentSession(env, request);
  if (session === null) throw pageError("notSignedIn", 403, { href: "/login", label: "account.signIn" });
  return session;
}

/** GET /account */
export function account(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async (page) => {
    const session = await currentSession(env, request);
    if (session === null) return htmlResponse(accountSignInPage(page.view));
    const config = loadConfig(env);
    const [user, passkeys, sessions, consents] = await Promise.all([
      getUser(env.DB, session.userId),
      listPasskeys(env.DB, session.userId),
      userSessionsFor(env, session.userId)!.listSessions(),
      listConsents(env.DB, session.userId),
    ]);
    if (user === null) return htmlResponse(accountSignInPage(page.view));
    const csrf = csrfTokenFor(request, issuerOf(env, request));
    const done = new URL(request.url).searchParams.get("done");
    const html = accountPage(page.view, {
      csrfToken: csrf.token,
      email: user.email,
      name: user.name,
      passkeys: passkeys.map((p) => ({
        id: p.id,
        name: p.name,
        createdAt: p.createdAt,
        lastUsedAt: p.lastUsedAt,
        transports: p.transports,
        deviceType: p.deviceType,
        backedUp: p.backedUp,
        deletable: mayDeletePasskey(config.emailLinkSignIn, passkeys.length),
      })),
      sessionCount: sessions.length,
      consents: consents.map((c) => ({ clientId: c.client_id, clientName: c.client_name, scopes: c.scopes, grantedAt: c.granted_at * 1000 })),
      notice: done !== null && Object.hasOwn(NOTICES, done) ? NOTICES[done]! : null,
      emailLinkOpen: emailLinkAllowed(config.emailLinkSignIn, passkeys.length),
    });
    return htmlResponse(html, { headers: csrf.setCookie ? { "set-cookie": csrf.setCookie } : {} });
  });
}

/** POST /account/passkeys/rename */
export function renameAccountPasskey(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async () => {
    const form = parseWith(PasskeyForm, await readParams(request, "body"));
    await verifyFormPost(request, issuerOf(env, request), form.csrf_token);
    const session = await signedIn(env, request);
    const renamed = await renamePasskey(env.DB, session.userId, form.id, passkeyName(form.name), { actor: "user", data: { remote_ip: clientAddress(env, request) } });
    if (!renamed) throw pageError("passkeyNotYours", 404, BACK);
    return redirectResponse("/account?done=renamed");
  });
}

/** POST /account/passkeys/delete */
export function deleteAccountPasskey(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async () => {
    const form = parseWith(PasskeyForm, await readParams(request, "body"));
    await verifyFormPost(request, issuerOf(env, request), form.csrf_token);
    const session = await signedIn(env, request);
    const keepOne = keepsLastPasskey(loadConfig(env).emailLinkSignIn);
    const result = await deletePasskey(env.DB, session.userId, form.id, { keepOne }, { actor: "user", data: { remote_ip: clientAddress(env, request) } });
    if (result === "not_found") throw pageError("passkeyNotYours", 404, BACK);
    if (result === "last_one") throw pageError("lastPasskey", 409, BACK);
    return redirectResponse("/account?done=deleted");
  });
}

/**
 * POST /account/consents/revoke: the user takes back an app's access — the consent and, in the same D1 batch, every
 * grant of that app for this user (C22: its refresh tokens fail, its access tokens are inactive at once).
 */
export function revokeAccountConsent(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async () => {
    const form = parseWith(ConsentForm, await readParams(request, "body"));
    await verifyFormPost(request, issuerOf(env, request), form.csrf_token);
    const session = await signedIn(env, request);
    const revoked =
      isClientId(form.client_id) &&
      (await revokeConsentAndGrants(env.DB, session.userId, form.client_id, {
        type: "user.consent.revoked",
        source: "account",
        actor: "user",
        subject: session.userId,
        clientId: form.client_id,
        data: { remote_ip: clientAddress(env, request) },
      }));
    if (!revoked) throw pageError("appNoAccess", 404, BACK);
    return redirectResponse("/account?done=revoked");
  });
}

/**
 * POST /account/sign-out-everywhere: the one "sign out everywhere" (routes/support/sign-out.ts) — every grant of the
 * user ends (C22), then every session, this one too (C18), and every app each signed in to is told (C21).
 */
export function signOutEverywhereFromAccount(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async (page) => {
    const form = parseWith(SignOutForm, await readParams(request, "body"));
    await verifyFormPost(request, issuerOf(env, request), form.csrf_token);
    const session = await signedIn(env, request);
    await signOutEverywhere(env, session.userId, {
      actor: session.userId,
      auditType: "user.grants_ended",
      reason: "user_signed_out_everywhere",
      data: { remote_ip: clientAddress(env, request), from: "account" },
    });
    return htmlResponse(signedOutPage(page.view), { headers: { "set-cookie": sessionCookie(env, request, null) } });
  });
}
