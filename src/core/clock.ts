import { describeValue, invalidParams } from './params.ts';

/** Time source. Core logic never reads the wall clock directly; it is handed a Clock. */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number;
}

/**
 * The wall clock, made non-decreasing: if the system clock steps back (an NTP correction, a
 * manual change), time stands still until it catches up instead of running backwards. Leases
 * are absolute times shared between processes, so they need wall time; a clock that never
 * runs backwards keeps a process from renewing leases into the past or seeing a granted lease
 * as still far from expiry.
 */
export const systemClock: Clock = (() => {
  let last = 0;
  return {
    now: () => {
      const t = Date.now();
      if (t > last) last = t;
      return last;
    },
  };
})();

/** A clock that only moves when told to; for tests of leases, backoff and TTLs. */
export class ManualClock implements Clock {
  #now: number;
  /** @param startMs ms since the epoch. @default 2026-01-01T00:00:00Z */
  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#now = checkMs('new ManualClock', 'startMs', startMs);
  }
  now(): number {
    return this.#now;
  }
  /** Moves the clock forward (or back, with a negative `ms`). */
  advance(ms: number): void {
    this.#now = checkMs(
      'ManualClock.advance',
      'ms',
      this.#now + checkInt('ManualClock.advance', 'ms', ms),
    );
  }
  set(ms: number): void {
    this.#now = checkMs('ManualClock.set', 'ms', ms);
  }
}

function checkInt(where: string, name: string, value: unknown): number {
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  throw invalidParams(where, [
    { path: name, message: `expected an integer number of ms (got ${describeValue(value)})` },
  ]);
}

function checkMs(where: string, name: string, value: unknown): number {
  const ms = checkInt(where, name, value);
  if (ms >= 0) return ms;
  throw invalidParams(where, [
    { path: name, message: `expected a time in ms since the epoch, ≥ 0 (got ${ms})` },
  ]);
}
