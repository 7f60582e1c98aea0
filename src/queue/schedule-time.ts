/**
 * Next occurrences of schedules. Cron expressions (5 or 6 fields, UTC) are parsed by croner;
 * intervals run on a fixed grid anchored at the schedule's creation. Missed occurrences during
 * downtime are coalesced: one firing, then the next occurrence after now (documented).
 */
import { Cron } from 'croner';

import { WardenError } from '../core/index.ts';

export function validateCron(expr: string): void {
  try {
    new Cron(expr, { paused: true, timezone: 'UTC' });
  } catch (error) {
    throw new WardenError(
      'INVALID_PARAMS',
      `invalid cron expression '${expr}': ${(error as Error).message}`,
      { cause: error },
    );
  }
}

/** The first occurrence strictly after `after`. */
export function nextOccurrence(
  kind: 'cron' | 'interval',
  expr: string,
  after: number,
  anchor: number,
): number {
  if (kind === 'interval') {
    const every = Number(expr);
    const steps = Math.floor((after - anchor) / every) + 1;
    return anchor + Math.max(steps, 1) * every;
  }
  const next = new Cron(expr, { paused: true, timezone: 'UTC' }).nextRun(new Date(after));
  if (!next)
    throw new WardenError('INVALID_PARAMS', `cron expression '${expr}' has no future occurrence`);
  return next.getTime();
}
