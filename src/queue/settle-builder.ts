/**
 * The settle that ends a job attempt, built the same way for every executor: the in-process
 * {@link JobWorker} and remote workers ({@link RemoteWork}). Keeping one builder is what makes
 * retries, backoff, poison detection and dead-lettering identical for both (DESIGN.md §6):
 *
 * - success → `succeeded` with the result and a `task.succeeded` event;
 * - failure → core/failure-policy decides: `failed` (non-retryable), `dead` (poison or out of
 *   attempts) or `queued` again after backoff with full jitter (or the error's retryAfterMs),
 *   with a `task.failed`, `task.dead` or `task.retry_scheduled` event;
 * - a result that cannot be stored (too large, not JSON) fails the attempt without retrying
 *   ({@link oversizedResult}), so it never poisons the settle batch it would ride in.
 *
 * Every settle is fenced by the claim's lease token: the store rejects it (LEASE_LOST) once the
 * lease is gone, and nothing changes.
 */
import {
  assertWithin,
  boundedMessage,
  coerceError,
  decideFailure,
  errorFingerprint,
  type FailureOutcome,
  sortKey,
  type WardenError,
} from '../core/index.ts';
import type { ClaimedTask, TaskError, TaskSettle } from '../store/index.ts';
import { claimEvent } from './claim-events.ts';

/** The queue-wide settings a failure settle depends on. */
export interface FailurePolicyContext {
  /** The queue's ageing step per priority rank (for the retry's claim order). */
  readonly agingMs: number;
  /** Jitter source for the backoff. */
  readonly random: () => number;
}

export interface FailureSettleOptions {
  /** Dead-letter at once whatever the policy says (a job no worker can run). */
  readonly force?: 'dead';
  /** Recorded in the settle's event as `details` (a remote worker's own failure details). */
  readonly details?: Record<string, unknown>;
}

export interface FailureSettle {
  readonly settle: TaskSettle;
  /** Why the task went where it went (failure-policy outcome). */
  readonly reason: FailureOutcome;
  /** The error stored as the task's `last_error`. */
  readonly error: TaskError;
}

/** The settle of a successful attempt: `succeeded`, with the result (undefined → null). */
export function successSettle(
  claim: ClaimedTask,
  result: unknown,
  now: number,
  durationMs: number,
  /** Extra data for the `task.succeeded` event (the handler's notes). */
  notes?: Record<string, unknown>,
): TaskSettle {
  return {
    id: claim.task.id,
    leaseToken: claim.leaseToken,
    state: 'succeeded',
    result: result ?? null,
    attemptOutcome: 'succeeded',
    now,
    events: [
      claimEvent(claim, 'task.succeeded', {
        ...notes,
        attempt: claim.attempt,
        duration_ms: durationMs,
      }),
    ],
  };
}

/** The settle of a failed attempt, as core/failure-policy decides for the task. */
export function failureSettle(
  claim: ClaimedTask,
  error: WardenError,
  now: number,
  policy: FailurePolicyContext,
  options: FailureSettleOptions = {},
): FailureSettle {
  const task = claim.task;
  const fingerprint = errorFingerprint(error.code, error.message);
  const decision = options.force
    ? {
        state: 'dead' as const,
        outcome: 'non_retryable' as const,
        delayMs: 0,
        consecutive: null,
      }
    : decideFailure(
        {
          attempt: claim.attempt,
          maxAttempts: task.max_attempts,
          retryable: error.retryable,
          retryAfterMs: error.retryAfterMs,
          fingerprint,
          previous: task.options.consecutive_fingerprint,
          poisonThreshold: task.options.poison_threshold,
          backoff: {
            base_ms: task.options.backoff_ms,
            max_ms: task.options.max_backoff_ms,
            jitter: 'full',
          },
          countsTowardPoison: true,
        },
        policy.random,
      );
  const taskError: TaskError = {
    code: error.code,
    message: boundedMessage(error.message),
    retryable: error.retryable,
    fingerprint,
  };
  const type =
    decision.state === 'queued'
      ? 'task.retry_scheduled'
      : decision.state === 'dead'
        ? 'task.dead'
        : 'task.failed';
  const settle: TaskSettle = {
    id: task.id,
    leaseToken: claim.leaseToken,
    state: decision.state,
    error: taskError,
    availableAt: now + decision.delayMs,
    sortKey: sortKey(now + decision.delayMs, task.priority, policy.agingMs),
    options: { ...task.options, consecutive_fingerprint: decision.consecutive },
    attemptOutcome: 'failed',
    now,
    events: [
      claimEvent(claim, type, {
        attempt: claim.attempt,
        max_attempts: task.max_attempts,
        reason: decision.outcome,
        delay_ms: decision.delayMs,
        error: taskError,
        ...(options.details ? { details: options.details } : {}),
      }),
    ],
  };
  return { settle, reason: decision.outcome, error: taskError };
}

/** PAYLOAD_TOO_LARGE (or INVALID_PARAMS for a non-JSON value) when a result cannot be stored. */
export function oversizedResult(
  name: string,
  value: unknown,
  maxBytes: number,
): WardenError | undefined {
  try {
    assertWithin(
      `the result of job '${name}'`,
      value,
      maxBytes,
      'return a reference to large data instead, or raise maxResultBytes',
    );
    return undefined;
  } catch (error) {
    return coerceError(error); // both codes are non-retryable: the same result would fail again
  }
}
