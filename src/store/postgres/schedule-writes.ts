/**
 * Schedules, lanes and services for the PostgreSQL adapter. Firing and deferring an occurrence
 * are compare-and-set on `next_run_at` in the statement that writes it: when two nodes fire the
 * same occurrence at once, the second waits on the first's row lock, re-reads the row (READ
 * COMMITTED re-checks the WHERE on the committed version), finds `next_run_at` moved on and
 * changes nothing — an occurrence fires once across every node.
 */
import { errors } from '../../core/index.ts';
import { type Row, scheduleFromRow, scheduleToParams } from '../rows.ts';
import { boundTaskError } from '../task-errors.ts';
import { queuedEvent, scheduleFailedEvent } from '../task-events.ts';
import type {
  LaneRecord,
  ScheduleDefer,
  ScheduleFire,
  ScheduleRecord,
  ServiceRecord,
  TaskRecord,
} from '../types.ts';
import { assertLaneRoom, insertTasks } from './task-writes.ts';
import type { PgTx } from './tx.ts';

/**
 * Fires one occurrence (see Store.fireSchedule): moves `next_run_at` from `expectedNextRunAt`
 * to `nextRunAt` (resetting failures), inserts the task with its `task.queued` event. Null,
 * changing nothing, when `next_run_at` moved on. QUEUE_FULL (the lane is at its max depth)
 * aborts the firing so it is tried again.
 */
export async function fireSchedule(tx: PgTx, fire: ScheduleFire): Promise<TaskRecord | null> {
  const { rows } = await tx.query<Row>(
    `UPDATE schedules SET next_run_at = $2, last_run_at = $3, last_task_id = $4, failures = 0,
       last_error = NULL, updated_at = $5
     WHERE id = $1 AND next_run_at = $3 RETURNING name`,
    [fire.id, fire.nextRunAt, fire.expectedNextRunAt, fire.task.id, fire.now],
  );
  const row = rows[0];
  if (!row) return null; // another node fired or deferred this occurrence first
  await assertLaneRoom(tx, new Map([[fire.task.lane, 1]]));
  await insertTasks(tx, [fire.task]);
  tx.append(
    queuedEvent(fire.task, { schedule: row.name as string, occurrence: fire.expectedNextRunAt }),
  );
  return fire.task;
}

/**
 * Backs off an occurrence that could not fire (see Store.deferSchedule): compare-and-set
 * `next_run_at` to `retryAt`, one more failure, the error kept, a `schedule.failed` event.
 * Null, changing nothing, when `next_run_at` moved on.
 */
export async function deferSchedule(
  tx: PgTx,
  defer: ScheduleDefer,
): Promise<ScheduleRecord | null> {
  const error = boundTaskError(defer.error);
  const { rows } = await tx.query<Row>(
    `UPDATE schedules SET next_run_at = $2, failures = failures + 1, last_error = $3,
       updated_at = $4
     WHERE id = $1 AND next_run_at = $5 RETURNING *`,
    [defer.id, defer.retryAt, JSON.stringify(error), defer.now, defer.expectedNextRunAt],
  );
  if (!rows[0]) return null;
  const schedule = scheduleFromRow(rows[0]);
  tx.append(scheduleFailedEvent(schedule, defer, error));
  return schedule;
}

const SCHEDULE_COLUMNS = [
  'id',
  'name',
  'kind',
  'expr',
  'job',
  'lane',
  'payload',
  'options',
  'enabled',
  'next_run_at',
  'last_run_at',
  'last_task_id',
  'failures',
  'last_error',
  'created_at',
  'updated_at',
] as const;

/**
 * The `schedule.upsert` op: inserts, or replaces the schedule of that name (its failure count
 * and last error too: a fresh start; its id, creation time and last run stay).
 */
export async function upsertSchedule(tx: PgTx, row: ScheduleRecord): Promise<void> {
  const p = scheduleToParams(row);
  await tx.query(
    `INSERT INTO schedules (${SCHEDULE_COLUMNS.join(', ')})
     VALUES (${SCHEDULE_COLUMNS.map((_, i) => `$${i + 1}`).join(', ')})
     ON CONFLICT (name) DO UPDATE SET kind = excluded.kind, expr = excluded.expr,
       job = excluded.job, lane = excluded.lane, payload = excluded.payload,
       options = excluded.options, enabled = excluded.enabled, next_run_at = excluded.next_run_at,
       failures = excluded.failures, last_error = excluded.last_error,
       updated_at = excluded.updated_at`,
    SCHEDULE_COLUMNS.map((c) => p[c]),
  );
}

/** The `schedule.delete` op: NOT_FOUND when no schedule has that name. */
export async function deleteSchedule(tx: PgTx, name: string): Promise<void> {
  const { rowCount } = await tx.query('DELETE FROM schedules WHERE name = $1', [name]);
  if (rowCount !== 1) throw errors.notFound('schedule', name);
}

/** The `lane.upsert` op: declares a lane's limits (no write when they are already these). */
export async function upsertLane(tx: PgTx, row: LaneRecord): Promise<void> {
  await tx.query(
    `INSERT INTO lanes (name, concurrency, max_depth, updated_at) VALUES ($1, $2, $3, $4)
     ON CONFLICT (name) DO UPDATE SET concurrency = excluded.concurrency,
       max_depth = excluded.max_depth, updated_at = excluded.updated_at
     WHERE lanes.concurrency IS DISTINCT FROM excluded.concurrency
       OR lanes.max_depth IS DISTINCT FROM excluded.max_depth`,
    [row.name, row.concurrency, row.max_depth, row.updated_at],
  );
}

/** The `service.upsert` op: registers a service, or replaces it (keeping `registered_at`). */
export async function upsertService(tx: PgTx, row: ServiceRecord): Promise<void> {
  await tx.query(
    `INSERT INTO services (name, type, capabilities, max_concurrency, owner, health,
       registered_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
     ON CONFLICT (name) DO UPDATE SET type = excluded.type, capabilities = excluded.capabilities,
       max_concurrency = excluded.max_concurrency, owner = excluded.owner,
       health = excluded.health, updated_at = excluded.updated_at`,
    [
      row.name,
      row.type,
      JSON.stringify(row.capabilities),
      row.max_concurrency,
      row.owner,
      row.health,
      row.registered_at,
      row.updated_at,
    ],
  );
}

/** The `service.delete` op: a no-op when the registration is gone already. */
export async function deleteService(tx: PgTx, name: string): Promise<void> {
  await tx.query('DELETE FROM services WHERE name = $1', [name]);
}
