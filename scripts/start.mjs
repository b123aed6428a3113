// @ts-check
/**
 * `npm start`: the OP on this machine, offline, with state that survives restarts.
 *
 * 1. applies the D1 migrations to the local database in `.wrangler/state`;
 * 2. runs `wrangler dev` on 127.0.0.1:$PORT (default 8787) with that same state;
 * 3. waits for GET /health, seeds the demo app (see `seedDemo`) and prints its URL first, then what else to do.
 *
 * The admin token is $ADMIN_TOKEN when set, otherwise one generated on first start and kept in
 * `.wrangler/state/admin-token`, so it stays the same across restarts. It reaches the Worker through an env file
 * under `.wrangler/state` (gitignored), never through the command line, where `ps` would show it.
 * Delete `.wrangler/state` to start from nothing.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const stateDir = path.join(root, ".wrangler", "state");
const tokenFile = path.join(stateDir, "admin-token");
const workerEnvFile = path.join(stateDir, "worker.env");
const wrangler = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
const host = "127.0.0.1";
const port = parsePort(process.env.PORT ?? "8787");
const issuer = `http://${host}:${port}`;

/**
 * Offline and quiet: no telemetry, no update check, no cf.json download.
 * @type {NodeJS.ProcessEnv}
 */
const childEnv = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  WRANGLER_HIDE_BANNER: "true",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  // Worker vars come from the env files we pass, never from this process's environment.
  CLOUDFLARE_INCLUDE_PROCESS_ENV: "false",
  CLOUDFLARE_LOAD_DEV_VARS_FROM_DOT_ENV: "true",
};
delete childEnv.ADMIN_TOKEN;

const DEMO_ID = "demo";
const DEMO_SCOPE = "openid profile email offline_access";
/** Where earlier versions kept the secret of their confidential demo client. */
const legacyDemoFile = path.join(stateDir, "demo-client.json");

/**
 * @typedef {{ client_id: string, client_name: string, redirect_uris: string[], post_logout_redirect_uris: string[],
 *   token_endpoint_auth_method: string }} AdminClient
 */

/**
 * A call to the admin API; with `optional`, a 404 answers null.
 * @param {string} issuerUrl
 * @param {string} token
 * @param {string} method
 * @param {string} pathname
 * @param {unknown} [body]
 * @param {boolean} [optional]
 */
