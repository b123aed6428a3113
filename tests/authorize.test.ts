import { SELF, env } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { updateClient } from "../src/db/clients";
import { findUserByEmail } from "../src/db/users";
import { loadConfig } from "../src/config";
import { mintIdToken } from "../src/oauth/tokens";
import { FORM_POST_SCRIPT_HASH } from "../src/routes/respond";
import { currentSigningKey } from "../src/signing-keys";
import {
  Browser,
  ORIGIN,
  REDIRECT_URI,
  authorizeUrl,
  decide,
  followLocal,
  formFields,
  makeClient,
  pkcePair,
  redeem,
  responseParams,
  signIn,
  uniqueEmail,
} from "./helpers/front-channel";

afterEach(() => vi.useRealTimers());

/** Every single-use value (interactions, links) held across all challenge shards: "no state change" is this not moving. */
async function challengesHeld(): Promise<number> {
  let total = 0;
  for (let shard = 0; shard < loadConfig(env).shardCount; shard++) {
    total += await env.CHALLENGES.get(env.CHALLENGES.idFromName(`challenges:${shard}`)).size();
  }
  return total;
}

async function authorizeParams(clientId: string, extra: Record<string, string> = {}) {
  const { verifier, challenge } = await pkcePair();
  return {
    verifier,
    params: {
      response_type: "code",
      client_id: clientId,
      redirect_uri: REDIRECT_URI,
      scope: "openid email",
      state: `st-${crypto.randomUUID()}`,
      nonce: `n-${crypto.randomUUID()}`,
      code_challenge: challenge,
      code_challenge_method: "S256",
      ...extra,
    },
  };
}

/** Signs a browser in and consents once for the client, returning the signed-in user's id. */
async function signedInBrowser(clientId: string, email = uniqueEmail()): Promise<{ browser: Browser; userId: string; email: string }> {
  const browser = new Browser();
  const { params } = await authorizeParams(clientId);
  const start = await browser.get(authorizeUrl(params));
  const afterLink = await signIn(browser, start.headers.get("location")!, email);
  const consent = await followLocal(browser, afterLink);
  const done = await decide(browser, consent, "allow");
  expect(responseParams(done).params.get("code")).toBeTruthy();
  return { browser, userId: (await findUserByEmail(env.DB, email))!.id, email };
}

describe("authorization code flow through the email link and consent", () => {
  it("ends in a code that is redeemable with PKCE, with state, iss and the request's parameters", async () => {
    const client = await makeClient({ scope: "openid email" });
    const browser = new Browser();
    const claims = JSON.stringify({ userinfo: { email: { essential: true } } });
    const { verifier, params } = await authorizeParams(client.client_id, { scope: "openid email profile bogus", claims, acr_values: "urn:x:gold", ui_locales: "fr", foo: "ignored" });

    const start = await browser.get(authorizeUrl(params));
    expect(start.status).toBe(303);
    expect(start.headers.get("location")).toMatch(/^\/login\?interaction=/);

    const email = uniqueEmail();
    const afterLink = await signIn(browser, start.headers.get("location")!, email);
    expect(afterLink.status).toBe(303);
    expect(afterLink.headers.get("location")).toMatch(/^\/authorize\/resume\?interaction=/);
    expect(afterLink.headers.get("set-cookie")).toMatch(/^oidc_session=/);

    const consent = await followLocal(browser, afterLink);
    const html = await consent.clone().text();
    expect(html).toContain("Front Channel Test App");
    expect(html).toContain("(email)");
    expect(html).not.toContain("(profile)"); // not registered for the client: dropped
    const done = await decide(browser, consent, "allow");

    const { base, params: answer } = responseParams(done);
    expect(base).toBe(REDIRECT_URI);
    expect(answer.get("state")).toBe(params.state);
    expect(answer.get("iss")).toBe(ORIGIN);
    const grant = await redeem(answer.get("code")!, client.client_id, verifier);
    const user = await findUserByEmail(env.DB, email);
    expect(grant).toMatchObject({
      clientId: client.client_id,
      redirectUri: REDIRECT_URI,
      sub: user!.id,
      scope: "openid email",
      nonce: params.nonce,
      amr: ["email"],
      acr: null,
      claims,
    });
    expect(grant.sid).toMatch(/^[A-Za-z0-9_-]{16,}$/);
    expect(Math.abs(grant.authTime - Date.now() / 1000)).toBeLessThan(60);
  });

  it("POST /authorize works like GET", async () => {
    const client = await makeClient();
    const { params } = await authorizeParams(client.client_id);
    const response = await new Browser().post("/authorize", params);
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toMatch(/^\/login\?interaction=/);
  });
});
