import { loadConfig } from "./config";
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
