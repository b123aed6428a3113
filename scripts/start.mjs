// @ts-check
/**
 * `npm start`: the OP on this machine, offline, with state that survives restarts.
 *
 * 0. checks every setting the Worker will get (wrangler.jsonc `vars`, `.dev.vars`, settings in the environment) with
 *    the Worker's own rules (src/config.ts, see worker-config.mjs): a bad one stops it at once, with one line, exit 2;
 * 1. takes the state folder's lock (one npm start per `.wrangler/state`), keeps the folder private (0700, files 0600);
 * 2. applies the D1 migrations to the local database in `.wrangler/state`;
 * 3. runs `wrangler dev` on 127.0.0.1:$PORT (default 8787) with that same state, printing URLs on localhost (passkeys);
 * 4. waits for GET /health, seeds the demo app (see `seedDemo`) and prints its URL first, then what else to do.
 *
 * The admin token is $ADMIN_TOKEN when set (or ADMIN_TOKEN in .dev.vars), otherwise one generated on first start and
 * kept in `.wrangler/state/admin-token`, so it stays the same across restarts. Settings and secrets reach the Worker
 * through one env file under `.wrangler/state` (private), never through the command line, where `ps` would show them.
 * Delete `.wrangler/state` to start from nothing.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, unlinkSync, writeFileSync, writeSync } from "node:fs";
import { createServer } from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { envFileLine, loadConfigModule, readDevVars, readWranglerConfig } from "./worker-config.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const stateDir = path.join(root, ".wrangler", "state");
const tokenFile = path.join(stateDir, "admin-token");
const workerEnvFile = path.join(stateDir, "worker.env");
const lockFile = path.join(stateDir, "npm-start.lock");
const wrangler = path.join(root, "node_modules", "wrangler", "bin", "wrangler.js");
const host = "127.0.0.1";
const port = parsePort(process.env.PORT);
/**
 * The URLs printed use `localhost`: passkeys (WebAuthn) need a domain as their RP ID, and browsers refuse an IP
 * address. The Worker still listens on 127.0.0.1 only; localhost resolves there, and the issuer is the origin a
 * request arrives on (ISSUER is empty locally), so http://localhost:PORT is the issuer the browser and the RP see.
 */
const issuer = `http://localhost:${port}`;

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
  const both = (/** @type {string} */ p) => [...new Set([`${issuerUrl}${p}`, `http://localhost:${port}${p}`, `http://127.0.0.1:${port}${p}`])];
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

/**
 * $PORT: unset or empty means 8787. Same one-line shape as a bad setting, and the same exit code.
 * @param {string | undefined} text
 */
function parsePort(text) {
  if (text === undefined || text === "") return 8787;
  const n = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(n >= 1 && n <= 65535)) {
    console.error(`PORT=${text}: must be a TCP port number between 1 and 65535`);
    process.exit(2);
  }
  return n;
}

/**
 * Every setting the local Worker gets, checked with the Worker's own rules before anything starts: wrangler.jsonc
 * `vars`, then the developer's `.dev.vars` (or `.env`), then settings set in this process's environment (they win,
 * like $ADMIN_TOKEN always has), then the admin token. A broken rule stops here: one line per bad setting
 * (`AUTH_CODE_TTL=abc: must be a whole number of seconds between 10 and 600`; never a secret), exit code 2.
 * @returns {Promise<{ passed: Record<string, string>, token: string | null, source: string }>}
 */
