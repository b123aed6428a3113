import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";
import { purgeTime } from "../lib/time";
import { StatefulObject, type SchemaComponent } from "./base";

/** The JWS algorithms the OP signs with. RS256 is the default: OIDC Core §15.1 requires every OP to support it. */
export type SigningAlg = "RS256" | "ES256";
export const SIGNING_ALGS: readonly SigningAlg[] = ["RS256", "ES256"];

/**
 * A key's life: `next` (published, not yet signing) → `current` (signs; one per alg) → `previous` (published only,
 * until `retire_after`, so tokens it signed still verify) → `retired` (unpublished; private part erased). An operator
 * may end it early from any published state: `withdrawn` (unpublished at once, private part erased, its tokens dead).
 */
export type KeyState = "next" | "current" | "previous" | "retired" | "withdrawn";

/** A public signing key as published in the JWKS (RFC 7517 §4). Only public members: n, e (RSA); crv, x, y (EC). */
export interface PublicJwk {
  kty: "RSA" | "EC";
  kid: string;
  alg: SigningAlg;
  use: "sig";
  n?: string;
  e?: string;
  crv?: string;
  x?: string;
  y?: string;
}

export interface Jwks {
  keys: PublicJwk[];
}

/** The key to sign with, as the Worker imports it. `expiresAt`: when it is due to be rotated out (ms epoch). */
export interface SigningKeyMaterial {
  kid: string;
  alg: SigningAlg;
  privateJwk: Record<string, string>;
  expiresAt?: number;
}

/** A key's metadata, for operators and tests; never private material. */
export interface KeyInfo {
  kid: string;
  alg: SigningAlg;
  state: KeyState;
  createdAt: number;
  activatedAt: number | null;
  deactivatedAt: number | null;
  retireAfter: number | null;
  hasPrivateKey: boolean;
}

export interface Rotation {
  alg: SigningAlg;
  kid: string;
  previousKid: string | null;
  /** When the previous key leaves the JWKS (ms epoch), or null when there was no previous key. */
  retireAfter: number | null;
}

/** What withdrawing a key did. */
export interface Withdrawal {
  kid: string;
  alg: SigningAlg;
  /** The state the key was in; `retired` or `withdrawn` mean it was not published, and nothing changed. */
  previousState: KeyState;
  withdrawn: boolean;
  /** The key that signs from now on, when the withdrawn key was the current one. */
  newCurrentKid: string | null;
}

export interface KeyMaintenance {
  rotated: Rotation[];
  /** Kids of keys pre-published as `next`. */
  published: string[];
  /** Kids of `previous` keys retired from the JWKS. */
  retired: string[];
}

interface KeyRow {
  kid: string;
  alg: SigningAlg;
  private_jwk: string | null;
  public_jwk: string;
  created_at: number;
  state: KeyState;
  activated_at: number | null;
  deactivated_at: number | null;
  retire_after: number | null;
  [key: string]: SqlStorageValue;
}

interface GeneratedKey {
  kid: string;
  alg: SigningAlg;
  privateJwk: Record<string, string>;
  publicJwk: PublicJwk;
}

const KEYS: SchemaComponent = {
  name: "signing_keys",
  migrations: [
    [
      // private_jwk lives in this object's private SQLite storage, which only this class can read; it is set to NULL
      // when the key retires. Possible hardening: encrypt it at rest with a key held as a Worker secret.
      `CREATE TABLE keys (
        kid TEXT PRIMARY KEY,
        alg TEXT NOT NULL,
        private_jwk TEXT,
        public_jwk TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        state TEXT NOT NULL,
        activated_at INTEGER,
        deactivated_at INTEGER,
        retire_after INTEGER
      )`,
      // The storage itself refuses a second current (or next) key for an alg, whatever the code does.
      `CREATE UNIQUE INDEX keys_one_current ON keys (alg) WHERE state = 'current'`,
      `CREATE UNIQUE INDEX keys_one_next ON keys (alg) WHERE state = 'next'`,
      `CREATE INDEX keys_state ON keys (state, retire_after)`,
    ],
  ],
};

