import { issuerOf, loadConfig } from "../config";
import { getPasskey, insertPasskey, listPasskeys, recordPasskeyUse } from "../db/passkeys";
import { getUser } from "../db/users";
import type { Env } from "../env";
import { sha256Base64url, timingSafeEqualStrings } from "../lib/crypto";
import { errorText, log } from "../lib/log";
import type { Challenge, ChallengeOutcome } from "../objects/challenges";
import { challengeStoreFor, newChallengeId, userSessionsFor } from "../objects/locate";
import { formatSessionCookie, newSessionId } from "../objects/sessions";
import { OAuthError } from "../oauth/errors";
import { param, parseWith } from "../oauth/schema";
import {
  CeremonyForm,
  parseAuthenticationResponse,
  parseRegistrationResponse,
  passkeyAmr,
  registrationOptions,
  relyingParty,
  signInOptions,
  verifyAssertion,
  verifyRegistration,
} from "../oauth/webauthn";
import { passkeyOfferPage } from "../ui/passkeys";
import { PASSKEY_SCRIPT } from "../ui/passkeys-script";
import * as z from "zod/mini";
import { currentSession, endReplacedSession, sessionCookie } from "./support/browser-session";
import { csrfTokenFor, verifyFormPost } from "./support/cookies";
import { frontChannel, renderError, PageError, type ProblemName } from "./support/errors";
import { loadInteraction, pageError } from "./support/interactions";
import { continueTo, offerCookie, offerPath } from "./support/passkey-policy";
import { readParams } from "./support/params";
import { clientAddress, enforceRateLimit } from "./support/rate-limit";
import { htmlResponse, jsonResponse, redirectResponse } from "./support/respond";

/**
 * Passkeys (WebAuthn) in the browser: sign-in, and adding one after an email sign-in or from the account page.
 *   POST /login/passkey/options      JSON: options + a `passkey_authentication` challenge, bound to this browser and the interaction
 *   POST /login/passkey              the assertion → the session (C7, C11, C12) → the authorization request, or the account page
 *   GET  /passkeys/offer             "Sign in faster next time", after an email sign-in
 *   POST /passkeys/offer             "Not now"
 *   POST /passkeys/register/options  JSON: options + a `passkey_registration` challenge, bound to the signed-in session
 *   POST /passkeys/register          the attestation → a stored passkey → back where the user was
 *   GET  /passkeys.js                the browser script
 *
 * A challenge is bound to the browser by its CSRF cookie (its hash is stored with the challenge), so a challenge, or a
 * response to it, carried to another browser is refused (login CSRF).
 */

const OptionsForm = z.object({
  csrf_token: z.optional(param(64)),
  interaction: z.optional(param(200)),
});

const OfferAnswer = z.object({
  csrf_token: z.optional(param(64)),
  interaction: z.optional(param(200)),
  decision: z.literal("later"),
});

/** The JSON endpoints the script calls with fetch(): every error is RFC 6749-style JSON, never a page. */
async function api(run: () => Promise<Response>): Promise<Response> {
  try {
    return await run();
  } catch (error) {
    return renderError(error, "api");
  }
}

/** The browser the challenge was made for: the hash of its CSRF token (already checked equal to its cookie). */
function browserMark(csrfToken: string | undefined): Promise<string> {
  return sha256Base64url(`passkey-challenge\n${csrfToken ?? ""}`);
}

async function sameBrowser(challenge: Challenge, csrfToken: string | undefined): Promise<boolean> {
  const expected = challenge.data?.browser;
  return typeof expected === "string" && (await timingSafeEqualStrings(await browserMark(csrfToken), expected));
}

function signInPath(interaction: string | null | undefined): string {
  return interaction ? `/login?interaction=${encodeURIComponent(interaction)}` : "/login";
}

/** Where a refused passkey step sends the user back to (the one error page shows it as the button). */
type Back = NonNullable<PageError["action"]>;

/** A refused passkey step, as a page: what happened, that nothing else changed, and where to try again. Never a 5xx but for our own failure. */
function problem(name: ProblemName, back: Back, status = 400): PageError {
  return pageError(name, status, back);
}

