// @ts-check
/**
 * A durable node-oidc-provider adapter on SQLite (better-sqlite3), the kind a production user of a single-node
 * deployment would pick: one table for every model (sessions, interactions, grants, codes, tokens, clients), WAL
 * journal with synchronous=FULL, so every write is fsynced before it returns — the same promise our OP's Durable
 * Objects and D1 keep. Implements the adapter interface of node-oidc-provider 9 (lib/adapters/memory_adapter.js is
 * the reference): upsert, find, findByUid, findByUserCode, consume, destroy, revokeByGrantId.
 *
 * The same database holds the users (`accounts`), read by the provider's findAccount on each token and userinfo
 * request, as our OP reads them from D1.
 */
import Database from "better-sqlite3";

const GRANTABLE = new Set(["AccessToken", "AuthorizationCode", "RefreshToken", "DeviceCode", "BackchannelAuthenticationRequest", "PreAuthorizedCode"]);

/**
 * @param {string} file
 * @param {{ synchronous?: "FULL" | "NORMAL" }} [options]
 */
export function openStore(file, options = {}) {
  const db = new Database(file);
  db.pragma("journal_mode = WAL");
  db.pragma(`synchronous = ${options.synchronous ?? "FULL"}`);
  db.exec(`
    CREATE TABLE IF NOT EXISTS oidc_models (
      model TEXT NOT NULL, id TEXT NOT NULL, payload TEXT NOT NULL,
      grant_id TEXT, user_code TEXT, uid TEXT, expires_at INTEGER, consumed_at INTEGER,
      PRIMARY KEY (model, id)
    ) WITHOUT ROWID;
    CREATE INDEX IF NOT EXISTS oidc_models_grant ON oidc_models (grant_id) WHERE grant_id IS NOT NULL;
    CREATE INDEX IF NOT EXISTS oidc_models_uid ON oidc_models (model, uid) WHERE uid IS NOT NULL;
    CREATE INDEX IF NOT EXISTS oidc_models_user_code ON oidc_models (model, user_code) WHERE user_code IS NOT NULL;
    CREATE TABLE IF NOT EXISTS accounts (id TEXT PRIMARY KEY, email TEXT NOT NULL UNIQUE, name TEXT, email_verified INTEGER NOT NULL DEFAULT 1);
  `);
  const statements = {
    upsert: db.prepare(
      `INSERT INTO oidc_models (model, id, payload, grant_id, user_code, uid, expires_at, consumed_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)
       ON CONFLICT (model, id) DO UPDATE SET payload = excluded.payload, grant_id = excluded.grant_id, user_code = excluded.user_code,
       uid = excluded.uid, expires_at = excluded.expires_at, consumed_at = NULL`,
    ),
    find: db.prepare("SELECT payload, consumed_at, expires_at FROM oidc_models WHERE model = ? AND id = ?"),
    findByUid: db.prepare("SELECT payload, consumed_at, expires_at FROM oidc_models WHERE model = ? AND uid = ?"),
    findByUserCode: db.prepare("SELECT payload, consumed_at, expires_at FROM oidc_models WHERE model = ? AND user_code = ?"),
    consume: db.prepare("UPDATE oidc_models SET consumed_at = ? WHERE model = ? AND id = ?"),
    destroy: db.prepare("DELETE FROM oidc_models WHERE model = ? AND id = ?"),
    revokeByGrantId: db.prepare("DELETE FROM oidc_models WHERE grant_id = ?"),
    account: db.prepare("SELECT id, email, name, email_verified FROM accounts WHERE id = ?"),
    accountByEmail: db.prepare("SELECT id, email, name, email_verified FROM accounts WHERE email = ?"),
    insertAccount: db.prepare("INSERT INTO accounts (id, email, name) VALUES (?, ?, ?) ON CONFLICT (email) DO NOTHING"),
  };

  /** @param {{ payload: string, consumed_at: number | null, expires_at: number | null } | undefined} row */
  const payloadOf = (row) => {
    if (!row) return undefined;
    if (row.expires_at !== null && row.expires_at <= Date.now()) return undefined;
    const payload = JSON.parse(row.payload);
    if (row.consumed_at !== null) payload.consumed = row.consumed_at;
    return payload;
  };

  class SqliteAdapter {
    /** @param {string} model */
    constructor(model) {
      this.model = model;
    }

    /**
     * @param {string} id
     * @param {Record<string, any>} payload
     * @param {number | undefined} expiresIn seconds
     */
    async upsert(id, payload, expiresIn) {
      const expiresAt = typeof expiresIn === "number" ? Date.now() + expiresIn * 1000 : null;
      const grantId = GRANTABLE.has(this.model) ? (payload.grantId ?? null) : null;
      statements.upsert.run(this.model, id, JSON.stringify(payload), grantId, payload.userCode ?? null, payload.uid ?? null, expiresAt);
    }

    /** @param {string} id */
    async find(id) {
      return payloadOf(/** @type {any} */ (statements.find.get(this.model, id)));
    }

    /** @param {string} uid */
    async findByUid(uid) {
      return payloadOf(/** @type {any} */ (statements.findByUid.get(this.model, uid)));
    }

    /** @param {string} userCode */
    async findByUserCode(userCode) {
      return payloadOf(/** @type {any} */ (statements.findByUserCode.get(this.model, userCode)));
    }

    /** @param {string} id */
    async consume(id) {
      statements.consume.run(Math.floor(Date.now() / 1000), this.model, id);
    }

    /** @param {string} id */
    async destroy(id) {
      statements.destroy.run(this.model, id);
    }

    /** @param {string} grantId */
    async revokeByGrantId(grantId) {
      statements.revokeByGrantId.run(grantId);
    }
  }

  return {
    db,
    Adapter: SqliteAdapter,
    /** @param {string} id */
    account: (id) => /** @type {{ id: string, email: string, name: string | null, email_verified: number } | undefined} */ (statements.account.get(id)),
    /**
     * @param {string} email
     * @param {string} newId
     */
    ensureAccount(email, newId) {
      statements.insertAccount.run(newId, email, email.split("@")[0] ?? null);
      return /** @type {{ id: string }} */ (statements.accountByEmail.get(email)).id;
    },
  };
}
