import { z } from "zod";
import { OAuthError, invalidRequest } from "../oauth/errors";

/** Request bodies larger than this are refused before parsing (hostile input never reaches a handler whole). */
export const MAX_FORM_BYTES = 64 * 1024;

/**
 * Reads OAuth parameters: the query for GET, the form body for POST (application/x-www-form-urlencoded only).
 * RFC 6749 §3.1: a parameter sent more than once is an invalid_request; empty values count as absent.
 */
export async function readParams(request: Request, source: "query" | "body" | "either" = "either"): Promise<Record<string, string>> {
  const useBody = source === "body" || (source === "either" && request.method === "POST");
  let search: URLSearchParams;
  if (useBody) {
    const type = (request.headers.get("content-type") ?? "").split(";")[0]!.trim().toLowerCase();
    if (type !== "application/x-www-form-urlencoded") {
      throw invalidRequest("the request body must be application/x-www-form-urlencoded");
    }
    const declared = Number(request.headers.get("content-length") ?? "0");
    if (declared > MAX_FORM_BYTES) throw new OAuthError("invalid_request", "the request body is too large", { status: 413 });
    const text = await readTextLimited(request, MAX_FORM_BYTES);
    search = new URLSearchParams(text);
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

/** The body as UTF-8 text, refused with 413 once it passes `limit` bytes, whatever Content-Length claimed (chunked bodies too). */
export async function readTextLimited(request: Request, limit: number): Promise<string> {
  if (!request.body) return "";
  const reader = request.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > limit) {
      await reader.cancel();
      throw new OAuthError("invalid_request", "the request body is too large", { status: 413 });
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

/** Validates parameters against an endpoint's schema; the first problem becomes an invalid_request naming the parameter. */
export function parseWith<S extends z.ZodType>(schema: S, params: Record<string, string>, code: "invalid_request" | "invalid_client" = "invalid_request"): z.infer<S> {
  const result = schema.safeParse(params);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const name = issue.path.map(String).join(".") || "request";
    throw new OAuthError(code, `${name}: ${issue.message}`.slice(0, 200));
  }
  return result.data;
}

/** A bounded string parameter: every OAuth parameter has a sane maximum length. */
export const param = (max = 2048) => z.string().max(max);
