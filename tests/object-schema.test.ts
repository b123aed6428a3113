import { abortAllDurableObjects, env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { migrateComponent, type SchemaComponent } from "../src/objects/base";

// C20: every object's storage carries a schema version per component and upgrades itself on first use (its first
// write: a read never creates storage, C15).

/** A challenge store shard with storage: one value put in it. */
async function usedStore(name = crypto.randomUUID()) {
  const stub = env.CHALLENGES.get(env.CHALLENGES.idFromName(name));
  await stub.put(crypto.randomUUID(), { kind: "magic_link" }, 600);
  return stub;
}

describe("object schema versions", () => {
  it("a fresh object records the version of each component", async () => {
    const stub = await usedStore();
    const versions = await runInDurableObject(stub, (_o, state) =>
      state.storage.sql.exec<{ component: string; version: number }>("SELECT component, version FROM _schema_versions ORDER BY component").toArray(),
    );
    expect(versions).toEqual([
      { component: "audit_outbox", version: 1 },
      { component: "single_use_entries", version: 1 },
    ]);
  });

  it("applies only the missing migrations, keeps the data, and is a no-op once current", async () => {
    const name = crypto.randomUUID();
    const stub = await usedStore(name);
    const v1: SchemaComponent = { name: "widgets", migrations: [["CREATE TABLE widgets (id TEXT PRIMARY KEY)"]] };
    const v2: SchemaComponent = {
      name: "widgets",
      migrations: [...v1.migrations, ["ALTER TABLE widgets ADD COLUMN colour TEXT NOT NULL DEFAULT 'blue'"]],
    };
    await runInDurableObject(stub, (_o, state) => {
      expect(migrateComponent(state.storage, v1)).toBe(1);
      state.storage.sql.exec("INSERT INTO widgets (id) VALUES ('w1')");
    });
    // A "deploy" with a newer schema, after a restart of the object.
    await abortAllDurableObjects();
    const restarted = env.CHALLENGES.get(env.CHALLENGES.idFromName(name));
    const after = await runInDurableObject(restarted, (_o, state) => {
      expect(migrateComponent(state.storage, v2)).toBe(2);
      expect(migrateComponent(state.storage, v2)).toBe(2);
      return state.storage.sql.exec<{ id: string; colour: string }>("SELECT id, colour FROM widgets").toArray();
    });
    expect(after).toEqual([{ id: "w1", colour: "blue" }]);
  });

  it("a failing migration rolls back whole and leaves the version unchanged", async () => {
    const stub = await usedStore();
    const broken: SchemaComponent = { name: "gadgets", migrations: [["CREATE TABLE gadgets (id TEXT)", "THIS IS NOT SQL"]] };
    await runInDurableObject(stub, (_o, state) => {
      expect(() => migrateComponent(state.storage, broken)).toThrow();
      expect(state.storage.sql.exec("SELECT name FROM sqlite_master WHERE name = 'gadgets'").toArray()).toEqual([]);
      expect(state.storage.sql.exec("SELECT * FROM _schema_versions WHERE component = 'gadgets'").toArray()).toEqual([]);
    });
  });

  it("storage from a newer deploy is refused rather than corrupted", async () => {
    const stub = await usedStore();
    await runInDurableObject(stub, (_o, state) => {
      state.storage.sql.exec("INSERT INTO _schema_versions (component, version) VALUES ('future', 9)");
      expect(() => migrateComponent(state.storage, { name: "future", migrations: [["SELECT 1"]] })).toThrow(/newer than this code/);
    });
  });
});

describe("a new object's first write", () => {
  const tables = (state: DurableObjectState) =>
    state.storage.sql
      .exec<{ name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\\_cf\\_%' ESCAPE '\\' ORDER BY name`)
      .toArray()
      .map((r) => r.name);

  it("commits with the migrations as one transaction: a first write that fails leaves no tables, the next one makes them", async () => {
    const stub = env.CHALLENGES.get(env.CHALLENGES.idFromName(crypto.randomUUID()));
    await runInDurableObject(stub, (instance, state) => {
      const object = instance as unknown as { transact<R>(fn: () => R): R };
      expect(() => object.transact(() => {
        state.storage.sql.exec(`INSERT INTO entries (id, value, created_at, expires_at) VALUES ('x', '{}', 0, 1)`);
        throw new Error("the write fails after its first statement");
      })).toThrow(/the write fails/);
      expect(tables(state)).toEqual([]);
      object.transact(() => state.storage.sql.exec(`INSERT INTO entries (id, value, created_at, expires_at) VALUES ('y', '{}', 0, 1)`));
      expect(tables(state)).toEqual(["_schema_versions", "audit_outbox", "entries"]);
      expect(state.storage.sql.exec(`SELECT id FROM entries`).toArray()).toEqual([{ id: "y" }]);
    });
  });
});
