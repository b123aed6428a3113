import { hmacSha256Base64url, randomToken, sha256Base64url } from "../lib/crypto";
import { isScopeSubset, narrowRefreshScope, normalizeScope } from "../lib/scope";
import { OPAQUE_ID_PATTERN, isOpaqueId } from "../lib/ids";
import { purgeTime } from "../lib/time";
import { madeUnderEarlierRegistration } from "../lib/registration";
import { StatefulObject, type SchemaComponent } from "./base";

/**
 * One grant ("token family"): what the user granted to one client on one occasion, the refresh token currently
 * valid for it, the tokens it replaced, and the access tokens revoked early. One object per family, found by
 * `tokenFamilyFor(env, familyId)`, so rotation and revocation of a family never contend with another family.
 *
 * A refresh token is `<familyId>.<sub>.<secret>` (`<familyId>.<secret>` before the user rode along): the /token
 * route finds the object from the token itself (`familyIdOfRefreshToken`) and reads the user it names beside the
 * client (`userOfRefreshToken`: a hint, taken only when the family says the same); the object stores only the
 * SHA-256 of the whole token. The user part is the `sub` the client already has in its ID tokens (subjects are public);
 * pairwise subjects would need another hint here. A release before this form cannot read it (docs/deployment.md).
 *
 * The same class, addressed as `client:<client_id>` (`clientTokensFor`), holds only the revoked access tokens a client
 * was issued for itself (client_credentials): those tokens have no family (oauth/client-grant.ts).
 */

/** `<familyId>.<sub>.<secret>` or `<familyId>.<secret>`, the secret being 32 random bytes in base64url (43 characters). */
const REFRESH_TOKEN = new RegExp(`^(${OPAQUE_ID_PATTERN})\\.(?:(${OPAQUE_ID_PATTERN})\\.)?([A-Za-z0-9_-]{43})$`);
const MAX_REFRESH_TOKEN_LENGTH = 400;
const MAX_JTI_LENGTH = 256;

function refreshTokenParts(token: string): { familyId: string; sub: string | null } | null {
  if (typeof token !== "string" || token.length > MAX_REFRESH_TOKEN_LENGTH) return null;
  const match = REFRESH_TOKEN.exec(token);
  return match ? { familyId: match[1]!, sub: match[2] ?? null } : null;
}

/** The family id a refresh token names, or null when the string is not one of our refresh tokens (no object is touched). */
export function familyIdOfRefreshToken(token: string): string | null {
  return refreshTokenParts(token)?.familyId ?? null;
}

/**
 * The user a refresh token names, unverified: only its family's object knows whether the token is real, so this is a
 * hint for reading the user beside the client, and the grant's own `sub` decides. Null for the older form.
 */
export function userOfRefreshToken(token: string): string | null {
  return refreshTokenParts(token)?.sub ?? null;
}

/** A refresh token of the family: the user rides along when their id has the shape of one (every user id has). */
function refreshTokenOf(familyId: string, sub: string | null, secret: string): string {
  return sub !== null && isOpaqueId(sub) ? `${familyId}.${sub}.${secret}` : `${familyId}.${secret}`;
}

/** Whose grant it is, for the audit event of a revocation in an object that holds no family row. */
export interface GrantParties {
  subject?: string | null;
  clientId?: string | null;
}

/** A fresh family id: opaque and random, usable in `tokenFamilyFor`. */
export function newFamilyId(): string {
  return randomToken(16);
}

/** What a grant is: who, for which client, with what scope, from which authentication. */
interface GrantFacts {
  familyId: string;
  clientId: string;
  sub: string;
  /** Space-separated, as granted. */
  scope: string;
  sid: string | null;
  /** Seconds since the epoch (OIDC `auth_time`); null when no user authenticated (client_credentials). */
  authTime: number | null;
  amr: string[];
  acr: string | null;
  /** The `claims` request parameter as validated JSON text (OIDC Core §5.5), or null. */
  claims: string | null;
  /** RFC 9449 §5: the DPoP key thumbprint the refresh tokens are bound to (public clients), or null. */
  dpopJkt: string | null;
}

