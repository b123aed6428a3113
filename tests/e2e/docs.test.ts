import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DevServer } from "./helpers/dev-server.ts";
import { UserAgent, authorizeAsUser, uniqueEmail } from "./helpers/user-agent.ts";

/**
 * Every `curl` in README.md and docs/ works as written. The commands are taken from the markdown's sh code blocks
 * (continuation lines and multi-line quoted bodies joined) and run by bash with real curl, with the variables the docs
 * name set: `ISSUER`, `ADMIN_TOKEN`, `CLIENT_ID`, `USER_ID`, `CODE` and `CODE_VERIFIER` (the curl walkthrough),
 * `ACCESS_TOKEN` and `REFRESH_TOKEN` (from the previous token answer), `CF_ACCESS_CLIENT_ID`/`_SECRET` (Access is not
 * in front locally; the headers are ignored). A command must exit 0 and every HTTP answer must be 2xx — or the status a
 * `# must be NNN` comment on it names. A variable the docs do not name fails the test.
 *
 * README.md and operations.md run against `wrangler dev` as `npm start` runs it (loopback issuer, the demo client
 * registered as scripts/start.mjs registers it). deployment.md's checks are for a deployed OP, so they run against one
 * configured like production: `ISSUER=https://id.example.test` (not loopback: no dev mailbox, no demo) and
 * `EMAIL_TRANSPORT=http`, which curl reaches through a `connect-to` line in its own config file.
 */

const repo = path.resolve(import.meta.dirname, "../..");
// deployment.md last: its server starts when the others are done (two wrangler dev at once would share an inspector port).
// docs/operations.md is run by tests/e2e/operations-doc.test.ts: whole blocks (curls and CLI commands, with variables
// the page sets), each with fresh values, as its examples create, change and delete what they name.
const DOCS = ["README.md", "docs/architecture.md", "docs/consistency.md", "docs/fapi2.md", "docs/deployment.md"];
const PRODUCTION_DOCS = new Set(["docs/deployment.md"]);
const VARIABLES = ["ISSUER", "ADMIN_TOKEN", "CLIENT_ID", "USER_ID", "CODE", "CODE_VERIFIER", "ACCESS_TOKEN", "REFRESH_TOKEN", "CF_ACCESS_CLIENT_ID", "CF_ACCESS_CLIENT_SECRET"];

interface DocCommand {
  file: string;
  line: number;
  text: string;
  /** The HTTP status a `# must be NNN` comment asks for; otherwise any 2xx. */
  status: number | null;
}

