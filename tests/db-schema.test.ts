import { env } from "cloudflare:test";
import { getTableConfig, type SQLiteTable } from "drizzle-orm/sqlite-core";
import { describe, expect, it } from "vitest";
import * as schema from "../src/db/schema";

// The migrations in drizzle/ were applied to this D1 by tests/apply-migrations.ts. If src/db/schema.ts changed
// without `npm run db:generate`, the two disagree and this test names the difference (C20).

const tables = Object.values(schema as Record<string, unknown>).filter((v): v is SQLiteTable => typeof v === "object" && v !== null && Symbol.for("drizzle:IsDrizzleTable") in v);

interface ColumnInfo {
  name: string;
  type: string;
  notnull: number;
  pk: number;
}

describe("D1 schema matches the migrations", () => {
  it("has every table of schema.ts and no other", async () => {
    const { results } = await env.DB.prepare(
      "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE '_cf_%' AND name != 'd1_migrations'",
    ).all<{ name: string }>();
    expect(results.map((r) => r.name).sort()).toEqual(tables.map((t) => getTableConfig(t).name).sort());
  });

  for (const table of tables) {
    const config = getTableConfig(table);
    it(`${config.name}: columns, types, nullability, keys and indexes`, async () => {
      const { results } = await env.DB.prepare(`PRAGMA table_info(${config.name})`).all<ColumnInfo>();
      const actual = results.map((c) => ({ name: c.name, type: c.type.toLowerCase(), notNull: c.notnull === 1 || c.pk > 0, pk: c.pk > 0 }));
      const compositePk = new Set(config.primaryKeys.flatMap((pk) => pk.columns.map((c) => c.name)));
      const expected = config.columns.map((c) => ({
        name: c.name,
        type: c.getSQLType().toLowerCase(),
        notNull: c.notNull || c.primary || compositePk.has(c.name),
        pk: c.primary || compositePk.has(c.name),
      }));
      expect(actual.sort((a, b) => a.name.localeCompare(b.name))).toEqual(expected.sort((a, b) => a.name.localeCompare(b.name)));

      const { results: indexes } = await env.DB.prepare(
        `SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND name NOT LIKE 'sqlite_autoindex_%'`,
      )
        .bind(config.name)
        .all<{ name: string }>();
      expect(indexes.map((i) => i.name).sort()).toEqual(config.indexes.map((i) => i.config.name).sort());

      const { results: fks } = await env.DB.prepare(`PRAGMA foreign_key_list(${config.name})`).all<{ table: string; from: string }>();
      expect(fks.map((f) => `${f.from}->${f.table}`).sort()).toEqual(
        config.foreignKeys.map((fk) => {
          const ref = fk.reference();
          return `${ref.columns[0]!.name}->${getTableConfig(ref.foreignTable).name}`;
        }).sort(),
      );
    });
  }
});

describe("D1 writes that race", () => {
  it("consents given at once all end up in the remembered union", async () => {
    const { ensureUserForVerifiedEmail } = await import("../src/db/users");
    const { grantedScopes, rememberConsent } = await import("../src/db/consents");
    const { registerClient } = await import("./helpers/clients");
    const user = await ensureUserForVerifiedEmail(env.DB, `race-${crypto.randomUUID()}@example.com`, crypto.randomUUID().replace(/-/g, ""));
    const client = await registerClient({}, null);
    const scopes = Array.from({ length: 10 }, (_, i) => `scope${i}`);
    await Promise.all(scopes.map((s) => rememberConsent(env.DB, user.id, client.client_id, ["openid", s])));
    expect([...(await grantedScopes(env.DB, user.id, client.client_id))].sort()).toEqual(["openid", ...scopes].sort());
  });
});
