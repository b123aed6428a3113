import * as z from "zod/mini";
import { loadConfig } from "../config";
import { clearSigningKeyCache } from "../objects/key-cache";
import { keyManager } from "../objects/locate";
import { parseWith } from "../oauth/schema";
import { notFound, type AdminHandler } from "./support/admin-auth";
import { readJsonObject } from "./support/params";
import { jsonResponse } from "./support/respond";

/**
 * Withdrawing a signing key (a compromise, a key that leaked): POST /admin/keys/:kid/withdraw. Listing and rotating
 * are in routes/admin.ts.
 */

const KID = /^[A-Za-z0-9_-]{1,128}$/;
const WithdrawBody = z.strictObject({ reason: z.optional(z.string().check(z.minLength(1), z.maxLength(200, "must be at most 200 characters"))) });

/**
 * POST /admin/keys/:kid/withdraw, optionally `{"reason": "…"}` → the key leaves the JWKS at once and tokens it signed
 * stop verifying at this OP; a current key is replaced. This isolate forgets its cached keys before answering, so no
 * request it serves afterwards verifies with the withdrawn key; other isolates keep their cache for at most
 * KEY_CACHE_TTL seconds (`in_force_everywhere_by`). Repeating it changes nothing (`withdrawn: false`).
 */
export const withdrawSigningKey: AdminHandler = async (request, env) => {
  const kid = String(request.params.kid ?? "");
  const hasBody = (request.headers.get("content-length") ?? "0") !== "0" || request.headers.has("content-type");
  const body = parseWith(WithdrawBody, hasBody ? await readJsonObject(request) : {});
  if (!KID.test(kid)) throw notFound("key");
  const result = await keyManager(env).withdrawKey(kid, body.reason ?? "withdrawn by an administrator");
  if (result === null) throw notFound("key");
  clearSigningKeyCache();
  return jsonResponse({
    kid: result.kid,
    alg: result.alg,
    previous_state: result.previousState,
    withdrawn: result.withdrawn,
    new_current_kid: result.newCurrentKid,
    in_force_everywhere_by: Math.ceil(Date.now() / 1000) + loadConfig(env).keyCacheTtl,
  });
};
