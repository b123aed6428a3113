import { loadConfig } from "./config";
import { auditCounts } from "./db/metrics";
import { purgeExpiredRows } from "./db/retention";
import type { Env } from "./env";
import { keyManager } from "./objects/locate";
import { errorText, log } from "./lib/log";

/**
 * The cron trigger's work. D1 rows past their lifetime are deleted here (C15); objects purge their own
 * storage with alarms. Each task runs even if another fails, and a failure is a structured log line.
 */
export async function runScheduledMaintenance(env: Env, scheduledTime: number): Promise<Record<string, unknown>> {
  const config = loadConfig(env);
  const tasks: Record<string, () => Promise<unknown>> = {
    purge_d1: () => purgeExpiredRows(env.DB, scheduledTime, { auditRetentionDays: config.auditRetentionDays, grantLifetimeSeconds: config.refreshTokenTtl }),
    // The key manager's alarm rotates too; cron is the second, independent trigger (C19).
    rotate_keys: () => keyManager(env).rotateIfDue(),
    ...(env.METRICS ? { metrics: () => writeMetrics(env, env.METRICS!, scheduledTime) } : {}),
  };
  const report: Record<string, unknown> = {};
  for (const [name, task] of Object.entries(tasks)) {
    try {
      report[name] = await task();
    } catch (error) {
      report[name] = { error: errorText(error) };
      log("error", "maintenance.failed", { task: name, error: errorText(error) });
    }
  }
  log("info", "maintenance.done", { report });
  return report;
}

/** The cron's period (wrangler.jsonc: every 15 minutes): each run counts the events of one period. */
const PERIOD_MS = 15 * 60_000;

/**
 * With a Workers Analytics Engine binding `METRICS`: one data point per counter for one whole period — the one that
 * ended a period ago, so events that waited a few minutes in an outbox are in D1 by then (an event delivered later
 * than that, after a D1 outage, is in GET /admin/metrics but not in Analytics Engine). By `occurred_at`, the audit
 * log's index. Blobs: [metric, label]; doubles: [count, period start (ms)]; index: the metric.
 */
async function writeMetrics(env: Env, dataset: AnalyticsEngineDataset, scheduledTime: number): Promise<{ points: number; from: number }> {
  const to = Math.floor(scheduledTime / PERIOD_MS) * PERIOD_MS - PERIOD_MS;
  const from = to - PERIOD_MS;
  const counts = await auditCounts(env.DB, from, to);
  const points: Array<[string, string, number]> = [
    ...Object.entries(counts.signIns).map(([method, n]): [string, string, number] => ["sign_ins", method, n]),
    ["token_grants", "authorization_code", counts.tokenGrants.authorization_code],
    ["token_grants", "refresh_token", counts.tokenGrants.refresh_token],
    ["refresh_token_reuse_detected", "", counts.refreshTokenReuseDetected],
    ["authorization_code_replays", "", counts.authorizationCodeReplays],
    ...Object.entries(counts.rateLimitDenials).map(([endpoint, n]): [string, string, number] => ["rate_limit_denials", endpoint, n]),
    ["logout_delivered", "", counts.logout.delivered],
    ["logout_failed", "", counts.logout.failed],
  ];
  for (const [metric, label, n] of points) dataset.writeDataPoint({ indexes: [metric], blobs: [metric, label], doubles: [n, from] });
  return { points: points.length, from };
}