const STATE_ORDER = `CASE state WHEN 'current' THEN 0 WHEN 'next' THEN 1 ELSE 2 END`;

function assertAlg(alg: string): asserts alg is SigningAlg {
  if (!(SIGNING_ALGS as readonly string[]).includes(alg)) throw new TypeError(`unsupported signing alg: ${alg}`);
}

/** Generates a key pair; kid is the RFC 7638 thumbprint of the public key, so it is unique and stable. */
async function generateSigningKey(alg: SigningAlg): Promise<GeneratedKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, alg === "RS256" ? { extractable: true, modulusLength: 2048 } : { extractable: true });
  const privateExport: JWK = await exportJWK(privateKey);
  const publicExport: JWK = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(publicExport);
  // Allow-list the public members instead of deleting private ones: nothing else can reach the JWKS.
  const publicJwk: PublicJwk =
    alg === "RS256"
      ? { kty: "RSA", kid, alg, use: "sig", n: String(publicExport.n), e: String(publicExport.e) }
      : { kty: "EC", kid, alg, use: "sig", crv: String(publicExport.crv), x: String(publicExport.x), y: String(publicExport.y) };
  const privateJwk: Record<string, string> = {};
  for (const [name, value] of Object.entries(privateExport)) if (typeof value === "string") privateJwk[name] = value;
  Object.assign(privateJwk, { kid, alg, use: "sig" });
  return { kid, alg, privateJwk, publicJwk };
}

/**
 * The signing keys of the OP (C19): one object, read rarely (the Worker caches its answers for `keyCacheTtl`).
 * Keys are generated on first use and persisted, never regenerated on restart (C2). Rotation keeps the old key
 * published for an overlap longer than any token it can have signed; a successor may be pre-published as `next`
 * so relying parties' JWKS caches know it before it signs.
 */
export class KeyManager extends StatefulObject {
  protected readonly source = "keys";

  /** The keys are made on first use and read directly: this object keeps its tables from the start. */
  protected override createsStorageOnWrite(): boolean {
    return false;
  }

  /** Published and signing keys always exist: the key manager never deletes itself. */
  protected override holdsState(): boolean {
    return true;
  }

  protected override schema(): SchemaComponent {
    return KEYS;
  }

  /** Automatic rotation period in ms; 0 turns automatic rotation off. */
  private get rotationInterval(): number {
    return this.config.keyRotationInterval * 1000;
  }

  /**
   * How long a rotated-out key stays published. Never shorter than the longest token lifetime plus the Worker's
   * key cache (an isolate may sign with the old key for up to `keyCacheTtl` after rotation), whatever is configured.
   */
  private get overlap(): number {
    const { keyOverlap, idTokenTtl, accessTokenTtl, keyCacheTtl } = this.config;
    return Math.max(keyOverlap, Math.max(idTokenTtl, accessTokenTtl) + keyCacheTtl) * 1000;
  }

  /** How long before rotation the successor is published as `next`: the same window RPs get for old keys. */
  private get prepublishLead(): number {
    return Math.min(this.overlap, Math.floor(this.rotationInterval / 2));
  }

