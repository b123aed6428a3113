// @ts-check
/**
 * The Worker as it is deployed: `wrangler deploy --dry-run --outdir <tmp>` writes the very bundle `wrangler deploy`
 * would upload, and wrangler's own reading of wrangler.jsonc gives its bindings as Miniflare options (the same way
 * tests/e2e/helpers/worker-process.ts does it). The instrumented build (`--phases`) is the same command with another
 * entry script, bench/phases/entry.ts, which wraps the product's src/index.ts.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

/** Offline and quiet wrangler (TOOLCHAIN.md). */
export const quietEnv = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_HIDE_BANNER: "true",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
};

/**
 * @param {string[]} args
 * @param {number} timeoutMs
 * @returns {Promise<string>}
 */
function wrangler(args, timeoutMs) {
  const bin = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], { cwd: root, env: quietEnv, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    child.stdout.on("data", (c) => (output += c));
    child.stderr.on("data", (c) => (output += c));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(output);
      else reject(new Error(`wrangler ${args.join(" ")} exited ${code}:\n${output}`));
    });
  });
}

/**
 * @typedef {object} Bundle
 * @property {string} dir          temporary directory of the build
 * @property {string} scriptPath   its index.js
 * @property {number} bytes        size of index.js
 * @property {Record<string, unknown>} worker  bindings and compatibility settings as Miniflare worker options
 */

/**
 * Builds the deploy bundle (`entry` undefined) or the same build from another entry script.
 * @param {{ entry?: string, tmpRoot?: string }} [options]
 * @returns {Promise<Bundle>}
 */
export async function buildBundle(options = {}) {
  const dir = mkdtempSync(path.join(options.tmpRoot ?? tmpdir(), options.entry ? "bench-phases-bundle-" : "bench-bundle-"));
  const args = ["deploy", ...(options.entry ? [options.entry] : []), "--dry-run", "--outdir", dir];
  const [, workerOptions] = await Promise.all([
    wrangler(args, 120_000),
    (async () => {
      const { unstable_getMiniflareWorkerOptions } = await import("wrangler");
      return /** @type {Record<string, unknown>} */ (
        /** @type {unknown} */ (unstable_getMiniflareWorkerOptions(path.join(root, "wrangler.jsonc")).workerOptions)
      );
    })(),
  ]);
  const keep = ["compatibilityDate", "compatibilityFlags", "bindings", "d1Databases", "durableObjects", "kvNamespaces", "r2Buckets"];
  const worker = Object.fromEntries(keep.filter((k) => workerOptions[k] !== undefined).map((k) => [k, workerOptions[k]]));
  // The main module is named after the entry: index.js for src/index.ts, entry.js for bench/phases/entry.ts.
  const main = options.entry ? `${path.basename(options.entry).replace(/\.[cm]?[jt]s$/, "")}.js` : "index.js";
  if (!readdirSync(dir).includes(main)) throw new Error(`wrangler wrote no ${main} in ${dir}: ${readdirSync(dir).join(", ")}`);
  const scriptPath = path.join(dir, main);
  return { dir, scriptPath, bytes: statSync(scriptPath).size, worker };
}
