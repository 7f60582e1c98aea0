/**
 * Whether an unfinished run is being worked on: a run shown as `running` whose step is held by
 * a worker that died (its lease expired, or its process on this machine is gone) is stalled
 * until a worker reclaims the step — `warden resume` does at once.
 */
import { isDeadLocalOwner } from '../kernel/index.ts';
import type { ProcessRecord, Store, TaskRecord } from '../store/index.ts';

export interface RunHealth {
  /** The step's worker is gone: nothing moves the run until a worker takes the step back. */
  readonly stalled: boolean;
  /** Why, for people: e.g. "the worker holding step 2 died (lease expired 12 s ago)". */
  readonly why: string | null;
}

const HEALTHY: RunHealth = { stalled: false, why: null };

export async function runHealth(store: Store, p: ProcessRecord, now: number): Promise<RunHealth> {
  if (p.state !== 'running') return HEALTHY;
  const [step] = await store.listTasks({ processId: p.pid, states: ['running'], limit: 1 });
  return step ? stepHealth(step, now) : HEALTHY;
}

export function stepHealth(
  task: Pick<TaskRecord, 'lease_owner' | 'lease_expires_at'>,
  now: number,
): RunHealth {
  const owner = task.lease_owner ?? 'unknown';
  if (task.lease_owner && isDeadLocalOwner(task.lease_owner))
    return { stalled: true, why: `the worker holding its step (${owner}) has exited` };
  if (task.lease_expires_at !== null && task.lease_expires_at < now) {
    const ago = Math.round((now - task.lease_expires_at) / 1000);
    return {
      stalled: true,
      why: `the worker holding its step (${owner}) stopped renewing its lease ${ago} s ago`,
    };
  }
  return HEALTHY;
}
