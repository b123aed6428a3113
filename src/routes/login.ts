import { issuerOf, loadConfig } from "../config";
import { ensureUserForVerifiedEmail, findUserByEmail, newUserId, normalizeEmail } from "../db/users";
import { sendEmail } from "../email";
import type { Env } from "../env";
import { randomToken, sha256Base64url, timingSafeEqualStrings } from "../lib/crypto";
import { isEmailAddress } from "../lib/email-address";
import { errorText, log } from "../lib/log";
import type { Challenge, ChallengeOutcome } from "../objects/challenges";
import { challengeStoreFor, newChallengeId, userSessionsFor } from "../objects/locate";
import { formatSessionCookie, newSessionId } from "../objects/sessions";
import { EMAIL_LINK_AMR } from "../oauth/acr";
import type { PendingAuthorization } from "../oauth/authorize/pending";
import { OAuthError } from "../oauth/errors";
import { mayCreateAccount } from "../oauth/sign-up-policy";
import { passkeysPossibleOn } from "../oauth/webauthn";
import { isLanguage } from "../ui/i18n";
import { signInEmail } from "../ui/email";
import { checkEmailPage, confirmLinkPage, signInPage, signedInPage } from "../ui/pages";
import { endReplacedSession, sessionCookie } from "./support/browser-session";
import { csrfTokenFor, readCookie, setCookie, verifyFormPost } from "./support/cookies";
import { frontChannel, renderError } from "./support/errors";
import { appInfo } from "./support/app-info";
import type { PageContext } from "./support/page-view";
import { clientOfPending, loadInteraction, pageError } from "./support/interactions";
import { emailLinkOpenTo, passkeyOfferLocation, signInMethodsFor } from "./support/passkey-policy";
import { readParams } from "./support/params";
import { htmlResponse, redirectResponse } from "./support/respond";
import { clientAddress, enforceRateLimit, withinRateLimit } from "./support/rate-limit";

/**
 * Sign-in by email link.
 *   GET  /login?interaction=ID   the form (one input named `email`, prefilled from login_hint)
 *   POST /login                  sends a single-use link (a magic_link challenge) and says "check your email"
 *   GET  /login/email?token=ID   a confirmation page with one button: link scanners that prefetch URLs do not use the link up
 *   POST /login/email            uses the link (C11), creates the user on first sign-in, starts the session (C12), and
 *                                offers a passkey to a browser that can make one (routes/passkeys.ts)
 * Passkey sign-in, offered on the same page, is routes/passkeys.ts.
 */

async function signInForm(
  request: Request,
  env: Env,
  page: PageContext,
  input: { interaction: string | null; email: string; error?: "signIn.invalidEmail" },
  status = 200,
): Promise<Response> {
  let pending: PendingAuthorization | null = null;
  let app = null;
  if (input.interaction !== null) {
    pending = await loadInteraction(env, input.interaction);
    page.use(pending.uiLocales);
    app = appInfo(await clientOfPending(env, pending));
  }
  const view = page.view;
  const csrf = csrfTokenFor(request, issuerOf(env, request));
  const html = signInPage(view, {
    csrfToken: csrf.token,
    interaction: input.interaction,
    email: input.email,
    app,
    error: input.error === undefined ? undefined : view.t.text(input.error),
    passkeys: passkeysPossibleOn(issuerOf(env, request)),
    methods: signInMethodsFor(pending),
  });
  return htmlResponse(html, { status, headers: csrf.setCookie ? { "set-cookie": csrf.setCookie } : {} });
}

/** GET /login */
export function loginPage(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async (page) => {
    const interaction = new URL(request.url).searchParams.get("interaction");
    let email = "";
    if (interaction !== null) {
      const hint = (await loadInteraction(env, interaction)).loginHint;
      if (hint !== null && isEmailAddress(hint)) email = hint;
    }
    return signInForm(request, env, page, { interaction, email });
  });
}

/**
 * POST /login: the answer is the same whether or not the address has an account (accounts are made on first sign-in).
 * "Send again" on the "check your email" page is this same POST, under the same limits.
 */