  /** The current key for `alg`; on first use it is generated and persisted. Concurrent first calls agree on one key. */
  async getSigningKey(alg: SigningAlg = this.config.defaultSigningAlg): Promise<SigningKeyMaterial> {
    assertAlg(alg);
    const existing = this.row(alg, "current");
    if (existing) return this.material(existing);
    // Generation is async, so it cannot run inside transactionSync: generate first, then insert only if no other
    // call got there in the meantime. The loser discards its key and returns the winner's.
    const fresh = await generateSigningKey(alg);
    const row = this.transact(() => {
      const winner = this.row(alg, "current");
      if (winner) return winner;
      const now = this.now();
      const next = this.row(alg, "next");
      if (next) {
        this.sql.exec(`UPDATE keys SET state = 'current', activated_at = ? WHERE kid = ?`, now, next.kid);
        this.recordAudit({ type: "signing_key.rotated", data: { alg, kid: next.kid, previousKid: null, reason: "first_use" } });
      } else {
        this.insertKey(fresh, "current", now, "first_use");
      }
      return this.row(alg, "current")!;
    });
    await this.flushAudit();
    await this.scheduleKeyEvents();
    return this.material(row);
  }

  /** The public keys of every key not retired (current, next, previous): the document served at /jwks.json. */
  async getJwks(): Promise<Jwks> {
    // Publishing an empty set would make RPs that fetch JWKS before the first token fail; the default key always exists.
    if (!this.row(this.config.defaultSigningAlg, "current")) await this.getSigningKey(this.config.defaultSigningAlg);
    const rows = this.sql
      .exec<{ public_jwk: string }>(
        `SELECT public_jwk FROM keys WHERE state IN ('current', 'next', 'previous') AND (retire_after IS NULL OR retire_after > ?)
         ORDER BY ${STATE_ORDER}, created_at DESC`,
        this.now(),
      )
      .toArray();
    return { keys: rows.map((r) => JSON.parse(r.public_jwk) as PublicJwk) };
  }

  /**
   * Rotates now (C19): the current key becomes `previous` (stops signing, stays published for the overlap), the
   * pre-published `next` key or a new one becomes current. Without `alg`, every alg that has a current key rotates
   * (after a suspected compromise, say).
   */
  async rotateKeys(alg?: SigningAlg, reason = "manual"): Promise<Rotation[]> {
    let algs: SigningAlg[];
    if (alg !== undefined) {
      assertAlg(alg);
      algs = [alg];
    } else {
      algs = SIGNING_ALGS.filter((a) => this.row(a, "current") !== null);
      if (algs.length === 0) algs = [this.config.defaultSigningAlg];
    }
    const rotations: Rotation[] = [];
    for (const a of algs) {
      const rotation = await this.rotate(a, reason, false);
      if (rotation) rotations.push(rotation);
    }
    await this.flushAudit();
    await this.scheduleKeyEvents();
    return rotations;
  }

  /**
   * Scheduled maintenance (cron and the alarm): pre-publishes successors, rotates every alg whose current key is
   * older than `keyRotationInterval`, and retires `previous` keys past their overlap.
   */
  async rotateIfDue(): Promise<KeyMaintenance> {
    const result: KeyMaintenance = { rotated: [], published: [], retired: [] };
    if (this.rotationInterval > 0) {
      for (const alg of SIGNING_ALGS) {
        const current = this.row(alg, "current");
        if (!current || current.activated_at === null) continue;
        const now = this.now();
        if (now >= current.activated_at + this.rotationInterval) {
          const rotation = await this.rotate(alg, "scheduled", true);
          if (rotation) result.rotated.push(rotation);
        } else if (now >= current.activated_at + this.rotationInterval - this.prepublishLead && !this.row(alg, "next")) {
          const kid = await this.prepublish(alg);
          if (kid) result.published.push(kid);
        }
      }
    }
    result.retired = this.transact(() => this.retireExpired(this.now()));
    await this.flushAudit();
    await this.scheduleKeyEvents();
    return result;
  }

  /** Every key's metadata, newest first (for operators and tests). */
  listKeys(): KeyInfo[] {
    return this.sql
      .exec<KeyRow>(`SELECT * FROM keys ORDER BY created_at DESC`)
      .toArray()
      .map((r) => ({
        kid: r.kid,
        alg: r.alg,
        state: r.state,
        createdAt: r.created_at,
        activatedAt: r.activated_at,
        deactivatedAt: r.deactivated_at,
        retireAfter: r.retire_after,
        hasPrivateKey: r.private_jwk !== null,
      }));
  }

