/**
 * The identifier shapes of the OP, written once. Anything that does not match is not one of ours and never reaches
 * a lookup or an object (hostile input stays outside).
 */

/** Opaque identifiers we mint (user ids, grant ids): 8 to 128 base64url characters. */
export const OPAQUE_ID_PATTERN = "[A-Za-z0-9_-]{8,128}";
const OPAQUE_ID = new RegExp(`^${OPAQUE_ID_PATTERN}$`);

export function isOpaqueId(value: unknown): value is string {
  return typeof value === "string" && OPAQUE_ID.test(value);
}

/** Client ids: random ones we mint, or one an admin chose (RFC 3986 unreserved characters, 1 to 128). */
const CLIENT_ID = /^[A-Za-z0-9._~-]{1,128}$/;

export function isClientId(value: unknown): value is string {
  return typeof value === "string" && CLIENT_ID.test(value);
}

/** RFC 9126 §2.2: the request_uri of a pushed request is `urn:ietf:params:oauth:request_uri:<reference>`. */
export const PAR_URN_PREFIX = "urn:ietf:params:oauth:request_uri:";
