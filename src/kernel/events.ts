/** Small helpers that build events for a process or a task, with their correlation ids. */
import type { EventType } from '../core/index.ts';
import type { ProcessRecord, StoreOp, TaskRecord } from '../store/index.ts';

export function processEvent(
  process: Pick<ProcessRecord, 'session_id' | 'trace_id' | 'pid'>,
  type: EventType,
  data: unknown,
  extra: { task_id?: string | null; attempt?: number | null } = {},
): StoreOp {
  return {
    op: 'event',
    event: {
      session_id: process.session_id,
      type,
      trace_id: process.trace_id,
      process_id: process.pid,
      data,
      ...extra,
    },
  };
}

export function taskEvent(
  task: TaskRecord,
  type: EventType,
  data: unknown,
  attempt: number | null = null,
): StoreOp {
  return {
    op: 'event',
    event: {
      session_id: task.session_id,
      type,
      trace_id: task.trace_id,
      process_id: task.process_id,
      task_id: task.id,
      attempt,
      data,
    },
  };
}