export interface FamilyInit extends GrantFacts {
  /** The `registered_at` of the client the grant is made for: the registration it belongs to (RFC 9700 §4.14). */
  clientRegisteredAt: number;
  /** False for client_credentials or when offline access was not granted: the family then only anchors access tokens. */
  issueRefreshToken: boolean;
  /** Absolute lifetime of the family; defaults to `refreshTokenTtl`. Rotation never extends it. */
  lifetimeSeconds?: number;
}

export interface FamilyInfo extends GrantFacts {
  /** Milliseconds since the epoch. */
  createdAt: number;
  /** The client registration the grant was made under (ms); null for a grant stored before grants recorded it. */
  clientRegisteredAt: number | null;
  /** Milliseconds since the epoch: the end of the family's absolute lifetime. */
  expiresAt: number;
  status: "active" | "revoked";
}

export type CreateFamilyResult =
  | { status: "created"; refreshToken: string | null; family: FamilyInfo }
  /** The grant was revoked before it was created (a replayed authorization code, RFC 6749 §4.1.2): issue nothing. */
  | { status: "revoked" }
  | { status: "exists" };

export type RotateResult =
  /** `scope` is what the new access token carries: the requested scope, or the family's when none was requested. */
  | { status: "ok"; refreshToken: string; scope: string; family: FamilyInfo }
  | { status: "unknown" }
  | { status: "revoked" }
  | { status: "expired" }
  | { status: "rejected"; reason: string }
  /** The requested scope exceeds the grant (no reason), or nothing of the grant is allowed to the client now (C5). */
  | { status: "invalid_scope"; reason?: string }
  /** An already-rotated token was presented: the family is now revoked (C3). */
  | { status: "reused" };

export interface RotateRequest {
  /** The authenticated client making the refresh request. */
  clientId: string;
  /** That client's `registered_at`: a grant made under an earlier registration of its client_id is refused (RFC 9700 §4.14). */
  clientRegisteredAt: number;
  /** The `scope` parameter of the refresh request, or null when absent (RFC 6749 §6). */
  scope: string | null;
  /** Thumbprint of the key of the request's DPoP proof, or null without one. */
  dpopJkt: string | null;
  /**
   * The scopes the client may be granted under its registration now (C5): the new tokens carry the grant's scope
   * narrowed to these (`narrowRefreshScope`). Absent: no narrowing.
   */
  allowedScope?: string[];
  /**
   * Seconds after its rotation within which a rotated token, presented again, is answered with the same successor
   * while that successor has not been used (a retry after a lost answer). 0 or absent: strict reuse detection (C3).
   */
  reuseIntervalSeconds?: number;
}

export type AccessTokenCheck = { active: false } | { active: true; grant: FamilyInfo };

/** `issuedAt`: when this refresh token was issued (ms), its `iat` (RFC 7662 §2.2). */
export type InspectResult = { active: false } | { active: true; family: FamilyInfo; issuedAt: number; expiresAt: number };

export type RevokeRefreshTokenResult = { status: "revoked" | "unknown" | "wrong_client" };

interface FamilyRow {
  /** Null only for a tombstone written by `revokeFamily` before the family was created. */
  family_id: string | null;
  client_id: string | null;
  sub: string | null;
  scope: string | null;
  sid: string | null;
  auth_time: number | null;
  amr: string | null;
  acr: string | null;
  claims: string | null;
  dpop_jkt: string | null;
  created_at: number | null;
  client_registered_at: number | null;
  expires_at: number;
  status: "active" | "revoked";
  revoked_at: number | null;
  revoked_reason: string | null;
  /** The key successors are derived with (`successorOf`); null for families made before it existed. */
  successor_key: string | null;
  [key: string]: SqlStorageValue;
}

/** A family that was actually created (not a pre-creation tombstone). */
type CreatedFamilyRow = FamilyRow & { family_id: string; client_id: string; sub: string; scope: string; created_at: number };

