/**
 * The queue's hot write paths for the SQLite adapter, run inside a write transaction: claim
 * (one statement per lane, a fresh lease token per task), fenced settles, submit with
 * idempotency and lane depth checks, schedule firing. Measurements that shaped it are in
 * bench/results/queue.md.
 */
import type Database from 'better-sqlite3';

import type { WardenError } from '../../core/index.ts';
import {
  type Row,
  scheduleFromRow,
  taskDataRow,
  taskFromRow,
  taskStateRow,
  toJson,
} from '../rows.ts';
import { boundTaskError, idempotencyConflictError, queueFullError } from '../task-errors.ts';
import {
  claimedEvent,
  keyReleasedEvent,
  newLeaseToken,
  queuedEvent,
  scheduleFailedEvent,
} from '../task-events.ts';
import type {
  ClaimedTask,
  ClaimRequest,
  NewSession,
  ScheduleDefer,
  ScheduleFire,
  ScheduleRecord,
  SettleOutcome,
  SubmitRequest,
  SubmitResult,
  TaskRecord,
  TaskSettle,
} from '../types.ts';
import type { EventBatch, EventLog } from './event-log.ts';
import {
  type StatementName,
  TASK_DATA_COLUMN_COUNT,
  TASK_DATA_COLUMNS,
  TASK_STATE_COLUMN_COUNT,
  TASK_STATE_COLUMNS,
} from './statements.ts';

type Statements = { readonly [K in StatementName]: Database.Statement };

const ALL_KINDS = JSON.stringify(['agent_step', 'job', 'plan_task']);
const INSERT_CHUNK = 32;

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
    const hot = stmt.taskClaimBatch.all({
      owner: request.workerId,
      token: newLeaseToken(),
      expires,
      now: request.now,
      lane,
      kinds,
      limit: room,
    }) as Row[];
    if (hot.length === 0) continue;
    // The hot half came back from the update; the cold half is read by key (no join).
    const cold = new Map<number, Row>();
    for (const row of stmt.taskDataByN.all(JSON.stringify(hot.map((h) => h.n))) as Row[])
      cold.set(row.n as number, row);
    const tasks = hot
      .map((h) => taskFromRow({ ...cold.get(h.n as number), ...h }))
      .sort((a, b) => a.sort_key - b.sort_key || (a.id < b.id ? -1 : 1));
    for (const task of tasks) {
      log.append(batch, claimedEvent(task, task.attempts, expires, request.workerId));
      claimed.push({ task, attempt: task.attempts, leaseToken: task.lease_token! });
    }
  }
  return claimed;
}

/** Inserts tasks (a cold and a hot row each, keyed by the next free n), 32 per statement. */
export function insertTasks(
  db: Database.Database,
  stmt: Statements,
  tasks: readonly TaskRecord[],
): void {
  let n = (stmt.taskMaxN.get() as { n: number }).n;
  let i = 0;
  if (tasks.length >= INSERT_CHUNK) {
    const chunk = chunkInserts(db);
    const data: unknown[] = [];
    const state: unknown[] = [];
    for (; i + INSERT_CHUNK <= tasks.length; i += INSERT_CHUNK) {
      data.length = 0;
      state.length = 0;
      for (let j = i; j < i + INSERT_CHUNK; j++) {
        n += 1;
        taskDataRow(tasks[j]!, n, data);
        taskStateRow(tasks[j]!, n, state);
      }
      chunk.data.run(data);
      chunk.state.run(state);
    }
  }
  for (; i < tasks.length; i++) {
    n += 1;
    stmt.taskDataInsert.run(taskDataRow(tasks[i]!, n));
    stmt.taskStateInsert.run(taskStateRow(tasks[i]!, n));
  }
}

const chunkStatements = new WeakMap<
  Database.Database,
  { data: Database.Statement; state: Database.Statement }
