import { FAVICON_ICO_BASE64 } from "../ui/favicon";
import { staticResponse } from "./support/respond";

/** GET /favicon.ico: the icon every browser asks for, cached for a day. */

let bytes: Uint8Array | null = null;

export function favicon(): Response {
  bytes ??= Uint8Array.from(atob(FAVICON_ICO_BASE64), (c) => c.charCodeAt(0));
  return staticResponse(bytes, "image/x-icon", 86400);
}
