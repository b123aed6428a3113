// @ts-check
/**
 * The small HTTP toolkit the bench sets its servers up with: a browser-like cookie jar (Path respected), the forms of
 * a server-rendered page, PKCE, client_secret_basic. Setup only — the measured load goes through autocannon.
 */
import { createHash, randomBytes } from "node:crypto";
import { SignJWT, calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";

export class CookieJar {
  /** @type {Map<string, { value: string, path: string }>} */
  cookies = new Map();

  /** @param {Response} response */
  store(response) {
    for (const header of response.headers.getSetCookie()) {
      const [pair = "", ...attributes] = header.split(";");
      const eq = pair.indexOf("=");
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();
      let path = "/";
      let expired = false;
      for (const attribute of attributes) {
        const [k = "", v = ""] = attribute.split("=").map((s) => s.trim());
        if (k.toLowerCase() === "path" && v.startsWith("/")) path = v;
        if (k.toLowerCase() === "max-age" && Number(v) <= 0) expired = true;
        if (k.toLowerCase() === "expires" && Date.parse(v) < Date.now()) expired = true;
      }
      const key = `${name} ${path}`;
      if (expired || value === "") this.cookies.delete(key);
      else this.cookies.set(key, { value, path });
    }
  }

  /**
   * The Cookie header a browser would send to `pathname`.
   * @param {string} pathname
   */
  header(pathname = "/") {
    const parts = [];
    for (const [key, { value, path }] of this.cookies) {
      if (pathname === path || pathname.startsWith(path.endsWith("/") ? path : `${path}/`)) parts.push(`${key.split(" ")[0]}=${value}`);
    }
    return parts.length === 0 ? null : parts.join("; ");
  }
}

/** One browser on one origin: requests without redirect following, cookies kept. */
export class Browser {
  jar = new CookieJar();

  /** @param {string} origin */
  constructor(origin) {
    this.origin = origin;
  }

  /**
   * @param {string} url absolute, or a path on the origin
   * @param {{ method?: string, form?: Record<string, string>, headers?: Record<string, string> }} [init]
   */
  async request(url, init = {}) {
    const target = new URL(url, this.origin);
    /** @type {Record<string, string>} */
    const headers = { ...init.headers };
    const cookie = target.origin === this.origin ? this.jar.header(target.pathname) : null;
    if (cookie !== null) headers.cookie = cookie;
    let body;
    if (init.form) {
      headers["content-type"] = "application/x-www-form-urlencoded";
      body = new URLSearchParams(init.form).toString();
    }
    const response = await fetch(target, { method: init.method ?? (init.form ? "POST" : "GET"), headers, body, redirect: "manual", signal: AbortSignal.timeout(20_000) });
    if (target.origin === this.origin) this.jar.store(response);
    return response;
  }
}

/** @param {string} text */
function unescapeHtml(text) {
  return text.replace(/&(amp|lt|gt|quot|#39|#x27);/g, (_, e) => /** @type {Record<string, string>} */ ({ amp: "&", lt: "<", gt: ">", quot: '"', "#39": "'", "#x27": "'" })[e] ?? _);
}

/**
 * The forms of a server-rendered page: action, and the values of its inputs.
 * @param {string} html
 * @returns {{ action: string, fields: Record<string, string> }[]}
 */
export function parseForms(html) {
  const forms = [];
  for (const match of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const action = /\saction="([^"]*)"/i.exec(match[1] ?? "")?.[1];
    /** @type {Record<string, string>} */
    const fields = {};
    for (const input of (match[2] ?? "").matchAll(/<input\b[^>]*>/gi)) {
      const name = /\sname="([^"]*)"/i.exec(input[0])?.[1];
      const value = /\svalue="([^"]*)"/i.exec(input[0])?.[1];
      if (name !== undefined && value !== undefined) fields[unescapeHtml(name)] = unescapeHtml(value);
    }
    forms.push({ action: unescapeHtml(action ?? ""), fields });
  }
  return forms;
}

/** A PKCE pair (RFC 7636, S256). */
export function pkcePair() {
  const verifier = randomBytes(32).toString("base64url");
  return { verifier, challenge: createHash("sha256").update(verifier).digest("base64url") };
}

/**
 * RFC 6749 §2.3.1 client_secret_basic.
 * @param {string} id
 * @param {string} secret
 */
export function basicAuth(id, secret) {
  const enc = (/** @type {string} */ s) => encodeURIComponent(s).replace(/%20/g, "+");
  return `Basic ${Buffer.from(`${enc(id)}:${enc(secret)}`).toString("base64")}`;
}

/**
 * Fails with the response text when the status is not the expected one.
 * @param {Response} response
 * @param {number[]} expected
 * @param {string} what
 */
export async function expectStatus(response, expected, what) {
  if (!expected.includes(response.status)) {
    throw new Error(`${what}: HTTP ${response.status} ${(await response.text()).slice(0, 600)}`);
  }
}

/**
 * The code grant of one confidential web client with its PKCE pair, the same against either OP: the token request's
 * body, and a redemption that must answer 200.
 * @param {string} issuer
 * @param {string} webAuth  its Authorization header (basicAuth)
 * @param {{ verifier: string }} pkce
 * @param {string} redirectUri
 */
export function codeGrant(issuer, webAuth, pkce, redirectUri) {
  /** @param {string} code */
  const codeTokenBody = (code) => new URLSearchParams({ grant_type: "authorization_code", code, redirect_uri: redirectUri, code_verifier: pkce.verifier }).toString();
  /** @param {string} code */
  const redeem = async (code) => {
    const response = await fetch(`${issuer}/token`, {
      method: "POST",
      headers: { authorization: webAuth, "content-type": "application/x-www-form-urlencoded" },
      body: codeTokenBody(code),
    });
    await expectStatus(response, [200], "POST /token (code)");
    return /** @type {{ access_token: string, refresh_token?: string, id_token?: string }} */ (await response.json());
  };
  return { codeTokenBody, redeem };
}

/** @param {number} ms */
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs `task` for each item with at most `limit` at once.
 * @template T, R
 * @param {T[]} items
 * @param {number} limit
 * @param {(item: T, index: number) => Promise<R>} task
 * @returns {Promise<R[]>}
 */
export async function mapLimit(items, limit, task) {
  /** @type {R[]} */
  const results = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      results[i] = await task(/** @type {T} */ (items[i]), i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}

/**
 * A DPoP key (RFC 9449) making a fresh proof per request, as a client library does: ES256, a new jti each time, `ath`
 * for resource access.
 */
export async function dpopKey() {
  const { privateKey, publicKey } = await generateKeyPair("ES256", { extractable: true });
  const jwk = await exportJWK(publicKey);
  return {
    jkt: await calculateJwkThumbprint(jwk),
    /**
     * @param {string} htm
     * @param {string} htu
     * @param {string} [accessToken]
     */
    proof: (htm, htu, accessToken) => {
      /** @type {Record<string, unknown>} */
      const claims = { htm, htu, iat: Math.floor(Date.now() / 1000), jti: randomBytes(16).toString("base64url") };
      if (accessToken !== undefined) claims.ath = createHash("sha256").update(accessToken).digest("base64url");
      return new SignJWT(claims).setProtectedHeader({ alg: "ES256", typ: "dpop+jwt", jwk }).sign(privateKey);
    },
  };
}
