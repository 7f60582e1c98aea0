/**
 * Rate-limit arithmetic (DESIGN.md §5), pure: sliding windows (minute, hour, day) of ten
 * sub-buckets each, plus a token-bucket burst limit. A refused request is not recorded and
 * gets `RATE_LIMITED` with `retry_after_ms`. The kernel's in-memory limiter and the store's
 * shared windows (the `rate.take` store operation, which holds across processes) both run this
 * code, so they decide identically.
 */
import { WardenError } from './errors.ts';

export interface RateLimits {
  readonly per_minute: number;
  readonly per_hour: number;
  readonly per_day: number;
  /** Maximum requests in any 1-second burst (token bucket refilled at per_minute/60 per s). */
  readonly burst: number;
}

export const DEFAULT_RATE_LIMITS: RateLimits = Object.freeze({
  per_minute: 600,
  per_hour: 10_000,
  per_day: 100_000,
  burst: 50,
});

export const RATE_WINDOWS = [
  { name: 'minute', ms: 60_000, limit: (l: RateLimits) => l.per_minute },
  { name: 'hour', ms: 3_600_000, limit: (l: RateLimits) => l.per_hour },
  { name: 'day', ms: 86_400_000, limit: (l: RateLimits) => l.per_day },
] as const;
export const RATE_BUCKETS = 10;

/** One key's state: per window, sub-bucket index → count; and the burst bucket. */
export interface RateState {
  readonly windows: Array<Map<number, number>>;
  tokens: number;
  refilledAt: number;
}

export interface RateDecision {
  readonly allowed: boolean;
  readonly limit_type?: 'minute' | 'hour' | 'day' | 'burst';
  /** For a refusal by a window: the requests counted in it, and its limit. */
  readonly current_count?: number;
  readonly limit?: number;
  readonly retry_after_ms: number;
  readonly remaining: number;
}

export function newRateState(limits: RateLimits, now: number): RateState {
  return {
    windows: RATE_WINDOWS.map(() => new Map<number, number>()),
    tokens: limits.burst,
    refilledAt: now,
  };
}

/**
 * Checks one request against `state` at `now`, and records it when allowed and `record` is
 * true. Mutates `state` (drops expired sub-buckets, refills the burst bucket).
 */
export function checkRate(
  state: RateState,
  limits: RateLimits,
  now: number,
  record = true,
): RateDecision {
  const perMs = Math.max(limits.per_minute, 1) / 60_000;
  state.tokens = Math.min(limits.burst, state.tokens + Math.max(0, now - state.refilledAt) * perMs);
  state.refilledAt = Math.max(state.refilledAt, now);
  for (const [i, window] of RATE_WINDOWS.entries()) {
    const limit = window.limit(limits);
    if (limit <= 0) continue;
    const bucketMs = window.ms / RATE_BUCKETS;
    const current = Math.floor(now / bucketMs);
    const buckets = state.windows[i]!;
    let count = 0;
    let oldest = current;
    for (const [bucket, n] of buckets) {
      if (bucket <= current - RATE_BUCKETS) buckets.delete(bucket);
      else {
        count += n;
        oldest = Math.min(oldest, bucket);
      }
    }
    if (count >= limit) {
      return {
        allowed: false,
        limit_type: window.name,
        current_count: count,
        limit,
        retry_after_ms: Math.max(1, (oldest + RATE_BUCKETS) * bucketMs - now),
        remaining: 0,
      };
    }
  }
  if (limits.burst > 0 && state.tokens < 1 - 1e-9) {
    return {
      allowed: false,
      limit_type: 'burst',
      retry_after_ms: Math.max(1, Math.ceil((1 - state.tokens) / perMs)),
      remaining: 0,
    };
  }
  if (record) {
    for (const [i, window] of RATE_WINDOWS.entries()) {
      const bucket = Math.floor(now / (window.ms / RATE_BUCKETS));
      const buckets = state.windows[i]!;
      buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1);
    }
    if (limits.burst > 0) state.tokens -= 1;
  }
  return {
    allowed: true,
    retry_after_ms: 0,
    remaining: Math.max(0, limits.per_minute - minuteCount(state)),
  };
}

/** Requests counted in the current minute window. */
export function minuteCount(state: RateState): number {
  return [...state.windows[0]!.values()].reduce((a, b) => a + b, 0);
}

/** The RATE_LIMITED error for a refused decision. */
export function rateLimitedError(key: string, decision: RateDecision): WardenError {
  return new WardenError(
    'RATE_LIMITED',
    `rate limit (${decision.limit_type}) reached for ${key}; retry in ${decision.retry_after_ms} ms`,
    {
      retryAfterMs: decision.retry_after_ms,
      details: { key, limit_type: decision.limit_type },
    },
  );
}
