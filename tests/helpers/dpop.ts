import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair, type CryptoKey, type JWK } from "jose";
import { randomToken, sha256Base64url } from "../../src/lib/crypto";

/** A client's DPoP key (RFC 9449 §4), making proofs the way a client library does, with every member overridable. */
export class DpopKey {
  private constructor(
    readonly alg: string,
    readonly privateKey: CryptoKey,
    readonly publicJwk: JWK,
    readonly jkt: string,
  ) {}

  static async generate(alg: "ES256" | "PS256" | "RS256" | "EdDSA" = "ES256"): Promise<DpopKey> {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
    const publicJwk = await exportJWK(publicKey);
    return new DpopKey(alg, privateKey, publicJwk, await calculateJwkThumbprint(publicJwk));
  }

  /** A proof for `htm` `htu`; `accessToken` adds `ath`. */
  async proof(
    htm: string,
    htu: string,
    options: { accessToken?: string; nonce?: string; iat?: number; jti?: string | null; claims?: Record<string, unknown>; header?: Record<string, unknown> } = {},
  ): Promise<string> {
    const payload: Record<string, unknown> = {
      htm,
      htu,
      iat: options.iat ?? Math.floor(Date.now() / 1000),
      ...(options.jti === null ? {} : { jti: options.jti ?? randomToken(12) }),
      ...(options.nonce !== undefined ? { nonce: options.nonce } : {}),
      ...(options.accessToken !== undefined ? { ath: await sha256Base64url(options.accessToken) } : {}),
      ...options.claims,
    };
    return new SignJWT(payload).setProtectedHeader({ alg: this.alg, typ: "dpop+jwt", jwk: this.publicJwk, ...options.header }).sign(this.privateKey);
  }
}

export function decodePayload(jwt: string): Record<string, unknown> {
  return JSON.parse(atob(jwt.split(".")[1]!.replace(/-/g, "+").replace(/_/g, "/")));
}