export function sendLoginLink(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async (page) => {
    const issuer = issuerOf(env, request);
    const config = loadConfig(env);
    const params = await readParams(request, "body");
    await verifyFormPost(request, issuer, params.csrf_token);
    const interaction = params.interaction ?? null;
    if (interaction !== null) {
      const pending = await loadInteraction(env, interaction);
      page.use(pending.uiLocales);
      if (signInMethodsFor(pending) === "passkey_only") throw pageError("passkeyRequired", 403);
    }
    const submitted = (params.email ?? "").trim();
    if (!isEmailAddress(submitted)) {
      return signInForm(request, env, page, { interaction, email: submitted.slice(0, 254), error: "signIn.invalidEmail" }, 400);
    }
    const email = normalizeEmail(submitted);
    await enforceRateLimit(env, `login:ip:${clientAddress(env, request)}`, config.rateLimitLogin);
    const view = page.view;
    const minutes = Math.max(1, Math.round(config.magicLinkTtl / 60));
    const csrf = csrfTokenFor(request, issuer);
    const checkEmail = () => checkEmailPage(view, { email, csrfToken: csrf.token, interaction, minutes });
    // Over the limits for this address, the same page and no new email: nobody can lock the owner out with 429s or
    // fill their mailbox. The link mailed last still works. Nothing changes, not even the link-mark cookie.
    if (!(await mayMailTo(env, email))) return htmlResponse(checkEmail());

    // The requesting browser gets a mark; opening the link elsewhere is allowed (email on a phone) but said on the page,
    // so a link someone else requested cannot sign this browser into their account unnoticed (login CSRF).
    const mark = randomToken(32);
    const checkYourEmail = () => htmlResponse(checkEmail(), { headers: { "set-cookie": setCookie(LINK_MARK_COOKIE, mark, issuer, config.magicLinkTtl) } });
    // SIGNUP_POLICY: an address that may not have an account gets the very same page, and no link and no mail.
    if (!(await signUpAllowedFor(env, email))) {
      log("info", "login.sign_up_refused", { policy: config.signupPolicy });
      return checkYourEmail();
    }

    const id = newChallengeId(env);
    // The email's language goes with the link, so the page it opens speaks it too.
    const challenge: Challenge = { kind: "magic_link", email, interaction, data: { requestedBy: await sha256Base64url(mark), lang: view.t.lang } };
    const { stored } = await challengeStoreFor(env, id)!.put(id, challenge, config.magicLinkTtl);
    if (!stored) throw new Error("challenge id collision");
    const link = `${issuer}/login/email?token=${encodeURIComponent(id)}`;
    await sendEmail(env, issuer, { to: email, link, ...signInEmail(view, { link, minutes }) });
    return checkYourEmail();
  });
}

/** Whether `email` may sign in: it has an account, or SIGNUP_POLICY lets it have one (D1 is read only when the policy is not open). */
async function signUpAllowedFor(env: Env, email: string): Promise<boolean> {
  const config = loadConfig(env);
  return mayCreateAccount(config, email) || (await findUserByEmail(env.DB, email)) !== null;
}

const DAY_SECONDS = 86_400;

/** Whether another sign-in email may go to `email`: RATE_LIMIT_LOGIN per window and LOGIN_EMAILS_PER_DAY per day. */
async function mayMailTo(env: Env, email: string): Promise<boolean> {
  const config = loadConfig(env);
  const key = `login:email:${await sha256Base64url(email)}`;
  const allowed = (await withinRateLimit(env, key, config.rateLimitLogin)) && (await withinRateLimit(env, key, config.loginEmailsPerDay, DAY_SECONDS));
  if (!allowed) log("warn", "login.email_limited", {});
  return allowed;
}

const LINK_MARK_COOKIE = "oidc_link_mark";

/** Whether this browser is the one that asked for the link. */
async function requestedHere(request: Request, issuer: string, challenge: Challenge): Promise<boolean> {
  const mark = readCookie(request, LINK_MARK_COOKIE, issuer);
  const expected = challenge.data?.requestedBy;
  return mark !== null && typeof expected === "string" && (await timingSafeEqualStrings(await sha256Base64url(mark), expected));
}

/** A link that can no longer sign anyone in: used, or expired (or never issued); "Get a new link" goes back to its sign-in. */
function linkUnusable(used: boolean, interaction: string | null | undefined): Error {
  const href = interaction ? `/login?interaction=${encodeURIComponent(interaction)}` : "/login";
  return pageError(used ? "linkUsed" : "linkExpired", 400, { href, label: "action.newLink" });
}

/** The link's challenge while it can still produce a session: live, or used but (perhaps) not finished (C12). */
async function usableLink(env: Env, token: string | undefined): Promise<{ challenge: Challenge; outcome: ChallengeOutcome | null }> {
  const store = token === undefined ? null : challengeStoreFor(env, token);
  if (token === undefined || store === null) throw linkUnusable(false, null);
  const found = await store.peek(token);
  if (found.status === "active" && found.value.kind === "magic_link") return { challenge: found.value, outcome: null };
  if (found.status === "consumed" && found.value.kind === "magic_link" && found.outcome !== null) return { challenge: found.value, outcome: found.outcome };
  throw linkUnusable(found.status === "consumed", found.status === "consumed" ? found.value.interaction : null);
}

/** The language the link's email was written in: its pages speak it, before the browser's own preference. */
function linkLanguage(challenge: Challenge): string | null {
  const lang = challenge.data?.lang;
  return typeof lang === "string" && isLanguage(lang) ? lang : null;
}

