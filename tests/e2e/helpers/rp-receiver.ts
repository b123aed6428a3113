import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

/**
 * Relying parties' back-channel logout endpoints on loopback (OIDC Back-Channel Logout 1.0 §2.5), as a real HTTP
 * server in Node: each RP is a name, `POST /rp/<name>` is its `backchannel_logout_uri`. It records every request (the
 * raw body, the content type, the `logout_token`) and answers as scripted: a list of statuses used one per request
 * (then 200), and optionally holding requests unanswered until released (a slow or hung RP).
 *
 * The e2e tests use it in-process (`RpReceiver.start()`); the workerd tests reach it over HTTP through its control
 * API (started by tests/e2e/helpers/rp-receiver-setup.ts, driven by tests/helpers/rp.ts):
 *   PUT  /control/<name>          {"statuses": [500, 500, 500], "hold": false}  — the script of that RP
 *   GET  /control/<name>          {"received": [...], "held": n}
 *   POST /control/<name>/release  answers the held requests (by the script)
 */

export interface ReceivedLogout {
  /** The `logout_token` form field, or null when the body had none. */
  logoutToken: string | null;
  contentType: string | null;
  method: string;
  body: string;
  /** The status this request was answered with; null while it is held (or when the connection went away first). */
  answered: number | null;
}

interface Script {
  statuses: number[];
  hold: boolean;
}

interface Rp {
  script: Script;
  received: ReceivedLogout[];
  held: Array<() => void>;
}

function readBody(request: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
    request.on("error", reject);
  });
}

function json(response: ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  response.end(JSON.stringify(body));
}

export class RpReceiver {
  private readonly rps = new Map<string, Rp>();

  private constructor(
    private readonly server: Server,
    readonly url: string,
  ) {}

  static async start(): Promise<RpReceiver> {
    let receiver: RpReceiver | null = null;
    const server = createServer((request, response) => {
      receiver!.handle(request, response).catch(() => {
        if (!response.headersSent) json(response, 500, { error: "receiver failed" });
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
    const address = server.address();
    const port = typeof address === "object" && address !== null ? address.port : 0;
    receiver = new RpReceiver(server, `http://127.0.0.1:${port}`);
    return receiver;
  }

  /** The back-channel logout URI of the RP `name`. */
  uri(name: string): string {
    return `${this.url}/rp/${encodeURIComponent(name)}`;
  }

  private rp(name: string): Rp {
    let rp = this.rps.get(name);
    if (!rp) {
      rp = { script: { statuses: [], hold: false }, received: [], held: [] };
      this.rps.set(name, rp);
    }
    return rp;
  }

  /** How the RP `name` answers from now on. */
  script(name: string, script: Partial<Script>): void {
    const rp = this.rp(name);
    rp.script = { statuses: [...(script.statuses ?? [])], hold: script.hold ?? false };
  }

  received(name: string): ReceivedLogout[] {
    return this.rp(name).received.map((r) => ({ ...r }));
  }

  /** Requests answered 200 or 204: the deliveries that count. */
  delivered(name: string): ReceivedLogout[] {
    return this.received(name).filter((r) => r.answered === 200 || r.answered === 204);
  }

  heldCount(name: string): number {
    return this.rp(name).held.length;
  }

  /** Answers every held request of `name` (by its script) and stops holding new ones. */
  release(name: string): void {
    const rp = this.rp(name);
    rp.script.hold = false;
    for (const answer of rp.held.splice(0)) answer();
  }

  private async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    const url = new URL(request.url ?? "/", this.url);
    const [, kind, rawName, action] = url.pathname.split("/");
    const name = decodeURIComponent(rawName ?? "");
    if (kind === "rp" && name !== "") {
      const rp = this.rp(name);
      const body = await readBody(request);
      const record: ReceivedLogout = {
        logoutToken: new URLSearchParams(body).get("logout_token"),
        contentType: request.headers["content-type"] ?? null,
        method: request.method ?? "",
        body,
        answered: null,
      };
      rp.received.push(record);
      const answer = () => {
        const status = rp.script.statuses.shift() ?? 200;
        record.answered = status;
        response.writeHead(status, { "cache-control": "no-store" });
        response.end();
      };
      if (rp.script.hold) rp.held.push(answer);
      else answer();
      return;
    }
    if (kind === "control" && name !== "") {
      if (request.method === "PUT" && action === undefined) {
        this.script(name, JSON.parse((await readBody(request)) || "{}") as Partial<Script>);
        return json(response, 200, { ok: true });
      }
      if (request.method === "GET" && action === undefined) return json(response, 200, { received: this.received(name), held: this.heldCount(name) });
      if (request.method === "POST" && action === "release") {
        this.release(name);
        return json(response, 200, { ok: true });
      }
    }
    json(response, 404, { error: "not found" });
  }

  async stop(): Promise<void> {
    for (const rp of this.rps.values()) for (const answer of rp.held.splice(0)) answer();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
