import { OAuthError } from "../errors";

/** OIDC Core §6: request objects are not supported (yet); RFC 9126 pushed requests are not offered. */
export function checkNoRequestObject(params: Record<string, string>): void {
  if (params.request !== undefined) throw new OAuthError("request_not_supported", "request objects are not supported");
  if (params.request_uri !== undefined) throw new OAuthError("request_uri_not_supported", "request_uri is not supported");
}
