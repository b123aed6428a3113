import { SELF, env } from "cloudflare:test";
import { drizzle } from "drizzle-orm/d1";
import { eq } from "drizzle-orm";
import type { ClientFields, StoredClient } from "../../src/db/clients";
import { users } from "../../src/db/schema";
import { ensureUserForVerifiedEmail, type User } from "../../src/db/users";
import type { AuthorizationCodeGrant } from "../../src/objects/auth-codes";
import { authCodeStoreFor, newAuthCodeId } from "../../src/objects/locate";
import { hashClientSecret } from "../../src/oauth/client-auth";
import { randomToken } from "../../src/lib/crypto";
import { s256Challenge } from "../../src/lib/pkce";
import { verifyWithPublishedKeys } from "../../src/objects/key-cache";
import { registerClient } from "./clients";

/** Shared by the back-channel tests: clients, users and codes made directly (the /authorize flow is tested elsewhere). */

export const ISSUER = "http://localhost";
export const REDIRECT_URI = "https://rp.example/callback";

export interface TestClient {
  client: StoredClient;
  clientId: string;
  secret: string | null;
}

export async function makeClient(fields: Partial<ClientFields> = {}): Promise<TestClient> {
  const method = fields.token_endpoint_auth_method ?? "client_secret_basic";
  const secret = method === "client_secret_basic" || method === "client_secret_post" ? randomToken(32) : null;
  const client = await registerClient(fields, secret === null ? null : await hashClientSecret(secret));
  const clientId = client.client_id;
  return { client, clientId, secret };
}

export async function makeUser(profile: Partial<typeof users.$inferInsert> = {}): Promise<User> {
  const user = await ensureUserForVerifiedEmail(env.DB, `u-${randomToken(6)}@example.com`, randomToken(12));
  if (Object.keys(profile).length === 0) return user;
  const orm = drizzle(env.DB);
  await orm.update(users).set(profile).where(eq(users.id, user.id)).run();
  return (await orm.select().from(users).where(eq(users.id, user.id)).get())!;
}

export interface TestCode {
  code: string;
  verifier: string;
  grant: AuthorizationCodeGrant;
}

/** Stores an authorization code as /authorize would, with a PKCE S256 challenge. */
export async function makeCode(clientId: string, sub: string, overrides: Partial<AuthorizationCodeGrant> = {}, ttlSeconds = 60): Promise<TestCode> {
  const verifier = randomToken(32);
  const grant: AuthorizationCodeGrant = {
    clientId,
    redirectUri: REDIRECT_URI,
    sub,
    scope: "openid profile email offline_access",
    codeChallenge: await s256Challenge(verifier),
    nonce: "n-0S6_WzA2Mj",
    sid: null,
    authTime: Math.floor(Date.now() / 1000) - 5,
    amr: ["email"],
    acr: null,
    claims: null,
    dpopJkt: null,
    ...overrides,
  };
  const code = newAuthCodeId(env);
  const { stored } = await authCodeStoreFor(env, code)!.put(code, grant, ttlSeconds);
  if (!stored) throw new Error("code not stored");
  return { code, verifier, grant };
}

export function basic(clientId: string, secret: string): string {
  const enc = (s: string) => encodeURIComponent(s).replace(/%20/g, "+");
  return `Basic ${btoa(`${enc(clientId)}:${enc(secret)}`)}`;
}

/** Authentication for a test client by its registered method (basic or post); public clients send client_id. */
export function credentials(c: TestClient): { headers: Record<string, string>; params: Record<string, string> } {
  switch (c.client.token_endpoint_auth_method) {
    case "client_secret_basic":
      return { headers: { authorization: basic(c.clientId, c.secret!) }, params: {} };
    case "client_secret_post":
      return { headers: {}, params: { client_id: c.clientId, client_secret: c.secret! } };
    default:
      return { headers: {}, params: { client_id: c.clientId } };
  }
}

export function post(path: string, params: Record<string, string>, headers: Record<string, string> = {}): Promise<Response> {
  return SELF.fetch(`${ISSUER}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(params).toString(),
  });
}

/** A request to a back-channel endpoint authenticated as `c`. */
export function postAs(c: TestClient, path: string, params: Record<string, string>): Promise<Response> {
  const auth = credentials(c);
  return post(path, { ...auth.params, ...params }, auth.headers);
}

export interface Tokens {
  access_token: string;
  token_type: string;
  expires_in: number;
  scope?: string;
  id_token?: string;
  refresh_token?: string;
}

export async function redeem(c: TestClient, code: TestCode): Promise<Tokens> {
  const response = await postAs(c, "/token", {
    grant_type: "authorization_code",
    code: code.code,
    redirect_uri: REDIRECT_URI,
    code_verifier: code.verifier,
  });
  if (response.status !== 200) throw new Error(`token: ${response.status} ${await response.text()}`);
  return response.json<Tokens>();
}

export function userinfoWith(accessToken: string): Promise<Response> {
  return SELF.fetch(`${ISSUER}/userinfo`, { headers: { authorization: `Bearer ${accessToken}` } });
}

export async function verifyIdToken(idToken: string, clientId: string) {
  const { payload, protectedHeader } = await verifyWithPublishedKeys(env, idToken, { issuer: ISSUER, audience: clientId, typ: "JWT" });
  return { payload, header: protectedHeader };
}

export async function errorOf(response: Response): Promise<{ status: number; error: string }> {
  const body = await response.json<{ error: string }>();
  return { status: response.status, error: body.error };
}
