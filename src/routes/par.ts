import * as z from "zod/mini";
import { issuerOf, loadConfig } from "../config";
import type { Env } from "../env";
import { newParRequestUri, parRequestStoreFor } from "../objects/locate";
import { requestForm } from "../oauth/authorize/check-request-object";
import { responseTarget, validateAuthorizationRequest } from "../oauth/authorize/request";
import { clientAuthParams } from "../oauth/client-auth";
import { checkProofFitsClient } from "../oauth/dpop";
import { parseWith } from "../oauth/schema";
import { requestUriLifetime } from "../oauth/security-profile";
import { pendingAuthorization, verifiedRequestObject } from "./support/authorization-request";
import { authenticateClient } from "./support/client-authentication";
import { besideSpending, checkDpopProof, nonceHeaders, spendProof } from "./support/dpop";
import { readParams } from "./support/params";
import { jsonResponse } from "./support/respond";

/**
 * The pushed authorization request endpoint (RFC 9126): the client authenticates as at /token (the same methods, the
 * same rate limit — per caller address and client_id, RATE_LIMIT_TOKEN; an assertion may also name this endpoint's URL,
 * §2), a DPoP proof binds the code to come to its key (RFC 9449 §10.1), and the request is validated by the one
 * validator of /authorize — every problem a JSON error (§2.3), never a redirect. A valid request is stored in the
 * ParRequestStore shard its `request_uri` names, bound to this client, for PAR_TTL seconds, usable once (C9).
 */

const CREDENTIALS = z.object(clientAuthParams);
const CREDENTIAL_PARAMS = new Set(Object.keys(clientAuthParams).filter((name) => name !== "client_id"));

export async function pushedAuthorizationRequest(request: Request, env: Env): Promise<Response> {
  const body = await readParams(request, "body");
  const config = loadConfig(env);
  const issuer = issuerOf(env, request);
  const endpointUrl = `${issuer}/par`;
  const proof = await checkDpopProof(env, request, issuer, "/par");
  const client = await besideSpending(
    authenticateClient(env, request, parseWith(CREDENTIALS, body), {
      issuer,
      endpointUrl,
      rateLimit: { name: "par", limit: config.rateLimitToken, counts: "requests" },
      endpointIsAudience: true,
    }),
    spendProof(env, proof),
  );
  if (proof !== null) checkProofFitsClient(proof, client);
  const form = requestForm(body, "par");
  // The request is the request object's parameters, or the body's without the client's credentials (never stored).
  const params =
    form.form === "object"
      ? await verifiedRequestObject(env, issuer, client, form.jwt, endpointUrl)
      : { ...Object.fromEntries(Object.entries(body).filter(([name]) => !CREDENTIAL_PARAMS.has(name))), client_id: client.client_id };
  const target = responseTarget(params, client);
  const validated = validateAuthorizationRequest(params, client, target, {
    pushed: true,
    serverRequiresPushed: config.requirePushedAuthorizationRequests,
    proofJkt: proof?.jkt ?? null,
  });
  // The id_token_hint too is checked now, so the client learns of a bad one here rather than the user at /authorize.
  await pendingAuthorization(env, issuer, client, validated);
  const pushed = validated.dpopJkt === null ? params : { ...params, dpop_jkt: validated.dpopJkt };
  const requestUri = newParRequestUri(env);
  const expiresIn = requestUriLifetime(client, config.parTtl);
  const { stored } = await parRequestStoreFor(env, requestUri)!.put(requestUri, { clientId: client.client_id, params: pushed }, expiresIn);
  if (!stored) throw new Error("request_uri collision");
  return jsonResponse({ request_uri: requestUri, expires_in: expiresIn }, { status: 201, headers: nonceHeaders(proof) });
}