/** The challenge of a ceremony while it can still finish: live, or used by a request that may not have finished (C12). */
async function usableChallenge(env: Env, id: string, kind: Challenge["kind"]): Promise<Challenge | null> {
  const store = challengeStoreFor(env, id);
  if (store === null) return null;
  const found = await store.peek(id);
  if (found.status !== "active" && !(found.status === "consumed" && found.outcome !== null)) return null;
  return found.value.kind === kind ? found.value : null;
}

// ── Sign-in ─────────────────────────────────────────────────────────────────────

/** POST /login/passkey/options */
export function passkeySignInOptions(request: Request, env: Env): Promise<Response> {
  return api(async () => {
    const issuer = issuerOf(env, request);
    const config = loadConfig(env);
    const form = parseWith(OptionsForm, await readParams(request, "body"));
    await verifyFormPost(request, issuer, form.csrf_token);
    const interaction = form.interaction ?? null;
    if (interaction !== null) await loadInteraction(env, interaction);
    await enforceRateLimit(env, `passkey:ip:${clientAddress(env, request)}`, config.rateLimitPasskey);
    const options = await signInOptions(relyingParty(issuer, config.passkeyRpName), config.passkeyUserVerification, config.passkeyChallengeTtl);
    const id = newChallengeId(env);
    const challenge: Challenge = {
      kind: "passkey_authentication",
      webauthnChallenge: options.challenge,
      interaction,
      data: { browser: await browserMark(form.csrf_token) },
    };
    const { stored } = await challengeStoreFor(env, id)!.put(id, challenge, config.passkeyChallengeTtl);
    if (!stored) throw new Error("challenge id collision");
    return jsonResponse({ challenge: id, publicKey: options });
  });
}

/**
 * POST /login/passkey. The steps, in an order that keeps every guarantee:
 * 1. the challenge is live (or used but maybe unfinished) and was made for this browser;
 * 2. the assertion verifies against the stored passkey (signature, challenge, origin, RP ID, user verification);
 * 3. the challenge is used, once (C11), recording the session and user ids chosen before (C12);
 * 4. the counter moves forward by compare-and-swap, or the sign-in is refused as a possible clone and audited (C7);
 * 5. the session with the recorded id: `created: true` happens once per id, and only that sets a cookie.
 * A request that finds the challenge used by an earlier one of the same ceremony goes through 4 and 5 with the
 * recorded ids: a retry after a failure finishes the same session; a duplicate gets "already used".
 */
export function finishPasskeySignIn(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async () => {
    const issuer = issuerOf(env, request);
    const config = loadConfig(env);
    const form = parseWith(CeremonyForm, await readParams(request, "body"));
    await verifyFormPost(request, issuer, form.csrf_token);

    const challenge = await usableChallenge(env, form.challenge, "passkey_authentication");
    const back: Back = { href: signInPath(challenge?.interaction ?? form.interaction), label: "action.startAgain" };
    const notVerified = problem("passkeyRefused", back);
    if (challenge === null || !(await sameBrowser(challenge, form.csrf_token))) throw problem("passkeyExpired", back);
    const response = parseAuthenticationResponse(form.response);
    if (response === null) throw notVerified;
    const passkey = await getPasskey(env.DB, response.id);
    if (passkey === null) throw problem("passkeyUnknown", back);
    const rp = relyingParty(issuer, config.passkeyRpName);
    const verified = await verifyAssertion(response, {
      challenge: challenge.webauthnChallenge!,
      rp,
      requireUserVerification: config.passkeyUserVerification === "required",
      credential: { id: passkey.id, publicKey: passkey.publicKey, transports: passkey.transports },
      userId: passkey.userId,
    });
    if (!verified.ok) {
      log("warn", "passkey.sign_in_refused", { reason: verified.reason });
      throw notVerified;
    }

    const store = challengeStoreFor(env, form.challenge)!;
    const proposed: Required<ChallengeOutcome> = { sessionId: newSessionId(), userId: passkey.userId };
    const used = await store.consume(form.challenge, { kind: "passkey_authentication" }, proposed);
    let outcome: Required<ChallengeOutcome>;
    if (used.status === "ok") outcome = proposed;
    else if (used.status === "consumed" && used.outcome?.sessionId !== undefined && used.outcome.userId === passkey.userId) {
      outcome = { sessionId: used.outcome.sessionId, userId: used.outcome.userId };
    } else {
      throw problem("passkeyExpired", back);
    }

    let cookieValue: string;
    try {
      const use = await recordPasskeyUse(env.DB, {
        credentialId: passkey.id,
        userId: passkey.userId,
        counter: verified.counter,
        challenge: challenge.webauthnChallenge!,
        remoteIp: clientAddress(env, request),
      });
      if (use.status === "counter_regression") {
        log("warn", "passkey.counter_regression", { subject: passkey.userId, presented: verified.counter, stored: use.storedCounter });
        throw problem("passkeyCopied", back, 403);
      }
      if (use.status === "gone") throw problem("passkeyUnknown", back);
      const user = await getUser(env.DB, passkey.userId);
      if (user === null) throw problem("passkeyUnknown", back);
      if (user.disabled) throw problem("disabled", back, 403);
      const created = await userSessionsFor(env, user.id)!.createSession({
        sid: outcome.sessionId,
        userId: user.id,
        authTime: Math.floor(Date.now() / 1000),
        amr: passkeyAmr(verified),
        acr: null,
      });
      if (!created.created) throw problem("passkeyExpired", back);
      cookieValue = formatSessionCookie(user.id, outcome.sessionId, created.secret);
    } catch (error) {
      if (error instanceof OAuthError) throw error;
      log("error", "passkey.sign_in_incomplete", { error: errorText(error) });
      throw problem("passkeyIncomplete", back, 503);
    }
    await endReplacedSession(env, request, outcome.sessionId);
    const headers = new Headers({ location: continueTo(challenge.interaction), "cache-control": "no-store" });
    headers.append("set-cookie", sessionCookie(env, request, cookieValue));
    headers.append("set-cookie", offerCookie(env, request, "added", outcome.userId));
    return new Response(null, { status: 303, headers });
  });
}

