import { Router, error, json, type IRequest } from "itty-router";
import type { Env } from "./env";
import { health } from "./routes/health";
import { renderError } from "./routes/respond";

/** The whole URL map of the OP. Handlers live in routes/, one file per endpoint family. */
export const router = Router<IRequest, [Env, ExecutionContext]>({ catch: renderError, finally: [json] });

router.get("/health", (_request, env) => health(env));

// ── Discovery and keys ──────────────────────────────────────────────────────────

// ── Authorization, sign-in, consent ─────────────────────────────────────────────

// ── Token, userinfo, introspection, revocation ──────────────────────────────────

// ── Logout ─────────────────────────────────────────────────────────────────────

// ── Admin API ──────────────────────────────────────────────────────────────────

router.all("*", () => error(404));