interface TokenRow {
  generation: number;
  status: "active" | "rotated";
  issued_at: number;
  rotated_at: number | null;
  [key: string]: SqlStorageValue;
}

const TABLES: SchemaComponent = {
  name: "token_family",
  migrations: [
    [
      // One row at most (`id` = 1): this object is one family. A row with a null client_id is a revoked tombstone.
      `CREATE TABLE family (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        family_id TEXT,
        client_id TEXT,
        sub TEXT,
        scope TEXT,
        sid TEXT,
        auth_time INTEGER,
        amr TEXT,
        acr TEXT,
        claims TEXT,
        dpop_jkt TEXT,
        created_at INTEGER,
        expires_at INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'revoked')),
        revoked_at INTEGER,
        revoked_reason TEXT
      )`,
      `CREATE TABLE refresh_tokens (
        token_hash TEXT PRIMARY KEY,
        generation INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'rotated')),
        issued_at INTEGER NOT NULL,
        rotated_at INTEGER
      )`,
      `CREATE TABLE revoked_access_tokens (
        jti TEXT PRIMARY KEY,
        expires_at INTEGER NOT NULL,
        revoked_at INTEGER NOT NULL
      )`,
      `CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at)`,
    ],
    // A rotated token's successor is derived from it, so a retry can be answered with the same successor without
    // the successor being stored anywhere but as its hash.
    [`ALTER TABLE family ADD COLUMN successor_key TEXT`],
    // The client registration a grant belongs to; null in grants stored before (judged by created_at instead).
    [`ALTER TABLE family ADD COLUMN client_registered_at INTEGER`],
  ],
};

/**
 * The token that replaces `presented`: HMAC-SHA-256 of it under the family's key. The same presented token always
 * has the same successor, which is what lets a retried rotation get the answer it lost (RFC 9700 §4.14.2); the key
 * never leaves the object, and the tokens themselves are stored only as hashes.
 */
async function successorOf(familyId: string, successorKey: string | null, presented: string): Promise<string> {
  const secret = successorKey === null ? randomToken(32) : await hmacSha256Base64url(successorKey, presented);
  // The successor keeps the form of the token it replaces, so the same token always has the same successor, whichever
  // deploy derived it first.
  return refreshTokenOf(familyId, userOfRefreshToken(presented), secret);
}

function isCreated(row: FamilyRow): row is CreatedFamilyRow {
  return row.client_id !== null && row.family_id !== null && row.sub !== null && row.scope !== null && row.created_at !== null;
}

function toInfo(row: CreatedFamilyRow): FamilyInfo {
  return {
    familyId: row.family_id,
    clientId: row.client_id,
    sub: row.sub,
    scope: row.scope,
    sid: row.sid,
    authTime: row.auth_time,
    amr: row.amr === null ? [] : (JSON.parse(row.amr) as string[]),
    acr: row.acr,
    claims: row.claims,
    dpopJkt: row.dpop_jkt,
    createdAt: row.created_at,
    clientRegisteredAt: row.client_registered_at,
    expiresAt: row.expires_at,
    status: row.status,
  };
}

export class TokenFamily extends StatefulObject {
  protected readonly source = "token_family";

  protected override schema(): SchemaComponent {
    return TABLES;
  }

  private family(): FamilyRow | undefined {
    return this.sql.exec<FamilyRow>(`SELECT * FROM family WHERE id = 1`).toArray()[0];
  }

  private token(hash: string): TokenRow | undefined {
    return this.sql
      .exec<TokenRow>(`SELECT generation, status, issued_at, rotated_at FROM refresh_tokens WHERE token_hash = ?`, hash)
      .toArray()[0];
  }

  /** The family id this object was addressed by, when the runtime tells us (`family:<id>`). */
  private addressedFamilyId(): string | null {
    const name = this.ctx.id.name;
    return name !== undefined && name.startsWith("family:") ? name.slice("family:".length) : null;
  }

