import * as z from "zod/mini";
import { OAuthError, type OAuthErrorCode } from "./errors";

/**
 * Input validation at the edge: one schema per endpoint, built from these pieces (zod/mini, which tree-shakes and
 * ships no locales). The first problem becomes one OAuth error naming the parameter.
 */

/** A bounded string parameter: every OAuth parameter has a sane maximum length. */
export const param = (max = 2048) => z.string().check(z.maxLength(max, `must be at most ${max} characters`));

/** A point in time: milliseconds since the epoch (as the audit log stores times), or an ISO 8601 date or date-time. */
export function parseInstant(value: string): number | null {
  if (/^[0-9]{1,15}$/.test(value)) return Number(value);
  if (!/^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?(?:Z|[+-]\d{2}:\d{2}))?$/.test(value)) return null;
  const ms = Date.parse(value.length === 10 ? `${value}T00:00:00Z` : value);
  return Number.isFinite(ms) ? ms : null;
}

export const instant = z.string().check(
  z.maxLength(40, "must be at most 40 characters"),
  z.refine((value) => parseInstant(value) !== null, "must be milliseconds since the epoch or an ISO 8601 date-time such as 2026-01-31T12:00:00Z"),
);

type Issue = z.core.$ZodIssue;

/** Our wording for an issue that carries no message of its own (zod/mini has no locale loaded). */
function describe(issue: Issue): string {
  if (issue.message !== "" && issue.message !== "Invalid input") return issue.message;
  switch (issue.code) {
    case "invalid_type":
      return issue.input === undefined ? "is required" : `must be ${issue.expected === "array" ? "an array" : `a ${issue.expected}`}`;
    case "too_big":
      return issue.origin === "string" ? `must be at most ${issue.maximum} characters` : `must have at most ${issue.maximum} entries`;
    case "too_small":
      return issue.origin === "string" ? `must be at least ${issue.minimum} characters` : `must have at least ${issue.minimum} entries`;
    case "invalid_value":
      return `must be one of ${issue.values.map((v) => String(v)).join(", ")}`;
    case "invalid_format":
      return "has the wrong format";
    default:
      return "is not valid";
  }
}

/** The first problem of a failed parse, as `member.path: what is wrong` (at most 300 characters); `whole` names the input itself. */
export function firstProblem(error: z.core.$ZodError, whole = "request"): { path: PropertyKey[]; text: string } {
  const issue = error.issues[0]!;
  const name = issue.path.map(String).join(".") || whole;
  return { path: issue.path, text: `${name}: ${describe(issue)}`.slice(0, 300) };
}

/** Validates parameters against an endpoint's schema; the first problem becomes an OAuth error naming the parameter. */
export function parseWith<S extends z.ZodMiniType>(schema: S, params: unknown, code: OAuthErrorCode = "invalid_request"): z.infer<S> {
  const result = schema.safeParse(params);
  if (!result.success) throw new OAuthError(code, firstProblem(result.error).text.slice(0, 200));
  return result.data;
}
