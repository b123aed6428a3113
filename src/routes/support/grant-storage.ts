import { userForGrant } from "../../db/users";
import type { Env } from "../../env";
import { currentSigningKey } from "../../objects/key-cache";
import { authCodeStoreFor, tokenFamilyFor } from "../../objects/locate";
import { familyIdOfRefreshToken, newFamilyId } from "../../objects/token-family";
import type { GrantStorage } from "../../oauth/grants/context";
import { recordSessionClient } from "./browser-session";

/** The token endpoint's storage, for the grants: each call one object or one D1 query, found by the identifier it carries. */
export function grantStorage(env: Env, ctx: ExecutionContext): GrantStorage {
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
    async revokeGrant(grantId, reason, actor) {
      await tokenFamilyFor(env, grantId)?.revokeFamily(reason, actor);
    },
    findGrantUser: (sub, clientId) => userForGrant(env.DB, sub, clientId),
    signingKey: (alg) => currentSigningKey(env, alg),
    recordSessionClient: (userId, sid, clientId, facts) => recordSessionClient(env, ctx, userId, sid, clientId, facts),
  };
}
