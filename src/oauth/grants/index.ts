import { authorizationCodeGrant } from "./authorization-code";
import { clientCredentialsGrant } from "./client-credentials";
import type { Grant } from "./context";
import { refreshTokenGrant } from "./refresh-token";
import type { GrantType } from "./request";

/** The grants of the token endpoint, one file each; routes/token.ts dispatches by `grant_type`. */
export const GRANTS: Record<GrantType, Grant> = {
  authorization_code: authorizationCodeGrant,
  refresh_token: refreshTokenGrant,
  client_credentials: clientCredentialsGrant,
};
