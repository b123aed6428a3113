import { loadConfig } from "../../config";
import type { Env } from "../../env";
import { jtiStoreFor } from "../../objects/locate";
import { dpopProofOf, verifyDpopProof, type VerifiedDpopProof } from "../../oauth/dpop";
import { nonceWindow } from "../../oauth/dpop-nonce";

/**
 * DPoP proofs at the endpoints (RFC 9449): the rules are oauth/dpop.ts's; this wires them to the settings, the clock,
 * the server nonces and the one storage step — the proof's jti, recorded in the `JtiStore` shard of `dpop:<jkt>`
 * (C10), one object call.
 */

/**
 * The request's DPoP proof checked for `path` (the endpoint, e.g. "/token"), or null when it carries none.
 * `accessToken`: for resource access, the token the proof must name (`ath`).
 */
export async function checkDpopProof(env: Env, request: Request, issuer: string, path: string, accessToken: string | null = null): Promise<VerifiedDpopProof | null> {
  const proof = dpopProofOf(request.headers.get("dpop"));
  if (proof === null) return null;
  const config = loadConfig(env);
  const nowSeconds = Math.floor(Date.now() / 1000);
  const htm = request.method;
  const htu = `${issuer}${path}`;
  const nonces = config.dpopNonceSecret === "" ? null : await nonceWindow(config.dpopNonceSecret, nowSeconds);
  return verifyDpopProof(proof, { htm, htu, nowSeconds, windowSeconds: config.dpopProofWindow, accessToken, nonces }, (jkt, jti, windowSeconds) => {
    const scope = `dpop:${jkt}`;
    return jtiStoreFor(env, scope).recordJti(scope, jti, { htm, htu }, windowSeconds);
  });
}

/**
 * Runs `main` (client authentication, the token's lookups) and the proof check side by side, so the proof's one object
 * call overlaps the other round trips instead of adding one; `main`'s failure is reported first.
 */
export async function besideProof<T>(main: Promise<T>, proof: Promise<VerifiedDpopProof | null>): Promise<[T, VerifiedDpopProof | null]> {
  const [a, b] = await Promise.allSettled([main, proof]);
  if (a.status === "rejected") throw a.reason;
  if (b.status === "rejected") throw b.reason;
  return [a.value, b.value];
}

/** §8.2: a successful answer to a proof whose nonce has rolled over carries the next one. */
export function nonceHeaders(proof: VerifiedDpopProof | null): Record<string, string> {
  return proof?.nextNonce ? { "dpop-nonce": proof.nextNonce } : {};
}
