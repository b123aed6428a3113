import { html, trustedHtml } from "./html";
import { layout, type Page, type View } from "./layout";

/**
 * The demo app (GET /demo and /demo/callback, loopback issuers only; routes/demo.ts): a real public OIDC client with
 * PKCE S256 that lives in the OP's own origin. The page is server-rendered; its one script (DEMO_SCRIPT, served as
 * /demo/app.js under `script-src 'self'`) starts the authorization request, redeems the code at /token, calls
 * /userinfo, refreshes, and signs out through RP-initiated logout. The page carries the client id, issuer and scope
 * in data attributes; the script writes only text (textContent), never markup.
 */

export interface DemoPageInput {
  clientId: string;
  issuer: string;
  scope: string;
  /** Null when the demo client is registered for this issuer; otherwise why the demo cannot run. */
  problem: string | null;
  scriptUrl: string;
}

const STYLE = trustedHtml(`<style>
  main { max-width: 44rem; }
  h2 { font-size: 1.05rem; margin: 1.5rem 0 .25rem; }
  pre { white-space: pre-wrap; overflow-wrap: anywhere; padding: .6rem; border-radius: 6px; font-size: .85rem; }
  button + button { margin-left: .5rem; }
</style>`);

/** The demo is an app, not the OP: its own words stay English (an app brings its own languages); the frame is the OP's. */
export function demoPage(view: View, input: DemoPageInput): Page {
  if (input.problem !== null) {
    return layout(view, "Demo app", html`${STYLE}<h1>Demo app</h1>
<p class="error" role="alert">${input.problem}</p>
<p><code>npm start</code> registers it (a public client with id <code>${input.clientId}</code>, redirect URI
<code>${input.issuer}/demo/callback</code>, post-logout redirect URI <code>${input.issuer}/demo</code>).</p>`);
  }
  return layout(
    view,
    "Demo app",
    html`${STYLE}<div id="demo" data-client-id="${input.clientId}" data-issuer="${input.issuer}" data-scope="${input.scope}">
<h1 id="title">Demo app</h1>
<p id="intro">A real OpenID Connect client on this local OP: a public client (no secret) using the authorization code
flow with PKCE (S256). The code is redeemed by this page's own script at <code>/token</code>.</p>
<p id="status" role="status"></p>
<div id="start">
<button type="button" id="sign-in">Sign in</button>
<p class="muted">Sign-in emails are not sent locally: they wait in the <a href="/dev/mailbox" target="_blank">dev mailbox</a>.</p>
</div>
<section id="result" hidden>
<button type="button" id="refresh">Refresh tokens</button><button type="button" id="sign-out" class="secondary">Sign out</button>
<h2>ID token claims</h2>
<p class="muted">Decoded for display only: this page does not verify the token's signature. It received the token
straight from the token endpoint; an app that passes tokens around verifies them against <code>/jwks.json</code>.</p>
<pre id="claims"></pre>
<h2>UserInfo (<code>GET /userinfo</code>)</h2>
<pre id="userinfo"></pre>
<h2>Tokens</h2>
<pre id="tokens"></pre>
<p class="muted">Kept in this tab's sessionStorage, which is fine for a demo.</p>
</section>
<noscript><p class="error">This demo needs JavaScript.</p></noscript>
</div>
<script src="${input.scriptUrl}"></script>`,
  );
}

/**
 * The demo's browser script. Plain ES2020, no build step, no dependency: sessionStorage holds the PKCE verifier,
 * state and nonce across the redirect (single use), then the tokens.
 */
