import { Router, json, type IRequest } from "itty-router";
import type { Env } from "./env";
import { authorize, resumeAuthorization } from "./routes/authorize";
import { consentScreen, submitConsent } from "./routes/consent";
import { demo, demoScript } from "./routes/demo";
import { devMailbox } from "./routes/dev-mailbox";
import { favicon } from "./routes/favicon";
import { confirmLink, finishEmailLogin, loginPage, sendLoginLink } from "./routes/login";
import {
  declinePasskeyOffer,
  finishPasskeyRegistration,
  finishPasskeySignIn,
  passkeyOffer,
  passkeyRegistrationOptions,
  passkeyScript,
  passkeySignInOptions,
} from "./routes/passkeys";
import { account, deleteAccountPasskey, renameAccountPasskey, revokeAccountConsent, signOutEverywhereFromAccount } from "./routes/account";
import { health } from "./routes/health";
import { admin } from "./routes/support/admin-auth";
import { deleteUserPasskey, listUserPasskeys } from "./routes/admin-passkeys";
import {
  createClient,
  deleteClientRoute,
  getClientRoute,
  listClientsRoute,
  listSigningKeys,
  rotateSigningKeys,
  updateClientRoute,
} from "./routes/admin";
import {
  createUser,
  deleteUserRoute,
  disableUserRoute,
  enableUserRoute,
  getUserRoute,
  listUserConsents,
  listUsersRoute,
  revokeUserConsent,
  updateUserRoute,
} from "./routes/admin-users";
import { listDeadLettersRoute, queryAuditRoute, redriveDeadLettersRoute } from "./routes/admin-audit";
import { withdrawSigningKey } from "./routes/admin-keys";
import { metricsRoute } from "./routes/admin-metrics";
import { deleteRegistration, readRegistration, register, registrationMethodNotAllowed, updateRegistration } from "./routes/registration";
import {
  listLogoutDeadLetters,
  listUserLogoutNotices,
  listUserSessions,
  redriveLogoutDeadLetters,
  redriveUserLogoutNotices,
  revokeAllUserSessions,
  revokeUserSession,
} from "./routes/admin-sessions";
import { discovery } from "./routes/discovery";
import { jwks } from "./routes/jwks";
import { logout, logoutConfirm } from "./routes/logout";
import { pushedAuthorizationRequest } from "./routes/par";
import { introspect } from "./routes/introspect";
import { revoke } from "./routes/revoke";
import { redeemSessionToken, sessionTokenFetch, sessionTokenPage, sessionTokenPreflight } from "./routes/session-token";
import { token } from "./routes/token";
import { userinfo } from "./routes/userinfo";
import { preflight, withCors } from "./routes/support/cors";
import { audienceOf, methodNotAllowed, notFound, renderError } from "./routes/support/errors";
import { viewFor } from "./routes/support/page-view";

/** The whole URL map of the OP. Handlers live in routes/, one file per endpoint family. */
export const router = Router<IRequest, [Env, ExecutionContext]>({
  catch: (error, request, env) => renderError(error, audienceOf(request), viewFor(env, request)),
  finally: [json],
});

router.get("/health", (_request, env) => health(env));
router.get("/favicon.ico", () => favicon());

// ── Discovery and keys ──────────────────────────────────────────────────────────
router.get("/.well-known/openid-configuration", (request, env) => discovery(request, env));
router.get("/.well-known/oauth-authorization-server", (request, env) => discovery(request, env));
router.get("/jwks.json", (_request, env) => jwks(env));

// ── Authorization, sign-in, consent ─────────────────────────────────────────────
router.get("/authorize", authorize);
router.post("/authorize", authorize);
router.get("/authorize/resume", resumeAuthorization);
router.get("/login", loginPage);
router.post("/login", sendLoginLink);
router.get("/login/email", confirmLink);
router.post("/login/email", finishEmailLogin);
router.get("/consent", consentScreen);
router.post("/consent", submitConsent);

// ── Local development only (loopback issuers; elsewhere these are 404) ──────────
router.get("/dev/mailbox", devMailbox);
router.get("/demo", demo);
router.get("/demo/callback", demo);
router.get("/demo/app.js", demoScript);

// ── Passkeys and the account page ───────────────────────────────────────────────
router.post("/login/passkey/options", passkeySignInOptions);
router.post("/login/passkey", finishPasskeySignIn);
router.get("/passkeys/offer", passkeyOffer);
router.post("/passkeys/offer", declinePasskeyOffer);
router.post("/passkeys/register/options", passkeyRegistrationOptions);
router.post("/passkeys/register", finishPasskeyRegistration);
router.get("/passkeys.js", () => passkeyScript());
router.get("/account", account);
router.post("/account/passkeys/rename", renameAccountPasskey);
router.post("/account/passkeys/delete", deleteAccountPasskey);
router.post("/account/consents/revoke", revokeAccountConsent);
router.post("/account/sign-out-everywhere", signOutEverywhereFromAccount);

