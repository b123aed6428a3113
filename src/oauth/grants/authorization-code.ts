import { parseScope } from "../../lib/scope";
import { invalidGrant, invalidRequest } from "../errors";
import { issuesRefreshToken, scopeStillGrantable } from "../scope-policy";
import { whyGrantIsNotGood, whyUserCannotHoldGrant } from "../token-validity";
import type { CreateFamilyResult, FamilyInfo } from "../../objects/token-family";
import { accessTokenGrantId } from "../access-token-grant";
import type { Grant, GrantStorage, TokenResponse } from "./context";
import { issueAccessToken, issueIdToken, tokenTypeOf } from "./issue";

/**
 * RFC 6749 §4.1.3: the code is consumed once, with client, redirect URI and PKCE checked in the same step (C1); a
 * code used twice revokes what it produced (§4.1.2), so at most one redemption answers 200. The user is read beside
 * the grant's creation, not before it, and judged by the one rule (C23).
 */
export const authorizationCodeGrant: Grant = async (context) => {
  const { config, client, params, storage, dpop } = context;
  if (params.code === undefined) throw invalidRequest("code is required");
  // The grant id is fixed before the code is consumed and stored with it, so a replay can find and revoke the grant.
  const grantId = storage.newGrantId();
  const result = await storage.redeemCode(
    params.code,
    // RFC 9449 §10: a code bound to a DPoP key is redeemed only with a proof of it, checked in the same step.
    { clientId: client.client_id, redirectUri: params.redirect_uri ?? null, codeVerifier: params.code_verifier ?? null, dpopJkt: dpop?.jkt ?? null },
    { grantId },
  );
  if (result === null) throw invalidGrant("the authorization code is invalid");
  switch (result.status) {
    case "consumed":
      // RFC 6749 §4.1.2: a code used twice revokes what it produced (C1), even if that grant is still being created.
      if (result.outcome !== null) {
        await storage.revokeGrant(result.outcome.grantId, "authorization code replay", client.client_id, { subject: result.value.sub, clientId: result.value.clientId });
      }
      throw invalidGrant("the authorization code was already used");
    case "rejected":
      throw invalidGrant(result.reason);
    case "expired":
      throw invalidGrant("the authorization code has expired");
    case "unknown":
      throw invalidGrant("the authorization code is invalid");
    case "ok":
      break;
  }
  const code = result.value;
  // RFC 9700 §2.1.1: a public client proves nothing but PKCE. /authorize requires a challenge from public clients;
  // a code without one (a client that was confidential when the code was issued, say) is not redeemed by it.
  if (client.token_endpoint_auth_method === "none" && code.codeChallenge === null) throw invalidGrant("PKCE is required for public clients");

  // C5: the code was issued under the registration of then; what it yields is bounded by the registration of now.
  const scope = scopeStillGrantable(code.scope, client);
  const scopes = parseScope(scope) ?? [];
  const issueRefresh = issuesRefreshToken(client.grant_types, scopes);
  // Without a refresh token and a claims request to keep, the grant lives in its access tokens (access-token-grant.ts):
  // there is no object to make, only the check that a replay of this code has not revoked it already (C1).
  const inTokens = !issueRefresh && code.claims === null;
  // A grant in its tokens was made when its code was issued, as C22 judges its code (`whyUserCannotHoldGrant` below):
  // a revocation of the user's grants that lands while this redemption runs then ends it too.
  const createdAt = Math.min(Date.now(), code.issuedAt ?? code.authTime * 1000);
  const facts = {
    familyId: grantId,
    clientId: client.client_id,
    clientRegisteredAt: client.registered_at,
    sub: code.sub,
    scope,
    sid: code.sid,
    authTime: code.authTime,
    amr: code.amr,
    acr: code.acr,
    claims: code.claims,
    // RFC 9449 §5: a public client's refresh tokens are bound to its key; a confidential client's are bound to it already.
    dpopJkt: client.token_endpoint_auth_method === "none" ? (dpop?.jkt ?? null) : null,
  };
  const [holder, created] = await Promise.all([
    storage.findGrantUser(code.sub, client.client_id),
    inTokens
      ? grantInTokens(storage, { ...facts, createdAt, expiresAt: createdAt + config.accessTokenTtl * 1000, status: "active" })
      : storage.createGrant({
          ...facts,
          issueRefreshToken: issueRefresh,
          // Without a refresh token the grant only anchors the access token: it lives as long as that token.
          ...(issueRefresh ? {} : { lifetimeSeconds: config.accessTokenTtl + 60 }),
        }),
  ]);
  if (created.status === "exists") throw new Error("a fresh grant id was already taken");
  // `revoked`: a replay of this code revoked the grant between this redemption's consume and the grant's creation
  // (C1). The code was used twice, so it yields nothing: no access token, and no ID token, which could never be
  // revoked. (A replay that comes after the grant was made revokes it, and its tokens, as §4.1.2 says; only the ID
  // token already sent stays valid until it expires.) So a code gives at most one 200, and possibly none.
  if (created.status === "revoked") throw invalidGrant("the authorization code was already used");
  // The one rule (C23), and C22 judged by when the code was issued: a code from before the user's grants were ended
  // is one of them.
  const why = whyGrantIsNotGood({ grant: created.family, client, holder }) ?? whyUserCannotHoldGrant(holder, code.issuedAt ?? code.authTime * 1000);
  if (why !== null) {
    // The grant was made beside the lookup; it must not outlive this refusal. (One in its tokens was never made.)
    if (!inTokens) await storage.revokeGrant(grantId, why, client.client_id);
    throw invalidGrant(why);
  }
  const user = holder!.user;
  const refresh = created.refreshToken;

  if (code.sid !== null) {
    const grant = created.status === "created" ? { id: grantId, createdAt: created.family.createdAt, expiresAt: created.family.expiresAt } : undefined;
    storage.recordSessionClient(code.sub, code.sid, client.client_id, { issuer: context.issuer, ...(grant ? { grant } : {}) });
  }

  const tokenGrantId = inTokens ? accessTokenGrantId({ grantId, clientRegisteredAt: client.registered_at, createdAt }) : grantId;
  const accessToken = await issueAccessToken(context, { sub: code.sub, scope, grantId: tokenGrantId, authTime: code.authTime });
  const body: TokenResponse = { access_token: accessToken, token_type: tokenTypeOf(context), expires_in: config.accessTokenTtl, scope };
  if (scopes.includes("openid")) {
    body.id_token = await issueIdToken(context, user, {
      scope,
      authTime: code.authTime,
      nonce: code.nonce,
      sid: code.sid,
      amr: code.amr,
      acr: code.acr,
      claims: code.claims,
      accessToken,
    });
  }
  if (refresh !== null) body.refresh_token = refresh;
  return body;
};

/** A grant that lives in its access tokens, as `createGrant` would answer for it: made now, unless a replay revoked it. */
async function grantInTokens(storage: GrantStorage, family: FamilyInfo): Promise<CreateFamilyResult> {
  return (await storage.isGrantRevoked(family.familyId)) ? { status: "revoked" } : { status: "created", refreshToken: null, family };
}