  /**
   * Withdraws a key now (a compromise): it leaves the JWKS, its private part is erased, and tokens it signed stop
   * verifying at this OP. A current key is replaced in the same transaction by the `next` key or a new one, so
   * signing never stops. Null: no such key. Audited as `signing_key.withdrawn` (and `signing_key.rotated`).
   */
  async withdrawKey(kid: string, reason = "withdrawn"): Promise<Withdrawal | null> {
    const found = this.sql.exec<KeyRow>(`SELECT * FROM keys WHERE kid = ?`, kid).toArray()[0];
    if (found === undefined) return null;
    // A successor is generated before the transaction (generation is async) when one may be needed.
    const fresh = found.state === "current" && !this.row(found.alg, "next") ? await generateSigningKey(found.alg) : null;
    const result = this.transact((): Withdrawal => {
      const row = this.sql.exec<KeyRow>(`SELECT * FROM keys WHERE kid = ?`, kid).one();
      const unpublished = row.state === "retired" || row.state === "withdrawn";
      if (unpublished) return { kid, alg: row.alg, previousState: row.state, withdrawn: false, newCurrentKid: null };
      const now = this.now();
      this.sql.exec(
        `UPDATE keys SET state = 'withdrawn', private_jwk = NULL, deactivated_at = COALESCE(deactivated_at, ?), retire_after = ? WHERE kid = ?`,
        now,
        now,
        kid,
      );
      this.recordAudit({ type: "signing_key.withdrawn", data: { alg: row.alg, kid, previousState: row.state, reason: reason.slice(0, 200) } });
      let newCurrentKid: string | null = null;
      if (row.state === "current") {
        const next = this.row(row.alg, "next");
        if (next) {
          this.sql.exec(`UPDATE keys SET state = 'current', activated_at = ? WHERE kid = ?`, now, next.kid);
          newCurrentKid = next.kid;
        } else {
          if (!fresh) throw new Error("no successor key to promote");
          this.insertKey(fresh, "current", now, "withdrawal");
          newCurrentKid = fresh.kid;
        }
        this.recordAudit({ type: "signing_key.rotated", data: { alg: row.alg, kid: newCurrentKid, previousKid: kid, retireAfter: now, reason: "withdrawal" } });
      }
      return { kid, alg: row.alg, previousState: row.state, withdrawn: true, newCurrentKid };
    });
    await this.flushAudit();
    await this.scheduleKeyEvents();
    return result;
  }

  /** The alarm also does the time-driven key work, so keys rotate and retire on time even without cron. */
  override async alarm(): Promise<void> {
    await super.alarm();
    await this.rotateIfDue();
  }

  protected override purgeExpired(now: number): number {
    return this.retireExpired(now).length;
  }

  /** The next time key maintenance has something to do: a retirement, a pre-publication or a rotation. */
  protected override nextExpiry(): number | null {
    const times: number[] = [];
    const retire = this.sql
      .exec<{ at: number | null }>(`SELECT MIN(retire_after) AS at FROM keys WHERE state = 'previous'`)
      .one().at;
    if (retire !== null) times.push(retire);
    if (this.rotationInterval > 0) {
      for (const alg of SIGNING_ALGS) {
        const current = this.row(alg, "current");
        if (!current || current.activated_at === null) continue;
        const rotateAt = current.activated_at + this.rotationInterval;
        times.push(this.row(alg, "next") ? rotateAt : rotateAt - this.prepublishLead);
      }
    }
    return times.length === 0 ? null : Math.min(...times);
  }

  private async scheduleKeyEvents(): Promise<void> {
    const at = this.nextExpiry();
    if (at !== null) await this.wakeBy(purgeTime(at));
  }