// ── Token, pushed requests, userinfo, introspection, revocation ─────────────────
router.post("/token", withCors(token));
router.post("/par", withCors(pushedAuthorizationRequest));
router.get("/userinfo", withCors(userinfo));
router.post("/userinfo", withCors(userinfo));
router.post("/introspect", withCors(introspect));
router.post("/revoke", withCors(revoke));
router.options("/token", () => preflight("POST"));
router.options("/par", () => preflight("POST"));
router.options("/userinfo", () => preflight("GET, POST"));
router.options("/introspect", () => preflight("POST"));
router.options("/revoke", () => preflight("POST"));
router.all("/token", () => methodNotAllowed("POST"));
router.all("/par", () => methodNotAllowed("POST"));
router.all("/userinfo", () => methodNotAllowed("GET, POST"));
router.all("/introspect", () => methodNotAllowed("POST"));
router.all("/revoke", () => methodNotAllowed("POST"));

// ── Dynamic client registration (RFC 7591, RFC 7592; off unless DYNAMIC_REGISTRATION is set) ──────────────
router.post("/register", register);
router.get("/register/:client_id", readRegistration);
router.put("/register/:client_id", updateRegistration);
router.delete("/register/:client_id", deleteRegistration);
router.all("/register", (request, env) => registrationMethodNotAllowed(request, env, "POST"));
router.all("/register/:client_id", (request, env) => registrationMethodNotAllowed(request, env, "GET, PUT, DELETE"));

// ── Logout ─────────────────────────────────────────────────────────────────────
router.get("/logout", (request, env) => logout(request, env));
router.post("/logout", (request, env) => logout(request, env));
router.post("/logout/confirm", (request, env) => logoutConfirm(request, env));

// ── One-time session token (C8) ────────────────────────────────────────────────
router.get("/session-token", (request, env) => sessionTokenPage(request, env));
router.post("/session-token", (request, env) => sessionTokenFetch(request, env));
router.options("/session-token", (request) => sessionTokenPreflight(request));
router.post("/session-token/redeem", redeemSessionToken);
router.all("/session-token", () => methodNotAllowed("GET, POST"));
router.all("/session-token/redeem", () => methodNotAllowed("POST"));

// ── Admin API ──────────────────────────────────────────────────────────────────
router.post("/admin/clients", admin(createClient));
router.get("/admin/clients", admin(listClientsRoute));
router.get("/admin/clients/:id", admin(getClientRoute));
router.patch("/admin/clients/:id", admin(updateClientRoute));
router.delete("/admin/clients/:id", admin(deleteClientRoute));
router.post("/admin/users", admin(createUser));
router.get("/admin/users", admin(listUsersRoute));
router.get("/admin/users/:id", admin(getUserRoute));
router.patch("/admin/users/:id", admin(updateUserRoute));
router.delete("/admin/users/:id", admin(deleteUserRoute));
router.post("/admin/users/:id/disable", admin(disableUserRoute));
router.post("/admin/users/:id/enable", admin(enableUserRoute));
router.get("/admin/users/:id/consents", admin(listUserConsents));
router.delete("/admin/users/:id/consents/:client_id", admin(revokeUserConsent));
router.get("/admin/users/:id/sessions", admin(listUserSessions));
router.post("/admin/users/:id/sessions/revoke-all", admin(revokeAllUserSessions));
router.get("/admin/audit", admin(queryAuditRoute));
router.get("/admin/audit/dead-letters", admin(listDeadLettersRoute));
router.post("/admin/audit/dead-letters/redrive", admin(redriveDeadLettersRoute));
router.get("/admin/metrics", admin(metricsRoute));
router.get("/admin/users/:id/passkeys", admin(listUserPasskeys));
router.delete("/admin/users/:id/passkeys/:credentialId", admin(deleteUserPasskey));
router.delete("/admin/users/:id/sessions/:sid", admin(revokeUserSession));
router.get("/admin/users/:id/logout-notices", admin(listUserLogoutNotices));
router.post("/admin/users/:id/logout-notices/redrive", admin(redriveUserLogoutNotices));
router.get("/admin/logout-notices/dead-letters", admin(listLogoutDeadLetters));
router.post("/admin/logout-notices/redrive", admin(redriveLogoutDeadLetters));
router.get("/admin/keys", admin(listSigningKeys));
router.post("/admin/keys/rotate", admin(rotateSigningKeys));
router.post("/admin/keys/:kid/withdraw", admin(withdrawSigningKey));

router.all("*", (request, env) => notFound(request, env));
