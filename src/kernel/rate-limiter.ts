/**
 * Per-key rate limits (DESIGN.md §5): sliding windows (minute, hour, day) of ten sub-buckets
 * each, plus a token-bucket burst limit. A refused request is not recorded and gets
 * `RATE_LIMITED` with `retry_after_ms`. In memory: limits protect this process's resources and
 * reset on restart (documented).
 */
import { type Clock, WardenError } from '../core/index.ts';

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

const WINDOWS = [
  { name: 'minute', ms: 60_000, limit: (l: RateLimits) => l.per_minute },
  { name: 'hour', ms: 3_600_000, limit: (l: RateLimits) => l.per_hour },
  { name: 'day', ms: 86_400_000, limit: (l: RateLimits) => l.per_day },
] as const;
const BUCKETS = 10;

interface KeyState {
  readonly windows: Array<Map<number, number>>;
  tokens: number;
  refilledAt: number;
}

export interface RateDecision {
  readonly allowed: boolean;
  readonly limit_type?: 'minute' | 'hour' | 'day' | 'burst';
  readonly retry_after_ms: number;
  readonly remaining: number;
}

export class RateLimiter {
  readonly #clock: Clock;
  readonly #defaults: RateLimits;
  readonly #overrides = new Map<string, RateLimits>();
  readonly #state = new Map<string, KeyState>();

  constructor(clock: Clock, defaults: RateLimits = DEFAULT_RATE_LIMITS) {
    this.#clock = clock;
    this.#defaults = defaults;
  }

  setLimits(key: string, limits: RateLimits): void {
    this.#overrides.set(key, limits);
  }

  /** Checks and, when allowed and `record` is true, records one request. */
  check(key: string, record = true): RateDecision {
    const now = this.#clock.now();
    const limits = this.#overrides.get(key) ?? this.#defaults;
    const state = this.#stateFor(key, limits, now);
    this.#refill(state, limits, now);
    for (const [i, window] of WINDOWS.entries()) {
      const limit = window.limit(limits);
      if (limit <= 0) continue;
      const bucketMs = window.ms / BUCKETS;
      const current = Math.floor(now / bucketMs);
      const buckets = state.windows[i]!;
      let count = 0;
      let oldest = current;
      for (const [bucket, n] of buckets) {
        if (bucket <= current - BUCKETS) buckets.delete(bucket);
        else {
          count += n;
          oldest = Math.min(oldest, bucket);
        }
      }
      if (count >= limit) {
        return {
          allowed: false,
          limit_type: window.name,
          retry_after_ms: Math.max(1, (oldest + BUCKETS) * bucketMs - now),
          remaining: 0,
        };
      }
    }
    if (limits.burst > 0 && state.tokens < 1 - 1e-9) {
      const perMs = Math.max(limits.per_minute, 1) / 60_000;
      return {
        allowed: false,
        limit_type: 'burst',
        retry_after_ms: Math.max(1, Math.ceil((1 - state.tokens) / perMs)),
        remaining: 0,
      };
    }
    if (record) {
      for (const [i, window] of WINDOWS.entries()) {
        const bucket = Math.floor(now / (window.ms / BUCKETS));
        const buckets = state.windows[i]!;
        buckets.set(bucket, (buckets.get(bucket) ?? 0) + 1);
      }
      if (limits.burst > 0) state.tokens -= 1;
    }
    const minuteCount = [...state.windows[0]!.values()].reduce((a, b) => a + b, 0);
    return {
      allowed: true,
      retry_after_ms: 0,
      remaining: Math.max(0, limits.per_minute - minuteCount),
    };
  }

  /** Like {@link check}, but throws RATE_LIMITED when refused. */
  take(key: string): void {
    const decision = this.check(key);
    if (!decision.allowed) {
      throw new WardenError(
        'RATE_LIMITED',
        `rate limit (${decision.limit_type}) reached for ${key}; retry in ${decision.retry_after_ms} ms`,
        {
          retryAfterMs: decision.retry_after_ms,
          details: { key, limit_type: decision.limit_type },
        },
      );
    }
  }

  #stateFor(key: string, limits: RateLimits, now: number): KeyState {
    let state = this.#state.get(key);
    if (!state) {
      state = {
        windows: WINDOWS.map(() => new Map<number, number>()),
        tokens: limits.burst,
        refilledAt: now,
      };
      this.#state.set(key, state);
    }
    return state;
  }

  #refill(state: KeyState, limits: RateLimits, now: number): void {
    const perMs = Math.max(limits.per_minute, 1) / 60_000;
    state.tokens = Math.min(limits.burst, state.tokens + (now - state.refilledAt) * perMs);
    state.refilledAt = now;
  }

  /** Usage snapshot for system status. */
  usage(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, state] of this.#state)
      out[key] = [...state.windows[0]!.values()].reduce((a, b) => a + b, 0);
    return out;
  }
}
