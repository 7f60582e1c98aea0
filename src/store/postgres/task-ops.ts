/**
 * The PostgreSQL adapter's queue operations in one place for PostgresStore: the task, schedule,
 * lane and service ops of `Store.commit` ({@link applyTaskOp}) and the queue's own methods.
 * The work is in task-writes.ts (claim, submit), task-settle.ts (fenced writes),
 * schedule-writes.ts and task-reads.ts.
 */
import { WardenError } from '../../core/index.ts';
import type { StoreOp } from '../types.ts';
import {
  deferSchedule,
  deleteSchedule,
  deleteService,
  fireSchedule,
  upsertLane,
  upsertSchedule,
  upsertService,
} from './schedule-writes.ts';
import {
  countQueued,
  countTasksByState,
  findExpiredLeases,
  listAttempts,
  listDueSchedules,
  listLanes,
  listLeaseOwners,
  listSchedules,
  listServices,
  nextDue,
  nextLeaseExpiry,
  queueDepths,
} from './task-reads.ts';
import {
  cancelTask,
  fenceTask,
  handoffTask,
  heartbeatOne,
  heartbeatTasks,
  leaseLostError,
  notDeadError,
  purgeTask,
  redriveTask,
  settleOne,
  settleTasks,
} from './task-settle.ts';
import { claimTasks, insertTasks, submitTasks } from './task-writes.ts';
import type { PgTx } from './tx.ts';

/** The ops of `Store.commit` this module applies. */
export type TaskStoreOp = Extract<
  StoreOp,
  {
    op:
      | 'task.insert'
      | 'task.settle'
      | 'task.cancel'
      | 'task.fence'
      | 'task.handoff'
      | 'task.redrive'
      | 'task.purge'
      | 'schedule.upsert'
      | 'schedule.delete'
      | 'lane.upsert'
      | 'service.upsert'
      | 'service.delete';
  }
>;

/** Applies one task, schedule, lane or service op inside a commit's transaction. */
export async function applyTaskOp(tx: PgTx, op: TaskStoreOp): Promise<void> {
  switch (op.op) {
    case 'task.insert':
      return insertTasks(tx, [op.row]);
    case 'task.settle':
      if (!(await settleOne(tx, op))) throw await leaseLostError(tx, op.id);
      return;
    case 'task.cancel':
      return cancelTask(tx, op);
    case 'task.fence':
      return fenceTask(tx, op);
    case 'task.handoff':
      return handoffTask(tx, op);
    case 'task.redrive':
      return redriveTask(tx, op);
    case 'task.purge':
      return purgeTask(tx, op);
    case 'schedule.upsert':
      return upsertSchedule(tx, op.row);
    case 'schedule.delete':
      return deleteSchedule(tx, op.name);
    case 'lane.upsert':
      return upsertLane(tx, op.row);
    case 'service.upsert':
      return upsertService(tx, op.row);
    case 'service.delete':
      return deleteService(tx, op.name);
    default: {
      const never: never = op;
      throw new WardenError('INTERNAL', `unknown store op ${JSON.stringify(never)}`);
    }
  }
}

/** Everything above, by the names PostgresStore calls. */
export const taskOps = {
  apply: applyTaskOp,
  claim: claimTasks,
  submit: submitTasks,
  settle: settleTasks,
  heartbeat: heartbeatTasks,
  heartbeatOne,
  leaseLost: leaseLostError,
  notDead: notDeadError,
  fireSchedule,
  deferSchedule,
  countQueued,
  countByState: countTasksByState,
  queueDepths,
  nextDue,
  nextLeaseExpiry,
  listLanes,
  listServices,
  listSchedules,
  listDueSchedules,
  findExpiredLeases,
  listLeaseOwners,
  listAttempts,
} as const;
