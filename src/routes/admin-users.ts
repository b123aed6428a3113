import type { IRequest } from "itty-router";
import * as z from "zod/mini";
import type { AuditData } from "../db/audit";
import { getClient } from "../db/clients";
import { listConsents, revokeConsentAndGrants } from "../db/consents";
import {
  deleteUser,
  findUserByEmail,
  getUser,
  insertUser,
  listUsers,
  newUserId,
  setUserDisabled,
  updateUser,
  userVersion,
  type User,
  type UserChangeAudit,
} from "../db/users";
import type { Env } from "../env";
import { base64url, base64urlDecode } from "../lib/crypto";
import { isClientId } from "../lib/ids";
import { userSessionsFor } from "../objects/locate";
import { OAuthError, invalidRequest } from "../oauth/errors";
import { param, parseWith } from "../oauth/schema";
import { parseNewUser, parseUserChanges, type UserProfileInput } from "../oauth/user-profile";
import { adminActor, notFound, type AdminHandler } from "./support/admin-auth";
import { readJsonObject, readQuery } from "./support/params";
import { jsonResponse } from "./support/respond";

/**
 * The admin API's users: create, read, list by email with cursor pagination, update (compare-and-swap, C5), disable,
 * enable, delete, and their consents. Every change is written to D1 with its audit event in one batch. Disabling and
 * deleting end the user's sessions with one call to their sessions object (C18), which also tells the relying parties
 * (back-channel logout); their tokens stop working at once by the one token rule (C22, C23).
 */

/**
 * A PATCH without If-Match that loses a compare-and-swap race is re-applied on the new version, up to this many
 * attempts: a writer only loses to another writer's success, so N concurrent writers all land within N attempts.
 */
const UPDATE_ATTEMPTS = 5;
const DEFAULT_PAGE = 50;
const MAX_PAGE = 200;

function auditOf(env: Env, request: Request, data: AuditData = {}): UserChangeAudit {
  const { actor, remote_ip } = adminActor(env, request);
  return { actor, data: { ...data, remote_ip } };
}

/** A user as the admin API shows it: OIDC Core §5.1 names, times in seconds, and `version` for If-Match. */
export function userView(user: User) {
  return {
    id: user.id,
    email: user.email,
    email_verified: user.emailVerified,
    name: user.name,
    given_name: user.givenName,
    family_name: user.familyName,
    preferred_username: user.preferredUsername,
    picture: user.picture,
    locale: user.locale,
    zoneinfo: user.zoneinfo,
    phone_number: user.phoneNumber,
    phone_number_verified: user.phoneNumberVerified,
    address: user.address,
    groups: user.groups,
    claims: user.claims,
    disabled: user.disabled,
    created_at: Math.floor(user.createdAt / 1000),
    updated_at: Math.floor(user.updatedAt / 1000),
    version: user.updatedAt,
  };
}

function userIdOf(request: IRequest): string {
  return String(request.params.id ?? "");
}

async function storedUser(env: Env, userId: string): Promise<User> {
  const user = await getUser(env.DB, userId);
  if (user === null) throw notFound("user");
  return user;
}

function emailTaken(): OAuthError {
  return new OAuthError("invalid_request", "a user with this email address exists", { status: 409 });
}

/** The members changed, by name (the audit event says what changed, never to what). */
function changedMembers(profile: UserProfileInput): string[] {
  return Object.keys(profile).sort();
}

/** POST /admin/users → 201 with the user. A taken email address → 409. */
export const createUser: AdminHandler = async (request, env) => {
  const profile = parseNewUser(await readJsonObject(request));
  if ((await findUserByEmail(env.DB, profile.email)) !== null) throw emailTaken();
  const userId = newUserId();
  try {
    await insertUser(env.DB, userId, profile, auditOf(env, request, { members: changedMembers(profile) }));
  } catch (error) {
    // Two creates of one address at once: the unique index lets one in; the batch of the other wrote nothing.
    if ((await findUserByEmail(env.DB, profile.email)) !== null) throw emailTaken();
    throw error;
  }
  const user = await storedUser(env, userId);
  return jsonResponse(userView(user), { status: 201, headers: { location: `/admin/users/${userId}` } });
};

const ListQuery = z.object({
  email: z.optional(param(254)),
  limit: z.optional(z.string().check(z.regex(/^[1-9][0-9]{0,2}$/, `must be a whole number between 1 and ${MAX_PAGE}`), z.refine((n) => Number(n) <= MAX_PAGE, `must be a whole number between 1 and ${MAX_PAGE}`))),
  cursor: z.optional(param(400)),
});

/** An opaque cursor: the last email address of the previous page. */
function encodeCursor(email: string): string {
  return base64url(new TextEncoder().encode(email));
}

function decodeCursor(cursor: string): string {
  try {
    const email = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(base64urlDecode(cursor));
    if (email.length > 0 && email.length <= 254) return email;
  } catch {
    // fall through
  }
  throw invalidRequest("cursor: is not a cursor this API gave");
}

/** GET /admin/users?email=…&limit=…&cursor=… → {users, next_cursor}: in address order; `email` matches part of the address. */
export const listUsersRoute: AdminHandler = async (request, env) => {
  const query = parseWith(ListQuery, readQuery(request, ["email", "limit", "cursor"]));
  const limit = Number(query.limit ?? DEFAULT_PAGE);
  const after = query.cursor === undefined ? undefined : decodeCursor(query.cursor);
  const page = await listUsers(env.DB, { emailContains: query.email, after, limit: limit + 1 });
  const users = page.slice(0, limit);
  const nextCursor = page.length > limit ? encodeCursor(users.at(-1)!.email) : null;
  return jsonResponse({ users: users.map(userView), next_cursor: nextCursor });
};

