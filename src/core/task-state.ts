/**
 * Task states (DESIGN.md §6). `queued` covers delayed and retry-waiting tasks (their
 * `available_at` lies in the future). Terminal: succeeded, failed, dead, canceled.
 *
 *   queued → running (claim) | canceled | dead (poison/redrive purge)
 *   running → succeeded | failed (non-retryable) | queued (retry, lease expiry) | dead | canceled
 *   dead → queued (redrive)
 */
export const TASK_STATES = [
  'queued',
  'running',
  'succeeded',
  'failed',
  'dead',
  'canceled',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

const LEGAL: Readonly<Record<TaskState, readonly TaskState[]>> = {
  queued: ['running', 'canceled', 'dead'],
  running: ['succeeded', 'failed', 'queued', 'dead', 'canceled'],
  succeeded: [],
  failed: [],
  dead: ['queued'],
  canceled: [],
};

export function canTaskTransition(from: TaskState, to: TaskState): boolean {
  return LEGAL[from].includes(to);
}

export function isTerminalTaskState(state: TaskState): boolean {
  return state === 'succeeded' || state === 'failed' || state === 'dead' || state === 'canceled';
}

export const TASK_KINDS = ['agent_step', 'job', 'plan_task'] as const;
export type TaskKind = (typeof TASK_KINDS)[number];