/** The curl commands of a markdown file's sh/bash/shell code blocks, each with its continuation lines. */
function curlCommands(file: string, markdown: string): DocCommand[] {
  const commands: DocCommand[] = [];
  let inShell = false;
  let unit: string[] = [];
  let start = 0;
  const lines = markdown.split("\n");
  lines.forEach((line, index) => {
    const fence = /^\s*```(\w*)/.exec(line);
    if (fence) {
      inShell = !inShell && ["sh", "bash", "shell"].includes(fence[1]!);
      unit = [];
      return;
    }
    if (!inShell) return;
    if (unit.length === 0) start = index + 1;
    unit.push(line);
    const text = unit.join("\n");
    const openQuote = (text.replace(/"[^"]*"/g, "").match(/'/g) ?? []).length % 2 === 1;
    if (line.trimEnd().endsWith("\\") || openQuote) return;
    if (/^\s*curl\s/.test(text)) commands.push({ file, line: start, text, status: Number(/#.*must be (\d{3})/.exec(text)?.[1] ?? 0) || null });
    unit = [];
  });
  return commands;
}

interface Run {
  exit: number | null;
  stdout: string;
  stderr: string;
  statuses: number[];
}

/** The command as written, in bash, with `curl` reporting each answer's status on stderr (the command's output is untouched). */
function runCurl(text: string, vars: Record<string, string>, curlHome: string): Run {
  const script = `curl() { command curl --write-out '%{stderr}@@status=%{http_code}\\n' "$@"; }\n${text}`;
  const result = spawnSync("bash", ["-c", script], {
    env: { PATH: process.env.PATH, HOME: curlHome, CURL_HOME: curlHome, ...vars },
    encoding: "utf8",
    timeout: 30_000,
  });
  const statuses = [...result.stderr.matchAll(/@@status=(\d{3})/g)].map((m) => Number(m[1]));
  return { exit: result.status, stdout: result.stdout, stderr: result.stderr.replace(/@@status=\d{3}\n?/g, ""), statuses };
}

describe("every curl in README.md and docs/ works as written", () => {
  let dev: DevServer;
  let production: DevServer | undefined;
  let devHome: string;
  let productionHome: string;
  const vars: Record<string, string> = {};
  // Off loopback an issuer must be https (src/config.ts): the server speaks TLS with wrangler's self-signed certificate.
  const productionIssuer = "https://id.example.test";
  const email = uniqueEmail("docs");

  /** A code for the demo client and its verifier, from a sign-in in a scripted browser (the walkthrough's step in a browser). */
  async function demoCode(ua: UserAgent): Promise<{ code: string; verifier: string }> {
    const verifier = randomBytes(32).toString("base64url");
    const authorize = new URL(`${dev.issuer}/authorize`);
    const params = {
      response_type: "code",
      client_id: "demo",
      redirect_uri: `${dev.issuer}/demo/callback`,
      scope: "openid profile email offline_access",
      state: randomBytes(8).toString("base64url"),
      code_challenge: createHash("sha256").update(verifier).digest("base64url"),
      code_challenge_method: "S256",
    };
    for (const [k, v] of Object.entries(params)) authorize.searchParams.set(k, v);
    const outcome = await authorizeAsUser(ua, authorize, { email, redirectUri: `${dev.issuer}/demo/callback` });
    return { code: outcome.callback.searchParams.get("code")!, verifier };
  }
  let ua: UserAgent;

  beforeAll(async () => {
    dev = await DevServer.start();
    devHome = mkdtempSync(path.join(tmpdir(), "oidc-docs-curl-"));
    productionHome = mkdtempSync(path.join(tmpdir(), "oidc-docs-curl-"));

    // What npm start registers (scripts/start.mjs, seedDemo), and a client and a user for the admin examples.
    await dev.registerClient({
      client_id: "demo",
      client_name: "Demo app",
      redirect_uris: [`${dev.issuer}/demo/callback`],
      post_logout_redirect_uris: [`${dev.issuer}/demo`],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "none",
      scope: "openid profile email offline_access",
    });
    const example = await dev.registerClient({ client_name: "Docs example", redirect_uris: ["https://app.example.com/callback"], token_endpoint_auth_method: "client_secret_post" });
    ua = new UserAgent(dev.issuer);
    const { code, verifier } = await demoCode(ua);
    const tokens = await fetch(`${dev.issuer}/token`, {
      method: "POST",
      body: new URLSearchParams({ grant_type: "authorization_code", client_id: "demo", redirect_uri: `${dev.issuer}/demo/callback`, code, code_verifier: verifier }),
    }).then((r) => r.json() as Promise<{ id_token: string }>);
    const sub = (JSON.parse(Buffer.from(tokens.id_token.split(".")[1]!, "base64url").toString()) as { sub: string }).sub;
    Object.assign(vars, { CLIENT_ID: example.client_id, USER_ID: sub, CF_ACCESS_CLIENT_ID: "unused.access", CF_ACCESS_CLIENT_SECRET: "unused" });
  }, 180_000);

  afterAll(async () => {
    await Promise.all([dev?.dispose(), production?.dispose()]);
    // Whatever a failure half-way through a start left running.
    await DevServer.disposeAll();
    for (const dir of [devHome, productionHome]) if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("the docs hold the curl examples this test runs", () => {
    const counts = Object.fromEntries(DOCS.map((file) => [file, curlCommands(file, readFileSync(path.join(repo, file), "utf8")).length]));
    expect(counts["README.md"]).toBeGreaterThanOrEqual(4);
    expect(counts["docs/deployment.md"]).toBeGreaterThanOrEqual(5);
  });

  for (const file of DOCS) {
    it(`${file}: every curl answers as the text says`, { timeout: 120_000 }, async () => {
      const failures: string[] = [];
      for (const command of curlCommands(file, readFileSync(path.join(repo, file), "utf8"))) {
        const where = `${file}:${command.line}`;
        const unknown = [...command.text.matchAll(/\$\{?([A-Z_][A-Z0-9_]*)/g)].map((m) => m[1]!).filter((name) => !VARIABLES.includes(name));
        if (unknown.length > 0) {
          failures.push(`${where}: uses ${unknown.join(", ")}, which the docs do not define`);
          continue;
        }
        const isProduction = PRODUCTION_DOCS.has(file);
        if (isProduction && production === undefined) {
          await dev.dispose();
          production = await DevServer.start({
            vars: { ISSUER: productionIssuer, EMAIL_TRANSPORT: "http", EMAIL_API_URL: "http://127.0.0.1:9/emails", EMAIL_API_KEY: "unused" },
            https: true,
          });
          writeFileSync(path.join(productionHome, ".curlrc"), `connect-to = "id.example.test:443:127.0.0.1:${production.port}"\ninsecure\n`);
        }
        if (/\$\{?CODE\b/.test(command.text)) {
          const fresh = await demoCode(ua);
          Object.assign(vars, { CODE: fresh.code, CODE_VERIFIER: fresh.verifier });
        }
        const server = isProduction ? production! : dev;
        const run = runCurl(command.text, { ...vars, ISSUER: isProduction ? productionIssuer : dev.issuer, ADMIN_TOKEN: server.adminToken }, isProduction ? productionHome : devHome);
        const wanted = command.status;
        const ok = run.exit === 0 && run.statuses.length > 0 && run.statuses.every((s) => (wanted === null ? s >= 200 && s < 300 : s === wanted));
        if (!ok) {
          failures.push(`${where}: exit ${run.exit}, HTTP ${run.statuses.join(",") || "none"} (wanted ${wanted ?? "2xx"})\n${command.text}\n${run.stdout.slice(0, 400)}${run.stderr.slice(0, 400)}`);
          continue;
        }
        // Tokens from a token answer are what the next commands use, as a reader would copy them.
        try {
          const answer = JSON.parse(run.stdout) as { access_token?: string; refresh_token?: string };
          if (answer.access_token) vars.ACCESS_TOKEN = answer.access_token;
          if (answer.refresh_token) vars.REFRESH_TOKEN = answer.refresh_token;
        } catch {
          // not JSON (headers with -i, an empty 204)
        }
      }
      expect(failures).toEqual([]);
    });
  }
});