>();
function chunkInserts(db: Database.Database): {
  data: Database.Statement;
  state: Database.Statement;
} {
  let statements = chunkStatements.get(db);
  if (!statements) {
    const values = (width: number) => {
      const row = `(${Array.from({ length: width }, () => '?').join(',')})`;
      return Array.from({ length: INSERT_CHUNK }, () => row).join(',');
    };
    statements = {
      data: db.prepare(
        `INSERT INTO task_data (${TASK_DATA_COLUMNS}) VALUES ${values(TASK_DATA_COLUMN_COUNT)}`,
      ),
      state: db.prepare(
        `INSERT INTO task_state (${TASK_STATE_COLUMNS}) VALUES ${values(TASK_STATE_COLUMN_COUNT)}`,
      ),
    };
    chunkStatements.set(db, statements);
  }
  return statements;
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
  const sessions = request.sessions?.length
    ? new SessionResolver(stmt, log, batch, request.sessions)
    : null;
  for (let task of request.tasks) {
    if (task.idempotency_key !== null) {
      // A key used earlier in this batch always deduplicates: that task is being created now.
      const pending = fresh.find((t) => t.idempotency_key === task.idempotency_key);
      const row = pending
        ? undefined
        : (stmt.taskByIdempotencyKey.get(task.idempotency_key) as Row | undefined);
      const existing = pending ?? (row ? taskFromRow(row) : undefined);
      if (existing) {
        if (pending || request.now - existing.created_at < request.idempotencyWindowMs) {
          if (existing.options.request_hash !== task.options.request_hash) {
            throw idempotencyConflictError(task.idempotency_key, existing.id);
          }
          results.push({ task: existing, deduplicated: true });
          continue;
        }
        // The window has passed: the key is free, and the old task says so in its log.
        stmt.taskClearIdempotencyKey.run(existing.id);
        log.append(batch, keyReleasedEvent(existing, request.idempotencyWindowMs, task.id));
      }
    }
    if (sessions) task = sessions.place(task);
    if (request.fairness && task.available_at <= request.now)
      task = fairKey(stmt, task, request.fairness, fairClocks);
    fresh.push(task);
    log.append(batch, queuedEvent(task));
    results.push({ task, deduplicated: false });
  }
  // Depth is checked for new tasks only: a duplicate submit to a full lane still deduplicates.
  const adding = new Map<string, number>();
  for (const t of fresh) adding.set(t.lane, (adding.get(t.lane) ?? 0) + 1);
  for (const [lane, n] of adding) assertLaneRoom(stmt, lane, n);
  insertTasks(db, stmt, fresh);
  for (const [key, last] of fairClocks) {
    const [lane, sessionId, rank] = key.split('\u0000') as [string, string, string];
    stmt.fairClockSet.run(lane, sessionId, Number(rank), last);
  }
  return results;
}

/**
 * Creates the sessions a submit needs, inside its transaction, the first time a new task uses
 * one (see SubmitRequest.sessions): the existing session with the key wins, else the row is
 * inserted with its `session.created` event (seq 1, before the task's `task.queued`).
 */
class SessionResolver {
  readonly #stmt: Statements;
  readonly #log: EventLog;
  readonly #batch: EventBatch;
  readonly #wanted: ReadonlyMap<string, NewSession>;
  readonly #placed = new Map<string, string>();

  constructor(stmt: Statements, log: EventLog, batch: EventBatch, sessions: readonly NewSession[]) {
    this.#stmt = stmt;
    this.#log = log;
    this.#batch = batch;
    this.#wanted = new Map(sessions.map((s) => [s.row.id, s]));
  }

  /** The task, moved to the real id of the session it names. */
  place(task: TaskRecord): TaskRecord {
    const wanted = this.#wanted.get(task.session_id);
    if (!wanted) return task;
    let id = this.#placed.get(wanted.row.id);
    if (id === undefined) {
      const existing = this.#stmt.sessionByKey.get(wanted.row.key) as Row | undefined;
      if (existing) id = existing.id as string;
      else {
        const row = wanted.row;
        this.#stmt.sessionInsert.run({ ...row, settings: JSON.stringify(row.settings) });
        this.#log.append(this.#batch, {
          session_id: row.id,
          type: 'session.created',
          trace_id: wanted.traceId,
          data: { key: row.key, settings: row.settings },
        });
        id = row.id;
      }
      this.#placed.set(wanted.row.id, id);
    }
    return id === task.session_id ? task : { ...task, session_id: id };
  }
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
  const key = stmt.taskN.get(item.id) as { n: number } | undefined;
  if (!key) return false;
  const error = toJson(boundTaskError(item.error));
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
    n: key.n,
    token: item.leaseToken,
    state: item.state,
    available_at: item.availableAt ?? item.now,
    sort_key: item.sortKey ?? item.availableAt ?? item.now,
    now: item.now,
  });
  stmt.taskSettleData.run({
    n: key.n,
    result: toJson(item.result),
    error,
    options: item.options === undefined ? null : JSON.stringify(item.options),
  });
  return true;
}

interface SettleRead {
  id: string;
  n: number;
  state: string;
  lease_token: string | null;
  lease_expires_at: number | null;
  had_error: number;
}

/**
 * Settles each task fenced by its own token; a stale one is reported, not thrown. Set-based: one
 * read of every task's hot row, the fence checked on it (inside this write transaction nothing
 * else can move the row in between), then one attempts insert and one hot-row update per group
 * of equal outcomes, and a cold-row write only where a result, an error or options change.
 */
