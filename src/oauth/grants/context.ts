import type { Config } from "../../config";
import type { StoredClient } from "../../db/clients";
import type { GrantUser } from "../../db/users";
import type { AuthorizationCodeGrant, CodeOutcome, CodeRedemption } from "../../objects/auth-codes";
import type { SigningAlg } from "../../objects/key-manager";
import type { RecordClientFacts } from "../../objects/sessions";
import type { ConsumeResult } from "../../objects/single-use-store";
import type { CreateFamilyResult, FamilyInit, GrantParties, RotateRequest, RotateResult } from "../../objects/token-family";
import type { SigningKey } from "../tokens";
import type { TokenRequest } from "./request";

/**
 * What a grant works with. The grants hold the protocol rules and do no I/O of their own: everything stateful goes
 * through `GrantStorage`, which routes/support/grant-storage.ts wires to the Durable Objects and D1.
 */
export interface GrantStorage {
  /** C1: consumes the code, with client, redirect URI and PKCE checked in the same step. Null: not one of our codes. */
  redeemCode(code: string, redemption: CodeRedemption, outcome: CodeOutcome): Promise<ConsumeResult<AuthorizationCodeGrant, CodeOutcome> | null>;
  newGrantId(): string;
  createGrant(init: FamilyInit): Promise<CreateFamilyResult>;
  /** C3: rotation, reuse detection and scope narrowing, atomically in the grant's object. */
  rotateRefreshToken(refreshToken: string, request: RotateRequest): Promise<RotateResult>;
  revokeGrant(grantId: string, reason: string, actor: string, about?: GrantParties): Promise<void>;
  /** Whether `revokeGrant` was called for a grant id (a grant that lives in its tokens has no object until then). */
  isGrantRevoked(grantId: string): Promise<boolean>;
  /** The user a grant for `clientId` speaks for, with the time their grants for it were ended (C22), or null. */
  findGrantUser(sub: string, clientId: string): Promise<GrantUser | null>;
  signingKey(alg?: SigningAlg): Promise<SigningKey>;
  /**
   * Best effort and off the response's path: the session learns the client it signed in to, the issuer it knows us by
   * (for its logout notices) and the grant (for revoke-all's count).
   */
  recordSessionClient(userId: string, sid: string, clientId: string, facts: RecordClientFacts): void;
}

export interface GrantContext {
  config: Config;
  issuer: string;
  /** The authenticated client, registered for this grant type. */
  client: StoredClient;
  params: TokenRequest;
  storage: GrantStorage;
  /**
   * The request's DPoP proof, checked (RFC 9449 §5): the key its tokens are bound to. A code bound to a key needs a
   * proof of it, a bound refresh token likewise; null or absent: no proof was sent.
   */
  dpop?: { jkt: string } | null;
}

/** RFC 6749 §5.1. */
export interface TokenResponse {
  access_token: string;
  /** RFC 9449 §5: `DPoP` when the access token is bound to the proof's key. */
  token_type: "Bearer" | "DPoP";
  expires_in: number;
  scope?: string;
  id_token?: string;
  refresh_token?: string;
}

export type Grant = (context: GrantContext) => Promise<TokenResponse>;
