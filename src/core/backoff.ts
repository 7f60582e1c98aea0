/**
 * Retry delays: capped exponential backoff with full jitter (AWS architecture blog, "Exponential
 * Backoff and Jitter"): delay = random(0, min(cap, base · 2^(attempt-1))). `random` is injected so
 * tests can pin it.
 */
export interface BackoffPolicy {
  readonly base_ms: number;
  readonly max_ms: number;
  /** `full` jitter draws uniformly in [0, ceiling]; `none` returns the ceiling. */
  readonly jitter: 'full' | 'none';
}

export const DEFAULT_BACKOFF: BackoffPolicy = Object.freeze({
  base_ms: 1_000,
  max_ms: 300_000,
  jitter: 'full',
});

/** The ceiling for the delay after failed attempt number `attempt` (1-based). */
export function backoffCeilingMs(policy: BackoffPolicy, attempt: number): number {
  const exp = Math.min(attempt - 1, 52);
  return Math.min(policy.max_ms, policy.base_ms * 2 ** exp);
}

export function backoffDelayMs(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const ceiling = backoffCeilingMs(policy, attempt);
  return policy.jitter === 'none' ? ceiling : Math.floor(random() * (ceiling + 1));
}
