import * as z from "zod/mini";
import { isEmailAddress } from "../lib/email-address";
import { customClaimsProblem, groupsProblem } from "./custom-claims";
import { OAuthError } from "./errors";
import { firstProblem } from "./schema";

/**
 * What an admin may set on a user (the admin API's users): the standard claims of OIDC Core §5.1 in their own names,
 * `groups` and custom `claims`. Pure. Unknown members are refused (a typo must not look like a success), and every
 * value is bounded.
 */

/** The members of the address claim (OIDC Core §5.1.1). */
export const ADDRESS_MEMBERS = ["formatted", "street_address", "locality", "region", "postal_code", "country"] as const;

const NO_CONTROL = /^[^\u0000-\u001f\u007f]*$/;
const text = (max: number) =>
  z.string().check(z.trim(), z.minLength(1, "must not be empty"), z.maxLength(max, `must be at most ${max} characters`), z.regex(NO_CONTROL, "must not contain control characters"));
const nullable = <T extends z.ZodMiniType>(schema: T) => z.optional(z.nullable(schema));

/** OIDC Core §5.1: picture is a URL; only https (or http on any host, for local pictures) ever reaches a relying party's page. */
const pictureUrl = z.string().check(
  z.maxLength(2000, "must be at most 2000 characters"),
  z.refine((value) => {
    try {
      const url = new URL(value);
      return (url.protocol === "https:" || url.protocol === "http:") && url.username === "" && url.password === "" && !/\s/.test(value);
    } catch {
      return false;
    }
  }, "must be an absolute http or https URL without credentials"),
);

const address = z.strictObject(Object.fromEntries(ADDRESS_MEMBERS.map((m) => [m, z.optional(text(m === "formatted" ? 500 : 200))])) as Record<(typeof ADDRESS_MEMBERS)[number], z.ZodMiniOptional<ReturnType<typeof text>>>);

const PROFILE_SHAPE = {
  email: z.optional(z.string().check(z.trim(), z.maxLength(254, "must be at most 254 characters"), z.refine(isEmailAddress, "must be an email address"))),
  email_verified: z.optional(z.boolean()),
  name: nullable(text(200)),
  given_name: nullable(text(200)),
  family_name: nullable(text(200)),
  preferred_username: nullable(text(200)),
  picture: nullable(pictureUrl),
  // BCP 47 language tag (OIDC Core §5.1: locale), IANA time zone (zoneinfo).
  locale: nullable(z.string().check(z.regex(/^[A-Za-z]{2,8}(?:[-_][A-Za-z0-9]{1,8}){0,4}$/, "must be a BCP 47 language tag such as en-US"))),
  zoneinfo: nullable(z.string().check(z.regex(/^[A-Za-z][A-Za-z0-9_+-]*(?:\/[A-Za-z0-9_+-]+){0,3}$/, "must be a time zone name such as Europe/Paris"), z.maxLength(64))),
  // OIDC Core §5.1 recommends E.164 (+15551234567); an extension may follow.
  phone_number: nullable(z.string().check(z.regex(/^\+?[0-9][0-9 ().-]{1,30}(?:;ext=[0-9]{1,10})?$/, "must be a phone number such as +1 555 123 4567"))),
  phone_number_verified: z.optional(z.boolean()),
  address: nullable(address),
  groups: z.optional(z.array(z.string()).check(z.maxLength(1000, "has too many entries"))),
  claims: z.optional(z.record(z.string(), z.unknown())),
};

const profileSchema = z.object(PROFILE_SHAPE);

export type UserProfileInput = z.infer<typeof profileSchema>;
/** A new user: the email address is required. */
export type NewUserProfile = UserProfileInput & { email: string };

function profileError(description: string): OAuthError {
  return new OAuthError("invalid_request", description.slice(0, 300));
}

function parseProfile(body: unknown): UserProfileInput {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw profileError("the request body must be a JSON object");
  const unknown = Object.keys(body).filter((key) => !Object.hasOwn(PROFILE_SHAPE, key));
  if (unknown.length > 0) throw profileError(`${unknown[0]!.slice(0, 60)}: is not a member of a user (members: ${Object.keys(PROFILE_SHAPE).join(", ")})`);
  const result = profileSchema.safeParse(body);
  if (!result.success) throw profileError(firstProblem(result.error, "user").text);
  const profile = result.data;
  if (profile.groups !== undefined) {
    const problem = groupsProblem(profile.groups);
    if (problem) throw profileError(`groups: ${problem}`);
  }
  if (profile.claims !== undefined) {
    // Judged on the object as sent: a parser's copy could drop a member such as "__proto__" instead of refusing it.
    const sent = (body as { claims: Record<string, unknown> }).claims;
    const problem = customClaimsProblem(sent);
    if (problem) throw profileError(`claims: ${problem}`);
    profile.claims = Object.fromEntries(Object.entries(sent));
  }
  if (profile.email !== undefined) profile.email = profile.email.toLowerCase();
  return profile;
}

/** POST /admin/users: an email address and any of the other members. */
export function parseNewUser(body: unknown): NewUserProfile {
  const profile = parseProfile(body);
  if (profile.email === undefined) throw profileError("email: is required");
  return profile as NewUserProfile;
}

/** PATCH /admin/users/:id: the members sent replace the stored ones; `null` clears a claim. At least one member. */
export function parseUserChanges(body: unknown): UserProfileInput {
  const profile = parseProfile(body);
  if (Object.keys(profile).length === 0) throw profileError("the request names no member to change");
  return profile;
}
