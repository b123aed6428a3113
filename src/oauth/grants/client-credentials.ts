import { OAuthError, invalidScope } from "../errors";
import { clientCredentialsScope } from "../scope-policy";
import type { Grant, TokenResponse } from "./context";
import { issueAccessToken } from "./issue";

/** RFC 6749 §4.4: confidential clients only; the token speaks for the client itself (RFC 9068 §2.2: sub = client_id). */
export const clientCredentialsGrant: Grant = async (context) => {
  const { config, client, params, storage } = context;
  if (client.token_endpoint_auth_method === "none") throw new OAuthError("unauthorized_client", "client_credentials requires a confidential client");
  const scope = clientCredentialsScope(client.scope, params.scope ?? null);
  if (scope === null) throw invalidScope("the requested scope is not registered for this client, or is a user scope");
  const grantId = storage.newGrantId();
  // A grant without a refresh token, so the access token can be revoked like any other (by its grant or its jti).
  const created = await storage.createGrant({
    familyId: grantId,
    clientId: client.client_id,
    clientRegisteredAt: client.registered_at,
    sub: client.client_id,
    scope,
    sid: null,
    authTime: null,
    amr: [],
    acr: null,
    claims: null,
    dpopJkt: null,
    issueRefreshToken: false,
    lifetimeSeconds: config.accessTokenTtl + 60,
  });
  if (created.status !== "created") throw new Error("a fresh grant id was already taken");
  const accessToken = await issueAccessToken(context, { sub: client.client_id, scope, grantId, authTime: null });
  const body: TokenResponse = { access_token: accessToken, token_type: "Bearer", expires_in: config.accessTokenTtl };
  if (scope !== "") body.scope = scope;
  return body;
};