  /** Marks the family revoked and audits it. Call inside `transact`. */
  private markRevoked(row: CreatedFamilyRow, now: number, reason: string, actor: string | null): void {
    this.sql.exec(`UPDATE family SET status = 'revoked', revoked_at = ?, revoked_reason = ? WHERE id = 1`, now, reason.slice(0, 200));
    this.recordAudit({
      type: "token_family.revoked",
      actor,
      subject: row.sub,
      clientId: row.client_id,
      data: { familyId: row.family_id, reason: reason.slice(0, 200) },
    });
  }

  async createFamily(init: FamilyInit): Promise<CreateFamilyResult> {
    if (!isOpaqueId(init.familyId)) throw new Error("createFamily: malformed familyId");
    const addressed = this.addressedFamilyId();
    if (addressed !== null && addressed !== init.familyId) throw new Error("createFamily: familyId does not name this object");
    if (!init.clientId || !init.sub) throw new Error("createFamily: clientId and sub are required");
    if (!Number.isSafeInteger(init.clientRegisteredAt)) throw new Error("createFamily: clientRegisteredAt must be a time in ms");
    const lifetime = init.lifetimeSeconds ?? this.config.refreshTokenTtl;
    if (!Number.isFinite(lifetime) || lifetime <= 0) throw new Error("createFamily: lifetimeSeconds must be positive");

    const refreshToken = init.issueRefreshToken ? refreshTokenOf(init.familyId, init.sub, randomToken(32)) : null;
    const successorKey = init.issueRefreshToken ? randomToken(32) : null;
    const tokenHash = refreshToken === null ? null : await sha256Base64url(refreshToken);
    const now = this.now();
    const expiresAt = now + Math.round(lifetime * 1000);

    const result = this.transact((): CreateFamilyResult => {
      const existing = this.family();
      // RFC 6749 §4.1.2 (C1): a replayed code may have revoked the grant before this call got here.
      if (existing) return existing.status === "revoked" ? { status: "revoked" } : { status: "exists" };
      this.sql.exec(
        `INSERT INTO family (id, family_id, client_id, sub, scope, sid, auth_time, amr, acr, claims, dpop_jkt, created_at, client_registered_at, expires_at, status, successor_key)
         VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'active', ?)`,
        init.familyId,
        init.clientId,
        init.sub,
        init.scope,
        init.sid,
        init.authTime,
        JSON.stringify(init.amr),
        init.acr,
        init.claims,
        init.dpopJkt,
        now,
        init.clientRegisteredAt,
        expiresAt,
        successorKey,
      );
      if (tokenHash !== null) {
        this.sql.exec(`INSERT INTO refresh_tokens (token_hash, generation, status, issued_at) VALUES (?, 1, 'active', ?)`, tokenHash, now);
      }
      this.recordAudit({
        type: "token_family.created",
        subject: init.sub,
        clientId: init.clientId,
        data: { familyId: init.familyId, scope: init.scope, refreshToken: refreshToken !== null, dpopBound: init.dpopJkt !== null, expiresAt },
      });
      return { status: "created", refreshToken, family: toInfo(this.family() as CreatedFamilyRow) };
    });
    await this.flushAudit();
    if (result.status === "created") await this.wakeBy(purgeTime(expiresAt));
    return result;
  }