// ── The offer after an email sign-in ────────────────────────────────────────────

/** GET /passkeys/offer?interaction=ID */
export function passkeyOffer(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async (page) => {
    const interaction = new URL(request.url).searchParams.get("interaction");
    if (interaction !== null) page.use((await loadInteraction(env, interaction)).uiLocales);
    const session = await currentSession(env, request);
    if (session === null) return redirectResponse(signInPath(interaction));
    const user = await getUser(env.DB, session.userId);
    const csrf = csrfTokenFor(request, issuerOf(env, request));
    const html = passkeyOfferPage(page.view, { csrfToken: csrf.token, interaction, email: user?.email ?? "" });
    return htmlResponse(html, { headers: csrf.setCookie ? { "set-cookie": csrf.setCookie } : {} });
  });
}

/** POST /passkeys/offer: "Not now" — not asked again in this browser for a while. */
export function declinePasskeyOffer(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async () => {
    const form = parseWith(OfferAnswer, await readParams(request, "body"));
    await verifyFormPost(request, issuerOf(env, request), form.csrf_token);
    const session = await currentSession(env, request);
    if (session === null) return redirectResponse(signInPath(form.interaction));
    return redirectResponse(continueTo(form.interaction), { "set-cookie": offerCookie(env, request, "declined", session.userId) });
  });
}

// ── Registration ────────────────────────────────────────────────────────────────

/** POST /passkeys/register/options: for the signed-in user, excluding the passkeys they already have. */
export function passkeyRegistrationOptions(request: Request, env: Env): Promise<Response> {
  return api(async () => {
    const issuer = issuerOf(env, request);
    const config = loadConfig(env);
    const form = parseWith(OptionsForm, await readParams(request, "body"));
    await verifyFormPost(request, issuer, form.csrf_token);
    const session = await currentSession(env, request);
    if (session === null) throw new OAuthError("login_required", "You are no longer signed in. Sign in again to add a passkey.", { status: 403 });
    await enforceRateLimit(env, `passkey:ip:${clientAddress(env, request)}`, config.rateLimitPasskey);
    const [user, existing] = await Promise.all([getUser(env.DB, session.userId), listPasskeys(env.DB, session.userId)]);
    if (user === null) throw new OAuthError("login_required", "You are no longer signed in. Sign in again to add a passkey.", { status: 403 });
    const options = await registrationOptions(relyingParty(issuer, config.passkeyRpName), user, existing, {
      userVerification: config.passkeyUserVerification,
      attestation: config.passkeyAttestation,
      timeoutSeconds: config.passkeyChallengeTtl,
    });
    const id = newChallengeId(env);
    const challenge: Challenge = {
      kind: "passkey_registration",
      userId: user.id,
      webauthnChallenge: options.challenge,
      interaction: form.interaction ?? null,
      data: { browser: await browserMark(form.csrf_token), sid: session.sid },
    };
    const { stored } = await challengeStoreFor(env, id)!.put(id, challenge, config.passkeyChallengeTtl);
    if (!stored) throw new Error("challenge id collision");
    return jsonResponse({ challenge: id, publicKey: options });
  });
}

