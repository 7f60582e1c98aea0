/**
 * The errors of the queue's write paths, built once for both adapters so SQLite and PostgreSQL
 * fail identically (same code, message and details). Adapters read the task's current row and
 * pass it in; nothing here touches a database.
 */
import { boundedMessage, errors, WardenError } from '../core/index.ts';
import type { TaskError } from './types.ts';

/** The fields of a task's current row these errors report (undefined: the task does not exist). */
export interface TaskNow {
  readonly state?: unknown;
  readonly attempts?: unknown;
}

/** A task error as stored: its message bounded (truncated with a marker, never refused). */
export function boundTaskError<E extends TaskError | null | undefined>(error: E): E {
  if (!error) return error;
  const message = boundedMessage(error.message);
  return message === error.message ? error : { ...error, message };
}

/** LEASE_LOST for a fenced write that did not match (NOT_FOUND when the task is gone). */
export function leaseLostError(taskId: string, current: TaskNow | undefined): WardenError {
  if (!current) return errors.notFound('task', taskId);
  const error = errors.leaseLost(taskId, current.attempts as number);
  return new WardenError('LEASE_LOST', error.message, {
    details: { ...error.details, state: current.state },
  });
}

/** INVALID_STATE for a redrive or purge of a task that is not dead (NOT_FOUND when gone). */
export function notDeadError(
  taskId: string,
  action: 'redrive' | 'purge',
  current: TaskNow | undefined,
): WardenError {
  if (!current) return errors.notFound('task', taskId);
  return errors.invalidState(
    `task ${taskId} is ${String(current.state)}, not dead; only dead tasks can be ${action === 'purge' ? 'purged' : 'redriven'}`,
    { task_id: taskId, state: current.state },
  );
}

/** CONFLICT for a `task.cancel` whose compare-and-set missed (NOT_FOUND when the task is gone). */
export function cancelMissedError(
  taskId: string,
  expected: string,
  current: TaskNow | undefined,
): WardenError {
  if (!current) return errors.notFound('task', taskId);
  return errors.conflict(
    `task ${taskId} is ${String(current.state)} now (it was ${expected}); read it again`,
    { task_id: taskId, state: current.state, expected },
  );
}

/** CONFLICT for a `required` handoff that did not apply. */
export function handoffRefusedError(taskId: string, lane: string): WardenError {
  return errors.conflict(
    `task ${taskId} was not handed off: another due task waits ahead of it in lane '${lane}'`,
    { task_id: taskId, handoff: 'refused' },
  );
}

/** IDEMPOTENCY_CONFLICT: the key names another request (job or payload) within its window. */
export function idempotencyConflictError(key: string, taskId: string): WardenError {
  return new WardenError(
    'IDEMPOTENCY_CONFLICT',
    `idempotency key '${key}' was used for a different job or payload (task ${taskId}); use a new key`,
    { details: { idempotency_key: key, task_id: taskId } },
  );
}

/** QUEUE_FULL (retryable) when `submitted` more tasks would take `lane` past its max depth. */
export function queueFullError(
  lane: string,
  depth: number,
  maxDepth: number,
  submitted: number,
): WardenError {
  return new WardenError(
    'QUEUE_FULL',
    `lane '${lane}' is full (${depth} queued, max depth ${maxDepth}); retry later`,
    {
      retryAfterMs: 1_000,
      details: { lane, depth, max_depth: maxDepth, submitted },
    },
  );
}
