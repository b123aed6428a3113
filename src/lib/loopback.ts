/**
 * The one loopback rule (RFC 8252 §7.3, §8.3): `localhost`, `127.0.0.1` and `[::1]`. Where plain http is allowed
 * (redirect URIs, client key sets, the local issuer), it is allowed on exactly these hosts.
 */

const LOOPBACK_HOSTNAMES: ReadonlySet<string> = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** `hostname` as the URL parser gives it (IPv6 in brackets). */
export function isLoopbackHostname(hostname: string): boolean {
  return LOOPBACK_HOSTNAMES.has(hostname.toLowerCase());
}

/** An absolute http(s) URL on a loopback host. */
export function isLoopbackUrl(value: string | URL): boolean {
  let url: URL;
  try {
    url = typeof value === "string" ? new URL(value) : value;
  } catch {
    return false;
  }
  return (url.protocol === "http:" || url.protocol === "https:") && isLoopbackHostname(url.hostname);
}
