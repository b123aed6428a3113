#!/usr/bin/env node
// @ts-check
/**
 * The admin CLI: the admin API of a local or deployed OP from a terminal (docs/operations.md#admin-cli).
 *   npm run admin -- <command> [options]        (or: node scripts/admin.mjs …)
 * Plain Node (20+), no dependencies. The admin token never comes from a flag (flags land in shell history): it is
 * $ADMIN_TOKEN, or the file named by --token-file / $ADMIN_TOKEN_FILE, or --token-stdin, or — for a loopback issuer —
 * the token `npm start` keeps in .wrangler/state/admin-token. Tables by default, --json for scripts; exit code 0 on
 * success, 1 when the OP refuses or cannot be reached, 2 for a usage error.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const DEFAULT_ISSUER = "http://127.0.0.1:8787";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

const HELP = `Usage: npm run admin -- [global options] <command> [arguments] [options]

Global options:
  --issuer URL        the OP (default: $OIDC_ISSUER, else $ISSUER, else ${DEFAULT_ISSUER}, the OP of npm start)
  --token-file FILE   read the admin token from FILE (default: $ADMIN_TOKEN, then $ADMIN_TOKEN_FILE,
                      then .wrangler/state/admin-token for a loopback issuer)
  --token-stdin       read the admin token from standard input
  --json              print the API's JSON answer instead of a table
  -q, --quiet         print only identifiers (one per line), e.g. for USER_ID=$(…)
  -h, --help          this text

Commands:
  clients list
  clients get <client_id>
  clients create --name NAME [--redirect-uri URI]… [--post-logout-redirect-uri URI]… [--grant-type TYPE]…
                 [--auth-method METHOD] [--scope "openid …"] [--extra-claim NAME]… [--skip-consent] [--client-id ID]
                 [--body FILE|-]   (a JSON body of RFC 7591 metadata; options given on the line win)
  clients update <client_id> [the options of create] [--rotate-secret]
  clients delete <client_id>
  users list [--email TEXT] [--limit N] [--all]
  users get <user_id>
  users create <email> [--name NAME] [--given-name G] [--family-name F] [--email-verified]
               [--group NAME]… [--claims JSON] [--body FILE|-]
  users update <user_id> [--email E] [--name NAME] [--given-name G] [--family-name F] [--email-verified | --email-unverified]
               [--group NAME]… [--no-groups] [--claims JSON] [--body FILE|-] [--if-match VERSION]
  users disable <user_id>      users enable <user_id>      users delete <user_id>
  sessions list <user_id>      sessions revoke-all <user_id>
  consents list <user_id>      consents revoke <user_id> <client_id>
  audit [--type TYPE] [--user USER_ID] [--client CLIENT_ID] [--since TIME] [--until TIME] [--limit N]
  audit tail [the filters of audit] [--follow] [--interval SECONDS]
  dead-letters list            dead-letters redrive
  keys list                    keys rotate [--alg RS256|ES256]          keys withdraw <kid> [--reason TEXT]
  metrics [--since TIME] [--until TIME]

TIME: 2026-01-31, 2026-01-31T12:00:00Z, milliseconds since the epoch, or an age: 30m, 2h, 7d.
`;

class UsageError extends Error {}
class ApiError extends Error {}

// ── Arguments ──────────────────────────────────────────────────────────────────────────────────────────────────

/** Options that take a value; those that may be given more than once collect a list. */
const VALUED = new Set([
  "issuer", "token-file", "name", "redirect-uri", "post-logout-redirect-uri", "grant-type", "auth-method", "scope", "extra-claim",
  "client-id", "body", "email", "limit", "given-name", "family-name", "group", "claims", "if-match", "type", "user", "client", "since",
  "until", "interval", "alg", "reason",
]);
const REPEATED = new Set(["redirect-uri", "post-logout-redirect-uri", "grant-type", "extra-claim", "group"]);
const FLAGS = new Set([
  "json", "quiet", "help", "token-stdin", "skip-consent", "no-skip-consent", "rotate-secret", "all", "email-verified", "email-unverified",
  "no-groups", "follow",
]);

