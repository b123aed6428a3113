import { loadConfig } from "../../config";
import type { Env } from "../../env";
import { jtiStoreFor } from "../../objects/locate";
import { dpopProofOf, spendDpopProof, verifyDpopProof, type VerifiedDpopProof } from "../../oauth/dpop";
import { nonceWindow } from "../../oauth/dpop-nonce";

/**
 * DPoP proofs at the endpoints (RFC 9449): the rules are oauth/dpop.ts's; this wires them to the settings, the clock,
 * the server nonces and the one storage step — the proof's jti, recorded in the `JtiStore` shard of `dpop:<jkt>`
 * (C10), one object call. Every rule is checked before anything is looked up (no I/O, so a bad proof or a missing
 * nonce costs the caller nothing: no rate-limit count, no spent client assertion), then the jti is recorded in the same
 * round trip as the endpoint's first lookups (`besideSpending`), so it adds none.
 */

export interface EndpointProof extends VerifiedDpopProof {
  htm: string;
  htu: string;
}

/**
 * The request's DPoP proof checked for `path` (the endpoint, e.g. "/token"), or null when it carries none.
 * `accessToken`: for resource access, the token the proof must name (`ath`).
 */
export async function checkDpopProof(env: Env, request: Request, issuer: string, path: string, accessToken: string | null = null): Promise<EndpointProof | null> {
  const proof = dpopProofOf(request.headers.get("dpop"));
  if (proof === null) return null;
  const config = loadConfig(env);
  const nowSeconds = Math.floor(Date.now() / 1000);
  const htm = request.method;
  const htu = `${issuer}${path}`;
  const nonces = config.dpopNonceSecret === "" ? null : await nonceWindow(config.dpopNonceSecret, nowSeconds);
  return { ...(await verifyDpopProof(proof, { htm, htu, nowSeconds, windowSeconds: config.dpopProofWindow, accessToken, nonces })), htm, htu };
}

/** C10: the proof's jti recorded once — the one object call; a replay is invalid_dpop_proof. Nothing without a proof. */
export async function spendProof(env: Env, proof: EndpointProof | null): Promise<void> {
  if (proof === null) return;
  const { htm, htu } = proof;
  await spendDpopProof(proof, (jkt, jti, windowSeconds) => {
    const scope = `dpop:${jkt}`;
    return jtiStoreFor(env, scope).recordJti(scope, jti, { htm, htu }, windowSeconds);
  });
}

/**
 * Runs `main` (client authentication, with its first round trip) and the proof's jti record side by side, so the
 * object call overlaps `main`'s instead of adding one; `main`'s failure is reported first.
 */
export async function besideSpending<T>(main: Promise<T>, spending: Promise<void>): Promise<T> {
  const [a, b] = await Promise.allSettled([main, spending]);
  if (a.status === "rejected") throw a.reason;
  if (b.status === "rejected") throw b.reason;
  return a.value;
}

/** §8.2: a successful answer to a proof whose nonce has rolled over carries the next one. */
export function nonceHeaders(proof: VerifiedDpopProof | null): Record<string, string> {
  return proof?.nextNonce ? { "dpop-nonce": proof.nextNonce } : {};
}
