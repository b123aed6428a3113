import type { IRequest } from "itty-router";
import { auditPasskeyListing, deletePasskey, isCredentialId, listPasskeys, type Passkey } from "../db/passkeys";
import { getUser } from "../db/users";
import type { Env } from "../env";
import { adminActor, notFound, type AdminHandler } from "./support/admin-auth";
import { jsonResponse } from "./support/respond";

/**
 * The admin API for a user's passkeys (the admin checks are routes/support/admin-auth.ts):
 *   GET    /admin/users/:id/passkeys                  the passkeys, no key material; the reading is audited
 *   DELETE /admin/users/:id/passkeys/:credentialId    204, audited
 */

function passkeyView(passkey: Passkey) {
  const seconds = (ms: number | null) => (ms === null ? null : Math.floor(ms / 1000));
  return {
    id: passkey.id,
    name: passkey.name,
    counter: passkey.counter,
    transports: passkey.transports,
    device_type: passkey.deviceType,
    backed_up: passkey.backedUp,
    created_at: seconds(passkey.createdAt),
    last_used_at: seconds(passkey.lastUsedAt),
  };
}

async function existingUser(request: IRequest, env: Env) {
  const user = await getUser(env.DB, String(request.params.id ?? ""));
  if (user === null) throw notFound("user");
  return user;
}

function change(env: Env, request: Request) {
  const { actor, remote_ip } = adminActor(env, request);
  return { actor, data: { remote_ip } };
}

/** GET /admin/users/:id/passkeys — oldest first; audited as `admin.passkeys.listed`. */
export const listUserPasskeys: AdminHandler = async (request, env) => {
  const user = await existingUser(request, env);
  const passkeys = await listPasskeys(env.DB, user.id);
  await auditPasskeyListing(env.DB, user.id, change(env, request), passkeys.length);
  return jsonResponse({ passkeys: passkeys.map(passkeyView) });
};

/**
 * DELETE /admin/users/:id/passkeys/:credentialId → 204, audited (`passkey.deleted`, actor admin-api). Unlike the user,
 * an admin may remove a user's last passkey (a lost device); with EMAIL_LINK_SIGN_IN=without_passkey that reopens
 * email-link sign-in for them.
 */
export const deleteUserPasskey: AdminHandler = async (request, env) => {
  const user = await existingUser(request, env);
  // Credential ids are base64url: nothing in one needs percent-encoding, so the path segment is taken as it is.
  const credentialId = String(request.params.credentialId ?? "");
  if (!isCredentialId(credentialId)) throw notFound("passkey");
  const result = await deletePasskey(env.DB, user.id, credentialId, { keepOne: false }, change(env, request));
  if (result !== "deleted") throw notFound("passkey");
  return new Response(null, { status: 204, headers: { "cache-control": "no-store" } });
};