export const DEMO_SCRIPT = `"use strict";
(() => {
  const $ = (id) => document.getElementById(id);
  const cfg = $("demo").dataset;
  const redirectUri = cfg.issuer + "/demo/callback";
  // The tokens stay in this tab; the request in flight is in localStorage, keyed by its state, because the sign-in
  // may finish in another tab (the emailed link opened from the dev mailbox's tab).
  const store = sessionStorage;
  const pendingKey = (state) => "demo.pending." + state;
  const b64url = (bytes) => btoa(String.fromCharCode(...bytes)).replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  const random = () => b64url(crypto.getRandomValues(new Uint8Array(32)));
  const text = (id, value) => ($(id).textContent = typeof value === "string" ? value : JSON.stringify(value, null, 2));
  const status = (message, isError) => { text("status", message); $("status").className = isError ? "error" : ""; };
  const payload = (jwt) => JSON.parse(new TextDecoder().decode(Uint8Array.from(atob(jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/")), (c) => c.charCodeAt(0))));
  const take = (key, from = store) => { const value = JSON.parse(from.getItem(key) || "null"); from.removeItem(key); return value; };
  const url = (path, params) => { const u = new URL(cfg.issuer + path); for (const k in params) u.searchParams.set(k, params[k]); return u.href; };

  async function token(params) {
    const response = await fetch("/token", { method: "POST", body: new URLSearchParams({ client_id: cfg.clientId, ...params }) });
    const body = await response.json();
    if (!response.ok) throw new Error("/token answered " + response.status + ": " + body.error + (body.error_description ? " (" + body.error_description + ")" : ""));
    return body;
  }

  async function show(tokens) {
    store.setItem("demo.tokens", JSON.stringify(tokens));
    const response = await fetch("/userinfo", { headers: { authorization: "Bearer " + tokens.access_token } });
    const info = await response.json();
    if (!response.ok) throw new Error("/userinfo answered " + response.status + ": " + info.error);
    text("title", "Signed in as " + (info.email || info.name || info.sub));
    text("claims", payload(tokens.id_token));
    text("userinfo", info);
    text("tokens", { token_type: tokens.token_type, scope: tokens.scope, expires_in: tokens.expires_in, received_at: tokens.received_at,
      access_token: "…" + tokens.access_token.slice(-16), refresh_token: tokens.refresh_token ? tokens.refresh_token.slice(0, 16) + "…" : "(none)" });
    $("refresh").hidden = !tokens.refresh_token;
    $("start").hidden = true;
    $("intro").hidden = true;
    $("result").hidden = false;
  }

  async function signIn() {
    const verifier = random(), state = random(), nonce = random();
    const challenge = b64url(new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier))));
    localStorage.setItem(pendingKey(state), JSON.stringify({ verifier, nonce }));
    location.assign(url("/authorize", { response_type: "code", client_id: cfg.clientId, redirect_uri: redirectUri, scope: cfg.scope, state, nonce, code_challenge: challenge, code_challenge_method: "S256" }));
  }

  async function callback(query) {
    const pending = take(pendingKey(query.get("state")), localStorage);
    history.replaceState(null, "", "/demo/callback");
    if (query.get("error")) throw new Error("The OP answered " + query.get("error") + (query.get("error_description") ? ": " + query.get("error_description") : ""));
    if (!pending) {
      status("This browser's demo page did not start this request (its state is unknown here), so the page does not redeem the code. From the curl walkthrough? The code is " + query.get("code"), true);
      return;
    }
    // RFC 9207: the answer must come from the issuer the request went to.
    if (query.get("iss") !== cfg.issuer) throw new Error("iss " + query.get("iss") + " is not " + cfg.issuer);
    const tokens = await token({ grant_type: "authorization_code", code: query.get("code"), redirect_uri: redirectUri, code_verifier: pending.verifier });
    if (payload(tokens.id_token).nonce !== pending.nonce) throw new Error("the ID token's nonce is not the one this page sent");
    await show({ ...tokens, received_at: new Date().toISOString() });
  }

  async function refresh() {
    const old = JSON.parse(store.getItem("demo.tokens"));
    // Rotation: the refresh token is single-use, so never send it twice.
    $("refresh").disabled = true;
    try {
      const fresh = await token({ grant_type: "refresh_token", refresh_token: old.refresh_token });
      await show({ ...old, ...fresh, received_at: new Date().toISOString() });
      status("Tokens refreshed: a new access token, ID token and refresh token.");
    } finally {
      $("refresh").disabled = false;
    }
  }

  function signOut() {
    const tokens = take("demo.tokens");
    const state = random();
    store.setItem("demo.logout", JSON.stringify(state));
    location.assign(url("/logout", { client_id: cfg.clientId, id_token_hint: tokens.id_token, post_logout_redirect_uri: cfg.issuer + "/demo", state }));
  }

  const run = (fn) => () => fn().catch((error) => status(error.message, true));
  $("sign-in").onclick = run(signIn);
  $("refresh").onclick = run(refresh);
  $("sign-out").onclick = run(async () => signOut());
  const query = new URLSearchParams(location.search);
  if (location.pathname === "/demo/callback" && query.size > 0) return run(() => callback(query))();
  const loggedOut = take("demo.logout");
  if (loggedOut !== null) {
    history.replaceState(null, "", "/demo");
    status(query.get("state") === loggedOut ? "You are signed out (RP-initiated logout, back at the demo)." : "Signed out, but the state that came back is not the one sent.", query.get("state") !== loggedOut);
  }
  const kept = store.getItem("demo.tokens");
  if (kept !== null) run(() => show(JSON.parse(kept)))();
})();
`;

/** A short fingerprint of the script, so its URL changes with it and it can be cached for a year. */
export const DEMO_SCRIPT_VERSION = (() => {
  let h = 0x811c9dc5;
  for (let i = 0; i < DEMO_SCRIPT.length; i++) h = Math.imul(h ^ DEMO_SCRIPT.charCodeAt(i), 0x01000193);
  return (h >>> 0).toString(36);
})();
