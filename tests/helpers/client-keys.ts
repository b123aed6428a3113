import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { JWT_BEARER_ASSERTION_TYPE } from "../../src/oauth/client-auth";
import { ISSUER } from "./back-channel";

/** A client's signing key: what it registers (its public JWK with kid), and what it signs — assertions, request objects. */
export class ClientKey {
  private constructor(
    readonly alg: string,
    readonly privateKey: CryptoKey,
    readonly jwk: JWK & { kid: string },
  ) {}

  static async generate(alg: "ES256" | "PS256" | "RS256" | "EdDSA" = "ES256"): Promise<ClientKey> {
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    const jwk = { ...(await exportJWK(publicKey)), alg, use: "sig" } as JWK & { kid: string };
    jwk.kid = await calculateJwkThumbprint(jwk);
    return new ClientKey(alg, privateKey, jwk);
  }

  /** The key set to register (`jwks`). */
  get jwks(): { keys: Record<string, string>[] } {
    return { keys: [this.jwk as unknown as Record<string, string>] };
  }

  /** RFC 7523 client authentication parameters, with a fresh assertion. */
  async assertionParams(clientId: string, aud: string | string[] = ISSUER): Promise<Record<string, string>> {
    const now = Math.floor(Date.now() / 1000);
    const jwt = await new SignJWT({ jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: this.alg, kid: this.jwk.kid })
      .setIssuer(clientId)
      .setSubject(clientId)
      .setAudience(aud)
      .setIssuedAt(now)
      .setExpirationTime(now + 60)
      .sign(this.privateKey);
    return { client_assertion_type: JWT_BEARER_ASSERTION_TYPE, client_assertion: jwt };
  }

  /**
   * An RFC 9101 request object holding `params`, as client libraries sign them (iss, aud, iat, nbf, exp, jti);
   * `claims` overrides or removes (undefined) any of them, `header` the JOSE header.
   */
  async requestObject(clientId: string, params: Record<string, unknown>, options: { claims?: Record<string, unknown>; header?: Record<string, unknown> } = {}): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    const payload: Record<string, unknown> = { iss: clientId, aud: ISSUER, iat: now, nbf: now, exp: now + 300, jti: crypto.randomUUID(), client_id: clientId, ...params, ...options.claims };
    for (const [name, value] of Object.entries(payload)) if (value === undefined) delete payload[name];
    return new SignJWT(payload).setProtectedHeader({ alg: this.alg, kid: this.jwk.kid, typ: "oauth-authz-req+jwt", ...options.header }).sign(this.privateKey);
  }
}

/** An unsigned request object (`alg: none`), as OIDC Core §6.1 allows and this OP refuses unless a setting allows it. */
export function unsignedRequestObject(payload: Record<string, unknown>): string {
  const enc = (value: unknown) => btoa(JSON.stringify(value)).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
  return `${enc({ alg: "none" })}.${enc(payload)}.`;
}
