import { sql } from "drizzle-orm";
import { index, integer, primaryKey, sqliteTable, text, uniqueIndex } from "drizzle-orm/sqlite-core";

/**
 * The relational data of the OP, in D1. `npm run db:generate` turns changes here into a migration in drizzle/;
 * tests/db-schema.test.ts fails when this file and the migrations disagree.
 */

const now = sql`(unixepoch() * 1000)`;

export const users = sqliteTable(
  "users",
  {
    id: text("id").primaryKey(),
    email: text("email").notNull(),
    emailVerified: integer("email_verified", { mode: "boolean" }).notNull().default(false),
    name: text("name"),
    givenName: text("given_name"),
    familyName: text("family_name"),
    preferredUsername: text("preferred_username"),
    picture: text("picture"),
    locale: text("locale"),
    zoneinfo: text("zoneinfo"),
    phoneNumber: text("phone_number"),
    phoneNumberVerified: integer("phone_number_verified", { mode: "boolean" }).notNull().default(false),
    /** OIDC Core §5.1.1 address claim, stored as its JSON object. */
    address: text("address", { mode: "json" }).$type<Record<string, string>>(),
    /** Set by an admin; released as the `groups` claim with the `groups` scope. A JSON array of strings. */
    groups: text("groups", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
    /** Custom claims set by an admin (JSON object; oauth/user-profile.ts limits names and sizes), released to the clients registered for them. */
    claims: text("claims", { mode: "json" }).$type<Record<string, unknown>>().notNull().default(sql`'{}'`),
    disabled: integer("disabled", { mode: "boolean" }).notNull().default(false),
    createdAt: integer("created_at").notNull().default(now),
    updatedAt: integer("updated_at").notNull().default(now),
  },
  (t) => [uniqueIndex("users_email_unique").on(t.email)],
);

export const clients = sqliteTable("clients", {
  id: text("id").primaryKey(),
  /** SHA-256 of the secret (C13); null for public and private_key_jwt clients. */
  secretHash: text("secret_hash"),
  clientName: text("client_name").notNull(),
  redirectUris: text("redirect_uris", { mode: "json" }).$type<string[]>().notNull(),
  postLogoutRedirectUris: text("post_logout_redirect_uris", { mode: "json" }).$type<string[]>().notNull(),
  grantTypes: text("grant_types", { mode: "json" }).$type<string[]>().notNull(),
  responseTypes: text("response_types", { mode: "json" }).$type<string[]>().notNull(),
  tokenEndpointAuthMethod: text("token_endpoint_auth_method").notNull(),
  scope: text("scope").notNull(),
  jwks: text("jwks", { mode: "json" }).$type<{ keys: Record<string, unknown>[] }>(),
  jwksUri: text("jwks_uri"),
  idTokenSignedResponseAlg: text("id_token_signed_response_alg"),
  backchannelLogoutUri: text("backchannel_logout_uri"),
  backchannelLogoutSessionRequired: integer("backchannel_logout_session_required", { mode: "boolean" }).notNull().default(false),
  skipConsent: integer("skip_consent", { mode: "boolean" }).notNull().default(false),
  dpopBoundAccessTokens: integer("dpop_bound_access_tokens", { mode: "boolean" }).notNull().default(false),
  /** Seconds a rotated refresh token may be presented again for the same answer; null: the server's setting. */
  refreshTokenReuseInterval: integer("refresh_token_reuse_interval"),
  /** The user's custom claims (by name) this client receives, with the `profile` scope. A JSON array of strings. */
  extraClaims: text("extra_claims", { mode: "json" }).$type<string[]>().notNull().default(sql`'[]'`),
  /** RFC 7592: SHA-256 of the registration access token of a dynamically registered client; null for the admin's clients. */
  registrationTokenHash: text("registration_token_hash"),
  createdAt: integer("created_at").notNull().default(now),
  updatedAt: integer("updated_at").notNull().default(now),
  /** Which user claims the ID token carries: "scope" (those of the granted scopes) or "minimal" (only those the claims request names). */
  idTokenClaims: text("id_token_claims").notNull().default("scope"),
  /** RFC 9126 §6: the client's authorization requests must come through /par. */
  requirePushedAuthorizationRequests: integer("require_pushed_authorization_requests", { mode: "boolean" }).notNull().default(false),
  /** RFC 9101 / OIDC Registration §2: the only alg its request objects may use; null: any advertised one. */
  requestObjectSigningAlg: text("request_object_signing_alg"),
  /** "fapi2": the FAPI 2.0 Security Profile's rules apply to this client (oauth/security-profile.ts); null: none. */
  securityProfile: text("security_profile"),
  /** RFC 7591 §2: shown on the sign-in and consent pages; https URLs only (oauth/client-metadata.ts). */
  logoUri: text("logo_uri"),
  clientUri: text("client_uri"),
  policyUri: text("policy_uri"),
  tosUri: text("tos_uri"),
});

export const passkeys = sqliteTable(
  "passkeys",
  {
    /** WebAuthn credential id, base64url. */
    id: text("id").primaryKey(),
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    publicKey: text("public_key").notNull(),
    /** Signature counter; only moves forward (C7, compare-and-swap). */
    counter: integer("counter").notNull().default(0),
    transports: text("transports", { mode: "json" }).$type<string[]>().notNull(),
    deviceType: text("device_type"),
    backedUp: integer("backed_up", { mode: "boolean" }).notNull().default(false),
    name: text("name"),
    createdAt: integer("created_at").notNull().default(now),
    lastUsedAt: integer("last_used_at"),
    /**
     * The WebAuthn challenge of the sign-in that last moved the counter: a retry of that same ceremony (C12) is told
     * apart from another ceremony presenting the same counter value (a clone, C7).
     */
    lastChallenge: text("last_challenge"),
  },
  (t) => [index("passkeys_user_id").on(t.userId)],
);

/** Remembered consent: the scopes a user granted a client. */
export const consents = sqliteTable(
  "consents",
  {
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    clientId: text("client_id")
      .notNull()
      .references(() => clients.id, { onDelete: "cascade" }),
    scopes: text("scopes").notNull(),
    grantedAt: integer("granted_at").notNull().default(now),
    expiresAt: integer("expires_at"),
  },
  (t) => [primaryKey({ columns: [t.userId, t.clientId] })],
);

/** Delivered from the objects' outboxes, at least once; the event id makes delivery idempotent (C4). */
export const auditLog = sqliteTable(
  "audit_log",
  {
    eventId: text("event_id").primaryKey(),
    occurredAt: integer("occurred_at").notNull(),
    type: text("type").notNull(),
    source: text("source").notNull(),
    actor: text("actor"),
    subject: text("subject"),
    clientId: text("client_id"),
    data: text("data", { mode: "json" }).$type<Record<string, unknown>>(),
    recordedAt: integer("recorded_at").notNull().default(now),
  },
  (t) => [
    index("audit_log_occurred_at").on(t.occurredAt),
    index("audit_log_subject").on(t.subject),
    // The admin API finds users with dead-lettered logout notices by their events (db/audit.ts), without a scan.
    index("audit_log_type_occurred_at").on(t.type, t.occurredAt),
  ],
);

/** Messages of the `dev` email transport, served at GET /dev/mailbox only in that mode. Never used in production. */
export const devMailbox = sqliteTable(
  "dev_mailbox",
  {
    id: text("id").primaryKey(),
    to: text("to").notNull(),
    subject: text("subject").notNull(),
    text: text("text").notNull(),
    link: text("link"),
    /** The sender (EMAIL_FROM) and the HTML part beside the text. */
    from: text("from"),
    html: text("html"),
    sentAt: integer("sent_at").notNull(),
  },
  (t) => [index("dev_mailbox_to").on(t.to, t.sentAt)],
);

/**
 * Grants ended without visiting them (C22): every grant of `user_id` for `client_id` ("*": for every client) created
 * at or before `revoked_before` (ms) is dead — refresh fails, its access tokens are inactive. Read with the user on
 * every token check (one query), written by revoke-all, consent revocation and the like.
 */
export const grantRevocations = sqliteTable(
  "grant_revocations",
  {
    userId: text("user_id")
      .notNull()
      .references(() => users.id, { onDelete: "cascade" }),
    clientId: text("client_id").notNull(),
    revokedBefore: integer("revoked_before").notNull(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.clientId] })],
);
