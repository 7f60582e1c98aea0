/**
 * KernelService's process control blocks (reference/jeeves-engine-api.md §4.2–§4.5), pure.
 *
 * A PCB is a Warden process without steps: the row, its state machine (core/process-state.ts),
 * its usage and its events are the kernel's own, so `warden ps`, `warden events` and the
 * ledger see it. What only jeeves knows rides in the envelope's metadata ({@link PcbMeta}).
 */
import type { Priority } from '../process-state.ts';
import { priorityRank } from '../process-state.ts';
import type { JeevesQuota } from './quota.ts';

/** Where a PCB keeps what only jeeves knows: `envelope.metadata.jeeves_pcb`. */
export const PCB_META_KEY = 'jeeves_pcb';

/** The workflow name every PCB carries (so listings can tell PCBs from runs). */
export const PCB_WORKFLOW_NAME = 'jeeves-process';

export interface PcbMeta {
  /** The client's pid (the Warden pid is derived from it and the owner). */
  readonly pid: string;
  /** The authenticated caller the PCB belongs to: another caller cannot name it. */
  readonly owner: string;
  readonly request_id: string;
  /** The jeeves session id (CreateProcess's `session_id`), not a Warden session. */
  readonly session_id: string;
  readonly quota: JeevesQuota;
  readonly inference_requests: number;
  readonly inference_input_chars: number;
  /** When it last entered READY: FIFO order within a priority (§4.3). */
  readonly enqueued_at: number | null;
  readonly last_scheduled_at: number | null;
}

/** A READY PCB as the scheduler sees it. */
export interface RunnableCandidate {
  readonly pid: string;
  readonly priority: Priority;
  readonly enqueuedAt: number;
}

/**
 * The READY process to run next: the best priority, then the earliest enqueued (FIFO — the
 * Rust port popped the newest first: defect 5), then the pid, so the choice is total. No
 * ageing, as in jeeves.
 */
export function nextRunnable<C extends RunnableCandidate>(candidates: readonly C[]): C | undefined {
  let best: C | undefined;
  for (const c of candidates) {
    if (!best || compareRunnable(c, best) < 0) best = c;
  }
  return best;
}

export function compareRunnable(a: RunnableCandidate, b: RunnableCandidate): number {
  return (
    priorityRank(a.priority) - priorityRank(b.priority) ||
    a.enqueuedAt - b.enqueuedAt ||
    (a.pid < b.pid ? -1 : a.pid > b.pid ? 1 : 0)
  );
}

/**
 * Seconds since the PCB was created, until it terminated (computed on read, never stored:
 * defect 12 — Go's elapsed time moved only on RecordUsage).
 */
export function pcbElapsedSeconds(
  createdAt: number,
  completedAt: number | null,
  now: number,
): number {
  return Math.max(0, ((completedAt ?? now) - createdAt) / 1000);
}
