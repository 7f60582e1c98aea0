/** Events and settles about a claimed task, shared by the job worker and the step worker. */
import type { EventType } from '../core/index.ts';
import type { ClaimedTask, NewEvent, TaskSettle } from '../store/index.ts';

/** An event about a claimed task, on its attempt. */
export function claimEvent(claim: ClaimedTask, type: EventType, data: unknown): NewEvent {
  const t = claim.task;
  return {
    session_id: t.session_id,
    type,
    trace_id: t.trace_id,
    process_id: t.process_id,
    task_id: t.id,
    attempt: claim.attempt,
    data,
  };
}

/**
 * Hands a claim that never ran back to the queue, in its place (same due time and order): the
 * claim does not count as an attempt, and a `task.released` event says why.
 */
export function releaseSettle(claim: ClaimedTask, now: number, reason: string): TaskSettle {
  const task = claim.task;
  return {
    id: task.id,
    leaseToken: claim.leaseToken,
    state: 'queued',
    availableAt: task.available_at,
    sortKey: task.sort_key,
    attemptOutcome: 'released',
    now,
    events: [claimEvent(claim, 'task.released', { reason })],
  };
}
