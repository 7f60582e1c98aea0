/**
 * Reclaims job tasks whose lease expired, or whose owner (a worker on this host) is dead: each
 * goes back to `queued` with backoff as a failed attempt, or to `dead` when it is out of
 * attempts. Fenced by the token read, so a worker that completes concurrently wins or loses
 * cleanly. (Workflow steps are reclaimed by the kernel, which also moves their run on.)
 */
import { decideFailure, sortKey } from '../core/index.ts';
import type { NewEvent, Store, TaskRecord, TaskSettle } from '../store/index.ts';

export async function reclaimJobLeases(
  store: Store,
  now: number,
  isDeadOwner: (owner: string) => boolean,
  agingMs: number,
  random: () => number = Math.random,
): Promise<number> {
  const owners = await store.listLeaseOwners();
  const dead = owners.filter(isDeadOwner);
  const expired = (await store.findExpiredLeases(now, dead)).filter((t) => t.kind === 'job');
  if (expired.length === 0) return 0;
  const settles = expired.map((task) =>
    reclaimSettle(task, dead.includes(task.lease_owner ?? ''), now, agingMs, random),
  );
  const outcomes = await store.settleTasks(settles);
  return outcomes.filter((o) => o.ok).length;
}

function reclaimSettle(
  task: TaskRecord,
  ownerDead: boolean,
  now: number,
  agingMs: number,
  random: () => number,
): TaskSettle {
  const error = {
    code: 'LEASE_EXPIRED',
    message: ownerDead
      ? `worker ${task.lease_owner} died holding the lease`
      : `the lease held by ${task.lease_owner} expired`,
    retryable: true,
    fingerprint: 'LEASE_EXPIRED',
  };
  const decision = decideFailure(
    {
      attempt: task.attempts,
      maxAttempts: task.max_attempts,
      retryable: true,
      fingerprint: error.fingerprint,
      previous: task.options.consecutive_fingerprint,
      poisonThreshold: task.options.poison_threshold,
      backoff: {
        base_ms: task.options.backoff_ms,
        max_ms: task.options.max_backoff_ms,
        jitter: 'full',
      },
      countsTowardPoison: false,
    },
    random,
  );
  const base = {
    session_id: task.session_id,
    trace_id: task.trace_id,
    process_id: task.process_id,
    task_id: task.id,
    attempt: task.attempts,
  };
  const events: NewEvent[] = [
    {
      ...base,
      type: 'task.lease_expired',
      data: {
        owner: task.lease_owner,
        why: ownerDead ? 'owner_dead' : 'lease_expired',
        attempt: task.attempts,
      },
    },
  ];
  if (decision.state === 'queued') {
    events.push({
      ...base,
      type: 'task.retry_scheduled',
      data: {
        attempt: task.attempts,
        max_attempts: task.max_attempts,
        delay_ms: decision.delayMs,
        error,
      },
    });
  } else {
    events.push({
      ...base,
      type: 'task.dead',
      data: { attempts: task.attempts, reason: decision.outcome, error },
    });
  }
  return {
    id: task.id,
    leaseToken: task.lease_token!,
    state: decision.state,
    error,
    availableAt: now + decision.delayMs,
    sortKey: sortKey(now + decision.delayMs, task.priority, agingMs),
    attemptOutcome: 'lease_expired',
    now,
    events,
  };
}
