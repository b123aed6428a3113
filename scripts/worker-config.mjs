// @ts-check
/**
 * The Worker's own settings rules, in Node: `npm start` checks every setting with src/config.ts itself — the module
 * the Worker runs — bundled on the fly by the esbuild that wrangler bundles the Worker with (Node 20 cannot import
 * .ts). There is no second copy of any rule here; this file only reads the files wrangler reads.
 */
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { parseEnv } from "node:util";

/**
 * @typedef {{ setting: string, rule: string, message: string }} SettingProblem
 * @typedef {{ key: string, name: string, default: string | number, secret: boolean, rule: string }} SettingSpec
 * @typedef {{
 *   readSettings(vars: Record<string, unknown>): { config: Record<string, unknown>, problems: SettingProblem[] },
 *   SETTINGS: readonly SettingSpec[],
 * }} ConfigModule
 */

/**
 * src/config.ts as a module (esbuild, in memory, imported from a data: URL): a few tens of milliseconds.
 * @param {string} root the project root
 * @returns {Promise<ConfigModule>}
 */
export async function loadConfigModule(root) {
  const fromWrangler = createRequire(path.join(root, "node_modules", "wrangler", "package.json"));
  /** @type {typeof import("esbuild")} */
  const esbuild = fromWrangler("esbuild");
  const built = await esbuild.build({
    entryPoints: [path.join(root, "src", "config.ts")],
    bundle: true,
    write: false,
    format: "esm",
    platform: "neutral",
    target: "es2022",
    logLevel: "silent",
  });
  const code = built.outputFiles[0]?.text ?? "";
  return import(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);
}

/**
 * JSONC (what wrangler.jsonc is) to a value: comments, then trailing commas, removed outside strings; then JSON.parse.
 * @param {string} text
 * @returns {unknown}
 */
export function parseJsonc(text) {
  /**
   * Copies `source`, letting `skip(i)` drop what starts at i outside strings (it returns where to go on, or -1).
   * @param {string} source
   * @param {(i: number) => number} skip
   */
  const outsideStrings = (source, skip) => {
    let out = "";
    for (let i = 0; i < source.length; i++) {
      if (source[i] === '"') {
        const start = i;
        for (i++; i < source.length && source[i] !== '"'; i++) if (source[i] === "\\") i++;
        out += source.slice(start, i + 1);
        continue;
      }
      const next = skip(i);
      if (next === -1) out += source[i];
      else i = next - 1;
    }
    return out;
  };
  const noComments = outsideStrings(text, (i) => {
    if (text.startsWith("//", i)) {
      const end = text.indexOf("\n", i);
      return end === -1 ? text.length : end;
    }
    if (text.startsWith("/*", i)) {
      const end = text.indexOf("*/", i + 2);
      return end === -1 ? text.length : end + 2;
    }
    return -1;
  });
  const json = outsideStrings(noComments, (i) => (noComments[i] === "," && /^\s*[}\]]/.test(noComments.slice(i + 1)) ? i + 1 : -1));
  return JSON.parse(json);
}

/**
 * What wrangler.jsonc gives the local Worker and the cron: its `vars` and `triggers.crons`.
 * @param {string} root
 * @returns {{ vars: Record<string, unknown>, crons: string[] }}
 */
export function readWranglerConfig(root) {
  const config = /** @type {{ vars?: Record<string, unknown>, triggers?: { crons?: string[] } }} */ (
    parseJsonc(readFileSync(path.join(root, "wrangler.jsonc"), "utf8"))
  );
  return { vars: config.vars ?? {}, crons: config.triggers?.crons ?? [] };
}

/**
 * The developer's own settings file, as wrangler picks it: `.dev.vars` if it exists, else `.env` then `.env.local`
 * (the later wins). Parsed with Node's dotenv parser.
 * @param {string} root
 * @returns {{ files: string[], vars: Record<string, string> }}
 */
export function readDevVars(root) {
  const files = existsSync(path.join(root, ".dev.vars")) ? [".dev.vars"] : [".env", ".env.local"].filter((f) => existsSync(path.join(root, f)));
  /** @type {Record<string, string>} */
  const vars = {};
  for (const file of files) {
    for (const [key, value] of Object.entries(parseEnv(readFileSync(path.join(root, file), "utf8")))) {
      if (value !== undefined) vars[key] = value;
    }
  }
  return { files, vars };
}

/**
 * One `KEY=value` line that wrangler's env-file reader (dotenv, then dotenv-expand) turns back into exactly `value`:
 * quoted so nothing is trimmed or cut at a `#`, and every `$` escaped so nothing is expanded.
 * @param {string} key
 * @param {string} value
 * @returns {string | null} null when no quoting carries the value unchanged (a line break, or all three quote characters)
 */
export function envFileLine(key, value) {
  if (!/^[\w.-]+$/.test(key) || /[\r\n]/.test(value)) return null;
  const escaped = value.replace(/\$/g, "\\$");
  if (!escaped.includes("'")) return `${key}='${escaped}'\n`;
  if (!escaped.includes("`")) return `${key}=\`${escaped}\`\n`;
  // Double quotes turn \n and \r into line breaks: only for values without them.
  if (!escaped.includes('"') && !/\\[nr]/.test(escaped)) return `${key}="${escaped}"\n`;
  return null;
}
