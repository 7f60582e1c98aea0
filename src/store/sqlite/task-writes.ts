/**
 * The queue's hot write paths for the SQLite adapter, run inside a write transaction: claim
 * (atomic, with a fresh lease token per task), batched settle and heartbeat, submit with
 * idempotency and lane depth checks.
 */
import type Database from 'better-sqlite3';

import { WardenError } from '../../core/index.ts';
import type {
  ClaimedTask,
  ClaimRequest,
  ScheduleRecord,
  SettleOutcome,
  SubmitRequest,
  SubmitResult,
  TaskRecord,
  TaskSettle,
} from '../types.ts';
import type { EventBatch, EventLog } from './event-log.ts';
import { type Row, scheduleFromRow, taskFromRow, taskToParams, toJson } from './rows.ts';
import type { StatementName } from './statements.ts';

type Statements = { readonly [K in StatementName]: Database.Statement };

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
  const kinds = request.kinds ? JSON.stringify(request.kinds) : null;
  const expires = request.now + request.leaseMs;
  for (const lane of request.lanes) {
    const room = request.limit - claimed.length;
    if (room <= 0) break;
    const ids = (
      kinds
        ? stmt.taskDueOfKinds.all(lane, request.now, kinds, room)
        : stmt.taskDue.all(lane, request.now, room)
    ) as Array<{ id: string }>;
    for (const { id } of ids) {
      const token = newLeaseToken();
      const row = stmt.taskClaim.get({
        id,
        owner: request.workerId,
        token,
        expires,
        now: request.now,
      }) as Row | undefined;
      if (!row) continue;
      const task = taskFromRow(row);
      stmt.attemptInsert.run(task.id, task.attempts, token, request.workerId, request.now);
      log.append(batch, {
        session_id: task.session_id,
        type: 'task.claimed',
        trace_id: task.trace_id,
        process_id: task.process_id,
        task_id: task.id,
        attempt: task.attempts,
        data: { lane: task.lane, worker_id: request.workerId, lease_expires_at: expires },
      });
      claimed.push({ task, attempt: task.attempts, leaseToken: token });
    }
  }
  return claimed;
}

/** Inserts tasks with idempotency and lane depth checks (see Store.submitTasks). */
export function submitTasks(
  stmt: Statements,
  log: EventLog,
  batch: EventBatch,
  request: SubmitRequest,
): SubmitResult[] {
  if (request.maxDepth) {
    const adding = new Map<string, number>();
    for (const t of request.tasks) adding.set(t.lane, (adding.get(t.lane) ?? 0) + 1);
    for (const [lane, n] of adding) {
      const max = request.maxDepth[lane];
      if (max === undefined) continue;
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
  const results: SubmitResult[] = [];
  for (const task of request.tasks) {
    if (task.idempotency_key !== null) {
      const row = stmt.taskByIdempotencyKey.get(task.idempotency_key) as Row | undefined;
      if (row) {
        const existing = taskFromRow(row);
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
    stmt.taskInsert.run(taskToParams(task));
    log.append(batch, {
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
      },
    });
    results.push({ task, deduplicated: false });
  }
  return results;
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
    const row = stmt.taskSettle.get({
      id: item.id,
      token: item.leaseToken,
      state: item.state,
      result: toJson(item.result),
      error: toJson(item.error),
      available_at: item.availableAt ?? item.now,
      sort_key: item.sortKey ?? item.availableAt ?? item.now,
      options: item.options === undefined ? null : JSON.stringify(item.options),
      now: item.now,
    }) as Row | undefined;
    if (!row) return { id: item.id, ok: false, error: leaseLost(item.id) };
    stmt.attemptFinish.run(
      item.now,
      item.attemptOutcome,
      toJson(item.error),
      item.id,
      item.leaseToken,
    );
    for (const event of item.events) log.append(batch, event);
    return { id: item.id, ok: true };
  });
}

/** Fires due schedules (see Store.fireSchedules). */
export function fireSchedules(
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
    stmt.taskInsert.run(taskToParams(task));
    log.append(batch, {
      session_id: task.session_id,
      type: 'task.queued',
      trace_id: task.trace_id,
      task_id: task.id,
      data: {
        kind: task.kind,
        name: task.name,
        lane: task.lane,
        priority: task.priority,
        available_at: task.available_at,
        schedule: schedule.name,
        occurrence: schedule.next_run_at,
      },
    });
    fired.push(task);
  }
  return fired;
}
