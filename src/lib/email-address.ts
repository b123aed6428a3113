/**
 * A practical address check, not a full RFC 5322 parser: an unquoted dot-atom local part (no leading, trailing or
 * double dots) of at most 64 characters, at a domain name with at least one dot. `%` is refused although RFC 5322
 * allows it: it only ever serves source routing through relays (the "percent hack", RFC 1123 §5.2.16).
 */
const LOCAL_PART = /^[A-Za-z0-9!#$&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$&'*+/=?^_`{|}~-]+)*$/;
const DOMAIN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$/;

export function isEmailAddress(value: string): boolean {
  if (value.length > 254) return false;
  const at = value.lastIndexOf("@");
  if (at <= 0) return false;
  const local = value.slice(0, at);
  return local.length <= 64 && LOCAL_PART.test(local) && DOMAIN.test(value.slice(at + 1));
}