/** GET /admin/users/:id */
export const getUserRoute: AdminHandler = async (request, env) => {
  const user = await storedUser(env, userIdOf(request));
  return jsonResponse(userView(user), { headers: { etag: `"${user.updatedAt}"` } });
};

/** The version an If-Match header names (`"1712345678901"`), or null without one. */
function expectedVersion(request: Request): number | null {
  const header = request.headers.get("if-match");
  if (header === null) return null;
  const match = /^\s*(?:W\/)?"?([0-9]{1,16})"?\s*$/.exec(header);
  if (!match) throw invalidRequest('If-Match: must be the version of the user, e.g. "1712345678901"');
  return Number(match[1]);
}

function changedConcurrently(): OAuthError {
  return new OAuthError("invalid_request", "the user was changed concurrently; read it again and retry", { status: 409 });
}

/**
 * PATCH /admin/users/:id — the members sent replace the stored ones (`null` clears a claim); a compare-and-swap on the
 * version read. With `If-Match: "<version>"` the change applies only to that version (else 409); without, a lost
 * race is re-applied on the new version, then 409. A new email address is unverified unless `email_verified` says so.
 */
export const updateUserRoute: AdminHandler = async (request, env) => {
  const userId = userIdOf(request);
  const ifMatch = expectedVersion(request);
  const changes = parseUserChanges(await readJsonObject(request));
  for (let attempt = 0; attempt < (ifMatch === null ? UPDATE_ATTEMPTS : 1); attempt++) {
    const version = await userVersion(env.DB, userId);
    const current = version === null ? null : await getUser(env.DB, userId);
    if (version === null || current === null) throw notFound("user");
    if (ifMatch !== null && ifMatch !== version) throw changedConcurrently();
    const fields = { ...changes };
    if (fields.email !== undefined && fields.email !== current.email) {
      const holder = await findUserByEmail(env.DB, fields.email);
      if (holder !== null && holder.id !== userId) throw emailTaken();
      fields.email_verified ??= false;
    }
    let applied: boolean;
    try {
      applied = await updateUser(env.DB, userId, version, fields, auditOf(env, request, { members: changedMembers(changes) }));
    } catch (error) {
      if (fields.email !== undefined && (await findUserByEmail(env.DB, fields.email))?.id !== userId) throw emailTaken();
      throw error;
    }
    if (applied) {
      const user = await storedUser(env, userId);
      return jsonResponse(userView(user), { headers: { etag: `"${user.updatedAt}"` } });
    }
  }
  throw changedConcurrently();
};

/**
 * POST /admin/users/:id/disable — the user can no longer sign in; their grants end (in the same D1 batch), then every
 * session in one call (C18). Repeating it is harmless and ends any session left over by a failure in between.
 */
export const disableUserRoute: AdminHandler = async (request, env) => {
  const userId = userIdOf(request);
  const result = await setUserDisabled(env.DB, userId, true, auditOf(env, request));
  if (result === null) throw notFound("user");
  // The grants ended at `at` (in the batch above): the sessions object forgets those it recorded, and tells the apps.
  const ended = await userSessionsFor(env, userId)!.revokeAllSessions("user_disabled", "admin-api", { grantsEndedAt: result.at });
  return jsonResponse({ ...userView(await storedUser(env, userId)), sessions_ended: ended.count });
};

/** POST /admin/users/:id/enable — the user may sign in again; tokens issued before the disable stay dead. */
export const enableUserRoute: AdminHandler = async (request, env) => {
  const userId = userIdOf(request);
  if ((await setUserDisabled(env.DB, userId, false, auditOf(env, request))) === null) throw notFound("user");
  return jsonResponse(userView(await storedUser(env, userId)));
};

/**
 * DELETE /admin/users/:id → 204. The sessions end first (one call, with back-channel logout), then the row goes with
 * its passkeys, consents and grant revocations (foreign keys); tokens of a user who does not exist are refused (C23).
 * The audit log keeps the user's events. A failure after the sessions leaves the user for a retry.
 */
export const deleteUserRoute: AdminHandler = async (request, env) => {
  const userId = userIdOf(request);
  await storedUser(env, userId);
  await userSessionsFor(env, userId)!.revokeAllSessions("user_deleted", "admin-api", { grantsEndedAt: Date.now() });
  if (!(await deleteUser(env.DB, userId, auditOf(env, request)))) throw notFound("user");
  return new Response(null, { status: 204, headers: { "cache-control": "no-store" } });
};

/** GET /admin/users/:id/consents → {consents: [{client_id, client_name, scopes, granted_at, expires_at}]} */
export const listUserConsents: AdminHandler = async (request, env) => {
  const user = await storedUser(env, userIdOf(request));
  return jsonResponse({ consents: await listConsents(env.DB, user.id) });
};

/**
 * DELETE /admin/users/:id/consents/:client_id → 204: the consent goes and, in the same batch, every grant of that
 * client for that user (C22): its refresh tokens fail, its access tokens are inactive. The next sign-in asks again.
 */
export const revokeUserConsent: AdminHandler = async (request, env) => {
  const user = await storedUser(env, userIdOf(request));
  const clientId = String(request.params.client_id ?? "");
  if (!isClientId(clientId) || (await getClient(env.DB, clientId)) === null) throw notFound("client");
  const revoked = await revokeConsentAndGrants(env.DB, user.id, clientId, {
    type: "admin.user.consent_revoked",
    actor: "admin-api",
    subject: user.id,
    clientId,
    data: { remote_ip: adminActor(env, request).remote_ip },
  });
  if (!revoked) throw notFound("consent");
  return new Response(null, { status: 204, headers: { "cache-control": "no-store" } });
};
