import * as z from "zod/mini";
import { OAuthError, type OAuthErrorCode } from "./errors";

/**
 * Input validation at the edge: one schema per endpoint, built from these pieces (zod/mini, which tree-shakes and
 * ships no locales). The first problem becomes one OAuth error naming the parameter.
 */

/** A bounded string parameter: every OAuth parameter has a sane maximum length. */
export const param = (max = 2048) => z.string().check(z.maxLength(max, `must be at most ${max} characters`));

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
