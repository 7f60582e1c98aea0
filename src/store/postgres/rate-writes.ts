/**
 * Shared rate-limit windows (the `rate.take` store operation) on PostgreSQL: every node counts
 * against the same windows. A take locks its key first — a transaction-scoped advisory lock on
 * the schema and key — then reads the key's rows, decides (../rate-rows.ts, core/rate-limit.ts)
 * and writes them back, all in the caller's transaction. The read is a new statement after the
 * lock, so under READ COMMITTED it sees whatever the previous holder committed: two takes at the
 * last free slot queue on the lock and exactly one passes. A refused take throws RATE_LIMITED,
 * which aborts the whole commit.
 *
 * An advisory lock rather than row locks: a key with no rows yet has nothing to lock. Its key is
 * a 64-bit hash of schema and rate key; a collision only makes two keys queue on each other.
 */
import type { RateLimits } from '../../core/index.ts';
import { type RateRow, takeFromRows, usageWindow } from '../rate-rows.ts';
import type { PgTx } from './tx.ts';

type Queryable = Pick<PgTx, 'query'>;

const SQL = {
  lock: `SELECT pg_advisory_xact_lock(hashtextextended(current_schema() || ':warden:rate:' || $1, 0))`,
  read: 'SELECT window_ms, bucket, count FROM rate_windows WHERE key = $1',
  /** Replaces the key's rows by the new set ($2…$4: window_ms[], bucket[], count[]). */
  write: `WITH next AS (
      SELECT * FROM unnest($2::bigint[], $3::bigint[], $4::float8[]) AS n(window_ms, bucket, count)
    ), gone AS (
      DELETE FROM rate_windows r WHERE r.key = $1 AND NOT EXISTS
        (SELECT 1 FROM next WHERE next.window_ms = r.window_ms AND next.bucket = r.bucket)
    )
    INSERT INTO rate_windows (key, window_ms, bucket, count)
      SELECT $1, window_ms, bucket, count FROM next
    ON CONFLICT (key, window_ms, bucket) DO UPDATE SET count = EXCLUDED.count`,
  usage: `SELECT key, sum(count) AS n FROM rate_windows WHERE window_ms = $1 AND bucket >= $2
    GROUP BY key`,
} as const;

/** Takes one request for `key` or throws RATE_LIMITED (with retry_after_ms). */
export async function takeRate(
  tx: PgTx,
  key: string,
  limits: RateLimits,
  now: number,
): Promise<void> {
  await tx.query(SQL.lock, [key]);
  const { rows } = await tx.query<RateRow & Record<string, unknown>>(SQL.read, [key]);
  const next = takeFromRows(
    key,
    rows.map((r) => ({
      window_ms: Number(r.window_ms),
      bucket: Number(r.bucket),
      count: Number(r.count),
    })),
    limits,
    now,
  );
  await tx.query(SQL.write, [
    key,
    next.map((r) => r.window_ms),
    next.map((r) => r.bucket),
    next.map((r) => r.count),
  ]);
}

/** Requests counted per key in the current minute window of the shared rate windows. */
export async function rateUsage(q: Queryable, now: number): Promise<Record<string, number>> {
  const cut = usageWindow(now);
  const { rows } = await q.query<{ key: string; n: number }>(SQL.usage, [
    cut.window_ms,
    cut.oldest_bucket,
  ]);
  return Object.fromEntries(rows.map((r) => [r.key, Number(r.n)]));
}
