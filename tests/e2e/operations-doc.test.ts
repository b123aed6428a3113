import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DevServer, type RegisteredClient } from "./helpers/dev-server.ts";
import { UserAgent, authorizeAsUser, uniqueEmail } from "./helpers/user-agent.ts";

/**
 * docs/operations.md works as written (issue 12, "done when"): every `sh` block runs in bash, exactly as the page shows
 * it, against `wrangler dev`, and succeeds — exit 0, every HTTP answer of its curls 2xx (or the status a `# must be NNN`
 * comment on the command names), no `"error"` in what it prints. (tests/e2e/docs.test.ts runs the other docs' curls.) Each
 * block gets fresh values for the variables the page names (a client, a user who signed in to it and consented, a key
 * that was rotated out, a dynamically registered client), so a block that deletes something deletes its own. Blocks
 * that need a deployed Worker are marked `<!-- not run: … -->` just above them. The page also names every admin route
 * of src/router.ts and runs every command of the CLI.
 */

const root = path.resolve(import.meta.dirname, "../..");
const doc = readFileSync(path.join(root, "docs", "operations.md"), "utf8");
const CALLBACK = "https://app.example.com/callback";
const INITIAL = "initial-access-token-for-the-docs-0123456789";

let server: DevServer;

beforeAll(async () => {
  server = await DevServer.start({
    vars: { DYNAMIC_REGISTRATION: "token", INITIAL_ACCESS_TOKEN: INITIAL, RATE_LIMIT_ADMIN: "100000", RATE_LIMIT_REGISTRATION: "100000", RATE_LIMIT_LOGIN: "100000" },
  });
});

afterAll(async () => {
  await server?.dispose();
});

interface Block {
  line: number;
  code: string;
}

/** The page's `sh` blocks that are to run: all but those right after a `<!-- not run: … -->` line. */
function runnableBlocks(markdown: string): Block[] {
  const lines = markdown.split("\n");
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== "```sh") continue;
    const end = lines.indexOf("```", i + 1);
    let previous = i - 1;
    while (previous >= 0 && lines[previous]!.trim() === "") previous--;
    const skipped = previous >= 0 && lines[previous]!.startsWith("<!-- not run");
    if (!skipped) blocks.push({ line: i + 1, code: lines.slice(i + 1, end).join("\n") });
    i = end;
  }
  return blocks;
}

/** Fresh values for one block: a client, a user who signed in to it (session, consent), a rotated-out key, a registration. */
async function fixture(): Promise<Record<string, string>> {
  const app: RegisteredClient = await server.registerClient({
    client_name: "Docs App",
    redirect_uris: [CALLBACK],
    grant_types: ["authorization_code", "refresh_token"],
    token_endpoint_auth_method: "client_secret_post",
  });
  const email = uniqueEmail("docs");
  const authorize = new URL(`${server.issuer}/authorize`);
  authorize.search = new URLSearchParams({
    client_id: app.client_id,
    redirect_uri: CALLBACK,
    response_type: "code",
    scope: "openid profile email",
    state: "s",
    code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    code_challenge_method: "S256",
  }).toString();
  await authorizeAsUser(new UserAgent(server.issuer), authorize, { email, redirectUri: CALLBACK });
  const found = await server.admin<{ users: { id: string }[] }>("GET", `/admin/users?email=${encodeURIComponent(email)}`);
  const rotated = await server.admin<{ rotated: { previousKid: string }[] }>("POST", "/admin/keys/rotate", { alg: "RS256" });
  const registration = await fetch(`${server.issuer}/register`, {
    method: "POST",
    headers: { authorization: `Bearer ${INITIAL}`, "content-type": "application/json" },
    body: JSON.stringify({ client_name: "Docs registration", redirect_uris: [CALLBACK], token_endpoint_auth_method: "client_secret_post" }),
  });
  const registered = (await registration.json()) as { registration_client_uri: string; registration_access_token: string };
  return {
    CLIENT_ID: app.client_id,
    USER_ID: found.body.users[0]!.id,
    KID: rotated.body.rotated[0]!.previousKid,
    REGISTRATION_CLIENT_URI: registered.registration_client_uri,
    REGISTRATION_ACCESS_TOKEN: registered.registration_access_token,
  };
}

