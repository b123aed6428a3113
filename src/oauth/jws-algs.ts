/**
 * The JWS algorithms this OP accepts on what clients sign: client assertions (RFC 7523), DPoP proofs (RFC 9449 §4.2)
 * and request objects (RFC 9101). Asymmetric only: never `none`, never an HMAC (RFC 9449 §4.2 asks for an asymmetric
 * algorithm, and a client secret is only held hashed here, so it could not check an HMAC anyway).
 */
export const ASYMMETRIC_JWS_ALGS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"] as const;

/** FAPI 2.0 Security Profile §5.4.1: PS256, ES256 or EdDSA (Ed25519), for whatever a FAPI 2.0 client signs. */
export const FAPI2_JWS_ALGS = ["PS256", "ES256", "EdDSA"] as const;
