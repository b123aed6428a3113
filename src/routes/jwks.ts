import type { Env } from "../env";
import type { PublicJwk } from "../objects/key-manager";
import { publishedJwks } from "../objects/key-cache";
import { publicDocument } from "./support/respond";

/**
 * GET /jwks.json: the key manager's published keys (C19), current, next and previous, public members only.
 * Served as application/json rather than application/jwk-set+json (RFC 7517 §8.5): every client library accepts it.
 * A short max-age: the next key is published well before it signs, so a cached set never misses a new kid for long.
 */

/** The members a public JWK may carry here; anything else (a private member by mistake) is never published. */
const PUBLIC_MEMBERS = ["kty", "kid", "alg", "use", "n", "e", "crv", "x", "y"] as const;

function publicOnly(jwk: PublicJwk): Partial<PublicJwk> {
  const out: Record<string, string> = {};
  for (const member of PUBLIC_MEMBERS) {
    const value = jwk[member];
    if (typeof value === "string") out[member] = value;
  }
  return out as Partial<PublicJwk>;
}

export async function jwks(env: Env): Promise<Response> {
  const set = await publishedJwks(env);
  return publicDocument({ keys: set.keys.map(publicOnly) }, 60);
}