  /**
   * Exchanges a refresh token for its successor (RFC 6749 §6). Every check and the rotation happen in one
   * transaction, so of any number of concurrent presentations of one token exactly one succeeds (C3). A check that
   * fails on the request (client, scope, DPoP key) changes nothing; presenting a token that was already rotated is
   * taken as theft and revokes the whole family (RFC 9700 §4.14.2).
   */
  async rotateRefreshToken(presented: string, request: RotateRequest): Promise<RotateResult> {
    if (!this.hasStorage()) return { status: "unknown" };
    const familyId = familyIdOfRefreshToken(presented);
    if (familyId === null) return { status: "unknown" };
    const hash = await sha256Base64url(presented);
    // The key never changes once the family exists, so reading it before the transaction is safe.
    const nextToken = await successorOf(familyId, this.family()?.successor_key ?? null, presented);
    const nextHash = await sha256Base64url(nextToken);
    const now = this.now();
    const reuseInterval = Math.max(0, request.reuseIntervalSeconds ?? 0) * 1000;

    const result = this.transact((): RotateResult => {
      const row = this.family();
      const token = this.token(hash);
      if (!row || !token || !isCreated(row) || row.family_id !== familyId) return { status: "unknown" };
      if (row.status === "revoked") return { status: "revoked" };
      if (row.expires_at <= now) return { status: "expired" };
      if (row.client_id !== request.clientId) return { status: "rejected", reason: "refresh token was issued to another client" };
      // RFC 9700 §4.14: checked here, in the transaction, so no rotation slips past a re-registration.
      if (madeUnderEarlierRegistration({ createdAt: row.created_at, clientRegisteredAt: row.client_registered_at }, request.clientRegisteredAt)) {
        return { status: "rejected", reason: "refresh token was issued to an earlier registration of this client" };
      }
      // RFC 6749 §6: a narrower scope may be requested, never a wider one; the family keeps what was granted.
      let scope = row.scope;
      if (request.scope !== null) {
        const requested = normalizeScope(request.scope);
        if (requested === null || !isScopeSubset(requested, row.scope)) return { status: "invalid_scope" };
        scope = requested;
      }
      // RFC 9449 §5: a bound refresh token is only usable with a proof from the same key.
      if (row.dpop_jkt !== null && request.dpopJkt !== row.dpop_jkt) {
        return { status: "rejected", reason: "DPoP proof key does not match the key the refresh token is bound to" };
      }
      // C5: the new tokens carry what the client may be granted now.
      const narrowed = request.allowedScope === undefined ? { scope } : narrowRefreshScope(row.scope, request.scope, request.allowedScope);
      if (token.status === "rotated") {
        // Within the reuse interval, while its successor is unused: the answer to this token was lost (a dropped
        // connection, a timeout), so it gets the same answer again — one rotation, never a second successor.
        const successor = reuseInterval > 0 && token.rotated_at !== null && now - token.rotated_at <= reuseInterval ? this.token(nextHash) : undefined;
        if (successor !== undefined && successor.status === "active" && successor.generation === token.generation + 1) {
          if ("error" in narrowed) return { status: "invalid_scope", reason: narrowed.error };
          this.recordAudit({
            type: "refresh_token.retry_answered",
            subject: row.sub,
            clientId: row.client_id,
            data: { familyId: row.family_id, generation: successor.generation, rotatedAt: token.rotated_at },
          });
          return { status: "ok", refreshToken: nextToken, scope: narrowed.scope, family: toInfo(row) };
        }
        // C3: a rotated token came back, so two parties hold this grant. Revoke it all, newest token included.
        this.recordAudit({
          type: "refresh_token.reuse_detected",
          subject: row.sub,
          clientId: row.client_id,
          data: { familyId: row.family_id, generation: token.generation, rotatedAt: token.rotated_at },
        });
        this.markRevoked(row, now, "refresh_token_reuse", null);
        return { status: "reused" };
      }
      if ("error" in narrowed) return { status: "invalid_scope", reason: narrowed.error };
      scope = narrowed.scope;
      this.sql.exec(`UPDATE refresh_tokens SET status = 'rotated', rotated_at = ? WHERE token_hash = ?`, now, hash);
      this.sql.exec(
        `INSERT INTO refresh_tokens (token_hash, generation, status, issued_at) VALUES (?, ?, 'active', ?)`,
        nextHash,
        token.generation + 1,
        now,
      );
      this.recordAudit({
        type: "refresh_token.rotated",
        subject: row.sub,
        clientId: row.client_id,
        data: { familyId: row.family_id, generation: token.generation + 1 },
      });
      return { status: "ok", refreshToken: nextToken, scope, family: toInfo(row) };
    });
    await this.flushAudit();
    return result;
  }

