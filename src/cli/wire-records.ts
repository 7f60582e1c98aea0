/**
 * The daemon's records are the store's records sent as JSON (tasks and attempts without their
 * lease token), so the renderers of the direct path print them unchanged: these casts only move
 * them from the client's loose wire types to the store's.
 */
import type {
  AttemptRecord as WireAttempt,
  InterruptRecord as WireInterrupt,
  RunRecord as WireRun,
  TaskRecord as WireTask,
} from '../client/index.ts';
import type { AttemptRecord, InterruptRecord, ProcessRecord, TaskRecord } from '../store/index.ts';

/** A task as printed: never its lease token (a credential of the running attempt). */
export type TaskView = Omit<TaskRecord, 'lease_token'>;
export type AttemptView = Omit<AttemptRecord, 'lease_token'>;

export const fromWire = {
  task: (t: WireTask): TaskView => t as unknown as TaskView,
  attempt: (a: WireAttempt): AttemptView => a as unknown as AttemptView,
  run: (r: WireRun): ProcessRecord => r as unknown as ProcessRecord,
  interrupt: (i: WireInterrupt): InterruptRecord => i as unknown as InterruptRecord,
};

export function taskView(t: TaskView | TaskRecord): TaskView {
  const { lease_token: _token, ...rest } = t as TaskRecord;
  return rest;
}

export function attemptView(a: AttemptView | AttemptRecord): AttemptView {
  const { lease_token: _token, ...rest } = a as AttemptRecord;
  return rest;
}
