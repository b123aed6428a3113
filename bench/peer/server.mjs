// @ts-check
/**
 * Child process of the bench: node-oidc-provider 9 (panva), configured like our OP so that the same requests mean
 * the same work — RS256 (ID tokens and JWT access tokens), JWT access tokens for a resource server (RFC 9068,
 * through resource indicators: `urn:bench:api` with `accessTokenFormat: "jwt"`), refresh-token rotation,
 * client_credentials, introspection, PKCE S256 required, the authorization code flow with a session cookie and a
 * remembered grant (consent). Two storage configurations:
 *   memory  node-oidc-provider's default adapter (an in-memory LRU of 1,000 entries) and static clients;
 *   sqlite  bench/peer/sqlite-adapter.mjs (better-sqlite3, WAL, synchronous=FULL), clients and users in that
 *           database, read on each request as our OP reads D1.
 * Sign-in is a small JSON interaction (as a production deployment writes its own): POST /interaction/:uid/login
 * with an email address, POST /interaction/:uid/confirm to grant what is asked (node-oidc-provider's own example).
 *
 * Options arrive as JSON in $BENCH_PEER_OPTIONS: { adapter, stateDir, clients }.
 * IPC out: { type: "ready", url } once serving, or { type: "error", error }.
 */
import { generateKeyPairSync, randomBytes, randomUUID } from "node:crypto";
import { createServer } from "node:http";
import path from "node:path";
import Provider, { errors } from "oidc-provider";
import { openStore } from "./sqlite-adapter.mjs";

const raw = process.env.BENCH_PEER_OPTIONS;
if (!raw || !process.send) {
  console.error("bench/peer/server.mjs is started by bench/run.mjs, with an IPC channel");
  process.exit(2);
}
/** @type {{ adapter: "memory" | "sqlite", stateDir: string, clients: import("oidc-provider").ClientMetadata[], synchronous?: "FULL" | "NORMAL" }} */
const options = JSON.parse(raw);
/** @param {unknown} message */
const send = (message) => process.send?.(message);

export const RESOURCE = "urn:bench:api";
const RESOURCE_SCOPE = "api:read";

// ── Users ─────────────────────────────────────────────────────────────────────────
const store = options.adapter === "sqlite" ? openStore(path.join(options.stateDir, "peer.sqlite"), { synchronous: options.synchronous ?? "FULL" }) : null;
/** @type {Map<string, { id: string, email: string, name: string }>} */
const memoryAccounts = new Map();
/** @type {Map<string, string>} */
const memoryIdsByEmail = new Map();

/** @param {string} email */
function ensureAccount(email) {
  if (store) return store.ensureAccount(email, randomUUID());
  let id = memoryIdsByEmail.get(email);
  if (!id) {
    id = randomUUID();
    memoryIdsByEmail.set(email, id);
    memoryAccounts.set(id, { id, email, name: email.split("@")[0] ?? email });
  }
  return id;
}

/** @param {string} id */
function accountRecord(id) {
  if (store) {
    const row = store.account(id);
    return row ? { id: row.id, email: row.email, name: row.name ?? "", emailVerified: row.email_verified === 1 } : undefined;
  }
  const row = memoryAccounts.get(id);
  return row ? { ...row, emailVerified: true } : undefined;
}

// ── Keys and clients ────────────────────────────────────────────────────────────
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingJwk = { ...privateKey.export({ format: "jwk" }), kid: randomBytes(8).toString("hex"), alg: "RS256", use: "sig" };

if (store) {
  const clientsAdapter = new store.Adapter("Client");
  for (const client of options.clients) await clientsAdapter.upsert(String(client.client_id), client, undefined);
}

// ── The provider ─────────────────────────────────────────────────────────────────
const server = createServer();
await new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(undefined)));
const address = server.address();
if (address === null || typeof address === "string") throw new Error("no port");
const issuer = `http://127.0.0.1:${address.port}`;

