/**
 * A node's clock corrected to the database's (DESIGN.md §15: leases and schedules on the
 * database clock). Every node computes lease expiries, due times and schedule occurrences on
 * this clock, so a node whose own clock is off (by 30 s, say) agrees with the others on when a
 * lease expires. The offset is measured at open and every minute: the database's
 * `clock_timestamp()` against the midpoint of the round trip (error ≤ half the round trip), and
 * the clock never runs backwards when a new measurement moves it.
 */
import type { Pool } from 'pg';

import type { Clock } from '../../core/index.ts';

const RESYNC_MS = 60_000;

export class DbClock implements Clock {
  readonly #base: Clock;
  readonly #pool: Pool;
  #offset = 0;
  #last = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(base: Clock, pool: Pool) {
    this.#base = base;
    this.#pool = pool;
  }

  /** Database time minus the node's time, as last measured (ms). */
  get offsetMs(): number {
    return this.#offset;
  }

  now(): number {
    const t = this.#base.now() + this.#offset;
    if (t > this.#last) this.#last = t;
    return this.#last;
  }

  /** Measures the offset (best of three round trips) and keeps re-measuring in the background. */
  async sync(): Promise<void> {
    let best: { rtt: number; offset: number } | null = null;
    for (let i = 0; i < 3; i++) {
      const before = this.#base.now();
      const { rows } = await this.#pool.query<{ t: number }>(
        'SELECT (extract(epoch from clock_timestamp()) * 1000)::float8 AS t',
      );
      const after = this.#base.now();
      const rtt = after - before;
      const offset = Math.round(rows[0]!.t - (before + after) / 2);
      if (!best || rtt < best.rtt) best = { rtt, offset };
    }
    this.#offset = best!.offset;
    if (!this.#timer) {
      this.#timer = setInterval(() => void this.sync().catch(() => undefined), RESYNC_MS);
      this.#timer.unref();
    }
  }

  close(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
