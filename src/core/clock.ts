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
  constructor(startMs = Date.UTC(2026, 0, 1)) {
    this.#now = startMs;
  }
  now(): number {
    return this.#now;
  }
  advance(ms: number): void {
    this.#now += ms;
  }
  set(ms: number): void {
    this.#now = ms;
  }
}
