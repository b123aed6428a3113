// @ts-check
/**
 * `npm start`: the OP on this machine, offline, with state that survives restarts.
 *
 * 1. applies the D1 migrations to the local database in `.wrangler/state`;
 * 2. runs `wrangler dev` on 127.0.0.1:$PORT (default 8787) with that same state;
 * 3. waits for GET /health, seeds the demo data (see `seedDemo`) and prints what to do next.
 *
 * The admin token is $ADMIN_TOKEN when set, otherwise one generated on first start and kept in
 * `.wrangler/state/admin-token`, so it stays the same across restarts. It reaches the Worker through an env file
 * under `.wrangler/state` (gitignored), never through the command line, where `ps` would show it.
 * Delete `.wrangler/state` to start from nothing.
 */
import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
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

const demoFile = path.join(stateDir, "demo-client.json");
const DEMO_NAME = "Demo app";

/**
 * @typedef {{ client_id: string, client_secret?: string, client_name: string, redirect_uris: string[],
 *   post_logout_redirect_uris: string[] }} AdminClient
 */

/**
 * A call to the admin API.
 * @param {string} issuerUrl
 * @param {string} token
 * @param {string} method
 * @param {string} pathname
 * @param {unknown} [body]
 */
async function adminApi(issuerUrl, token, method, pathname, body) {
  const response = await fetch(`${issuerUrl}${pathname}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(15_000),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${pathname} answered ${response.status}: ${text.slice(0, 300)}`);
  return text === "" ? {} : JSON.parse(text);
}

/** @returns {{ client_id: string, client_secret: string } | null} */
function keptDemoClient() {
  try {
    const kept = JSON.parse(readFileSync(demoFile, "utf8"));
    return typeof kept.client_id === "string" && typeof kept.client_secret === "string" ? kept : null;
  } catch {
    return null;
  }
}

/**
 * The demo data: on first start a confidential client named "Demo app" is registered through the admin API
 * (client_secret_post, which is what openid-client uses by default; consent is asked). Its secret is shown by the
 * admin API only once, so it is kept in `.wrangler/state/demo-client.json` (gitignored, 0600) to be printed again on
 * every start. There is no user to seed: a user is created by their first email sign-in.
 *
 * Nothing runs at the demo redirect URI (it is on the OP's own origin, where /demo/callback is a 404): after "Allow"
 * the browser shows the code in its address bar, which the printed curl command redeems. A fresh PKCE verifier is
 * made on every start.
 * @param {string} issuerUrl
 * @param {string} token
 * @returns {Promise<void>}
 */
async function seedDemo(issuerUrl, token) {
  try {
    await seedAndPrintDemo(issuerUrl, token);
  } catch (error) {
    // The OP runs on without the demo: say why, and how to do it by hand.
    console.log(`
  demo app:     not seeded: ${error instanceof Error ? error.message : error}
                (register a client yourself: POST ${issuerUrl}/admin/clients, see README.md)`);
  }
}

/**
 * @param {string} issuerUrl
 * @param {string} token
 */
async function seedAndPrintDemo(issuerUrl, token) {
  const redirectUri = `${issuerUrl}/demo/callback`;
  const loggedOutUri = `${issuerUrl}/demo/logged-out`;
  /** @type {AdminClient[]} */
  const clients = (await adminApi(issuerUrl, token, "GET", "/admin/clients")).clients;
  let demo = clients.find((c) => c.client_name === DEMO_NAME);
  let secret = null;
  let created = false;
  if (demo === undefined) {
    demo = /** @type {AdminClient} */ (
      await adminApi(issuerUrl, token, "POST", "/admin/clients", {
        client_name: DEMO_NAME,
        redirect_uris: [redirectUri],
        post_logout_redirect_uris: [loggedOutUri],
        grant_types: ["authorization_code", "refresh_token"],
        token_endpoint_auth_method: "client_secret_post",
        scope: "openid profile email offline_access",
        skip_consent: false,
      })
    );
    secret = demo.client_secret ?? null;
    created = true;
    writeFileSync(demoFile, `${JSON.stringify({ client_id: demo.client_id, client_secret: secret }, null, 2)}\n`, { mode: 0o600 });
    chmodSync(demoFile, 0o600);
  } else {
    const kept = keptDemoClient();
    if (kept !== null && kept.client_id === demo.client_id) secret = kept.client_secret;
    // Started on another port than the first time: the demo's URIs follow (an admin update, in force at once).
    if (!demo.redirect_uris.includes(redirectUri) || !demo.post_logout_redirect_uris.includes(loggedOutUri)) {
      demo = /** @type {AdminClient} */ (
        await adminApi(issuerUrl, token, "PATCH", `/admin/clients/${encodeURIComponent(demo.client_id)}`, {
          redirect_uris: [...new Set([...demo.redirect_uris, redirectUri])],
          post_logout_redirect_uris: [...new Set([...demo.post_logout_redirect_uris, loggedOutUri])],
        })
      );
    }
  }

  const verifier = randomBytes(32).toString("base64url");
  const authorize = new URL(`${issuerUrl}/authorize`);
  const params = {
    response_type: "code",
    client_id: demo.client_id,
    redirect_uri: redirectUri,
    scope: "openid profile email offline_access",
    state: randomBytes(8).toString("base64url"),
    nonce: randomBytes(8).toString("base64url"),
    code_challenge: createHash("sha256").update(verifier).digest("base64url"),
    code_challenge_method: "S256",
  };
  for (const [k, v] of Object.entries(params)) authorize.searchParams.set(k, v);
  const shownSecret = secret ?? "<not kept: rotate it, see below>";

  console.log(`
Demo app ${created ? "(registered just now)" : "(registered on an earlier start)"}
  client_id:     ${demo.client_id}
  client_secret: ${shownSecret}   (client_secret_post; kept in ${path.relative(root, demoFile)})
  redirect_uri:  ${redirectUri}   (nothing is served there: the code arrives in the address bar)

Try a sign-in:
  1. open in a browser:
     ${authorize.href}
  2. type any email address; the sign-in link is not mailed but kept for you at
     ${issuerUrl}/dev/mailbox?to=YOUR-ADDRESS   (open "link", then press "Sign in"; the user is created now)
  3. allow the Demo app; the browser lands on ${redirectUri}?code=…&state=…&iss=…
     (a 404 page: copy the code from the address bar — it works once, within 60 s)
  4. redeem it (PKCE code_verifier of this start: ${verifier}):
     curl -s ${issuerUrl}/token -d grant_type=authorization_code -d client_id=${demo.client_id} \\
       -d client_secret=${shownSecret} -d redirect_uri=${redirectUri} \\
       -d code_verifier=${verifier} -d code=PASTE-THE-CODE`);
  if (secret === null) {
    console.log(`  The secret was shown only when the client was created. New one:
     curl -s -X PATCH -H "authorization: Bearer ${token}" -H "content-type: application/json" \\
       -d '{"rotate_secret":true}' ${issuerUrl}/admin/clients/${demo.client_id}`);
  }
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

  console.log(`
The OpenID Provider is running.

  issuer:       ${issuer}
  discovery:    ${issuer}/.well-known/openid-configuration
  health:       ${issuer}/health
  admin token:  ${token}   (${source})
  state:        ${path.relative(root, stateDir)}/   (delete it to start from nothing)`);
  await seedDemo(issuer, token);
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
