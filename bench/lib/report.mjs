// @ts-check
/** The table `npm run bench` prints (and the README shows), from the results it writes as JSON. */

/**
 * @param {number} n
 * @param {number} [digits]
 */
function num(n, digits = 0) {
  if (!Number.isFinite(n)) return "–";
  return n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

/** @param {number} ms */
function lat(ms) {
  if (!Number.isFinite(ms)) return "–";
  return ms < 10 ? ms.toFixed(1) : ms.toFixed(0);
}

/** @param {number} bytes */
export function mb(bytes) {
  return `${Math.round(bytes / 1048576)}`;
}

/**
 * @param {string[][]} rows first row is the header
 * @param {string[]} align "l" or "r" per column
 */
export function textTable(rows, align) {
  const widths = rows[0]?.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? "").length))) ?? [];
  const line = (/** @type {string[]} */ r) => r.map((cell, c) => (align[c] === "l" ? cell.padEnd(widths[c] ?? 0) : cell.padStart(widths[c] ?? 0))).join("  ");
  return [line(rows[0] ?? []), widths.map((w) => "─".repeat(w)).join("  "), ...rows.slice(1).map(line)].join("\n");
}

/**
 * @param {string[][]} rows
 */
export function markdownTable(rows) {
  const esc = (/** @type {string} */ s) => s.replace(/\|/g, "\\|");
  const [head = [], ...body] = rows;
  return [`| ${head.map(esc).join(" | ")} |`, `|${head.map(() => "---").join("|")}|`, ...body.map((r) => `| ${r.map(esc).join(" | ")} |`)].join("\n");
}

/**
 * @typedef {import("./load.mjs").RoundResult} RoundResult
 * @typedef {{ scenario: string, title: string, unit: string, connections: number, servers: Record<string, { best: RoundResult, rounds: RoundResult[] }> }} Cell
 */

/**
 * The rows of the throughput table.
 * @param {Cell[]} cells
 * @param {string[]} servers names, ours first
 */
export function throughputRows(cells, servers) {
  const [ours, ...peers] = servers;
  const header = [
    "scenario",
    "conns",
    ...servers.map((s) => `${s} ops/s`),
    ...peers.map((p) => `ours/${p.replace(/^peer-/, "")}`),
    ...servers.map((s) => `${s} p50/p95/p99 ms`),
    ...servers.map((s) => `${s} CPU ms/op`),
    "failed ops",
  ];
  const rows = [header];
  for (const cell of cells) {
    const best = (/** @type {string} */ s) => cell.servers[s]?.best;
    const oursRate = best(ours ?? "")?.opsPerSec ?? NaN;
    rows.push([
      cell.title,
      String(cell.connections),
      ...servers.map((s) => num(best(s)?.opsPerSec ?? NaN)),
      ...peers.map((p) => {
        const r = oursRate / (best(p)?.opsPerSec ?? NaN);
        return Number.isFinite(r) ? `${r.toFixed(r < 1 ? 2 : 1)}×` : "–";
      }),
      ...servers.map((s) => {
        const l = best(s)?.latency;
        return l ? `${lat(l.p50)}/${lat(l.p95)}/${lat(l.p99)}` : "–";
      }),
      ...servers.map((s) => num(best(s)?.cpuMsPerOp ?? NaN, 2)),
      servers
        .map((s) => {
          const r = best(s);
          return r && r.failed > 0 ? `${s}:${r.failed}` : "";
        })
        .filter((x) => x !== "")
        .join(" ") || "0",
    ]);
  }
  return rows;
}

/**
 * @param {Record<string, { idle: number, peak: number }>} memory
 */
export function memoryRows(memory) {
  return [["server", "RSS idle MB", "RSS peak MB"], ...Object.entries(memory).map(([name, m]) => [name, mb(m.idle), mb(m.peak)])];
}
