import { invalidRequest } from "../errors";

export type Prompt = "none" | "login" | "consent" | "select_account";
export const PROMPTS: readonly Prompt[] = ["none", "login", "consent", "select_account"];

/** OIDC Core §3.1.2.1: space-separated values; `none` stands alone. Unknown values are refused. */
export function parsePrompt(raw: string | undefined): Prompt[] {
  if (raw === undefined) return [];
  const values: Prompt[] = [];
  for (const value of raw.split(" ")) {
    if (value === "") continue;
    if (!(PROMPTS as readonly string[]).includes(value)) throw invalidRequest(`prompt value ${JSON.stringify(value.slice(0, 20))} is not supported`);
    if (!values.includes(value as Prompt)) values.push(value as Prompt);
  }
  if (values.includes("none") && values.length > 1) throw invalidRequest("prompt=none cannot be combined with other values");
  return values;
}
