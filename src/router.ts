import { Router, error, json, type IRequest } from "itty-router";
import type { Env } from "./env";
import { health } from "./routes/health";

/** The whole URL map of the OP. Handlers live in routes/, one file per endpoint family. */
export const router = Router<IRequest, [Env, ExecutionContext]>({ catch: error, finally: [json] });

router.get("/health", (_request, env) => health(env));

router.all("*", () => error(404));