async function adminApi(issuerUrl, token, method, pathname, body, optional = false) {
  const response = await fetch(`${issuerUrl}${pathname}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  if (optional && response.status === 404) return null;
  if (!response.ok) throw new Error(`${method} ${pathname} answered ${response.status}: ${text.slice(0, 300)}`);
  return text === "" ? {} : JSON.parse(text);
}

/**
 * The demo app: a public client `demo` (no secret, PKCE S256) whose user interface the OP itself serves at /demo on a
 * loopback issuer. Registered through the admin API on first start; on later starts its redirect URIs gain this
 * port's (127.0.0.1 and localhost). There is no user to seed: a user is created by their first email sign-in.
 * Earlier versions registered a confidential "Demo app" and kept its secret in `demo-client.json`: that client and
 * file are removed. Returns what to print, or throws (the OP then runs on without the demo).
 * @param {string} issuerUrl
 * @param {string} token
 */
async function seedDemo(issuerUrl, token) {
  const both = (/** @type {string} */ p) => [...new Set([`${issuerUrl}${p}`, `http://localhost:${port}${p}`])];
  const redirectUris = both("/demo/callback");
  const logoutUris = both("/demo");
  /** @type {AdminClient | null} */
  let demo = await adminApi(issuerUrl, token, "GET", `/admin/clients/${DEMO_ID}`, undefined, true);
  const created = demo === null;
  if (demo === null) {
    demo = await adminApi(issuerUrl, token, "POST", "/admin/clients", {
      client_id: DEMO_ID,
      client_name: "Demo app",
      redirect_uris: redirectUris,
      post_logout_redirect_uris: logoutUris,
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "none",
      scope: DEMO_SCOPE,
      skip_consent: false,
    });
  } else {
    const missing = (/** @type {string[]} */ have, /** @type {string[]} */ want) => want.some((u) => !have.includes(u));
    if (missing(demo.redirect_uris, redirectUris) || missing(demo.post_logout_redirect_uris, logoutUris) || demo.token_endpoint_auth_method !== "none") {
      demo = await adminApi(issuerUrl, token, "PATCH", `/admin/clients/${DEMO_ID}`, {
        redirect_uris: [...new Set([...demo.redirect_uris, ...redirectUris])],
        post_logout_redirect_uris: [...new Set([...demo.post_logout_redirect_uris, ...logoutUris])],
        token_endpoint_auth_method: "none",
      });
    }
  }
  if (existsSync(legacyDemoFile)) {
    const legacy = JSON.parse(readFileSync(legacyDemoFile, "utf8")).client_id;
    if (typeof legacy === "string" && legacy !== DEMO_ID) await adminApi(issuerUrl, token, "DELETE", `/admin/clients/${encodeURIComponent(legacy)}`, undefined, true);
    rmSync(legacyDemoFile);
  }

  // The same flow by hand (README.md, "Try it with curl"): a fresh PKCE verifier on every start.
  const verifier = randomBytes(32).toString("base64url");
  const authorize = new URL(`${issuerUrl}/authorize`);
  const params = {
    response_type: "code",
    client_id: DEMO_ID,
    redirect_uri: `${issuerUrl}/demo/callback`,
    scope: DEMO_SCOPE,
    state: randomBytes(8).toString("base64url"),
    nonce: randomBytes(8).toString("base64url"),
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
  };
  for (const [k, v] of Object.entries(params)) authorize.searchParams.set(k, v);
  return `
Demo app ${created ? "(registered just now)" : "(registered on an earlier start)"}
  client_id:     ${DEMO_ID}   (a public client: PKCE S256, no secret)
  redirect_uri:  ${issuerUrl}/demo/callback

By hand with curl instead (README.md, "Try it with curl"):
  1. open in a browser:
     ${authorize.href}
  2. type any email address; the sign-in link waits at ${issuerUrl}/dev/mailbox (the user is created now)
  3. allow the Demo app; back on ${issuerUrl}/demo/callback the page shows the code (it works once, within 60 s)
  4. redeem it (PKCE code_verifier of this start: ${verifier}):
     curl -s ${issuerUrl}/token -d grant_type=authorization_code -d client_id=${DEMO_ID} \\
       -d redirect_uri=${issuerUrl}/demo/callback -d code_verifier=${verifier} -d code=PASTE-THE-CODE`;
}

/** @param {string} text */
function parsePort(text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    console.error(`PORT must be a TCP port number, got ${JSON.stringify(text)}`);
    process.exit(2);
  }
  return n;
}

/** $ADMIN_TOKEN if set; else the token kept in the state directory, created on first start. */
function adminToken() {
  const fromEnv = process.env.ADMIN_TOKEN?.trim();
  if (fromEnv) return { token: fromEnv, source: "from $ADMIN_TOKEN" };
  if (existsSync(tokenFile)) {
    const kept = readFileSync(tokenFile, "utf8").trim();
    if (kept) return { token: kept, source: `kept in ${path.relative(root, tokenFile)}` };
  }
  const token = randomBytes(32).toString("base64url");
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  return { token, source: `generated, kept in ${path.relative(root, tokenFile)}` };
}

/**
 * The Worker's secrets for local development. `--env-file` replaces wrangler's default lookup of `.dev.vars`/`.env`,
 * so a developer's own file is passed first and this one last (later files win).
 * @param {string} token
 */
function workerEnvFiles(token) {
  if (!/^[A-Za-z0-9._~+/=-]+$/.test(token)) {
    console.error("ADMIN_TOKEN may only contain URL-safe characters.");
    process.exit(2);
  }
  writeFileSync(workerEnvFile, `# Written by scripts/start.mjs on every start; secrets for the local Worker.\nADMIN_TOKEN=${token}\n`, {
    mode: 0o600,
  });
  chmodSync(workerEnvFile, 0o600);
  const own = existsSync(path.join(root, ".dev.vars"))
    ? [".dev.vars"]
    : [".env", ".env.local"].filter((f) => existsSync(path.join(root, f)));
  return [...own.map((f) => path.join(root, f)), workerEnvFile];
}

