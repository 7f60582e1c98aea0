/**
 * What happens to a task whose attempt failed (DESIGN.md §6), as a pure decision:
 *
 * 1. a non-retryable failure ends the task in `failed`;
 * 2. the same error fingerprint `poison_threshold` times in a row dead-letters it early
 *    ("poison"), even with attempts left;
 * 3. a task out of attempts goes to `dead`;
 * 4. otherwise it is re-queued after capped exponential backoff with full jitter (or after the
 *    handler's own `retry_after_ms`).
 *
 * Lease expiries count as failed attempts (so a crash loop ends in `dead`) but do not count
 * toward poison: an external kill says nothing about the task.
 */
import { backoffDelayMs, type BackoffPolicy } from './backoff.ts';

export interface FailureInput {
  /** The attempt that failed (1-based). */
  readonly attempt: number;
  readonly maxAttempts: number;
  readonly retryable: boolean;
  /** A delay the handler asked for (RetryAfter); used instead of backoff. */
  readonly retryAfterMs?: number | undefined;
  readonly fingerprint: string;
  readonly previous: { readonly fingerprint: string; readonly count: number } | null | undefined;
  /** 0 disables poison detection. */
  readonly poisonThreshold: number;
  readonly backoff: BackoffPolicy;
  readonly countsTowardPoison: boolean;
}

export type FailureOutcome = 'retry' | 'non_retryable' | 'poison' | 'attempts_exhausted';

export interface FailureDecision {
  readonly state: 'queued' | 'failed' | 'dead';
  readonly outcome: FailureOutcome;
  readonly delayMs: number;
  readonly consecutive: { readonly fingerprint: string; readonly count: number } | null;
}

export function decideFailure(
  input: FailureInput,
  random: () => number = Math.random,
): FailureDecision {
  const consecutive = input.countsTowardPoison
    ? {
        fingerprint: input.fingerprint,
        count: input.previous?.fingerprint === input.fingerprint ? input.previous.count + 1 : 1,
      }
    : (input.previous ?? null);
  if (!input.retryable)
    return { state: 'failed', outcome: 'non_retryable', delayMs: 0, consecutive };
  if (
    input.countsTowardPoison &&
    input.poisonThreshold > 0 &&
    consecutive !== null &&
    consecutive.count >= input.poisonThreshold
  ) {
    return { state: 'dead', outcome: 'poison', delayMs: 0, consecutive };
  }
  if (input.attempt >= input.maxAttempts)
    return { state: 'dead', outcome: 'attempts_exhausted', delayMs: 0, consecutive };
  const delayMs =
    input.retryAfterMs !== undefined && input.retryAfterMs >= 0
      ? Math.min(input.retryAfterMs, input.backoff.max_ms)
      : backoffDelayMs(input.backoff, input.attempt, random);
  return { state: 'queued', outcome: 'retry', delayMs, consecutive };
}

/** A stable fingerprint of a failure: its code and message with numbers and ids masked. */
export function errorFingerprint(code: string, message: string): string {
  const masked = message
    .replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/gi, '<uuid>')
    .replace(/\b[0-9a-f]{16,}\b/gi, '<hex>')
    .replace(/\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{6,}\b/gi, '<hex>') // short hex ids (not plain numbers)
    .replace(/\d+/g, '#');
  return `${code}:${masked.slice(0, 200)}`;
}
