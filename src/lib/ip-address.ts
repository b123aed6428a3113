/**
 * IP addresses as text: the one parser, and the bucket a rate limit counts an address in. Pure, no I/O.
 *
 * An IPv4 address is its own bucket. An IPv6 address counts by its /64: that is the smallest prefix a subscriber or a
 * link is given (RFC 4291 §2.5.1, RFC 7421), so whoever holds one address of it can use all 2^64 of them. An
 * IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, RFC 4291 §2.5.5.2) is the IPv4 address it maps.
 */

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;
const HEXTET = /^[0-9a-fA-F]{1,4}$/;

/** The four octets of a dotted-quad IPv4 address, or null. */
function parseIpv4(text: string): number[] | null {
  const match = IPV4.exec(text);
  if (match === null) return null;
  const octets = match.slice(1).map(Number);
  return octets.every((o) => o <= 255) ? octets : null;
}

/** The eight 16-bit groups of an IPv6 address in RFC 4291 §2.2 text form (`::` and a trailing dotted quad allowed), or null. */
function parseIpv6(text: string): number[] | null {
  if (text.length > 45) return null;
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const groups = (part: string) => (part === "" ? [] : part.split(":"));
  const head = groups(halves[0]!);
  const tail = halves.length === 2 ? groups(halves[1]!) : [];
  const last = halves.length === 2 ? tail : head;
  // An embedded IPv4 address takes the place of the last two groups.
  if (last.length > 0 && last[last.length - 1]!.includes(".")) {
    const v4 = parseIpv4(last.pop()!);
    if (v4 === null) return null;
    last.push(((v4[0]! << 8) | v4[1]!).toString(16), ((v4[2]! << 8) | v4[3]!).toString(16));
  }
  if (![...head, ...tail].every((g) => HEXTET.test(g))) return null;
  const fill = 8 - head.length - tail.length;
  if (halves.length === 2 ? fill < 1 : fill !== 0) return null;
  return [...head, ...Array<string>(halves.length === 2 ? fill : 0).fill("0"), ...tail].map((g) => parseInt(g, 16));
}

/**
 * The rate-limit bucket of an address: `192.0.2.1` for IPv4, `2001:db8:1:2::/64` for IPv6 (lower case, no leading
 * zeros, so every spelling of one /64 is one bucket). Null when `text` is not an IP address.
 */
export function addressBucket(text: string): string | null {
  const v4 = parseIpv4(text);
  if (v4 !== null) return v4.join(".");
  const v6 = parseIpv6(text);
  if (v6 === null) return null;
  const mapped = v6.slice(0, 5).every((g) => g === 0) && v6[5] === 0xffff;
  if (mapped) return [v6[6]! >> 8, v6[6]! & 0xff, v6[7]! >> 8, v6[7]! & 0xff].join(".");
  return `${v6.slice(0, 4).map((g) => g.toString(16)).join(":")}::/64`;
}

/** Whether `text` is an IPv4 or IPv6 address in text form. */
export function isIpAddress(text: string): boolean {
  return parseIpv4(text) !== null || parseIpv6(text) !== null;
}
