/**
 * The node's clock. `WARDEN_TEST_CLOCK_SKEW_MS` shifts it by a fixed offset — for tests that
 * show a node with a wrong clock cannot steal leases or fire schedules twice (docs/scale-out.md);
 * never set it in production. On PostgreSQL the store corrects this clock to the database's.
 */
import { type Clock, systemClock, WardenError } from '../core/index.ts';

export function nodeClock(env: NodeJS.ProcessEnv = process.env): Clock {
  const raw = env.WARDEN_TEST_CLOCK_SKEW_MS;
  if (raw === undefined || raw === '') return systemClock;
  const skew = Number(raw);
  if (!Number.isSafeInteger(skew))
    throw new WardenError(
      'CONFIG_INVALID',
      `WARDEN_TEST_CLOCK_SKEW_MS must be an integer number of milliseconds (got '${raw}'); unset it outside tests`,
      { details: { key: 'WARDEN_TEST_CLOCK_SKEW_MS' } },
    );
  return { now: () => systemClock.now() + skew };
}
