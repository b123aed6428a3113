import { Router, error, json, type IRequest } from "itty-router";
import type { Env } from "./env";
import { health } from "./routes/health";
import { renderError } from "./routes/respond";
import { introspect } from "./routes/introspect";
import { revoke } from "./routes/revoke";
import { methodNotAllowed, token } from "./routes/token";
import { userinfo } from "./routes/userinfo";

/** The whole URL map of the OP. Handlers live in routes/, one file per endpoint family. */
export const router = Router<IRequest, [Env, ExecutionContext]>({ catch: renderError, finally: [json] });

router.get("/health", (_request, env) => health(env));

// ── Discovery and keys ──────────────────────────────────────────────────────────

// ── Authorization, sign-in, consent ─────────────────────────────────────────────

// ── Token, userinfo, introspection, revocation ──────────────────────────────────
router.post("/token", (request, env) => token(request, env));
router.get("/userinfo", (request, env) => userinfo(request, env));
router.post("/userinfo", (request, env) => userinfo(request, env));
router.post("/introspect", (request, env) => introspect(request, env));
router.post("/revoke", (request, env) => revoke(request, env));
router.all("/token", () => methodNotAllowed("POST"));
router.all("/userinfo", () => methodNotAllowed("GET, POST"));
router.all("/introspect", () => methodNotAllowed("POST"));
router.all("/revoke", () => methodNotAllowed("POST"));

// ── Logout ─────────────────────────────────────────────────────────────────────

// ── Admin API ──────────────────────────────────────────────────────────────────

router.all("*", () => error(404));
