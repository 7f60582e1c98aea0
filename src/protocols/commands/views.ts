/** Records as protocols show them: a task's lease token (its fencing secret) is never shown. */
import type { AttemptRecord, TaskRecord } from '../../store/index.ts';

export type TaskView = Omit<TaskRecord, 'lease_token'>;
export type AttemptView = Omit<AttemptRecord, 'lease_token'>;

export function taskView(task: TaskRecord): TaskView {
  const { lease_token: _secret, ...view } = task;
  return view;
}

export function attemptView(attempt: AttemptRecord): AttemptView {
  const { lease_token: _secret, ...view } = attempt;
  return view;
}