/**
 * @param {string[]} argv
 * @returns {{ positional: string[], options: Record<string, string | string[] | boolean> }}
 */
function parseArgs(argv) {
  /** @type {string[]} */
  const positional = [];
  /** @type {Record<string, string | string[] | boolean>} */
  const options = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    if (arg === "-q") options.quiet = true;
    else if (arg === "-h") options.help = true;
    else if (arg.startsWith("--")) {
      const eq = arg.indexOf("=");
      const name = arg.slice(2, eq === -1 ? undefined : eq);
      if (name === "token") throw new UsageError("there is no --token option: a token on the command line lands in shell history. Use $ADMIN_TOKEN, --token-file FILE or --token-stdin");
      if (FLAGS.has(name)) {
        if (eq !== -1) throw new UsageError(`--${name} takes no value`);
        options[name] = true;
      } else if (VALUED.has(name)) {
        const value = eq !== -1 ? arg.slice(eq + 1) : argv[++i];
        if (value === undefined) throw new UsageError(`--${name} needs a value`);
        if (REPEATED.has(name)) options[name] = [...(/** @type {string[]} */ (options[name] ?? [])), value];
        else if (options[name] !== undefined) throw new UsageError(`--${name} is given twice`);
        else options[name] = value;
      } else {
        throw new UsageError(`unknown option --${name}`);
      }
    } else positional.push(arg);
  }
  return { positional, options };
}

/** @param {Record<string, string | string[] | boolean>} options @param {string} name @returns {string | undefined} */
function opt(options, name) {
  const value = options[name];
  return typeof value === "string" ? value : undefined;
}

/** @param {Record<string, string | string[] | boolean>} options @param {string} name @returns {string[] | undefined} */
function list(options, name) {
  const value = options[name];
  return Array.isArray(value) ? value : undefined;
}

// ── The connection ─────────────────────────────────────────────────────────────────────────────────────────────

/** @param {string} issuer */
function isLoopback(issuer) {
  try {
    return ["localhost", "127.0.0.1", "[::1]"].includes(new URL(issuer).hostname);
  } catch {
    return false;
  }
}

/**
 * @param {Record<string, string | string[] | boolean>} options
 * @param {string} issuer
 * @returns {string}
 */
function adminToken(options, issuer) {
  /** @param {string} file */
  const fromFile = (file) => {
    try {
      return readFileSync(file, "utf8").trim();
    } catch (error) {
      throw new UsageError(`cannot read the admin token from ${file}: ${error instanceof Error ? error.message : String(error)}`);
    }
  };
  let token = "";
  if (options["token-stdin"]) token = readFileSync(0, "utf8").trim();
  else if (opt(options, "token-file")) token = fromFile(/** @type {string} */ (opt(options, "token-file")));
  else if (process.env.ADMIN_TOKEN) token = process.env.ADMIN_TOKEN.trim();
  else if (process.env.ADMIN_TOKEN_FILE) token = fromFile(process.env.ADMIN_TOKEN_FILE);
  else if (isLoopback(issuer)) {
    const kept = [path.join(process.cwd(), ".wrangler", "state", "admin-token"), path.join(root, ".wrangler", "state", "admin-token")].find((f) => existsSync(f));
    if (kept) token = fromFile(kept);
  }
  if (token === "") throw new UsageError("no admin token: set $ADMIN_TOKEN, or pass --token-file FILE or --token-stdin");
  return token;
}

/**
 * One call to the admin API. Errors become one clear line: unreachable, refused (401/403), not found, conflict.
 * @param {{ issuer: string, token: string }} connection
 * @param {string} method
 * @param {string} pathname
 * @param {unknown} [body]
 * @param {Record<string, string>} [headers]
 * @returns {Promise<any>}
 */