/** The block as written, in bash; `curl` also reports each answer's status (on stderr: the block's output is untouched). */
function bash(code: string, env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string; statuses: number[] }> {
  const script = `curl() { command curl --write-out '%{stderr}@@status=%{http_code}\\n' "$@"; }\n${code}`;
  return new Promise((resolve) => {
    execFile("bash", ["-e", "-o", "pipefail", "-c", script], { cwd: root, env: { PATH: process.env.PATH!, HOME: process.env.HOME!, ...env }, timeout: 120_000 }, (error, stdout, stderr) =>
      resolve({
        code: error === null ? 0 : typeof error.code === "number" ? error.code : 1,
        stdout,
        stderr: stderr.replace(/@@status=\d{3}\n?/g, ""),
        statuses: [...stderr.matchAll(/@@status=(\d{3})/g)].map((m) => Number(m[1])),
      }),
    );
  });
}

describe("docs/operations.md", () => {
  const blocks = runnableBlocks(doc);

  it("has runnable blocks, and no operation needs wrangler d1 execute on the OP's database", () => {
    expect(blocks.length).toBeGreaterThan(15);
    expect(doc).not.toMatch(/d1 execute DB\b/);
  });

  it("names every admin and registration route of the router", () => {
    const router = readFileSync(path.join(root, "src", "router.ts"), "utf8");
    const routes = [...router.matchAll(/router\.(get|post|patch|put|delete)\("((?:\/admin|\/register)[^"]*)"/g)].map((m) => `${m[1]!.toUpperCase()} ${m[2]}`);
    expect(routes.length).toBeGreaterThan(25);
    expect(routes.filter((route) => !doc.includes(route))).toEqual([]);
  });

  it("runs every command of the admin CLI", async () => {
    const help = await bash("node scripts/admin.mjs --help", {});
    const commands = [...help.stdout.matchAll(/^ {2}([a-z-]+(?: [a-z-]+)?)(?= |$)/gm)].map((m) => m[1]!).filter((c) => !c.startsWith("-"));
    // The help's second column on shared lines ("users disable <id>      users enable <id> …").
    for (const match of help.stdout.matchAll(/ {2,}((?:users|sessions|consents|dead-letters|keys) [a-z-]+)/g)) commands.push(match[1]!);
    const distinct = [...new Set(commands)];
    expect(distinct.length).toBeGreaterThan(20);
    const code = blocks.map((b) => b.code).join("\n");
    expect(distinct.filter((command) => !code.includes(`npm run -s admin -- ${command}`))).toEqual([]);
  });

  it("every example works as written against wrangler dev", async () => {
    const failures: string[] = [];
    for (const block of blocks) {
      const values = await fixture();
      const env = { ISSUER: server.issuer, ADMIN_TOKEN: server.adminToken, INITIAL_ACCESS_TOKEN: INITIAL, ...values };
      const run = await bash(block.code, env);
      const where = `docs/operations.md:${block.line}`;
      const wanted = [...block.code.matchAll(/#.*must be (\d{3})/g)].map((m) => Number(m[1]));
      const badStatus = run.statuses.filter((status) => !(status >= 200 && status < 300) && !wanted.includes(status));
      if (run.code !== 0) failures.push(`${where}: exit ${run.code}\n${run.stderr.slice(0, 600)}`);
      else if (badStatus.length > 0) failures.push(`${where}: HTTP ${badStatus.join(",")}\n${run.stdout.slice(0, 600)}`);
      else if (run.stdout.includes('"error"')) failures.push(`${where}: an error in the output\n${run.stdout.slice(0, 600)}`);
      else if (run.stderr.includes("oidc admin:")) failures.push(`${where}: ${run.stderr.slice(0, 300)}`);
    }
    expect(failures).toEqual([]);
  }, 600_000);
});
