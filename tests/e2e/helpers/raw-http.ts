import { request } from "node:http";

/**
 * One HTTP/1.1 request exactly as given — path bytes, headers and body unchanged. fetch() would normalise the path
 * (`/../`), refuse some headers and follow its own rules; hostile-input tests need the raw request.
 */

export interface RawRequest {
  method: string;
  /** Sent as is: may hold `..`, bad percent-escapes, anything Node lets through. */
  path: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
}

export interface RawResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

export function rawRequest(origin: string, req: RawRequest, timeoutMs = 30_000): Promise<RawResponse> {
  const url = new URL(origin);
  return new Promise((resolve, reject) => {
    const body = req.body === undefined ? undefined : Buffer.isBuffer(req.body) ? req.body : Buffer.from(req.body, "utf8");
    const headers: Record<string, string> = { ...req.headers };
    const framed = Object.keys(headers).some((h) => ["content-length", "transfer-encoding"].includes(h.toLowerCase()));
    if (body !== undefined && !framed) headers["content-length"] = String(body.length);
    const outgoing = request(
      { host: url.hostname, port: url.port, method: req.method, path: req.path, headers, agent: false, timeout: timeoutMs },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, headers: response.headers, body: Buffer.concat(chunks).toString("utf8") }));
        response.on("error", reject);
      },
    );
    outgoing.on("timeout", () => outgoing.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    outgoing.on("error", reject);
    outgoing.end(body);
  });
}
