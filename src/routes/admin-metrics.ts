import * as z from "zod/mini";
import { auditCounts } from "../db/metrics";
import { deadLetterRegistry, outboxHolder } from "../objects/locate";
import { invalidRequest } from "../oauth/errors";
import { instant, parseInstant, parseWith } from "../oauth/schema";
import type { AdminHandler } from "./support/admin-auth";
import { readQuery } from "./support/params";
import { jsonResponse } from "./support/respond";

/**
 * GET /admin/metrics?since=&until= — the OP's counters over a time range (default: the last 24 hours), from the audit
 * log (durable, not isolate memory), and the audit outbox as it is now: the objects holding events not yet in D1
 * (from the dead-letter registry) and their live counts.
 */

const DAY_MS = 86_400_000;
/** Objects asked for their live outbox counts; the registry's totals cover the rest. */
const LIVE_OBJECTS = 100;

const MetricsQuery = z.object({ since: z.optional(instant), until: z.optional(instant) });

export const metricsRoute: AdminHandler = async (request, env) => {
  const query = parseWith(MetricsQuery, readQuery(request, ["since", "until"]));
  const until = query.until === undefined ? Date.now() : parseInstant(query.until)!;
  const since = query.since === undefined ? until - DAY_MS : parseInstant(query.since)!;
  if (since >= until) throw invalidRequest("since: must be before until");
  const [counts, registered] = await Promise.all([auditCounts(env.DB, since, until), deadLetterRegistry(env).list(LIVE_OBJECTS)]);
  const live = await Promise.all(registered.objects.map(async (entry) => (await outboxHolder(env, entry)?.outboxStatus()) ?? { pending: 0, deadLettered: 0 }));
  const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
  return jsonResponse({
    since,
    until,
    sign_ins: { total: sum(Object.values(counts.signIns)), by_method: counts.signIns },
    token_grants: counts.tokenGrants,
    refresh_token_reuse_detected: counts.refreshTokenReuseDetected,
    authorization_code_replays: counts.authorizationCodeReplays,
    rate_limit_denials: { total: sum(Object.values(counts.rateLimitDenials)), by_endpoint: counts.rateLimitDenials },
    logout: counts.logout,
    audit_outbox: {
      objects_with_undelivered_events: registered.total,
      pending: sum(live.map((s) => s.pending)),
      dead_lettered: registered.objects.length === registered.total ? sum(live.map((s) => s.deadLettered)) : registered.deadLettered,
    },
  });
};