async function call(connection, method, pathname, body, headers = {}) {
  const url = `${connection.issuer}${pathname}`;
  /** @type {Response} */
  let response;
  try {
    response = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${connection.token}`, accept: "application/json", ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (error) {
    const cause = error instanceof Error && error.cause instanceof Error ? /** @type {Error & { code?: string }} */ (error.cause) : null;
    const why = cause?.code ?? cause?.message ?? (error instanceof Error ? error.message : String(error));
    throw new ApiError(`cannot reach ${connection.issuer} (${why}): is the OP running, and is --issuer right?`);
  }
  const text = await response.text();
  /** @type {any} */
  let json = null;
  try {
    json = text === "" ? null : JSON.parse(text);
  } catch {
    json = null;
  }
  if (response.ok) return json ?? {};
  const detail = json && typeof json === "object" ? `${json.error ?? ""}${json.error_description ? `: ${json.error_description}` : ""}` : text.slice(0, 200);
  switch (response.status) {
    case 401:
      throw new ApiError(`the admin token was refused (401 ${detail}); check $ADMIN_TOKEN or --token-file`);
    case 403:
      throw new ApiError(`forbidden (403 ${detail})`);
    case 404:
      throw new ApiError(`not found (404 ${detail})`);
    case 409:
      throw new ApiError(`conflict (409 ${detail})`);
    case 429:
      throw new ApiError(`rate limited (429): retry in ${response.headers.get("retry-after") ?? "a few"} seconds`);
    default:
      throw new ApiError(`${method} ${pathname} failed (${response.status} ${detail})`);
  }
}

// ── Output ─────────────────────────────────────────────────────────────────────────────────────────────────────

/** @param {unknown} value @returns {string} */
function cell(value) {
  if (value === null || value === undefined) return "";
  if (Array.isArray(value)) return value.map((v) => cell(v)).join(" ");
  if (typeof value === "object") return JSON.stringify(value);
  return String(value).replace(/[\r\n\t]+/g, " ");
}

/**
 * @param {Array<Record<string, unknown>>} rows
 * @param {string[]} columns
 */
function table(rows, columns) {
  if (rows.length === 0) {
    console.log("(none)");
    return;
  }
  const cells = rows.map((row) => columns.map((c) => cell(row[c])));
  const widths = columns.map((c, i) => Math.min(60, Math.max(c.length, ...cells.map((r) => (r[i] ?? "").length))));
  /** @param {string[]} values */
  const line = (values) =>
    values
      .map((v, i) => {
        const width = widths[i] ?? 0;
        return v.length > width ? `${v.slice(0, width - 1)}…` : v.padEnd(width);
      })
      .join("  ")
      .trimEnd();
  console.log(line(columns.map((c) => c.toUpperCase())));
  for (const row of cells) console.log(line(row));
}

/** @param {Record<string, unknown>} object */
function details(object) {
  const width = Math.max(...Object.keys(object).map((k) => k.length));
  for (const [key, value] of Object.entries(object)) console.log(`${key.padEnd(width)}  ${cell(value)}`);
}

/** @param {unknown} ms */
function iso(ms) {
  return typeof ms === "number" ? new Date(ms).toISOString() : "";
}

// ── Bodies from options ────────────────────────────────────────────────────────────────────────────────────────

/** @param {Record<string, string | string[] | boolean>} options @returns {Record<string, unknown>} */
function bodyFile(options) {
  const file = opt(options, "body");
  if (file === undefined) return {};
  let text;
  try {
    text = file === "-" ? readFileSync(0, "utf8") : readFileSync(file, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read --body ${file}: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    const parsed = JSON.parse(text);
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new Error("not a JSON object");
    return parsed;
  } catch (error) {
    throw new UsageError(`--body ${file} is not a JSON object: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** @param {Record<string, string | string[] | boolean>} options */
function clientBody(options) {
  /** @type {Record<string, unknown>} */
  const body = { ...bodyFile(options) };
  const set = (/** @type {string} */ member, /** @type {unknown} */ value) => {
    if (value !== undefined) body[member] = value;
  };
  set("client_id", opt(options, "client-id"));
  set("client_name", opt(options, "name"));
  set("redirect_uris", list(options, "redirect-uri"));
  set("post_logout_redirect_uris", list(options, "post-logout-redirect-uri"));
  set("grant_types", list(options, "grant-type"));
  set("token_endpoint_auth_method", opt(options, "auth-method"));
  set("scope", opt(options, "scope"));
  set("extra_claims", list(options, "extra-claim"));
  if (options["skip-consent"]) body.skip_consent = true;
  if (options["no-skip-consent"]) body.skip_consent = false;
  if (options["rotate-secret"]) body.rotate_secret = true;
  return body;
}

/** @param {Record<string, string | string[] | boolean>} options */
function userBody(options) {
  /** @type {Record<string, unknown>} */
  const body = { ...bodyFile(options) };
  const set = (/** @type {string} */ member, /** @type {unknown} */ value) => {
    if (value !== undefined) body[member] = value;
  };
  set("email", opt(options, "email"));
  set("name", opt(options, "name"));
  set("given_name", opt(options, "given-name"));
  set("family_name", opt(options, "family-name"));
  set("groups", list(options, "group"));
  if (options["no-groups"]) body.groups = [];
  if (options["email-verified"]) body.email_verified = true;
  if (options["email-unverified"]) body.email_verified = false;
  const claims = opt(options, "claims");
  if (claims !== undefined) {
    try {
      body.claims = JSON.parse(claims);
    } catch {
      throw new UsageError(`--claims must be a JSON object, e.g. '{"department": "Research"}'`);
    }
  }
  return body;
}

/** A time option: an age (30m, 2h, 7d) becomes milliseconds since the epoch; anything else is passed as written. */
function timeOption(/** @type {string | undefined} */ value) {
  if (value === undefined) return undefined;
  const age = /^(\d+)([smhd])$/.exec(value);
  if (!age) return value;
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[/** @type {"s" | "m" | "h" | "d"} */ (age[2])];
  return String(Date.now() - Number(age[1]) * unit);
}

/** @param {Record<string, string | undefined>} params */
function query(params) {
  const entries = Object.entries(params).filter((e) => e[1] !== undefined && e[1] !== "");
  return entries.length === 0 ? "" : `?${new URLSearchParams(/** @type {[string, string][]} */ (entries)).toString()}`;
}

const enc = encodeURIComponent;

// ── Commands ───────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * @typedef {{ issuer: string, token: string }} Connection
 * @typedef {{ json: boolean, quiet: boolean }} Output
 */

/** @param {Output} out @param {any} result @param {(result: any) => void} human @param {(result: any) => string[]} [ids] */
function show(out, result, human, ids) {
  if (out.json) console.log(JSON.stringify(result, null, 2));
  else if (out.quiet && ids) for (const id of ids(result)) console.log(id);
  else human(result);
}

const CLIENT_COLUMNS = ["client_id", "client_name", "token_endpoint_auth_method", "grant_types", "redirect_uris"];
const USER_COLUMNS = ["id", "email", "name", "groups", "disabled"];
const EVENT_COLUMNS = ["time", "type", "source", "actor", "subject", "client_id", "data"];

/** @param {any[]} events */
function eventRows(events) {
  return events.map((e) => ({ ...e, time: iso(e.occurred_at) }));
}

/**
 * @param {string[]} args
 * @param {number} count
 * @param {string} usage
 */
function need(args, count, usage) {
  if (args.length !== count) throw new UsageError(`usage: ${usage}`);
  return args;
}

/**
 * @param {Connection} c
 * @param {Output} out
 * @param {string[]} positional
 * @param {Record<string, string | string[] | boolean>} options
 */
async function run(c, out, positional, options) {
  const [group, action, ...args] = positional;
  const key = `${group ?? ""} ${action ?? ""}`.trim();
  switch (key) {
    case "clients list": {
      need(args, 0, "clients list");
      const { clients } = await call(c, "GET", "/admin/clients");
      return show(out, { clients }, (r) => table(r.clients, CLIENT_COLUMNS), (r) => r.clients.map((/** @type {any} */ x) => x.client_id));
    }
    case "clients get": {
      const [id = ""] = need(args, 1, "clients get <client_id>");
      return show(out, await call(c, "GET", `/admin/clients/${enc(id)}`), details, (r) => [r.client_id]);
    }
    case "clients create": {
      need(args, 0, "clients create --name NAME [--redirect-uri URI]… (see --help)");
      const client = await call(c, "POST", "/admin/clients", clientBody(options));
      return show(out, client, (r) => {
        details(r);
        if (r.client_secret) console.log("\nThe client secret is shown this once: keep it now.");
      }, (r) => [r.client_id]);
    }
    case "clients update": {
      const [id = ""] = need(args, 1, "clients update <client_id> [options]");
      const body = clientBody(options);
      if (Object.keys(body).length === 0) throw new UsageError("clients update: say what to change (see --help)");
      return show(out, await call(c, "PATCH", `/admin/clients/${enc(id)}`, body), details, (r) => [r.client_id]);
    }
    case "clients delete": {
      const [id = ""] = need(args, 1, "clients delete <client_id>");
      await call(c, "DELETE", `/admin/clients/${enc(id)}`);
      return show(out, { deleted: id }, () => console.log(`deleted client ${id}`), () => [id]);
    }
    case "users list": {
      need(args, 0, "users list [--email TEXT] [--limit N] [--all]");
      /** @type {any[]} */
      const users = [];
      let cursor = undefined;
      do {
        const page = await call(c, "GET", `/admin/users${query({ email: opt(options, "email"), limit: opt(options, "limit"), cursor })}`);
        users.push(...page.users);
        cursor = options.all ? page.next_cursor ?? undefined : undefined;
        if (!options.all && page.next_cursor && !out.json && !out.quiet) console.error(`(more: --all lists every page)`);
      } while (cursor);
      return show(out, { users }, (r) => table(r.users, USER_COLUMNS), (r) => r.users.map((/** @type {any} */ u) => u.id));
    }
    case "users get": {
      const [id = ""] = need(args, 1, "users get <user_id>");
      return show(out, await call(c, "GET", `/admin/users/${enc(id)}`), details, (r) => [r.id]);
    }
    case "users create": {
      const [email = ""] = need(args, 1, "users create <email> [options]");
      const user = await call(c, "POST", "/admin/users", { ...userBody(options), email });
      return show(out, user, details, (r) => [r.id]);
    }
    case "users update": {
      const [id = ""] = need(args, 1, "users update <user_id> [options]");
      const body = userBody(options);
      if (Object.keys(body).length === 0) throw new UsageError("users update: say what to change (see --help)");
      const ifMatch = opt(options, "if-match");
      return show(out, await call(c, "PATCH", `/admin/users/${enc(id)}`, body, ifMatch ? { "if-match": `"${ifMatch}"` } : {}), details, (r) => [r.id]);
    }
    case "users disable":
    case "users enable": {
      const [id = ""] = need(args, 1, `users ${action} <user_id>`);
      const user = await call(c, "POST", `/admin/users/${enc(id)}/${action}`);
      return show(out, user, (r) => {
        console.log(`${r.email}: ${r.disabled ? "disabled" : "enabled"}${r.sessions_ended !== undefined ? `, ${r.sessions_ended} session(s) ended` : ""}`);
      }, (r) => [r.id]);
    }
    case "users delete": {
      const [id = ""] = need(args, 1, "users delete <user_id>");
      await call(c, "DELETE", `/admin/users/${enc(id)}`);
      return show(out, { deleted: id }, () => console.log(`deleted user ${id}`), () => [id]);
    }
    case "sessions list": {
      const [id = ""] = need(args, 1, "sessions list <user_id>");
      const { sessions } = await call(c, "GET", `/admin/users/${enc(id)}/sessions`);
      const rows = sessions.map((/** @type {any} */ s) => ({ ...s, created: iso(s.created_at * 1000), last_seen: iso(s.last_seen_at * 1000) }));
      return show(out, { sessions }, () => table(rows, ["sid", "amr", "created", "last_seen", "clients"]), (r) => r.sessions.map((/** @type {any} */ s) => s.sid));
    }
    case "sessions revoke-all": {
      const [id = ""] = need(args, 1, "sessions revoke-all <user_id>");
      const result = await call(c, "POST", `/admin/users/${enc(id)}/sessions/revoke-all`);
      return show(out, result, (r) => console.log(`${r.revoked} session(s) ended`), (r) => r.sessions);
    }
    case "consents list": {
      const [id = ""] = need(args, 1, "consents list <user_id>");
      const { consents } = await call(c, "GET", `/admin/users/${enc(id)}/consents`);
      return show(out, { consents }, (r) => table(r.consents, ["client_id", "client_name", "scopes", "granted_at"]), (r) => r.consents.map((/** @type {any} */ x) => x.client_id));
    }
    case "consents revoke": {
      const [id = "", clientId = ""] = need(args, 2, "consents revoke <user_id> <client_id>");
      await call(c, "DELETE", `/admin/users/${enc(id)}/consents/${enc(clientId)}`);
      return show(out, { revoked: clientId }, () => console.log(`revoked the consent to ${clientId}, and that client's grants`), () => [clientId]);
    }
    case "audit":
    case "audit tail":
      return audit(c, out, action === "tail", [...(action === undefined || action === "tail" ? [] : [action]), ...args], options);
    case "dead-letters list": {
      need(args, 0, "dead-letters list");
      const result = await call(c, "GET", "/admin/audit/dead-letters");
      return show(out, result, (r) => {
        table(r.objects, ["source", "object", "pending", "dead_lettered", "error"]);
        console.log(`\n${r.totals.dead_lettered} dead letter(s), ${r.totals.pending} pending, in ${r.totals.objects} object(s)${r.more ? " (more objects than listed)" : ""}`);
      }, (r) => r.objects.map((/** @type {any} */ o) => o.object));
    }
    case "dead-letters redrive": {
      need(args, 0, "dead-letters redrive");
      const result = await call(c, "POST", "/admin/audit/dead-letters/redrive");
      return show(out, result, (r) => console.log(`${r.redriven} dead letter(s) put back in line in ${r.objects} object(s)${r.more ? "; more remain: run it again" : ""}`));
    }
    case "keys list": {
      need(args, 0, "keys list");
      const { keys } = await call(c, "GET", "/admin/keys");
      const rows = keys.map((/** @type {any} */ k) => ({ ...k, created: iso(k.createdAt), retires: iso(k.retireAfter) }));
      return show(out, { keys }, () => table(rows, ["kid", "alg", "state", "created", "retires"]), (r) => r.keys.map((/** @type {any} */ k) => k.kid));
    }
    case "keys rotate": {
      need(args, 0, "keys rotate [--alg RS256|ES256]");
      const alg = opt(options, "alg");
      const result = await call(c, "POST", "/admin/keys/rotate", alg ? { alg } : {});
      return show(out, result, (r) => table(r.rotated, ["alg", "kid", "previousKid"]), (r) => r.rotated.map((/** @type {any} */ x) => x.kid));
    }
    case "keys withdraw": {
      const [kid = ""] = need(args, 1, "keys withdraw <kid> [--reason TEXT]");
      const reason = opt(options, "reason");
      const result = await call(c, "POST", `/admin/keys/${enc(kid)}/withdraw`, reason ? { reason } : {});
      return show(out, result, (r) => {
        details(r);
        if (r.withdrawn) console.log(`\nEvery instance of the OP refuses the key by ${iso(r.in_force_everywhere_by * 1000)}.`);
      }, (r) => [r.kid]);
    }
    case "metrics": {
      need(args, 0, "metrics [--since TIME] [--until TIME]");
      const result = await call(c, "GET", `/admin/metrics${query({ since: timeOption(opt(options, "since")), until: timeOption(opt(options, "until")) })}`);
      return show(out, result, (r) => {
        console.log(`from ${iso(r.since)} to ${iso(r.until)}`);
        details({
          sign_ins: `${r.sign_ins.total} ${JSON.stringify(r.sign_ins.by_method)}`,
          token_grants: JSON.stringify(r.token_grants),
          refresh_token_reuse_detected: r.refresh_token_reuse_detected,
          authorization_code_replays: r.authorization_code_replays,
          rate_limit_denials: `${r.rate_limit_denials.total} ${JSON.stringify(r.rate_limit_denials.by_endpoint)}`,
          logout: JSON.stringify(r.logout),
          audit_outbox: JSON.stringify(r.audit_outbox),
        });
      });
    }
    default:
      throw new UsageError(group === undefined ? "no command given (see --help)" : `unknown command: ${key} (see --help)`);
  }
}

/**
 * `audit` prints one page; `audit tail` the newest events oldest first, and with --follow keeps printing new ones.
 * @param {Connection} c
 * @param {Output} out
 * @param {boolean} tail
 * @param {string[]} args
 * @param {Record<string, string | string[] | boolean>} options
 */
async function audit(c, out, tail, args, options) {
  if (args.length > 0) throw new UsageError(`unexpected argument ${args[0]}: audit takes --type, --user, --client, --since, --until, --limit`);
  const filters = {
    type: opt(options, "type"),
    user: opt(options, "user"),
    client: opt(options, "client"),
    since: timeOption(opt(options, "since")),
    until: timeOption(opt(options, "until")),
    limit: opt(options, "limit") ?? (tail ? "20" : undefined),
  };
  const { events } = await call(c, "GET", `/admin/audit${query(filters)}`);
  if (!tail) return show(out, { events }, (r) => table(eventRows(r.events), EVENT_COLUMNS), (r) => r.events.map((/** @type {any} */ e) => e.event_id));
  /** @param {any[]} batch */
  const print = (batch) => {
    for (const e of batch) {
      if (out.json) console.log(JSON.stringify(e));
      else if (out.quiet) console.log(e.event_id);
      else console.log(`${iso(e.occurred_at)}  ${e.type}  ${cell(e.subject)}  ${cell(e.client_id)}  ${cell(e.data)}`);
    }
  };
  const seen = new Set(events.map((/** @type {any} */ e) => e.event_id));
  print([...events].reverse());
  if (!options.follow) return;
  const interval = Math.max(1, Number(opt(options, "interval") ?? "5")) * 1000;
  for (;;) {
    await new Promise((r) => setTimeout(r, interval));
    const { events: latest } = await call(c, "GET", `/admin/audit${query({ ...filters, limit: "100" })}`);
    const fresh = latest.filter((/** @type {any} */ e) => !seen.has(e.event_id)).reverse();
    for (const e of fresh) seen.add(e.event_id);
    print(fresh);
  }
}

// ── Main ───────────────────────────────────────────────────────────────────────────────────────────────────────

async function main() {
  let parsed;
  try {
    parsed = parseArgs(process.argv.slice(2));
  } catch (error) {
    console.error(`oidc admin: ${error instanceof Error ? error.message : String(error)}`);
    return 2;
  }
  const { positional, options } = parsed;
  if (options.help || positional.length === 0) {
    (options.help ? console.log : console.error)(HELP);
    return options.help ? 0 : 2;
  }
  try {
    const issuer = (opt(options, "issuer") || process.env.OIDC_ISSUER || process.env.ISSUER || DEFAULT_ISSUER).replace(/\/+$/, "");
    if (!/^https?:\/\/[^/]+$/.test(issuer)) throw new UsageError(`--issuer must be an origin such as https://id.example.com, not ${issuer}`);
    const token = adminToken(options, issuer);
    await run({ issuer, token }, { json: options.json === true, quiet: options.quiet === true }, positional, options);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`oidc admin: ${error.message}`);
      return 2;
    }
    if (error instanceof ApiError) {
      console.error(`oidc admin: ${error.message}`);
      return 1;
    }
    console.error(`oidc admin: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

process.exitCode = await main();