/** GET /login/email?token=ID: confirm with a POST, so a prefetch cannot use the link. */
export function confirmLink(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async (page) => {
    const token = new URL(request.url).searchParams.get("token") ?? undefined;
    const { challenge, outcome } = await usableLink(env, token);
    page.use(linkLanguage(challenge));
    if (outcome !== null && (await sessionExists(env, outcome))) throw linkUnusable(true, challenge.interaction);
    const issuer = issuerOf(env, request);
    const csrf = csrfTokenFor(request, issuer);
    const html = confirmLinkPage(page.view, { csrfToken: csrf.token, token: token!, email: challenge.email ?? "", sameBrowser: await requestedHere(request, issuer, challenge) });
    return htmlResponse(html, { headers: csrf.setCookie ? { "set-cookie": csrf.setCookie } : {} });
  });
}

/** Whether a used link already produced its session (then it is spent); only a hint for the page, the POST decides. */
async function sessionExists(env: Env, outcome: ChallengeOutcome): Promise<boolean> {
  if (outcome.userId === undefined || outcome.sessionId === undefined) return false;
  const sessions = userSessionsFor(env, outcome.userId);
  return sessions !== null && (await sessions.listSessions()).some((s) => s.sid === outcome.sessionId);
}

/** POST /login/email */
export function finishEmailLogin(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async (page) => {
    const params = await readParams(request, "body");
    await verifyFormPost(request, issuerOf(env, request), params.csrf_token);
    const token = params.token;
    const { challenge } = await usableLink(env, token);
    page.use(linkLanguage(challenge));
    const store = challengeStoreFor(env, token!)!;

    // C12: the session and user ids are chosen before the link is used and recorded with it, so that a retry after
    // a later failure finishes the very same session — and a second one can never be made from one link.
    const existing = await findUserByEmail(env.DB, challenge.email!);
    // A link sent before the policy changed (or before the account was deleted) makes no account it does not allow.
    if (existing === null && !mayCreateAccount(loadConfig(env), challenge.email!)) throw pageError("signUpClosed", 403);
    const proposed: Required<ChallengeOutcome> = { sessionId: newSessionId(), userId: existing?.id ?? newUserId() };
    const result = await store.consume(token!, { kind: "magic_link" }, proposed);
    let outcome: Required<ChallengeOutcome>;
    if (result.status === "ok") {
      outcome = proposed;
    } else if (result.status === "consumed" && result.outcome?.sessionId !== undefined && result.outcome.userId !== undefined) {
      outcome = { sessionId: result.outcome.sessionId, userId: result.outcome.userId };
    } else {
      throw linkUnusable(true, challenge.interaction);
    }
    return completeSignIn(env, request, page, challenge, outcome, params.passkey_capable === "1");
  });
}

/**
 * The steps after the link is used: the user (created on first sign-in, idempotent), then the session with the
 * link's session id. `createSession` answers `created: true` exactly once per id, and only that answer sets a cookie.
 */
async function completeSignIn(
  env: Env,
  request: Request,
  page: PageContext,
  challenge: Challenge,
  outcome: Required<ChallengeOutcome>,
  passkeyCapable: boolean,
): Promise<Response> {
  let cookieValue: string;
  let email: string;
  let userId: string;
  try {
    const user = await ensureUserForVerifiedEmail(env.DB, challenge.email!, outcome.userId);
    if (user.disabled) throw pageError("disabled", 403);
    if (!(await emailLinkOpenTo(env, user.id))) throw pageError("passkeyAccount", 403);
    email = user.email;
    userId = user.id;
    const sessions = userSessionsFor(env, user.id)!;
    const result = await sessions.createSession({
      sid: outcome.sessionId,
      userId: user.id,
      authTime: Math.floor(Date.now() / 1000),
      amr: [EMAIL_LINK_AMR],
      acr: null,
    });
    if (!result.created) throw linkUnusable(true, challenge.interaction);
    cookieValue = formatSessionCookie(user.id, outcome.sessionId, result.secret);
  } catch (error) {
    if (error instanceof OAuthError) throw error;
    log("error", "sign_in_incomplete", { error: errorText(error) });
    const failed = renderError(pageError("incomplete", 503), "browser", page.view);
    failed.headers.set("retry-after", "5");
    return failed;
  }
  await endReplacedSession(env, request, outcome.sessionId);
  const headers = { "set-cookie": sessionCookie(env, request, cookieValue) };
  const offer = passkeyOfferLocation(env, request, userId, challenge.interaction ?? null, passkeyCapable);
  if (offer !== null) return redirectResponse(offer, headers);
  if (challenge.interaction) return redirectResponse(`/authorize/resume?interaction=${encodeURIComponent(challenge.interaction)}`, headers);
  return htmlResponse(signedInPage(page.view, email), { headers });
}

