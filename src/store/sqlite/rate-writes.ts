/**
 * Shared rate-limit windows (the `rate.take` store operation): the state of one key is read,
 * checked with core/rate-limit.ts and written back inside the caller's write transaction, so
 * every process on the database counts against the same windows. A refused request throws
 * RATE_LIMITED, which aborts the whole commit: nothing it would have done happens.
 */
import type Database from 'better-sqlite3';

import {
  checkRate,
  newRateState,
  RATE_BUCKETS,
  RATE_WINDOWS,
  rateLimitedError,
  type RateLimits,
} from '../../core/index.ts';

interface RateStatements {
  readonly read: Database.Statement;
  readonly clear: Database.Statement;
  readonly write: Database.Statement;
}

const statements = new WeakMap<Database.Database, RateStatements>();

function prepared(db: Database.Database): RateStatements {
  let s = statements.get(db);
  if (!s) {
    s = {
      read: db.prepare('SELECT window_ms, bucket, count FROM rate_windows WHERE key = ?'),
      clear: db.prepare('DELETE FROM rate_windows WHERE key = ?'),
      write: db.prepare(
        'INSERT INTO rate_windows (key, window_ms, bucket, count) VALUES (?, ?, ?, ?)',
      ),
    };
    statements.set(db, s);
  }
  return s;
}

/** Takes one request for `key` or throws RATE_LIMITED (with retry_after_ms). */
export function takeRate(
  db: Database.Database,
  key: string,
  limits: RateLimits,
  now: number,
): void {
  const s = prepared(db);
  const state = newRateState(limits, now);
  for (const row of s.read.all(key) as Array<{
    window_ms: number;
    bucket: number;
    count: number;
  }>) {
    if (row.window_ms === 0) {
      state.tokens = row.count;
      state.refilledAt = row.bucket;
      continue;
    }
    const i = RATE_WINDOWS.findIndex((w) => w.ms === row.window_ms);
    if (i >= 0) state.windows[i]!.set(row.bucket, row.count);
  }
  const decision = checkRate(state, limits, now, true);
  if (!decision.allowed) throw rateLimitedError(key, decision);
  s.clear.run(key);
  for (const [i, window] of RATE_WINDOWS.entries())
    for (const [bucket, count] of state.windows[i]!) s.write.run(key, window.ms, bucket, count);
  s.write.run(key, 0, state.refilledAt, state.tokens);
}

/** Requests counted per key in the current minute window of the shared rate windows. */
export function rateUsage(db: Database.Database, now: number): Record<string, number> {
  const minute = RATE_WINDOWS[0];
  const bucketMs = minute.ms / RATE_BUCKETS;
  const oldest = Math.floor(now / bucketMs) - RATE_BUCKETS + 1;
  const rows = db
    .prepare(
      'SELECT key, sum(count) AS n FROM rate_windows WHERE window_ms = ? AND bucket >= ? GROUP BY key',
    )
    .all(minute.ms, oldest) as Array<{ key: string; n: number }>;
  return Object.fromEntries(rows.map((r) => [r.key, r.n]));
}
