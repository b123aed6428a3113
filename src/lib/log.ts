/**
 * The one structured log helper: one JSON line per event, `{"level", "event", ...fields}`. Errors go in through
 * `errorText`, which keeps only the error's name and the first line of its message — D1 errors list the query's
 * parameters (emails, ids) after the first line, and nothing else of an error is ever logged.
 */

export type LogLevel = "info" | "warn" | "error";
export type LogFields = Record<string, unknown>;

/** The safe text of an error: its name and the first line of its message, at most 200 characters. */
export function errorText(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message.split("\n")[0]!.slice(0, 200)}` : "unknown";
}

export function log(level: LogLevel, event: string, fields: LogFields = {}): void {
  const line = JSON.stringify({ level, event, ...fields });
  if (level === "error") console.error(line);
  else if (level === "warn") console.warn(line);
  else console.log(line);
}