/**
 * POST /passkeys/register. The challenge must be live, made for this browser and for the session that is signed in
 * now; the attestation must verify; the credential must be new here (never moved from another user). Then the
 * challenge is used (once) and the passkey stored with its audit event in one D1 batch. Whatever fails, the user
 * stays signed in where they were, and trying again starts a new ceremony (C12); one ceremony can never store two
 * passkeys (the credential id is the primary key, and the challenge is used once).
 */
export function finishPasskeyRegistration(request: Request, env: Env): Promise<Response> {
  return frontChannel(request, env, async () => {
    const issuer = issuerOf(env, request);
    const config = loadConfig(env);
    const form = parseWith(CeremonyForm, await readParams(request, "body"));
    await verifyFormPost(request, issuer, form.csrf_token);
    const interaction = form.interaction ?? null;
    const back: Back = form.from === "offer" ? { href: offerPath(interaction), label: "action.tryAgain" } : { href: "/account", label: "action.account" };
    const session = await currentSession(env, request);
    if (session === null) throw problem("addSignedOut", { href: signInPath(interaction), label: "account.signIn" }, 403);
    const challenge = await usableChallenge(env, form.challenge, "passkey_registration");
    if (
      challenge === null ||
      challenge.userId !== session.userId ||
      challenge.data?.sid !== session.sid ||
      (challenge.interaction ?? null) !== interaction ||
      !(await sameBrowser(challenge, form.csrf_token))
    ) {
      throw problem("passkeyNotAdded", back);
    }
    const notAdded = problem("passkeyNotAdded", back);
    const response = parseRegistrationResponse(form.response);
    if (response === null) throw notAdded;
    const verified = await verifyRegistration(response, {
      challenge: challenge.webauthnChallenge!,
      rp: relyingParty(issuer, config.passkeyRpName),
      requireUserVerification: config.passkeyUserVerification === "required",
    });
    if (!verified.ok) {
      log("warn", "passkey.registration_refused", { reason: verified.reason });
      throw notAdded;
    }
    const alreadyRegistered = problem("passkeyTaken", back);
    if ((await getPasskey(env.DB, verified.credential.id)) !== null) throw alreadyRegistered;

    const used = await challengeStoreFor(env, form.challenge)!.consume(form.challenge, { kind: "passkey_registration" }, { userId: session.userId });
    if (used.status !== "ok") {
      throw problem("passkeyNotAdded", back);
    }
    let inserted: boolean;
    try {
      inserted = await insertPasskey(
        env.DB,
        {
          id: verified.credential.id,
          userId: session.userId,
          publicKey: verified.credential.publicKey,
          counter: verified.credential.counter,
          transports: verified.credential.transports,
          deviceType: verified.deviceType,
          backedUp: verified.backedUp,
          name: null,
        },
        { actor: "user", data: { fmt: verified.fmt, aaguid: verified.aaguid, user_verified: verified.userVerified, remote_ip: clientAddress(env, request) } },
      );
    } catch (error) {
      log("error", "passkey.registration_incomplete", { error: errorText(error) });
      throw problem("passkeyNotSaved", back, 503);
    }
    if (!inserted) throw alreadyRegistered;
    const next = form.from === "offer" ? continueTo(interaction) : "/account?done=added";
    return redirectResponse(next, { "set-cookie": offerCookie(env, request, "added", session.userId) });
  });
}

// ── The script ──────────────────────────────────────────────────────────────────

/** GET /passkeys.js */
export function passkeyScript(): Response {
  return new Response(PASSKEY_SCRIPT, {
    headers: {
      "content-type": "text/javascript; charset=utf-8",
      "cache-control": "public, max-age=300",
      "x-content-type-options": "nosniff",
    },
  });
}
