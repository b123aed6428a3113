import { readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { loadConfigModule } from "../../scripts/worker-config.mjs";

/**
 * docs/deployment.md's settings table is src/config.ts's: the same settings in the same order, each with the default
 * and the rule the code enforces (the code loaded the way npm start loads it).
 */

const repo = path.resolve(import.meta.dirname, "../..");

describe("docs/deployment.md documents every setting with the code's own default and rule", () => {
  it("the settings table matches src/config.ts exactly", async () => {
    const { SETTINGS } = await loadConfigModule(repo);
    const doc = readFileSync(path.join(repo, "docs", "deployment.md"), "utf8");
    const section = doc.slice(doc.indexOf("## Settings"), doc.indexOf("\n## ", doc.indexOf("## Settings") + 1));
    const rows = [...section.matchAll(/^\| `([A-Z_]+)` \| `([^`]*)`[^|]* \| ([^|]+) \| [^|]+ \|$/gm)].map((m) => ({
      name: m[1],
      default: m[2],
      // Markdown escapes (\<) are how the rule's text is written in a table.
      rule: m[3]!.replace(/\\(.)/g, "$1"),
    }));
    expect(rows).toEqual(SETTINGS.map((s) => ({ name: s.name, default: s.default === "" ? '""' : String(s.default), rule: s.rule })));
  });

  it("the example line in the docs is the one the code prints", async () => {
    const { readSettings } = await loadConfigModule(repo);
    const doc = readFileSync(path.join(repo, "docs", "deployment.md"), "utf8");
    const [line] = readSettings({ AUTH_CODE_TTL: "abc" }).problems.map((p) => p.message);
    expect(doc).toContain(`\n${line}\n`);
  });
});
