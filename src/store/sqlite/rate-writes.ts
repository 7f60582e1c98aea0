/**
 * Shared rate-limit windows (the `rate.take` store operation): the state of one key is read,
 * checked with core/rate-limit.ts and written back inside the caller's write transaction, so
 * every process on the database counts against the same windows. A refused request throws
 * RATE_LIMITED, which aborts the whole commit: nothing it would have done happens.
 */
import type Database from 'better-sqlite3';

import type { RateLimits } from '../../core/index.ts';
import { type RateRow, takeFromRows, usageWindow } from '../rate-rows.ts';

interface RateStatements {
  readonly read: Database.Statement;
  readonly clear: Database.Statement;
  readonly write: Database.Statement;
  readonly usage: Database.Statement;
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
      usage: db.prepare(
        'SELECT key, sum(count) AS n FROM rate_windows WHERE window_ms = ? AND bucket >= ? GROUP BY key',
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
  const rows = takeFromRows(key, s.read.all(key) as RateRow[], limits, now);
  s.clear.run(key);
  for (const row of rows) s.write.run(key, row.window_ms, row.bucket, row.count);
}

/** Requests counted per key in the current minute window of the shared rate windows. */
export function rateUsage(db: Database.Database, now: number): Record<string, number> {
  const cut = usageWindow(now);
  const rows = prepared(db).usage.all(cut.window_ms, cut.oldest_bucket) as Array<{
    key: string;
    n: number;
  }>;
  return Object.fromEntries(rows.map((r) => [r.key, r.n]));
}
