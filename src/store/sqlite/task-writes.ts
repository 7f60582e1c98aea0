/**
 * The queue's hot write paths for the SQLite adapter, run inside a write transaction: claim
 * (one statement per lane, a fresh lease token per task), fenced settles, submit with
 * idempotency and lane depth checks, schedule firing. Measurements that shaped it are in
 * bench/results/queue.md.
 */
import type Database from 'better-sqlite3';

import { WardenError } from '../../core/index.ts';
import type {
  ClaimedTask,
  ClaimRequest,
  NewEvent,
  ScheduleRecord,
  SettleOutcome,
  SubmitRequest,
  SubmitResult,
  TaskRecord,
  TaskSettle,
} from '../types.ts';
import type { EventBatch, EventLog } from './event-log.ts';
import { type Row, scheduleFromRow, taskFromRow, taskToRow, toJson } from './rows.ts';
import { type StatementName, TASK_COLUMN_COUNT, TASK_COLUMNS } from './statements.ts';

type Statements = { readonly [K in StatementName]: Database.Statement };

const ALL_KINDS = JSON.stringify(['agent_step', 'job', 'plan_task']);
const INSERT_CHUNK = 32;

export function newLeaseToken(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return `lt_${Buffer.from(bytes).toString('base64url')}`;
}

/** Claims up to `limit` due tasks across `lanes` (in order), each with a fresh lease token. */
export function claimTasks(
  stmt: Statements,
  log: EventLog,
  batch: EventBatch,
  request: ClaimRequest,
): ClaimedTask[] {
  if (request.kinds?.length === 0) return [];
  const claimed: ClaimedTask[] = [];
  const kinds = request.kinds ? JSON.stringify(request.kinds) : ALL_KINDS;
  const expires = request.now + request.leaseMs;
  for (const lane of request.lanes) {
    const room = request.limit - claimed.length;
    if (room <= 0) break;
    const rows = stmt.taskClaimBatch.all({
      owner: request.workerId,
      token: newLeaseToken(),
      expires,
      now: request.now,
      lane,
      kinds,
      limit: room,
    }) as Row[];
    const tasks = rows
      .map(taskFromRow)
      .sort((a, b) => a.sort_key - b.sort_key || (a.id < b.id ? -1 : 1));
    for (const task of tasks) {
      log.append(batch, {
        session_id: task.session_id,
        type: 'task.claimed',
        trace_id: task.trace_id,
        process_id: task.process_id,
        task_id: task.id,
        attempt: task.attempts,
        data: { lane: task.lane, worker_id: request.workerId, lease_expires_at: expires },
      });
      claimed.push({ task, attempt: task.attempts, leaseToken: task.lease_token! });
    }
  }
  return claimed;
}

/** Inserts task rows, 32 per statement. */
export function insertTasks(
  db: Database.Database,
  stmt: Statements,
  tasks: readonly TaskRecord[],
): void {
  let i = 0;
  if (tasks.length >= INSERT_CHUNK) {
    const chunk = chunkInsert(db);
    for (; i + INSERT_CHUNK <= tasks.length; i += INSERT_CHUNK)
      chunk.run(tasks.slice(i, i + INSERT_CHUNK).flatMap(taskToRow));
  }
  for (; i < tasks.length; i++) stmt.taskInsert.run(taskToRow(tasks[i]!));
}

const chunkStatements = new WeakMap<Database.Database, Database.Statement>();
function chunkInsert(db: Database.Database): Database.Statement {
  let statement = chunkStatements.get(db);
  if (!statement) {
    const row = `(${Array.from({ length: TASK_COLUMN_COUNT }, () => '?').join(',')})`;
    statement = db.prepare(
      `INSERT INTO tasks (${TASK_COLUMNS}) VALUES ${Array.from({ length: INSERT_CHUNK }, () => row).join(',')}`,
    );
    chunkStatements.set(db, statement);
  }
  return statement;
}

/** Inserts tasks with idempotency and lane depth checks (see Store.submitTasks). */
export function submitTasks(
  db: Database.Database,
  stmt: Statements,
  log: EventLog,
  batch: EventBatch,
  request: SubmitRequest,
): SubmitResult[] {
  const results: SubmitResult[] = [];
  const fresh: TaskRecord[] = [];
  const fairClocks = new Map<string, number>();
  for (let task of request.tasks) {
    if (task.idempotency_key !== null) {
      const row = stmt.taskByIdempotencyKey.get(task.idempotency_key) as Row | undefined;
      const pending = fresh.find((t) => t.idempotency_key === task.idempotency_key);
      const existing = pending ?? (row ? taskFromRow(row) : undefined);
      if (existing) {
        if (request.now - existing.created_at < request.idempotencyWindowMs) {
          if (existing.options.request_hash !== task.options.request_hash) {
            throw new WardenError(
              'IDEMPOTENCY_CONFLICT',
              `idempotency key '${task.idempotency_key}' was used for a different job or payload (task ${existing.id}); use a new key`,
              { details: { idempotency_key: task.idempotency_key, task_id: existing.id } },
            );
          }
          results.push({ task: existing, deduplicated: true });
          continue;
        }
        stmt.taskClearIdempotencyKey.run(existing.id); // the window has passed: the key is free
      }
    }
    if (request.fairness && task.available_at <= request.now)
      task = fairKey(stmt, task, request.fairness, fairClocks);
    fresh.push(task);
    log.append(batch, queuedEvent(task));
    results.push({ task, deduplicated: false });
  }
  // Depth is checked for new tasks only: a duplicate submit to a full lane still deduplicates.
  {
    const adding = new Map<string, number>();
    for (const t of fresh) adding.set(t.lane, (adding.get(t.lane) ?? 0) + 1);
    for (const [lane, n] of adding) {
      const max =
        request.maxDepth?.[lane] ??
        (stmt.laneGet.get(lane) as { max_depth: number | null } | undefined)?.max_depth;
      if (max === undefined || max === null) continue;
      const depth = (stmt.taskCountQueued.get(lane) as { n: number }).n;
      if (depth + n > max) {
        throw new WardenError(
          'QUEUE_FULL',
          `lane '${lane}' is full (${depth} queued, max depth ${max}); retry later`,
          {
            retryAfterMs: 1_000,
            details: { lane, depth, max_depth: max, submitted: n },
          },
        );
      }
    }
  }
  insertTasks(db, stmt, fresh);
  for (const [key, last] of fairClocks) {
    const [lane, sessionId, rank] = key.split('\u0000') as [string, string, string];
    stmt.fairClockSet.run(lane, sessionId, Number(rank), last);
  }
  return results;
}

