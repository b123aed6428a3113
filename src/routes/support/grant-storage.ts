import { getClient, type StoredClient } from "../../db/clients";
import { isClientId } from "../../lib/ids";
import { tokenParties } from "../../db/token-parties";
import { userForGrant, type GrantUser } from "../../db/users";
import type { Env } from "../../env";
import { currentSigningKey } from "../../objects/key-cache";
import { authCodeStoreFor, tokenFamilyFor } from "../../objects/locate";
import { familyIdOfRefreshToken, newFamilyId, userOfRefreshToken } from "../../objects/token-family";
import type { GrantStorage } from "../../oauth/grants/context";
import { recordSessionClient } from "./browser-session";

/**
 * The token request's D1 reads: the client's row for its authentication, and beside it, in the same batch, the user a
 * refresh token names, for the refresh grant's check of the user (C23) — one D1 round trip where there were two.
 * The user is a hint until the rotation says whose grant it is: `findGrantUser` takes it only for that user.
 */
export interface TokenRequestReads {
  readClient(clientId: string): Promise<StoredClient | null>;
  prefetchedUser(sub: string, clientId: string): Promise<GrantUser | null> | null;
}

export function tokenRequestReads(env: Env, params: { grant_type: string; refresh_token?: string | undefined }): TokenRequestReads {
  const hinted = params.grant_type === "refresh_token" && params.refresh_token !== undefined ? userOfRefreshToken(params.refresh_token) : null;
  let prefetched: { sub: string; clientId: string; holder: Promise<GrantUser | null> } | null = null;
  return {
    readClient(clientId) {
      // No user read for a client id that names no client: a refused request costs no more than before.
      if (hinted === null || !isClientId(clientId)) return getClient(env.DB, clientId);
      const parties = tokenParties(env.DB, { clientId, readClient: true, userId: hinted });
      const holder = parties.then((p) => p.holder);
      holder.catch(() => undefined); // unread when the client's authentication fails
      prefetched = { sub: hinted, clientId, holder };
      return parties.then((p) => p.client);
    },
    prefetchedUser(sub, clientId) {
      const read = prefetched as { sub: string; clientId: string; holder: Promise<GrantUser | null> } | null;
      return read !== null && read.sub === sub && read.clientId === clientId ? read.holder : null;
    },
  };
}

/** The token endpoint's storage, for the grants: each call one object or one D1 query, found by the identifier it carries. */
export function grantStorage(env: Env, ctx: ExecutionContext, reads?: TokenRequestReads): GrantStorage {
  return {
    async redeemCode(code, redemption, outcome) {
      const store = authCodeStoreFor(env, code);
      return store === null ? null : await store.consume(code, redemption, outcome);
    },
    newGrantId: newFamilyId,
    async createGrant(init) {
      return await tokenFamilyFor(env, init.familyId)!.createFamily(init);
    },
    async rotateRefreshToken(refreshToken, request) {
      const familyId = familyIdOfRefreshToken(refreshToken);
      const family = familyId === null ? null : tokenFamilyFor(env, familyId);
      return family === null ? { status: "unknown" } : await family.rotateRefreshToken(refreshToken, request);
    },
    async revokeGrant(grantId, reason, actor, about) {
      await tokenFamilyFor(env, grantId)?.revokeFamily(reason, actor, about);
    },
    async isGrantRevoked(grantId) {
      return (await tokenFamilyFor(env, grantId)?.isRevoked()) ?? false;
    },
    findGrantUser: (sub, clientId) => reads?.prefetchedUser(sub, clientId) ?? userForGrant(env.DB, sub, clientId),
    signingKey: (alg) => currentSigningKey(env, alg),
    recordSessionClient: (userId, sid, clientId, facts) => recordSessionClient(env, ctx, userId, sid, clientId, facts),
  };
}
