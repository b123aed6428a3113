/**
 * Alarms that purge expired rows run on minute boundaries, so a burst of values expiring one after another is one
 * alarm, not a burst of them: the boundary just after `at` (ms since the epoch).
 */
export function purgeTime(at: number): number {
  return Math.ceil((at + 1) / 60_000) * 60_000;
}