async function checkedSettings() {
  const { readSettings, SETTINGS } = await loadConfigModule(root);
  const names = new Set(SETTINGS.map((s) => s.name));
  const { vars: jsoncVars } = readWranglerConfig(root);
  const own = readDevVars(root);
  /** @type {Record<string, string>} */
  const passed = {};
  for (const [key, value] of Object.entries(own.vars)) {
    if (names.has(key)) passed[key] = value;
    else console.warn(`${own.files.join(", ")}: ${key} is not a setting of this OP (ignored; see docs/deployment.md#settings)`);
  }
  for (const name of names) {
    const value = process.env[name];
    if (value !== undefined && name !== "ADMIN_TOKEN") passed[name] = value;
  }

  // The admin token: $ADMIN_TOKEN, else the settings file's, else the one kept from an earlier start, else new (below).
  let token = null;
  let source = "";
  const fromEnv = process.env.ADMIN_TOKEN;
  if (fromEnv !== undefined && fromEnv !== "") [token, source] = [fromEnv, "from $ADMIN_TOKEN"];
  else if (passed.ADMIN_TOKEN) [token, source] = [passed.ADMIN_TOKEN, `from ${own.files.join(", ")}`];
  else if (existsSync(tokenFile)) {
    const kept = readFileSync(tokenFile, "utf8").trim();
    if (kept) [token, source] = [kept, `kept in ${path.relative(root, tokenFile)}`];
  }
  if (token !== null) passed.ADMIN_TOKEN = token;

  const { problems } = readSettings({ ...jsoncVars, ...passed });
  for (const [key, value] of Object.entries(passed)) {
    if (envFileLine(key, value) === null) {
      const spec = SETTINGS.find((s) => s.name === key);
      problems.push({ setting: key, rule: "", message: `${key}=${spec?.secret ? "(hidden)" : JSON.stringify(value)}: cannot be passed to the local Worker (a line break, or ' " and \` together)` });
    }
  }
  if (problems.length > 0) {
    for (const problem of problems) console.error(problem.message);
    process.exit(2);
  }
  return { passed, token, source };
}

/**
 * The state folder holds private signing keys, sessions and sign-in links: only its owner may read it. Everything
 * this process and its children (wrangler, workerd) create there is private too (umask 077).
 */
function makeStatePrivate() {
  process.umask(0o077);
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  chmodSync(stateDir, 0o700);
  for (const file of [tokenFile, workerEnvFile, legacyDemoFile]) if (existsSync(file)) chmodSync(file, 0o600);
}

/**
 * @param {string} file
 * @param {string} text
 */
function writePrivate(file, text) {
  writeFileSync(file, text, { mode: 0o600 });
  chmodSync(file, 0o600);
}

/**
 * Whether `pid` is a live process running `script` (Linux: its command line; elsewhere: alive at all).
 * @param {unknown} pid
 * @param {string} script
 */
function isRunning(pid, script) {
  if (typeof pid !== "number" || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (error) {
    if (/** @type {NodeJS.ErrnoException} */ (error).code !== "EPERM") return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, "utf8").includes(script);
  } catch {
    return true;
  }
}

/**
 * One OP per state folder: two `wrangler dev` on one `.wrangler/state` would share its SQLite files (one answers
 * SQLITE_BUSY) and the demo client would gain the other's redirect URIs. The lock file names the holder (PID, port,
 * and the wrangler it started); a lock whose processes are gone is stale and taken over. Released on exit.
 */
function takeLock() {
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd;
    try {
      fd = openSync(lockFile, "wx", 0o600);
    } catch (error) {
      if (/** @type {NodeJS.ErrnoException} */ (error).code !== "EEXIST") throw error;
      /** @type {{ pid?: unknown, port?: unknown, issuer?: unknown, wranglerPid?: unknown }} */
      let holder = {};
      try {
        holder = JSON.parse(readFileSync(lockFile, "utf8"));
      } catch {
        // unreadable: stale
      }
      const live = isRunning(holder.pid, "start.mjs") ? holder.pid : isRunning(holder.wranglerPid, "wrangler") ? holder.wranglerPid : null;
      if (live !== null) {
        const what = live === holder.pid ? "npm start" : `wrangler dev (left running by npm start PID ${holder.pid})`;
        console.error(
          `Another ${what} is using ${path.relative(root, stateDir)}: PID ${live}, ${holder.issuer ?? `port ${holder.port}`}.\n` +
            `Stop it first (Ctrl-C in its terminal, or kill ${live}): two OPs on one state folder would share its SQLite files.`,
        );
        process.exit(1);
      }
      console.log(`${path.relative(root, lockFile)}: stale (PID ${holder.pid ?? "?"} is gone), taking it over.`);
      try {
        unlinkSync(lockFile);
      } catch {
        // gone already
      }
      continue;
    }
    writeSync(fd, lockText({}));
    closeSync(fd);
    process.on("exit", releaseLock);
    return;
  }
  console.error(`Could not take ${path.relative(root, lockFile)}; another npm start may be starting. Try again.`);
  process.exit(1);
}