  private row(alg: SigningAlg, state: "current" | "next"): KeyRow | null {
    return this.sql.exec<KeyRow>(`SELECT * FROM keys WHERE alg = ? AND state = ?`, alg, state).toArray()[0] ?? null;
  }

  private material(row: KeyRow): SigningKeyMaterial {
    if (row.private_jwk === null) throw new Error(`signing key ${row.kid} has no private key`);
    const material: SigningKeyMaterial = { kid: row.kid, alg: row.alg, privateJwk: JSON.parse(row.private_jwk) as Record<string, string> };
    if (this.rotationInterval > 0 && row.activated_at !== null) material.expiresAt = row.activated_at + this.rotationInterval;
    return material;
  }

  /** Inserts a generated key; call inside `transact`. */
  private insertKey(key: GeneratedKey, state: "current" | "next", now: number, reason: string): void {
    this.sql.exec(
      `INSERT INTO keys (kid, alg, private_jwk, public_jwk, created_at, state, activated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
      key.kid,
      key.alg,
      JSON.stringify(key.privateJwk),
      JSON.stringify(key.publicJwk),
      now,
      state,
      state === "current" ? now : null,
    );
    this.recordAudit({ type: "signing_key.created", data: { alg: key.alg, kid: key.kid, state, reason } });
  }

  /**
   * One rotation of one alg. A fresh key is generated only when no `next` key waits, before the transaction;
   * `onlyIfDue` re-checks inside it so that cron and alarm running together rotate once.
   */
  private async rotate(alg: SigningAlg, reason: string, onlyIfDue: boolean): Promise<Rotation | null> {
    const fresh = this.row(alg, "next") ? null : await generateSigningKey(alg);
    return this.transact((): Rotation | null => {
      const now = this.now();
      const current = this.row(alg, "current");
      if (onlyIfDue && (!current || current.activated_at === null || now < current.activated_at + this.rotationInterval)) return null;
      let next = this.row(alg, "next");
      if (!next) {
        if (!fresh) throw new Error("no successor key to promote");
        this.insertKey(fresh, "next", now, reason);
        next = this.row(alg, "next")!;
      }
      let retireAfter: number | null = null;
      if (current) {
        retireAfter = now + this.overlap;
        this.sql.exec(
          `UPDATE keys SET state = 'previous', deactivated_at = ?, retire_after = ? WHERE kid = ?`,
          now,
          retireAfter,
          current.kid,
        );
      }
      this.sql.exec(`UPDATE keys SET state = 'current', activated_at = ? WHERE kid = ?`, now, next.kid);
      const rotation: Rotation = { alg, kid: next.kid, previousKid: current?.kid ?? null, retireAfter };
      this.recordAudit({ type: "signing_key.rotated", data: { alg, kid: next.kid, previousKid: rotation.previousKid, retireAfter, reason } });
      return rotation;
    });
  }

  /** Publishes a successor as `next` ahead of rotation; returns its kid, or null when another call did it first. */
  private async prepublish(alg: SigningAlg): Promise<string | null> {
    const fresh = await generateSigningKey(alg);
    return this.transact(() => {
      if (this.row(alg, "next") || !this.row(alg, "current")) return null;
      this.insertKey(fresh, "next", this.now(), "prepublish");
      return fresh.kid;
    });
  }

  /** `previous` keys past their overlap leave the JWKS and lose their private part; call inside `transact`. */
  private retireExpired(now: number): string[] {
    const due = this.sql
      .exec<{ kid: string; alg: string }>(`SELECT kid, alg FROM keys WHERE state = 'previous' AND retire_after <= ?`, now)
      .toArray();
    for (const key of due) {
      this.sql.exec(`UPDATE keys SET state = 'retired', private_jwk = NULL WHERE kid = ?`, key.kid);
      this.recordAudit({ type: "signing_key.retired", data: { alg: key.alg, kid: key.kid } });
    }
    return due.map((k) => k.kid);
  }
}