export function settleTasks(
  stmt: Statements,
  log: EventLog,
  batch: EventBatch,
  items: readonly TaskSettle[],
  leaseLost: (id: string) => WardenError,
): SettleOutcome[] {
  const read = new Map<string, SettleRead>();
  for (const row of stmt.settleRead.all(JSON.stringify(items.map((i) => i.id))) as SettleRead[])
    read.set(row.id, row);
  const outcomes: SettleOutcome[] = [];
  const applied: TaskSettle[] = [];
  const attempts: unknown[] = [];
  const groups = new Map<string, { item: TaskSettle; ns: number[] }>();
  for (const item of items) {
    const row = read.get(item.id);
    if (
      !row ||
      row.state !== 'running' ||
      row.lease_token !== item.leaseToken ||
      (item.expiredBy !== undefined && (row.lease_expires_at ?? Infinity) > item.expiredBy)
    ) {
      outcomes.push({ id: item.id, ok: false, error: leaseLost(item.id) });
      continue;
    }
    row.state = 'settled'; // the same task twice in one batch: the second is stale
    outcomes.push({ id: item.id, ok: true });
    applied.push(item);
    if (item.attemptOutcome === 'released') {
      settleOne(stmt, item);
      continue;
    }
    const error = toJson(boundTaskError(item.error));
    attempts.push([item.id, row.n, item.now, item.attemptOutcome, error]);
    const availableAt = item.availableAt ?? item.now;
    const sortKey = item.sortKey ?? availableAt;
    const key = `${item.state}\u0000${availableAt}\u0000${sortKey}\u0000${item.now}`;
    const group = groups.get(key);
    if (group) group.ns.push(row.n);
    else groups.set(key, { item, ns: [row.n] });
    const result = toJson(item.result);
    if (result !== null || error !== null || item.options !== undefined || row.had_error)
      stmt.taskSettleData.run({
        n: row.n,
        result,
        error,
        options: item.options === undefined ? null : JSON.stringify(item.options),
      });
  }
  if (attempts.length > 0) stmt.attemptsInsertMany.run(JSON.stringify(attempts));
  for (const { item, ns } of groups.values()) {
    const availableAt = item.availableAt ?? item.now;
    stmt.taskSettleMany.run({
      state: item.state,
      available_at: availableAt,
      sort_key: item.sortKey ?? availableAt,
      now: item.now,
      ns: JSON.stringify(ns),
    });
  }
  for (const item of applied) for (const event of item.events) log.append(batch, event);
  return outcomes;
}

/** QUEUE_FULL (retryable) when `n` more tasks would take `lane` past its declared max depth. */
function assertLaneRoom(stmt: Statements, lane: string, n: number): void {
  const max = (stmt.laneGet.get(lane) as { max_depth: number | null } | undefined)?.max_depth;
  if (max === undefined || max === null) return;
  const depth = (stmt.taskCountQueued.get(lane) as { n: number }).n;
  if (depth + n <= max) return;
  throw queueFullError(lane, depth, max, n);
}

/** Fires one schedule occurrence, compare-and-set on next_run_at (see Store.fireSchedule). */
export function fireSchedule(
  db: Database.Database,
  stmt: Statements,
  log: EventLog,
  batch: EventBatch,
  fire: ScheduleFire,
): TaskRecord | null {
  const row = stmt.scheduleFired.get({
    id: fire.id,
    next: fire.nextRunAt,
    at: fire.expectedNextRunAt,
    task: fire.task.id,
    now: fire.now,
    expected: fire.expectedNextRunAt,
  }) as Row | undefined;
  if (!row) return null; // another process fired or deferred this occurrence first
  assertLaneRoom(stmt, fire.task.lane, 1); // QUEUE_FULL aborts the firing: it is tried again
  insertTasks(db, stmt, [fire.task]);
  log.append(
    batch,
    queuedEvent(fire.task, { schedule: row.name as string, occurrence: fire.expectedNextRunAt }),
  );
  return fire.task;
}

/** Backs off an occurrence that could not fire, with its event (see Store.deferSchedule). */
export function deferSchedule(
  stmt: Statements,
  log: EventLog,
  batch: EventBatch,
  defer: ScheduleDefer,
): ScheduleRecord | null {
  const error = boundTaskError(defer.error);
  const row = stmt.scheduleDeferred.get({
    id: defer.id,
    retry_at: defer.retryAt,
    error: JSON.stringify(error),
    now: defer.now,
    expected: defer.expectedNextRunAt,
  }) as Row | undefined;
  if (!row) return null;
  const schedule = scheduleFromRow(row);
  log.append(batch, scheduleFailedEvent(schedule, defer, error));
  return schedule;
}