/** @param {number} p */
function portIsFree(p) {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(p, host, () => server.close(() => resolve(true)));
  });
}

/** Runs the D1 migrations non-interactively (no TTY and CI=true make wrangler take the "yes" fallback). */
function applyMigrations() {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [wrangler, "d1", "migrations", "apply", "DB", "--local", "--persist-to", stateDir],
      { cwd: root, env: { ...childEnv, CI: "true" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code === 0) {
        const applied = output.split("\n").filter((line) => /\.sql\b.*✅/.test(line)).length;
        resolve(applied);
      } else {
        reject(new Error(`wrangler d1 migrations apply failed (exit ${code}):\n${output}`));
      }
    });
  });
}

/**
 * @param {import("node:child_process").ChildProcess} child
 * @param {number} timeoutMs
 */
async function waitForHealth(child, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer";
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error("wrangler dev exited before the Worker was ready");
    try {
      const response = await fetch(`${issuer}/health`, { signal: AbortSignal.timeout(10_000) });
      if (response.status === 200) return;
      last = `${response.status} ${await response.text()}`;
    } catch (error) {
      last = error instanceof Error ? error.message : String(error);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`GET ${issuer}/health did not answer 200 within ${timeoutMs / 1000} s (last: ${last})`);
}

async function main() {
  if (!existsSync(wrangler)) {
    console.error("wrangler is not installed: run `npm install` first.");
    process.exit(1);
  }
  mkdirSync(stateDir, { recursive: true });
  if (!(await portIsFree(port))) {
    console.error(`Port ${port} on ${host} is in use. Stop what runs there or choose another: PORT=8788 npm start`);
    process.exit(1);
  }

  const applied = await applyMigrations();
  console.log(applied > 0 ? `D1: applied ${applied} migration(s) to the local database.` : "D1: local database is up to date.");

  const { token, source } = adminToken();
  const envFiles = workerEnvFiles(token);
  const args = [wrangler, "dev", "--ip", host, "--port", String(port), "--persist-to", stateDir, "--show-interactive-dev-session=false"];
  for (const f of envFiles) args.push("--env-file", f);
  const child = spawn(process.execPath, args, { cwd: root, env: childEnv, stdio: ["ignore", "inherit", "inherit"] });

  // Ctrl-C and `kill` reach wrangler, which stops workerd; we exit with it.
  for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM"])) {
    process.on(signal, () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    });
  }
  child.on("exit", (code, signal) => {
    process.exit(code ?? (signal === "SIGINT" ? 130 : signal === "SIGTERM" ? 143 : 1));
  });

  try {
    await waitForHealth(child, 60_000);
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    child.kill("SIGTERM");
    return;
  }

  /** @type {string} */
  let demo;
  let demoReady = true;
  try {
    demo = await seedDemo(issuer, token);
  } catch (error) {
    // The OP runs on without the demo: say why, and how to do it by hand.
    demoReady = false;
    demo = `
  demo app:     not seeded: ${error instanceof Error ? error.message : error}
                (register a client yourself: POST ${issuer}/admin/clients, see README.md)`;
  }
  if (demoReady) console.log(`\nTry it: open ${issuer}/demo in a browser and press "Sign in".`);
  console.log(`
The OpenID Provider is running.

  issuer:       ${issuer}
  discovery:    ${issuer}/.well-known/openid-configuration
  health:       ${issuer}/health
  admin token:  ${token}   (${source})
  state:        ${path.relative(root, stateDir)}/   (delete it to start from nothing)`);
  console.log(demo);
  console.log(`
What to do next:
  - call the admin API:  curl -H "authorization: Bearer ${token}" ${issuer}/admin/clients
  - point an OIDC client (openid-client, oauth4webapi, …) at ${issuer}
  - run the tests:       npm test
  - stop:                Ctrl-C (state is kept for the next npm start)
`);
}

main().catch((error) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
