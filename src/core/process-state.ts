/**
 * Process lifecycle (DESIGN.md §5), compatible with jeeves `ProcessState`:
 *
 *   new → ready | terminated
 *   ready → running | terminated
 *   running → ready (step done, next queued) | waiting (interrupt) | blocked (resource) | terminated
 *   waiting → ready | terminated
 *   blocked → ready | terminated
 *   terminated → zombie (reaped)
 *
 * Terminating a `running` process needs `force` (cancellation goes through this path with force,
 * because the kernel fences the worker's late report with its lease token).
 */
import { WardenError } from './errors.ts';

export const PROCESS_STATES = [
  'new',
  'ready',
  'running',
  'waiting',
  'blocked',
  'terminated',
  'zombie',
] as const;
export type ProcessState = (typeof PROCESS_STATES)[number];

const LEGAL: Readonly<Record<ProcessState, readonly ProcessState[]>> = {
  new: ['ready', 'terminated'],
  ready: ['running', 'terminated'],
  running: ['ready', 'waiting', 'blocked', 'terminated'],
  waiting: ['ready', 'terminated'],
  blocked: ['ready', 'terminated'],
  terminated: ['zombie'],
  zombie: [],
};

export function isTerminalProcessState(state: ProcessState): boolean {
  return state === 'terminated' || state === 'zombie';
}

export function canTransition(
  from: ProcessState,
  to: ProcessState,
  options: { force?: boolean } = {},
): boolean {
  if (!LEGAL[from].includes(to)) return false;
  if (from === 'running' && to === 'terminated' && options.force !== true) return false;
  return true;
}

/** Throws INVALID_STATE for an illegal transition; returns `to` otherwise. */
export function assertTransition(
  from: ProcessState,
  to: ProcessState,
  options: { force?: boolean; pid?: string } = {},
): ProcessState {
  if (canTransition(from, to, options)) return to;
  const hint =
    from === 'running' && to === 'terminated' ? ' (terminating a running process needs force)' : '';
  throw new WardenError(
    'INVALID_STATE',
    `process${options.pid ? ` ${options.pid}` : ''} cannot go from ${from} to ${to}${hint}`,
    { details: { from, to, ...(options.pid ? { pid: options.pid } : {}) } },
  );
}

/** Scheduling priorities, best first (jeeves `SchedulingPriority`). */
export const PRIORITIES = ['realtime', 'high', 'normal', 'low', 'idle'] as const;
export type Priority = (typeof PRIORITIES)[number];

export function priorityRank(priority: Priority): number {
  return PRIORITIES.indexOf(priority);
}
