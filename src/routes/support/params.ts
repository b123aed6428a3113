import { OAuthError, invalidRequest } from "../../oauth/errors";

/** Request bodies larger than this are refused before parsing (hostile input never reaches a handler whole). */
export const MAX_FORM_BYTES = 64 * 1024;
export const MAX_JSON_BYTES = 64 * 1024;

/** The media type of the request body, lower-cased, without parameters ("" when none). */
export function mediaTypeOf(request: Request): string {
  return (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
}

function tooLarge(): OAuthError {
  return new OAuthError("invalid_request", "the request body is too large", { status: 413 });
}

/**
 * Reads OAuth parameters: the query for GET, the form body for POST (application/x-www-form-urlencoded only).
 * RFC 6749 §3.1: a parameter sent more than once is an invalid_request; empty values count as absent.
 */
export async function readParams(request: Request, source: "query" | "body" | "either" = "either"): Promise<Record<string, string>> {
  const useBody = source === "body" || (source === "either" && request.method === "POST");
  let search: URLSearchParams;
  if (useBody) {
    if (mediaTypeOf(request) !== "application/x-www-form-urlencoded") {
      throw invalidRequest("the request body must be application/x-www-form-urlencoded");
    }
    if (Number(request.headers.get("content-length") ?? "0") > MAX_FORM_BYTES) throw tooLarge();
    search = new URLSearchParams(await readTextLimited(request, MAX_FORM_BYTES));
  } else {
    search = new URL(request.url).searchParams;
  }
  const params: Record<string, string> = {};
  for (const [key, value] of search) {
    if (value === "") continue;
    if (Object.hasOwn(params, key)) throw invalidRequest(`parameter ${key.slice(0, 40)} is included more than once`);
    params[key] = value;
  }
  return params;
}

/** A JSON object body (the admin API): application/json, size-limited, an object at the top. */
export async function readJsonObject(request: Request): Promise<Record<string, unknown>> {
  if (mediaTypeOf(request) !== "application/json") throw invalidRequest("the request body must be application/json");
  if (Number(request.headers.get("content-length") ?? "0") > MAX_JSON_BYTES) throw tooLarge();
  const text = await readTextLimited(request, MAX_JSON_BYTES);
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw invalidRequest("the request body is not valid JSON");
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw new OAuthError("invalid_client_metadata", "the request body must be a JSON object");
  return body as Record<string, unknown>;
}

/**
 * The body (of a request, or of a response the OP fetched) as UTF-8 text, refused with 413 once it passes `limit`
 * bytes, whatever Content-Length claimed (chunked bodies too).
 */
export async function readTextLimited(message: { body: ReadableStream<Uint8Array> | null }, limit: number): Promise<string> {
  if (!message.body) return "";
  const reader = message.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw tooLarge();
    }
    chunks.push(value);
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.byteLength;
  }
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(all);
  } catch {
    throw invalidRequest("the request body is not valid UTF-8");
  }
}

/**
 * The query of an admin API listing: only the parameters named (a typo must not look like "no filter"), each at most
 * once; empty values count as absent.
 */
export function readQuery(request: Request, allowed: readonly string[]): Record<string, string> {
  const params: Record<string, string> = {};
  for (const [key, value] of new URL(request.url).searchParams) {
    if (!allowed.includes(key)) throw invalidRequest(`${key.slice(0, 40)}: is not a parameter here (parameters: ${allowed.join(", ")})`);
    if (Object.hasOwn(params, key)) throw invalidRequest(`parameter ${key.slice(0, 40)} is included more than once`);
    if (value !== "") params[key] = value;
  }
  return params;
}
