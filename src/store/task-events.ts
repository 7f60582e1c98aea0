/**
 * The events and lease tokens the queue's write paths produce, built once for both adapters so
 * their logs are identical. Data keys are in canonical (sorted) order: hashed natively (see
 * canonicalJson).
 */
import type { NewEvent, ScheduleRecord, TaskError, TaskRecord } from './types.ts';

/** A fresh random lease token base (`lt_` + 16 base64url characters). */
export function newLeaseToken(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return `lt_${Buffer.from(bytes).toString('base64url')}`;
}

/** The `task.queued` event of a new task (`extra`: schedule firings add theirs). */
export function queuedEvent(task: TaskRecord, extra: Record<string, unknown> = {}): NewEvent {
  return {
    session_id: task.session_id,
    type: 'task.queued',
    trace_id: task.trace_id,
    process_id: task.process_id,
    task_id: task.id,
    data: {
      available_at: task.available_at,
      kind: task.kind,
      lane: task.lane,
      name: task.name,
      priority: task.priority,
      ...extra,
    },
  };
}

/** The `task.claimed` event of a claim (`handoff`: claimed by a `task.handoff` op). */
export function claimedEvent(
  task: TaskRecord,
  attempt: number,
  leaseExpiresAt: number,
  workerId: string,
  handoff = false,
): NewEvent {
  return {
    session_id: task.session_id,
    type: 'task.claimed',
    trace_id: task.trace_id,
    process_id: task.process_id,
    task_id: task.id,
    attempt,
    data: handoff
      ? { handoff: true, lane: task.lane, lease_expires_at: leaseExpiresAt, worker_id: workerId }
      : { lane: task.lane, lease_expires_at: leaseExpiresAt, worker_id: workerId },
  };
}

/** The `task.idempotency_key_released` event of an old task whose key a new one reuses. */
export function keyReleasedEvent(
  existing: TaskRecord,
  windowMs: number,
  reusedBy: string,
): NewEvent {
  return {
    session_id: existing.session_id,
    type: 'task.idempotency_key_released',
    trace_id: existing.trace_id,
    process_id: existing.process_id,
    task_id: existing.id,
    data: {
      idempotency_key: existing.idempotency_key,
      created_at: existing.created_at,
      window_ms: windowMs,
      reused_by: reusedBy,
    },
  };
}

/** The `schedule.failed` event of a deferred occurrence. */
export function scheduleFailedEvent(
  schedule: ScheduleRecord,
  defer: {
    readonly sessionId: string;
    readonly traceId: string;
    readonly expectedNextRunAt: number;
    readonly retryAt: number;
  },
  error: TaskError,
): NewEvent {
  return {
    session_id: defer.sessionId,
    type: 'schedule.failed',
    trace_id: defer.traceId,
    data: {
      name: schedule.name,
      job: schedule.job,
      lane: schedule.lane,
      occurrence: defer.expectedNextRunAt,
      error,
      failures: schedule.failures,
      retry_at: defer.retryAt,
    },
  };
}
