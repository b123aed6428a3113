import type { AuthCodeStore } from "./objects/auth-codes";
import type { ChallengeStore } from "./objects/challenges";
import type { DeadLetterRegistry } from "./objects/dead-letter-registry";
import type { JtiStore } from "./objects/jtis";
import type { KeyManager } from "./objects/key-manager";
import type { ParRequestStore } from "./objects/par-requests";
import type { RateLimiter } from "./objects/rate-limiter";
import type { TokenFamily } from "./objects/token-family";
import type { UserSessions } from "./objects/sessions";

/** The Worker's bindings and settings, typed once. Settings are read through `config.ts`, never from here directly. */
export interface Env {
  DB: D1Database;
  AUTH_CODES: DurableObjectNamespace<AuthCodeStore>;
  PAR_REQUESTS: DurableObjectNamespace<ParRequestStore>;
  JTIS: DurableObjectNamespace<JtiStore>;
  CHALLENGES: DurableObjectNamespace<ChallengeStore>;
  SESSIONS: DurableObjectNamespace<UserSessions>;
  TOKEN_FAMILIES: DurableObjectNamespace<TokenFamily>;
  KEYS: DurableObjectNamespace<KeyManager>;
  RATE_LIMITER: DurableObjectNamespace<RateLimiter>;
  DEAD_LETTERS: DurableObjectNamespace<DeadLetterRegistry>;
  /** Optional: a Workers Analytics Engine dataset the cron writes the counters of GET /admin/metrics to (docs/operations.md). */
  METRICS?: AnalyticsEngineDataset;

  /** Plain-text settings (wrangler `vars`); every one optional, defaults live in config.ts. */
  ISSUER?: string;
  EMAIL_TRANSPORT?: string;
  SIGNUP_POLICY?: string;
  SIGNUP_DOMAINS?: string;
  DYNAMIC_REGISTRATION?: string;
  /** Secrets (wrangler secret put): the admin API bearer tokens, the initial access token and the email API key. */
  ADMIN_TOKEN?: string;
  ADMIN_TOKEN_NEXT?: string;
  INITIAL_ACCESS_TOKEN?: string;
  EMAIL_API_KEY?: string;
  EMAIL_API_URL?: string;
  EMAIL_FROM?: string;
}

type OidcEnv = Env;

declare global {
  namespace Cloudflare {
    // Lets `env` from cloudflare:workers and cloudflare:test carry our bindings.
    interface Env extends OidcEnv {}
  }
}
