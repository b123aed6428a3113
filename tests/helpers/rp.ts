import { SELF } from "cloudflare:test";
import { createLocalJWKSet, jwtVerify, type JSONWebKeySet, type JWTPayload, type JWTHeaderParameters } from "jose";
import { inject } from "vitest";

/**
 * A relying party's back-channel logout endpoint, for tests on workerd: a name on the loopback RP receiver that runs in
 * Node (tests/e2e/helpers/rp-receiver.ts, started by the vitest globalSetup). The Worker POSTs to it over real HTTP;
 * the test scripts its answers and reads what it got through the receiver's control API.
 */

export interface Received {
  logoutToken: string | null;
  contentType: string | null;
  method: string;
  body: string;
  /** The status it was answered with; null while held. */
  answered: number | null;
}

export class TestRp {
  readonly name = `rp-${crypto.randomUUID()}`;
  private readonly base = inject("rpReceiver");

  /** Its backchannel_logout_uri. */
  get uri(): string {
    return `${this.base}/rp/${this.name}`;
  }

  private async control(method: string, suffix = "", body?: unknown): Promise<Response> {
    const response = await fetch(`${this.base}/control/${this.name}${suffix}`, {
      method,
      headers: body === undefined ? {} : { "content-type": "application/json" },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (response.status !== 200) throw new Error(`RP receiver control ${method} ${suffix}: ${response.status}`);
    return response;
  }

  /** How it answers from now on: `statuses` one per request (then 200); `hold` keeps requests unanswered until `release`. */
  async script(script: { statuses?: number[]; hold?: boolean }): Promise<void> {
    await (await this.control("PUT", "", script)).arrayBuffer();
  }

  async state(): Promise<{ received: Received[]; held: number }> {
    return (await this.control("GET")).json();
  }

  async received(): Promise<Received[]> {
    return (await this.state()).received;
  }

  /** The requests it answered 200 or 204: the deliveries that count. */
  async delivered(): Promise<Received[]> {
    return (await this.received()).filter((r) => r.answered === 200 || r.answered === 204);
  }

  async release(): Promise<void> {
    await (await this.control("POST", "/release")).arrayBuffer();
  }
}

/** The OP's published keys, as an RP would fetch them from jwks_uri. */
export async function publishedKeys(issuer = "http://localhost"): Promise<JSONWebKeySet> {
  return (await SELF.fetch(`${issuer}/jwks.json`)).json();
}

/**
 * Validates a Logout Token the way OIDC Back-Channel Logout 1.0 §2.6 tells an RP to, with jose: signature against the
 * OP's JWKS, `typ` logout+jwt, iss, aud, iat and exp, the event, sub and sid, and no nonce. Throws on any breach.
 */
export async function validateLogoutToken(
  token: string,
  expected: { issuer?: string; clientId: string; sub: string; sid: string },
): Promise<{ payload: JWTPayload & Record<string, unknown>; header: JWTHeaderParameters }> {
  const issuer = expected.issuer ?? "http://localhost";
  const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet(await publishedKeys(issuer)), {
    issuer,
    audience: expected.clientId,
    typ: "logout+jwt",
    algorithms: ["RS256", "ES256"],
    requiredClaims: ["iat", "exp", "jti", "events", "sub", "sid"],
  });
  const events = payload.events as Record<string, unknown> | undefined;
  if (typeof events !== "object" || events === null || typeof events["http://schemas.openid.net/event/backchannel-logout"] !== "object") {
    throw new Error("no back-channel logout event");
  }
  if ("nonce" in payload) throw new Error("a Logout Token must not carry a nonce");
  if (payload.sub !== expected.sub || payload.sid !== expected.sid) throw new Error(`sub/sid: ${payload.sub} ${String(payload.sid)}`);
  if (typeof protectedHeader.kid !== "string") throw new Error("no kid");
  return { payload: payload as JWTPayload & Record<string, unknown>, header: protectedHeader };
}