/** @param {{ wranglerPid?: number }} extra */
function lockText(extra) {
  return `${JSON.stringify({ pid: process.pid, port, issuer, startedAt: new Date().toISOString(), ...extra })}\n`;
}

function releaseLock() {
  try {
    if (JSON.parse(readFileSync(lockFile, "utf8")).pid === process.pid) unlinkSync(lockFile);
  } catch {
    // not ours, or gone
  }
}

/**
 * The Worker's settings and secrets for local development, in one env file (0600) that wrangler reads with
 * `--env-file` — exactly the values checked above, written so that wrangler reads them back unchanged.
 * @param {Record<string, string>} settings
 */
function writeWorkerEnv(settings) {
  const lines = Object.entries(settings).map(([key, value]) => envFileLine(key, value) ?? "");
  writePrivate(workerEnvFile, `# Written by scripts/start.mjs on every start: the local Worker's settings and secrets.\n${lines.join("")}`);
  return workerEnvFile;
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

/**
 * A free port for wrangler's DevTools inspector, from 9229 up, so that the printout can name it.
 * @returns {Promise<number | null>}
 */
async function inspectorPort() {
  for (let p = 9229; p < 9239; p++) if (p !== port && (await portIsFree(p))) return p;
  return null;
}

async function main() {
  if (!existsSync(wrangler)) {
    console.error("wrangler is not installed: run `npm install` first.");
    process.exit(1);
  }
  const settings = await checkedSettings();
  makeStatePrivate();
  takeLock();
  if (!(await portIsFree(port))) {
    console.error(`Port ${port} on ${host} is in use. Stop what runs there or choose another: PORT=8788 npm start`);
    process.exit(1);
  }

  const applied = await applyMigrations();
  console.log(applied > 0 ? `D1: applied ${applied} migration(s) to the local database.` : "D1: local database is up to date.");

  let { token, source } = settings;
  if (token === null) {
    token = randomBytes(32).toString("base64url");
    source = `generated, kept in ${path.relative(root, tokenFile)}`;
    writePrivate(tokenFile, `${token}\n`);
  }
  const envFile = writeWorkerEnv({ ...settings.passed, ADMIN_TOKEN: token });
  const inspector = await inspectorPort();
  const args = [wrangler, "dev", "--ip", host, "--port", String(port), "--persist-to", stateDir, "--show-interactive-dev-session=false", "--env-file", envFile];
  if (inspector !== null) args.push("--inspector-port", String(inspector));
  const child = spawn(process.execPath, args, { cwd: root, env: childEnv, stdio: ["ignore", "inherit", "inherit"] });
  if (child.pid !== undefined) writeFileSync(lockFile, lockText({ wranglerPid: child.pid }));

  // Ctrl-C and `kill` reach wrangler, which stops workerd; we exit with it (and the lock goes).
  for (const signal of /** @type {const} */ (["SIGINT", "SIGTERM", "SIGHUP"])) {
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
  if (demoReady) {
    console.log(`\nTry it: open ${issuer}/demo in a browser and press "Sign in".
  After the email link, "Sign in faster next time" offers a passkey ("Add a passkey"; later: ${issuer}/account).
  Sign out of the demo, sign in again and press "Sign in with a passkey": no email this time.`);
  }
  const { crons } = readWranglerConfig(root);
  const cron = crons[0];
  console.log(`
The OpenID Provider is running.

  issuer:       ${issuer}
  discovery:    ${issuer}/.well-known/openid-configuration
  health:       ${issuer}/health
  admin token:  ${token}   (${source})
  state:        ${path.relative(root, stateDir)}/   (private to you; delete it to start from nothing)
  lock:         ${path.relative(root, lockFile)}   (one npm start per state folder; removed when this one stops)`);
  if (cron !== undefined) {
    console.log(`  cron:         ${cron} (wrangler.jsonc; purges expired rows, rotates due keys) is not run by wrangler dev; run it with
                curl "${issuer}/cdn-cgi/handler/scheduled?cron=${encodeURIComponent(cron)}"`);
  }
  console.log(
    inspector !== null
      ? `  inspector:    127.0.0.1:${inspector}   (wrangler's DevTools port, loopback only: chrome://inspect → Configure → add it)`
      : "  inspector:    on a free port wrangler chose (9229–9238 were taken); wrangler's DevTools, loopback only",
  );
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
