/**
 * The shared rate windows (`rate.take`) as rows, the same layout in every adapter: one row per
 * (key, window_ms, bucket) holding that sub-bucket's count, and the burst bucket as the row with
 * `window_ms = 0` (`bucket` = when it was last refilled, `count` = tokens left). The decision
 * itself is core/rate-limit.ts; an adapter reads a key's rows under its write lock (SQLite) or a
 * per-key lock (PostgreSQL), decides, and writes the rows back.
 */
import {
  checkRate,
  newRateState,
  RATE_BUCKETS,
  RATE_WINDOWS,
  rateLimitedError,
  type RateLimits,
} from '../core/index.ts';

export interface RateRow {
  readonly window_ms: number;
  readonly bucket: number;
  readonly count: number;
}

/**
 * Takes one request from a key's stored rows: the rows to store instead, or RATE_LIMITED (with
 * retry_after_ms) when a window or the burst bucket is full.
 */
export function takeFromRows(
  key: string,
  rows: Iterable<RateRow>,
  limits: RateLimits,
  now: number,
): RateRow[] {
  const state = newRateState(limits, now);
  for (const row of rows) {
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
  const out: RateRow[] = [];
  for (const [i, window] of RATE_WINDOWS.entries())
    for (const [bucket, count] of state.windows[i]!)
      out.push({ window_ms: window.ms, bucket, count });
  out.push({ window_ms: 0, bucket: state.refilledAt, count: state.tokens });
  return out;
}

/** The rows `rateUsage` sums: the minute window's buckets from `oldest_bucket` on. */
export function usageWindow(now: number): { window_ms: number; oldest_bucket: number } {
  const minute = RATE_WINDOWS[0];
  const bucketMs = minute.ms / RATE_BUCKETS;
  return { window_ms: minute.ms, oldest_bucket: Math.floor(now / bucketMs) - RATE_BUCKETS + 1 };
}