/** Gives a due task its session's next virtual start time (start-time fair queueing). */
function fairKey(
  stmt: Statements,
  task: TaskRecord,
  fairness: { quantumMs: number; agingMs: number },
  clocks: Map<string, number>,
): TaskRecord {
  const key = `${task.lane}\u0000${task.session_id}\u0000${task.priority}`;
  let last = clocks.get(key);
  if (last === undefined)
    last =
      (
        stmt.fairClockGet.get(task.lane, task.session_id, task.priority) as
          { last_key: number } | undefined
      )?.last_key ?? -Infinity;
  const start = Math.max(task.available_at, last + fairness.quantumMs);
  clocks.set(key, start);
  return { ...task, sort_key: start + task.priority * fairness.agingMs };
}

/** Ends a running attempt, fenced by its token: records the attempt and moves the task. */
export function settleOne(stmt: Statements, item: Omit<TaskSettle, 'events'>): boolean {
  if (item.attemptOutcome === 'released') {
    return (
      stmt.taskRelease.run({
        id: item.id,
        token: item.leaseToken,
        available_at: item.availableAt ?? item.now,
        sort_key: item.sortKey ?? item.availableAt ?? item.now,
        now: item.now,
      }).changes === 1
    );
  }
  const error = toJson(item.error);
  if (
    stmt.attemptFromTask.run({
      id: item.id,
      token: item.leaseToken,
      now: item.now,
      outcome: item.attemptOutcome,
      error,
      expired_by: item.expiredBy ?? null,
    }).changes !== 1
  )
    return false;
  stmt.taskSettle.run({
    id: item.id,
    token: item.leaseToken,
    state: item.state,
    result: toJson(item.result),
    error,
    available_at: item.availableAt ?? item.now,
    sort_key: item.sortKey ?? item.availableAt ?? item.now,
    options: item.options === undefined ? null : JSON.stringify(item.options),
    now: item.now,
  });
  return true;
}

/** Settles each task fenced by its own token; a stale one is reported, not thrown. */
export function settleTasks(
  stmt: Statements,
  log: EventLog,
  batch: EventBatch,
  items: readonly TaskSettle[],
  leaseLost: (id: string) => WardenError,
): SettleOutcome[] {
  return items.map((item) => {
    if (!settleOne(stmt, item)) return { id: item.id, ok: false, error: leaseLost(item.id) };
    for (const event of item.events) log.append(batch, event);
    return { id: item.id, ok: true };
  });
}

/** The `task.queued` event of a new task. */
function queuedEvent(task: TaskRecord, extra: Record<string, unknown> = {}): NewEvent {
  return {
    session_id: task.session_id,
    type: 'task.queued',
    trace_id: task.trace_id,
    process_id: task.process_id,
    task_id: task.id,
    data: {
      kind: task.kind,
      name: task.name,
      lane: task.lane,
      priority: task.priority,
      available_at: task.available_at,
      ...extra,
    },
  };
}

/** Fires due schedules (see Store.fireSchedules). */
export function fireSchedules(
  db: Database.Database,
  stmt: Statements,
  log: EventLog,
  batch: EventBatch,
  now: number,
  fire: (schedule: ScheduleRecord) => { task: TaskRecord; nextRunAt: number },
): TaskRecord[] {
  const fired: TaskRecord[] = [];
  for (const row of stmt.scheduleDue.all(now) as Row[]) {
    const schedule = scheduleFromRow(row);
    const { task, nextRunAt } = fire(schedule);
    const moved = stmt.scheduleFired.run({
      id: schedule.id,
      next: nextRunAt,
      at: schedule.next_run_at,
      task: task.id,
      now,
      expected: schedule.next_run_at,
    });
    if (moved.changes !== 1) continue; // another process fired this occurrence first
    insertTasks(db, stmt, [task]);
    log.append(
      batch,
      queuedEvent(task, { schedule: schedule.name, occurrence: schedule.next_run_at }),
    );
    fired.push(task);
  }
  return fired;
}
