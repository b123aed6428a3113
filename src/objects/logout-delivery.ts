import type { Config } from "../config";
import { getClient } from "../db/clients";
import type { Env } from "../env";
import { errorText } from "../lib/log";
import { isLoopbackHostname } from "../lib/loopback";
import { mintLogoutToken } from "../oauth/tokens";
import { currentSigningKey } from "./key-cache";

/**
 * One attempt at OIDC Back-Channel Logout 1.0 §2.5: a Logout Token POSTed as `logout_token` to the client's
 * `backchannel_logout_uri`. Run by the alarm of the user's session object (never on the user's request), so a slow
 * or dead RP never delays a logout. Everything is decided now, not when the session ended: the client's metadata is
 * read from D1 at this attempt (C5: a URI changed or removed since is in force), and the token is minted and signed
 * with the current key at this attempt, so a retry hours later carries a fresh `iat`/`exp` and a key still published.
 */

/** A Logout Token is used at once by the RP; two minutes covers clock skew and nothing else. */
const LOGOUT_TOKEN_TTL = 120;

export interface LogoutNoticeFacts {
  clientId: string;
  userId: string;
  sid: string;
  /** The issuer the client knows us by (recorded with the session's client); null: the configured ISSUER. */
  issuer: string | null;
}

export type LogoutDelivery =
  /** The RP answered 200 (or 204, §2.8). */
  | { status: "delivered"; httpStatus: number }
  /** Nothing to send: the client is gone or has no back-channel logout URI now. */
  | { status: "skipped"; reason: string }
  /** Try again later: the RP failed, timed out or is unreachable, or D1 or the key manager could not answer. */
  | { status: "failed"; error: string };

/** The URI if it is still one we may POST to (it was checked at registration; a stored value is re-checked anyway). */
function usableUri(value: string): URL | null {
  try {
    const url = new URL(value);
    const secure = url.protocol === "https:" || (url.protocol === "http:" && isLoopbackHostname(url.hostname));
    return secure && url.hash === "" && url.username === "" && url.password === "" ? url : null;
  } catch {
    return null;
  }
}

export async function deliverLogoutNotice(env: Env, config: Config, notice: LogoutNoticeFacts): Promise<LogoutDelivery> {
  let uri: URL;
  let token: string;
  try {
    const client = await getClient(env.DB, notice.clientId);
    if (client === null) return { status: "skipped", reason: "the client is no longer registered" };
    if (client.backchannel_logout_uri === null) return { status: "skipped", reason: "the client has no backchannel_logout_uri" };
    const parsed = usableUri(client.backchannel_logout_uri);
    if (parsed === null) return { status: "skipped", reason: "the client's backchannel_logout_uri is not usable" };
    uri = parsed;
    const issuer = notice.issuer ?? config.issuer;
    if (issuer === "") return { status: "failed", error: "the issuer is unknown: set ISSUER" };
    const key = await currentSigningKey(env, client.id_token_signed_response_alg ?? config.defaultSigningAlg);
    token = await mintLogoutToken(key, { issuer, clientId: client.client_id, sub: notice.userId, sid: notice.sid, ttlSeconds: LOGOUT_TOKEN_TTL });
  } catch (error) {
    return { status: "failed", error: errorText(error) };
  }
  const timeout = config.backchannelLogoutTimeout;
  try {
    const response = await fetch(uri, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams({ logout_token: token }).toString(),
      // §2.5 gives the RP no way to send us elsewhere: a redirect is a failure, not a hop.
      redirect: "manual",
      signal: AbortSignal.timeout(timeout * 1000),
    });
    await response.body?.cancel();
    if (response.status === 200 || response.status === 204) return { status: "delivered", httpStatus: response.status };
    return { status: "failed", error: `the RP answered HTTP ${response.status}` };
  } catch (error) {
    if (error instanceof Error && (error.name === "TimeoutError" || error.name === "AbortError")) {
      return { status: "failed", error: `no answer within ${timeout} s` };
    }
    return { status: "failed", error: errorText(error) };
  }
}
