import type { Client } from "../db/clients";

/**
 * The rules of the one-time session token (C8), for apps whose browser blocks third-party cookies: the OP, reached
 * first-party, hands the signed-in browser a short-lived single-use token bound to one client; the app's backend
 * redeems it once, with client authentication, and learns the session. No I/O here. See docs/session-token.md.
 */

/**
 * The origins that may obtain a token for `client` with a credentialed CORS request: the origins of its registered
 * redirect URIs (http and https only; private-use schemes have no web origin). The client already said these origins
 * are its own when it registered them; nothing else is trusted, and nothing is registered twice.
 */
export function registeredOrigins(client: Pick<Client, "redirect_uris">): string[] {
  const origins = new Set<string>();
  for (const uri of client.redirect_uris) {
    try {
      const url = new URL(uri);
      if (url.protocol === "https:" || url.protocol === "http:") origins.add(url.origin);
    } catch {
      // registered URIs are absolute (client-metadata.ts); nothing to add
    }
  }
  return [...origins];
}

/** Only a client that can authenticate can redeem: a public client's client_id proves nothing. */
export function canRedeemSessionTokens(client: Pick<Client, "token_endpoint_auth_method">): boolean {
  return client.token_endpoint_auth_method !== "none";
}

/** What the app's backend learns, once (OIDC Core §2 claim names). */
export interface SessionTokenAnswer {
  iss: string;
  client_id: string;
  sub: string;
  sid: string;
  auth_time: number;
  amr: string[];
  acr?: string;
}

export function sessionTokenAnswer(
  issuer: string,
  clientId: string,
  session: { userId: string; sid: string; authTime: number; amr: string[]; acr: string | null },
): SessionTokenAnswer {
  const answer: SessionTokenAnswer = { iss: issuer, client_id: clientId, sub: session.userId, sid: session.sid, auth_time: session.authTime, amr: session.amr };
  if (session.acr !== null) answer.acr = session.acr;
  return answer;
}
