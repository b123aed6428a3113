import { PAR_URN_PREFIX } from "../../lib/ids";
import { OAuthError, invalidRequest } from "../errors";

/**
 * The three forms an authorization request takes (OIDC Core §6, RFC 9101 §5, RFC 9126 §4): its parameters as they
 * are, a request object by value (`request`), or a reference to a pushed request (`request_uri`). Only the references
 * /par hands out are taken: `request_uri_parameter_supported` is false, and no URL is ever fetched.
 */
export type RequestForm = { form: "plain" } | { form: "object"; jwt: string } | { form: "pushed"; requestUri: string };

/** Which form the parameters take at `endpoint`; throws what cannot be. */
export function requestForm(params: Record<string, string>, endpoint: "authorize" | "par"): RequestForm {
  const { request, request_uri: requestUri } = params;
  if (request !== undefined && requestUri !== undefined) throw invalidRequest("request and request_uri must not both be sent");
  if (requestUri !== undefined) {
    // RFC 9126 §2.1: a pushed request cannot refer to another.
    if (endpoint === "par") throw invalidRequest("request_uri must not be sent to the pushed authorization request endpoint");
    if (!requestUri.startsWith(PAR_URN_PREFIX)) {
      throw new OAuthError("request_uri_not_supported", "only request_uri values from the pushed authorization request endpoint are accepted");
    }
    return { form: "pushed", requestUri };
  }
  if (request !== undefined) return { form: "object", jwt: request };
  return { form: "plain" };
}
