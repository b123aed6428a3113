/**
 * The OP's counters, computed from the audit log in D1 — durable, the same in every isolate, and the events already
 * say what happened: nothing is counted in memory. One query, over the events of a time range.
 *
 * The event types counted, and where they come from (`recordAudit` in src/objects/*.ts):
 */
export const METRIC_EVENTS = {
  signIn: "session.created",
  /** Every authorization-code redemption (src/objects/auth-codes.ts); before issue 8's grants in tokens: `token_family.created`. */
  grantCreated: "auth_code.redeemed",
  refreshRotated: "refresh_token.rotated",
  refreshRetried: "refresh_token.retry_answered",
  refreshReuse: "refresh_token.reuse_detected",
  codeReplay: "auth_code.replayed",
  rateLimited: "rate_limit.denied",
  /** Back-channel logout deliveries (src/objects/sessions.ts): delivered, and given up. */
  logoutDelivered: "backchannel_logout.delivered",
  logoutFailed: "backchannel_logout.failed",
  logoutDeadLettered: "backchannel_logout.dead_lettered",
} as const;

export interface AuditCounts {
  signIns: Record<string, number>;
  /**
   * `client_credentials` is null: its tokens keep no state and write no event (oauth/client-grant.ts), so there is
   * nothing durable to count them by — counting them would cost a write per token on the /token path.
   */
  tokenGrants: { authorization_code: number; refresh_token: number; client_credentials: null };
  refreshTokenReuseDetected: number;
  authorizationCodeReplays: number;
  rateLimitDenials: Record<string, number>;
  logout: { delivered: number; failed: number };
}

/**
 * A sign-in's method, from its `amr` (RFC 8176): `email` for an email link; `passkey` for a WebAuthn key (`hwk` or
 * `swk`); otherwise the values themselves, joined.
 */
export function signInMethod(amr: unknown): string {
  const values = Array.isArray(amr) ? amr.filter((v): v is string => typeof v === "string") : [];
  if (values.includes("email")) return "email";
  if (values.includes("hwk") || values.includes("swk")) return "passkey";
  return values.length > 0 ? values.join("+") : "unknown";
}

/** Counts of the events that occurred in [from, to) (ms), read through the audit log's `occurred_at` index. */
export async function auditCounts(db: D1Database, from: number, to: number): Promise<AuditCounts> {
  const types = Object.values(METRIC_EVENTS);
  const { results } = await db
    .prepare(
      `SELECT type,
              CASE WHEN type = ? THEN json_extract(data, '$.amr')
                   WHEN type = ? THEN substr(json_extract(data, '$.key'), 1, instr(json_extract(data, '$.key') || ':', ':') - 1)
              END AS label,
              SUM(CASE WHEN type = ? THEN COALESCE(json_extract(data, '$.count'), 1) ELSE 1 END) AS n
       FROM audit_log
       WHERE occurred_at >= ? AND occurred_at < ? AND type IN (${types.map(() => "?").join(", ")})
       GROUP BY type, label`,
    )
    .bind(METRIC_EVENTS.signIn, METRIC_EVENTS.rateLimited, METRIC_EVENTS.rateLimited, from, to, ...types)
    .all<{ type: string; label: string | null; n: number }>();
  const counts: AuditCounts = {
    signIns: {},
    tokenGrants: { authorization_code: 0, refresh_token: 0, client_credentials: null },
    refreshTokenReuseDetected: 0,
    authorizationCodeReplays: 0,
    rateLimitDenials: {},
    logout: { delivered: 0, failed: 0 },
  };
  for (const { type, label, n } of results) {
    switch (type) {
      case METRIC_EVENTS.signIn: {
        let amr: unknown = null;
        try {
          amr = label === null ? null : JSON.parse(label);
        } catch {
          amr = null;
        }
        const method = signInMethod(amr);
        counts.signIns[method] = (counts.signIns[method] ?? 0) + n;
        break;
      }
      // Every redeemed code is an authorization-code grant, whether it has an object or lives in its tokens.
      case METRIC_EVENTS.grantCreated:
        counts.tokenGrants.authorization_code += n;
        break;
      case METRIC_EVENTS.refreshRotated:
      case METRIC_EVENTS.refreshRetried:
        counts.tokenGrants.refresh_token += n;
        break;
      case METRIC_EVENTS.refreshReuse:
        counts.refreshTokenReuseDetected += n;
        break;
      case METRIC_EVENTS.codeReplay:
        counts.authorizationCodeReplays += n;
        break;
      case METRIC_EVENTS.rateLimited: {
        const endpoint = label || "other";
        counts.rateLimitDenials[endpoint] = (counts.rateLimitDenials[endpoint] ?? 0) + n;
        break;
      }
      case METRIC_EVENTS.logoutDelivered:
        counts.logout.delivered += n;
        break;
      default:
        counts.logout.failed += n;
    }
  }
  return counts;
}
