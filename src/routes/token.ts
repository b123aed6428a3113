import { issuerOf, loadConfig } from "../config";
import type { Env } from "../env";
import { checkProofFitsClient, dpopProofRequired } from "../oauth/dpop";
import { OAuthError } from "../oauth/errors";
import { GRANTS } from "../oauth/grants";
import { TokenRequestSchema, isSupportedGrant } from "../oauth/grants/request";
import { parseWith } from "../oauth/schema";
import { requiresDpop } from "../oauth/security-profile";
import { authenticateClient } from "./support/client-authentication";
import { besideSpending, checkDpopProof, nonceHeaders, spendProof } from "./support/dpop";
import { grantStorage, tokenRequestReads } from "./support/grant-storage";
import { readParams } from "./support/params";
import { jsonResponse } from "./support/respond";

/**
 * The token endpoint (RFC 6749 §3.2): parses, checks a DPoP proof (RFC 9449 §5; its rules first, its one jti call
 * beside the client's authentication, so it adds no round trip), authenticates the client (its row read in one D1 batch
 * with the user a refresh token names, see `tokenRequestReads`), dispatches to the grant
 * (oauth/grants/, one file each) and formats. Parameters come from an application/x-www-form-urlencoded body only; a repeated parameter is an
 * invalid_request (§3.2). Every response carries `Cache-Control: no-store` (§5.1).
 */
export async function token(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
  const params = parseWith(TokenRequestSchema, await readParams(request, "body"));
  if (!isSupportedGrant(params.grant_type)) throw new OAuthError("unsupported_grant_type", "grant_type is not supported");
  const config = loadConfig(env);
  const issuer = issuerOf(env, request);
  const proof = await checkDpopProof(env, request, issuer, "/token");
  const reads = tokenRequestReads(env, params);
  const client = await besideSpending(
    authenticateClient(env, request, params, {
      issuer,
      endpointUrl: `${issuer}/token`,
      rateLimit: { name: "token", limit: config.rateLimitToken, counts: "requests" },
      readClient: (clientId) => reads.readClient(clientId),
    }),
    spendProof(env, proof),
  );
  if (!client.grant_types.includes(params.grant_type)) {
    throw new OAuthError("unauthorized_client", `the client is not registered for the ${params.grant_type} grant`);
  }
  if (proof !== null) checkProofFitsClient(proof, client);
  else if (requiresDpop(client)) throw dpopProofRequired();
  const dpop = proof === null ? null : { jkt: proof.jkt };
  const body = await GRANTS[params.grant_type]({ config, issuer, client, params, storage: grantStorage(env, ctx, reads), dpop });
  return jsonResponse(body, { headers: nonceHeaders(proof) });
}
