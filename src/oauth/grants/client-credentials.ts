import { clientGrantId } from "../client-grant";
import { OAuthError, invalidScope } from "../errors";
import { clientCredentialsScope } from "../scope-policy";
import type { Grant, TokenResponse } from "./context";
import { issueAccessToken, tokenTypeOf } from "./issue";

/**
 * RFC 6749 §4.4: confidential clients only; the token speaks for the client itself (RFC 9068 §2.2: sub = client_id).
 * Its grant is the client's registration (oauth/client-grant.ts): no object is made per token, nothing is stored.
 */
export const clientCredentialsGrant: Grant = async (context) => {
  const { config, client, params } = context;
  if (client.token_endpoint_auth_method === "none") throw new OAuthError("unauthorized_client", "client_credentials requires a confidential client");
  const scope = clientCredentialsScope(client.scope, params.scope ?? null);
  if (scope === null) throw invalidScope("the requested scope is not registered for this client, or is a user scope");
  const accessToken = await issueAccessToken(context, { sub: client.client_id, scope, grantId: clientGrantId(client.registered_at), authTime: null });
  const body: TokenResponse = { access_token: accessToken, token_type: tokenTypeOf(context), expires_in: config.accessTokenTtl };
  if (scope !== "") body.scope = scope;
  return body;
};