  /**
   * Revokes the family: its refresh tokens and every access token carrying its id. Idempotent; `revoked` says
   * whether this call changed anything. Before the family exists it leaves a revoked tombstone, so a later
   * `createFamily` for this id creates nothing (RFC 6749 §4.1.2, C1).
   */
  async revokeFamily(reason: string, actor?: string, about: GrantParties = {}): Promise<{ revoked: boolean }> {
    const now = this.now();
    const result = this.transact((): { revoked: boolean; tombstoneExpiresAt?: number } => {
      const row = this.family();
      if (!row) {
        // Kept for as long as the family would have lived had it been created now, and at least as long as an access
        // token issued before it (a grant that lives in its tokens has only this tombstone to say it was revoked).
        const expiresAt = now + Math.max(this.config.refreshTokenTtl, this.config.accessTokenTtl + 60) * 1000;
        const familyId = this.addressedFamilyId();
        this.sql.exec(
          `INSERT INTO family (id, family_id, expires_at, status, revoked_at, revoked_reason) VALUES (1, ?, ?, 'revoked', ?, ?)`,
          familyId,
          expiresAt,
          now,
          reason.slice(0, 200),
        );
        // No family row: revoked before it was made, or a grant that lives in its tokens (the caller says whose).
        this.recordAudit({
          type: "token_family.revoked",
          actor: actor ?? null,
          subject: about.subject ?? null,
          clientId: about.clientId ?? null,
          data: { familyId, reason: reason.slice(0, 200), withoutFamily: true },
        });
        return { revoked: true, tombstoneExpiresAt: expiresAt };
      }
      if (row.status === "revoked") return { revoked: false };
      if (isCreated(row)) this.markRevoked(row, now, reason, actor ?? null);
      return { revoked: true };
    });
    await this.flushAudit();
    if (result.tombstoneExpiresAt !== undefined) await this.wakeBy(purgeTime(result.tombstoneExpiresAt));
    return { revoked: result.revoked };
  }

  /** For introspection (RFC 7662): only the current token of a live family is active. Changes nothing. */
  async inspectRefreshToken(presented: string): Promise<InspectResult> {
    if (!this.hasStorage()) return { active: false };
    const familyId = familyIdOfRefreshToken(presented);
    if (familyId === null) return { active: false };
    const hash = await sha256Base64url(presented);
    const row = this.family();
    const token = this.token(hash);
    if (!row || !token || !isCreated(row) || row.family_id !== familyId) return { active: false };
    if (token.status !== "active" || row.status !== "active" || row.expires_at <= this.now()) return { active: false };
    return { active: true, family: toInfo(row), issuedAt: token.issued_at, expiresAt: row.expires_at };
  }

  /**
   * RFC 7009 §2.1: revoking a refresh token revokes the grant (the family), and only the client it was issued to may.
   * A rotated token of the family counts too: its client is asking for the grant to end.
   */
  async revokeRefreshToken(presented: string, clientId: string): Promise<RevokeRefreshTokenResult> {
    if (!this.hasStorage()) return { status: "unknown" };
    const familyId = familyIdOfRefreshToken(presented);
    if (familyId === null) return { status: "unknown" };
    const hash = await sha256Base64url(presented);
    const now = this.now();
    const result = this.transact((): RevokeRefreshTokenResult => {
      const row = this.family();
      const token = this.token(hash);
      if (!row || !token || !isCreated(row) || row.family_id !== familyId) return { status: "unknown" };
      if (row.client_id !== clientId) return { status: "wrong_client" };
      if (row.status === "active") this.markRevoked(row, now, "revoked_by_client", clientId);
      return { status: "revoked" };
    });
    await this.flushAudit();
    return result;
  }

