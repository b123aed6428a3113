import { SignJWT, type JWTPayload, type JWTVerifyOptions, type JWTVerifyResult } from "jose";
import { base64url, randomToken, sha256 } from "../lib/crypto";

/**
 * Minting and checking of the JWTs the OP issues. Pure: the signing key is passed in, and verification takes
 * the function that knows the published keys (objects/key-cache.ts), so these rules have no I/O of their own.
 */

export interface SigningKey {
  kid: string;
  alg: "RS256" | "ES256";
  key: CryptoKey;
}

export type Verify = (jwt: string, options: JWTVerifyOptions) => Promise<JWTVerifyResult<JWTPayload>>;

/** OIDC Core §3.1.3.6: left-most half of the SHA-256 of the ASCII value, base64url (both our algs use SHA-256). */
export async function halfHash(value: string): Promise<string> {
  const digest = await sha256(value);
  return base64url(digest.slice(0, digest.length / 2));
}

export interface IdTokenInput {
  issuer: string;
  clientId: string;
  sub: string;
  authTime: number;
  nonce: string | null;
  sid: string | null;
  amr: string[];
  acr: string | null;
  accessToken: string | null;
  ttlSeconds: number;
  /** User claims released into the ID token (OIDC Core §5.4, §5.5; which ones: `releasedClaimNames`). */
  claims?: Record<string, unknown>;
}

/** OIDC Core §2 and §3.1.3.6: iss, sub, aud, exp, iat, auth_time (always, C16), nonce, at_hash, sid, amr, acr; `kid` in the header. */
export async function mintIdToken(key: SigningKey, input: IdTokenInput): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload & Record<string, unknown> = {
    ...input.claims,
    sub: input.sub,
    auth_time: input.authTime,
    azp: input.clientId,
  };
  if (input.nonce !== null) payload.nonce = input.nonce;
  if (input.sid !== null) payload.sid = input.sid;
  if (input.amr.length > 0) payload.amr = input.amr;
  if (input.acr !== null) payload.acr = input.acr;
  if (input.accessToken !== null) payload.at_hash = await halfHash(input.accessToken);
  return new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
    .setIssuer(input.issuer)
    .setAudience(input.clientId)
    .setIssuedAt(now)
    .setExpirationTime(now + input.ttlSeconds)
    .sign(key.key);
}

/** OIDC Back-Channel Logout 1.0 §2.4: the one member of `events` that makes a JWT a Logout Token. */
export const BACKCHANNEL_LOGOUT_EVENT = "http://schemas.openid.net/event/backchannel-logout";

export interface LogoutTokenInput {
  /** The issuer the client knows this OP by (the `iss` of the ID tokens it got). */
  issuer: string;
  clientId: string;
  sub: string;
  /** The session that ended (always sent, so `backchannel_logout_session_required` clients are served too). */
  sid: string | null;
  ttlSeconds: number;
}

/**
 * OIDC Back-Channel Logout 1.0 §2.4: `iss`, `aud`, `iat`, `exp`, `jti`, `events` with the back-channel logout event,
 * `sub` and `sid`, and never a `nonce` (§2.4: it would make the token usable as an ID token). Explicitly typed
 * `logout+jwt` (§2.4, RFC 8725 §3.11), signed like the client's ID tokens, with `kid`.
 */
export async function mintLogoutToken(key: SigningKey, input: LogoutTokenInput): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const payload: JWTPayload & Record<string, unknown> = { sub: input.sub, events: { [BACKCHANNEL_LOGOUT_EVENT]: {} } };
  if (input.sid !== null) payload.sid = input.sid;
  return new SignJWT(payload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "logout+jwt" })
    .setIssuer(input.issuer)
    .setAudience(input.clientId)
    .setIssuedAt(now)
    .setExpirationTime(now + input.ttlSeconds)
    .setJti(randomToken(16))
    .sign(key.key);
}

export interface AccessTokenInput {
  issuer: string;
  clientId: string;
  /** The user, or the client itself for client_credentials (RFC 9068 §2.2). */
  sub: string;
  scope: string;
  /** The grant (token family) the token belongs to: revoking it revokes the token (C1, C3). */
  grantId: string;
  authTime: number | null;
  ttlSeconds: number;
  /** RFC 9449 §6.1: the DPoP key thumbprint the token is bound to. */
  dpopJkt?: string | null;
}

export interface AccessTokenClaims {
  iss: string;
  sub: string;
  aud: string;
  client_id: string;
  scope: string;
  jti: string;
  gid: string;
  iat: number;
  exp: number;
  auth_time?: number;
  cnf?: { jkt: string };
}

/** RFC 9068: a JWT access token, `typ: at+jwt`, with a jti so a single token can be revoked. Audience: this OP (its userinfo). */
export async function mintAccessToken(key: SigningKey, input: AccessTokenInput): Promise<{ token: string; claims: AccessTokenClaims }> {
  const now = Math.floor(Date.now() / 1000);
  const claims: AccessTokenClaims = {
    iss: input.issuer,
    sub: input.sub,
    aud: input.issuer,
    client_id: input.clientId,
    scope: input.scope,
    jti: randomToken(16),
    gid: input.grantId,
    iat: now,
    exp: now + input.ttlSeconds,
  };
  if (input.authTime !== null) claims.auth_time = input.authTime;
  if (input.dpopJkt) claims.cnf = { jkt: input.dpopJkt };
  const token = await new SignJWT({ ...claims }).setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "at+jwt" }).sign(key.key);
  return { token, claims };
}

const JWT_SHAPE = /^[A-Za-z0-9_-]{2,4096}\.[A-Za-z0-9_-]{2,16384}\.[A-Za-z0-9_-]{2,1024}$/;

/**
 * Checks signature, issuer, audience, expiry and `typ: at+jwt` (RFC 9068 §4). Null for anything that is not a
 * valid access token of ours; revocation is checked by the caller against the token's grant.
 */
export async function verifyAccessToken(verify: Verify, issuer: string, token: string): Promise<AccessTokenClaims | null> {
  if (!JWT_SHAPE.test(token)) return null;
  try {
    const { payload } = await verify(token, { issuer, audience: issuer, typ: "at+jwt" });
    if (typeof payload.jti !== "string" || typeof payload.gid !== "string" || typeof payload.client_id !== "string") return null;
    if (typeof payload.sub !== "string" || typeof payload.scope !== "string") return null;
    return payload as unknown as AccessTokenClaims;
  } catch {
    return null;
  }
}

/**
 * An ID token we issued, presented back as `id_token_hint` (authorize, logout). Its expiry is not held against it
 * (OIDC RP-Initiated Logout §2: an expired hint is still a valid hint); signature and issuer are.
 */
export async function verifyIdTokenHint(verify: Verify, issuer: string, token: string): Promise<{ sub: string; aud: string[]; sid: string | null } | null> {
  if (!JWT_SHAPE.test(token)) return null;
  try {
    const { payload } = await verify(token, { issuer, typ: "JWT", clockTolerance: 10 * 365 * 86400 });
    if (typeof payload.sub !== "string") return null;
    const aud = typeof payload.aud === "string" ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
    return { sub: payload.sub, aud, sid: typeof payload.sid === "string" ? payload.sid : null };
  } catch {
    return null;
  }
}