/** @type {import("oidc-provider").Configuration} */
const configuration = {
  ...(store ? { adapter: store.Adapter } : {}),
  clients: store ? [] : options.clients,
  jwks: { keys: [signingJwk] },
  cookies: { keys: [randomBytes(32).toString("base64url")] },
  claims: { openid: ["sub"], email: ["email", "email_verified"], profile: ["name"] },
  scopes: ["openid", "offline_access", "email", "profile"],
  pkce: { required: () => true },
  rotateRefreshToken: true,
  ttl: {
    AccessToken: 600,
    AuthorizationCode: 60,
    ClientCredentials: 600,
    IdToken: 3600,
    RefreshToken: 30 * 86400,
    Grant: 30 * 86400,
    Session: 14 * 86400,
    Interaction: 1800,
  },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
        return { scope: RESOURCE_SCOPE, audience: RESOURCE, accessTokenTTL: 600, accessTokenFormat: "jwt", jwt: { sign: { alg: "RS256" } } };
      },
    },
  },
  interactions: { url: async (_ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(_ctx, id) {
    const account = accountRecord(id);
    if (!account) return undefined;
    return {
      accountId: id,
      async claims() {
        return { sub: id, email: account.email, email_verified: account.emailVerified, name: account.name };
      },
    };
  },
};

const provider = new Provider(issuer, configuration);
provider.on("server_error", (_ctx, error) => console.error("server_error", error));
const callback = provider.callback();

// ── The interaction (sign-in and consent), JSON in and out ───────────────────────
/** @param {import("node:http").IncomingMessage} req */
async function formBody(req) {
  let body = "";
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

/**
 * @param {import("node:http").IncomingMessage} req
 * @param {import("node:http").ServerResponse} res
 */
async function interaction(req, res) {
  const match = /^\/interaction\/([^/?]+)(?:\/(login|confirm))?/.exec(req.url ?? "");
  if (!match) {
    res.writeHead(404).end();
    return;
  }
  const details = await provider.interactionDetails(req, res);
  if (req.method === "GET") {
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ uid: details.uid, prompt: details.prompt.name }));
    return;
  }
  if (match[2] === "login" && details.prompt.name === "login") {
    const email = (await formBody(req)).get("email") ?? "";
    if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
      res.writeHead(400, { "content-type": "application/json" }).end('{"error":"invalid email"}');
      return;
    }
    await provider.interactionFinished(req, res, { login: { accountId: ensureAccount(email.toLowerCase()) } }, { mergeWithLastSubmission: false });
    return;
  }
  if (match[2] === "confirm" && details.prompt.name === "consent") {
    const { prompt, params, session } = details;
    const promptDetails = /** @type {Record<string, any>} */ (prompt.details);
    let { grantId } = details;
    const grant = grantId ? await provider.Grant.find(grantId) : new provider.Grant({ accountId: session?.accountId, clientId: String(params.client_id) });
    if (!grant) throw new Error("grant not found");
    if (promptDetails.missingOIDCScope) grant.addOIDCScope(promptDetails.missingOIDCScope.join(" "));
    if (promptDetails.missingOIDCClaims) grant.addOIDCClaims(promptDetails.missingOIDCClaims);
    if (promptDetails.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(promptDetails.missingResourceScopes)) grant.addResourceScope(indicator, scopes.join(" "));
    }
    grantId = await grant.save();
    /** @type {{ grantId?: string }} */
    const consent = {};
    if (!details.grantId) consent.grantId = grantId;
    await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
    return;
  }
  res.writeHead(400, { "content-type": "application/json" }).end(JSON.stringify({ error: `unexpected step for prompt ${details.prompt.name}` }));
}

server.on("request", (req, res) => {
  if (req.url?.startsWith("/interaction/")) {
    interaction(req, res).catch((error) => {
      console.error(error);
      if (!res.headersSent) res.writeHead(500, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: String(error) }));
    });
  } else {
    callback(req, res);
  }
});

process.on("SIGTERM", () => {
  server.close();
  store?.db.close();
  process.exit(0);
});
process.on("disconnect", () => process.exit(0));
send({ type: "ready", url: issuer });