  /**
   * Records an access token (by its `jti`) as revoked until it would have expired anyway (RFC 7009 §2).
   * `expiresAt` is in milliseconds since the epoch (the JWT `exp` × 1000).
   */
  async revokeAccessToken(jti: string, expiresAt: number, about: GrantParties = {}): Promise<void> {
    if (typeof jti !== "string" || jti.length === 0 || jti.length > MAX_JTI_LENGTH) throw new Error("revokeAccessToken: malformed jti");
    if (!Number.isFinite(expiresAt)) throw new Error("revokeAccessToken: expiresAt must be a number of milliseconds");
    const now = this.now();
    const recorded = this.transact(() => {
      const inserted =
        this.sql.exec(`INSERT INTO revoked_access_tokens (jti, expires_at, revoked_at) VALUES (?, ?, ?) ON CONFLICT (jti) DO NOTHING`, jti, expiresAt, now)
          .rowsWritten > 0;
      if (inserted) {
        const row = this.family();
        const created = row && isCreated(row) ? row : null;
        this.recordAudit({
          type: "access_token.revoked",
          subject: created?.sub ?? about.subject ?? null,
          clientId: created?.client_id ?? about.clientId ?? null,
          data: { familyId: row?.family_id ?? this.addressedFamilyId(), jti, expiresAt },
        });
      }
      return inserted;
    });
    await this.flushAudit();
    if (recorded) await this.wakeBy(purgeTime(expiresAt));
  }

  /**
   * Whether an access token of this family may still be honoured: the family exists, is neither revoked nor expired,
   * and the token's `jti` was not revoked — with the grant, so a protected endpoint needs one call (C23).
   */
  checkAccessToken(jti: string): AccessTokenCheck {
    if (!this.hasStorage()) return { active: false };
    const row = this.family();
    if (!row || !isCreated(row) || row.status !== "active" || row.expires_at <= this.now()) return { active: false };
    const revoked = this.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM revoked_access_tokens WHERE jti = ?`, jti).one().n > 0;
    return revoked ? { active: false } : { active: true, grant: toInfo(row) };
  }

  /**
   * For a grant without an object of its own (a client's grant, oauth/client-grant.ts; a code grant without a refresh
   * token, oauth/access-token-grant.ts): whether `jti` was revoked (`revokeAccessToken`) and has not expired since, or
   * the grant itself was (`revokeFamily` left its tombstone: a replayed code, RFC 6749 §4.1.2). No storage: neither.
   */
  isAccessTokenRevoked(jti: string): boolean {
    if (!this.hasStorage()) return false;
    if (this.family()?.status === "revoked") return true;
    return this.sql.exec(`SELECT 1 FROM revoked_access_tokens WHERE jti = ? AND expires_at > ?`, jti, this.now()).toArray().length > 0;
  }

  /** Whether this grant was revoked: its family, or the tombstone `revokeFamily` leaves for a grant it never saw made. */
  isRevoked(): boolean {
    if (!this.hasStorage()) return false;
    return this.family()?.status === "revoked";
  }

  getFamily(): FamilyInfo | null {
    if (!this.hasStorage()) return null;
    const row = this.family();
    return row && isCreated(row) ? toInfo(row) : null;
  }

  /**
   * C15: once the family's absolute lifetime is over everything goes (a revoked family stays as a tombstone until
   * then, so a replayed token is known as revoked); revoked access-token ids go once the token would have expired.
   */
  protected override purgeExpired(now: number): number {
    const row = this.family();
    if (row && row.expires_at <= now) {
      return (
        this.sql.exec(`DELETE FROM refresh_tokens`).rowsWritten +
        this.sql.exec(`DELETE FROM revoked_access_tokens`).rowsWritten +
        this.sql.exec(`DELETE FROM family`).rowsWritten
      );
    }
    return this.sql.exec(`DELETE FROM revoked_access_tokens WHERE expires_at <= ?`, now).rowsWritten;
  }

  /** The family row goes at the end of its lifetime (revoked or not) with everything else; then the object can go. */
  protected override holdsState(): boolean {
    const held = (table: string) => this.sql.exec(`SELECT 1 FROM ${table} LIMIT 1`).toArray().length > 0;
    return held("family") || held("refresh_tokens") || held("revoked_access_tokens");
  }

  protected override nextExpiry(): number | null {
    return this.sql
      .exec<{ at: number | null }>(
        `SELECT MIN(at) AS at FROM (
           SELECT expires_at AS at FROM family
           UNION ALL SELECT MIN(expires_at) AS at FROM revoked_access_tokens
         )`,
      )
      .one().at;
  }
}
