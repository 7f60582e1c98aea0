/**
 * Per-key rate limits held in this process's memory (the arithmetic is core/rate-limit.ts).
 * They protect this process's own resources and reset on restart; limits that must hold across
 * processes (starting runs per user) use the store's shared windows instead (`rate.take`).
 */
import {
  checkRate,
  type Clock,
  DEFAULT_RATE_LIMITS,
  minuteCount,
  newRateState,
  type RateDecision,
  rateLimitedError,
  type RateLimits,
  type RateState,
} from '../core/index.ts';

export { DEFAULT_RATE_LIMITS, type RateDecision, type RateLimits };

export class RateLimiter {
  readonly #clock: Clock;
  readonly #defaults: RateLimits;
  readonly #overrides = new Map<string, RateLimits>();
  readonly #state = new Map<string, RateState>();

  constructor(clock: Clock, defaults: RateLimits = DEFAULT_RATE_LIMITS) {
    this.#clock = clock;
    this.#defaults = defaults;
  }

  setLimits(key: string, limits: RateLimits): void {
    this.#overrides.set(key, limits);
  }

  /** The limits that apply to `key`. */
  limitsFor(key: string): RateLimits {
    return this.#overrides.get(key) ?? this.#defaults;
  }

  /** Checks and, when allowed and `record` is true, records one request. */
  check(key: string, record = true): RateDecision {
    const now = this.#clock.now();
    const limits = this.limitsFor(key);
    let state = this.#state.get(key);
    if (!state) this.#state.set(key, (state = newRateState(limits, now)));
    return checkRate(state, limits, now, record);
  }

  /** Like {@link check}, but throws RATE_LIMITED when refused. */
  take(key: string): void {
    const decision = this.check(key);
    if (!decision.allowed) throw rateLimitedError(key, decision);
  }

  /** Usage snapshot for system status. */
  usage(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const [key, state] of this.#state) out[key] = minuteCount(state);
    return out;
  }
}
