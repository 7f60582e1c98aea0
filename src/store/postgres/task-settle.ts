/**
 * Fenced writes on running tasks for the PostgreSQL adapter: settles, heartbeats, cancel,
 * fence, handoff, redrive and purge, inside one READ COMMITTED transaction ({@link PgTx}).
 *
 * Every guard is compare-and-set in the statement that writes, or a read under a row lock that
 * lasts until commit — never a plain read followed by a write: another node may settle, reclaim
 * or cancel the same task at any moment, and a write that trusted a stale read would settle a
 * task twice or steal a live lease.
 * - A single settle (`task.settle`) is one statement: the task row is locked and checked
 *   (running, this token, and for a reclaim an expired lease) and, only if it matches, updated
 *   and its attempt recorded from the pre-update values.
 * - A batch settle locks every task it names with `SELECT … ORDER BY id FOR UPDATE` (a
 *   deterministic lock order: two batches never deadlock on each other), checks each fence on
 *   the locked rows, then writes all attempts in one statement and all tasks in one or two.
 * - A reclaim (`expiredBy`) applies only if the lease expired by `LEAST(expiredBy, database
 *   clock)`: a node whose clock runs ahead never takes a lease the database still holds live.
 */
import { DB_NOW_MS } from '../migrations/postgres.ts';
import { type Row, taskFromRow, toJson } from '../rows.ts';
import {
  boundTaskError,
  cancelMissedError,
  handoffRefusedError,
  leaseLostError as leaseLostFor,
  notDeadError as notDeadFor,
  type TaskNow,
} from '../task-errors.ts';
import { claimedEvent } from '../task-events.ts';
import type { SettleOutcome, StoreOp, TaskSettle } from '../types.ts';
import { lockLaneRoom, type Queryable } from './task-writes.ts';
import type { PgTx } from './tx.ts';

type Op<K extends StoreOp['op']> = Extract<StoreOp, { op: K }>;

async function taskNow(q: Queryable, taskId: string): Promise<TaskNow | undefined> {
  return (await q.query<Row>('SELECT state, attempts FROM tasks WHERE id = $1', [taskId])).rows[0];
}

/** LEASE_LOST for a fenced write on `taskId` that did not match (NOT_FOUND when it is gone). */
export async function leaseLostError(q: Queryable, taskId: string) {
  return leaseLostFor(taskId, await taskNow(q, taskId));
}

/** INVALID_STATE for a redrive or purge of a task that is not dead (NOT_FOUND when gone). */
export async function notDeadError(q: Queryable, taskId: string, action: 'redrive' | 'purge') {
  return notDeadFor(taskId, action, await taskNow(q, taskId));
}

/** `$n` is a reclaim's `expiredBy` (null: none): the lease must have expired by then. */
const expiredBy = (n: number) =>
  `($${n}::bigint IS NULL OR lease_expires_at <= LEAST($${n}::bigint, ${DB_NOW_MS}))`;

const RELEASE_SQL = `UPDATE tasks SET state = 'queued', attempts = attempts - 1, lease_owner = NULL,
    lease_token = NULL, lease_expires_at = NULL, claimed_at = NULL, available_at = $3,
    sort_key = $4, updated_at = $5
  WHERE id = $1 AND state = 'running' AND lease_token = $2 AND ${expiredBy(6)}`;

/**
 * Ends the attempt and moves the task in one statement; `prev` (the locked, checked row) gives
 * the attempt its pre-update values.
 */
const SETTLE_SQL = `WITH prev AS (
    SELECT id, attempts, lease_token, lease_owner, COALESCE(claimed_at, updated_at) AS started_at
    FROM tasks WHERE id = $1 AND state = 'running' AND lease_token = $2 AND ${expiredBy(10)}
    FOR UPDATE),
  moved AS (
    UPDATE tasks t SET state = $3, lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL,
      available_at = $4, sort_key = $5, updated_at = $6, result = $7, last_error = $8,
      options = COALESCE($9, t.options)
    FROM prev WHERE t.id = prev.id
    RETURNING prev.*)
  INSERT INTO attempts (task_id, attempt, lease_token, worker_id, started_at, ended_at, outcome, error)
  SELECT id, attempts, lease_token, lease_owner, started_at, $6, $11, $8 FROM moved`;

/**
 * Ends a running attempt, fenced by its token (and, for a reclaim, by an expired lease): records
 * the attempt and moves the task; outcome `released` hands it back unstarted (no attempt row,
 * `attempts` back to what it was). False (nothing written) when the fence did not match.
 */
export async function settleOne(tx: PgTx, item: Omit<TaskSettle, 'events'>): Promise<boolean> {
  const availableAt = item.availableAt ?? item.now;
  const sortKey = item.sortKey ?? availableAt;
  if (item.attemptOutcome === 'released') {
    const { rowCount } = await tx.query(RELEASE_SQL, [
      item.id,
      item.leaseToken,
      availableAt,
      sortKey,
      item.now,
      item.expiredBy ?? null,
    ]);
    return rowCount === 1;
  }
  const { rowCount } = await tx.query(SETTLE_SQL, [
    item.id,
    item.leaseToken,
    item.state,
    availableAt,
    sortKey,
    item.now,
    toJson(item.result),
    toJson(boundTaskError(item.error)),
    item.options === undefined ? null : JSON.stringify(item.options),
    item.expiredBy ?? null,
    item.attemptOutcome,
  ]);
  return rowCount === 1;
}

interface SettleRead {
  id: string;
  state: string;
  attempts: number;
  lease_token: string | null;
  lease_expires_at: number | null;
  db_now: number;
}

const SETTLE_MANY_SQL = `WITH u AS (
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[], $5::bigint[],
      $6::text[], $7::text[], $8::text[], $9::text[])
      AS u(id, state, available_at, sort_key, now, outcome, result, error, options)),
  attempts_ended AS (
    INSERT INTO attempts (task_id, attempt, lease_token, worker_id, started_at, ended_at, outcome, error)
    SELECT t.id, t.attempts, t.lease_token, t.lease_owner, COALESCE(t.claimed_at, t.updated_at),
      u.now, u.outcome, u.error
    FROM u JOIN tasks t ON t.id = u.id)
  UPDATE tasks t SET state = u.state, lease_owner = NULL, lease_token = NULL,
    lease_expires_at = NULL, available_at = u.available_at, sort_key = u.sort_key,
    updated_at = u.now, result = u.result, last_error = u.error,
    options = COALESCE(u.options, t.options)
  FROM u WHERE t.id = u.id`;

const RELEASE_MANY_SQL = `UPDATE tasks t SET state = 'queued', attempts = t.attempts - 1,
    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, claimed_at = NULL,
    available_at = u.available_at, sort_key = u.sort_key, updated_at = u.now
  FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[])
    AS u(id, available_at, sort_key, now)
  WHERE t.id = u.id`;

/**
 * Settles each task fenced by its own token; a stale one is reported (LEASE_LOST, or NOT_FOUND
 * when the task does not exist), not thrown, and the others still apply. The events of the
 * applied items are appended in item order. Statements: one locking read, then at most three
 * writes whatever the batch size.
 */
export async function settleTasks(
  tx: PgTx,
  items: readonly TaskSettle[],
): Promise<SettleOutcome[]> {
  if (items.length === 0) return [];
  const read = new Map<string, SettleRead>();
  const { rows } = await tx.query<SettleRead>(
    `SELECT id, state, attempts, lease_token, lease_expires_at, ${DB_NOW_MS} AS db_now
     FROM tasks WHERE id = ANY($1::text[]) ORDER BY id FOR UPDATE`,
    [[...new Set(items.map((i) => i.id))]],
  );
  for (const row of rows) read.set(row.id, row);
  const outcomes: SettleOutcome[] = [];
  const applied: TaskSettle[] = [];
  const settle: unknown[][] = Array.from({ length: 9 }, () => []);
  const release: unknown[][] = Array.from({ length: 4 }, () => []);
  for (const item of items) {
    const row = read.get(item.id);
    if (
      !row ||
      row.state !== 'running' ||
      row.lease_token !== item.leaseToken ||
      (item.expiredBy !== undefined &&
        (row.lease_expires_at === null ? Infinity : Number(row.lease_expires_at)) >
          Math.min(item.expiredBy, Number(row.db_now)))
    ) {
      outcomes.push({ id: item.id, ok: false, error: leaseLostFor(item.id, row) });
      continue;
    }
    row.state = 'settled'; // the same task twice in one batch: the second is stale
    outcomes.push({ id: item.id, ok: true });
    applied.push(item);
    const availableAt = item.availableAt ?? item.now;
    const values =
      item.attemptOutcome === 'released'
        ? [item.id, availableAt, item.sortKey ?? availableAt, item.now]
        : [
            item.id,
            item.state,
            availableAt,
            item.sortKey ?? availableAt,
            item.now,
            item.attemptOutcome,
            toJson(item.result),
            toJson(boundTaskError(item.error)),
            item.options === undefined ? null : JSON.stringify(item.options),
          ];
    const columns = item.attemptOutcome === 'released' ? release : settle;
    for (let i = 0; i < values.length; i++) columns[i]!.push(values[i]);
  }
  if (settle[0]!.length > 0) await tx.query(SETTLE_MANY_SQL, settle);
  if (release[0]!.length > 0) await tx.query(RELEASE_MANY_SQL, release);
  for (const item of applied) for (const event of item.events) tx.append(event);
  return outcomes;
}

/**
 * Extends many leases at once, each fenced by its token; answers the ids whose lease was lost
 * (in item order). The rows are locked in id order (the order batch settles use).
 */
export async function heartbeatTasks(
  tx: PgTx,
  items: ReadonlyArray<{ readonly id: string; readonly leaseToken: string }>,
  leaseMs: number,
  now: number,
): Promise<string[]> {
  if (items.length === 0) return [];
  const { rows } = await tx.query<{ id: string }>(
    `UPDATE tasks t SET lease_expires_at = $3, updated_at = $4
     FROM (SELECT k.id FROM tasks k
       JOIN unnest($1::text[], $2::text[]) AS u(id, token) ON k.id = u.id AND k.lease_token = u.token
       WHERE k.state = 'running' ORDER BY k.id FOR UPDATE OF k) AS held
     WHERE t.id = held.id
     RETURNING t.id`,
    [items.map((i) => i.id), items.map((i) => i.leaseToken), now + leaseMs, now],
  );
  const kept = new Set(rows.map((r) => r.id));
  return items.filter((i) => !kept.has(i.id)).map((i) => i.id);
}

/**
 * Extends one lease, fenced by its token; answers the new expiry. LEASE_LOST (NOT_FOUND for an
 * unknown task) when the task is not running under this token.
 */
export async function heartbeatOne(
  tx: PgTx,
  taskId: string,
  leaseToken: string,
  leaseMs: number,
  now: number,
): Promise<number> {
  const expires = now + leaseMs;
  const { rowCount } = await tx.query(
    `UPDATE tasks SET lease_expires_at = $3, updated_at = $4
     WHERE id = $1 AND state = 'running' AND lease_token = $2`,
    [taskId, leaseToken, expires, now],
  );
  if (rowCount !== 1) throw await leaseLostError(tx, taskId);
  return expires;
}

/**
 * The `task.cancel` op: compare-and-set on the state (and token) the caller read; a running
 * attempt is closed as canceled. CONFLICT (details.state: the state now) or NOT_FOUND when the
 * task moved on or does not exist; nothing is written then.
 */
export async function cancelTask(tx: PgTx, op: Op<'task.cancel'>): Promise<void> {
  const token = op.expectState === 'running' ? op.leaseToken : null;
  const { rows } = await tx.query<{ n: number }>(
    `WITH prev AS (
       SELECT id, state, attempts, lease_token, lease_owner,
         COALESCE(claimed_at, updated_at) AS started_at
       FROM tasks WHERE id = $1 AND state = $2 AND state IN ('queued', 'running', 'dead')
         AND lease_token IS NOT DISTINCT FROM $3
       FOR UPDATE),
     canceled AS (
       UPDATE tasks t SET state = 'canceled', lease_owner = NULL, lease_token = NULL,
         lease_expires_at = NULL, updated_at = $4
       FROM prev WHERE t.id = prev.id
       RETURNING prev.*),
     ended AS (
       INSERT INTO attempts (task_id, attempt, lease_token, worker_id, started_at, ended_at, outcome, error)
       SELECT id, attempts, lease_token, lease_owner, started_at, $4, 'canceled', NULL
       FROM canceled WHERE state = 'running')
     SELECT count(*)::int AS n FROM canceled`,
    [op.id, op.expectState, token, op.now],
  );
  if (rows[0]?.n === 1) return;
  throw cancelMissedError(op.id, op.expectState, await taskNow(tx, op.id));
}

/**
 * The `task.fence` op: LEASE_LOST unless the task runs under the token. The row stays share-locked
 * until commit, so the lease cannot be settled, reclaimed or canceled by another node between the
 * fence and the writes it guards.
 */
export async function fenceTask(tx: PgTx, op: Op<'task.fence'>): Promise<void> {
  const { rows } = await tx.query<Row>(
    'SELECT state, attempts, lease_token FROM tasks WHERE id = $1 FOR SHARE',
    [op.id],
  );
  const row = rows[0];
  if (!row || row.state !== 'running' || row.lease_token !== op.leaseToken)
    throw leaseLostFor(op.id, row);
}

/**
 * The `task.handoff` op (see StoreOp): claims a task queued earlier in this transaction for the
 * worker, if it is due, nobody of its kind waits ahead of it (unless `overtake`) and its lane has
 * a free slot (the lane row is locked when it declares a concurrency, as claims do).
 */
export async function handoffTask(tx: PgTx, op: Op<'task.handoff'>): Promise<void> {
  const expires = op.now + op.leaseMs;
  const room = await lockLaneRoom(tx, op.lane);
  // Due by the caller's clock only: the task was queued by this very transaction.
  const { rows } =
    room !== null && room <= 0
      ? { rows: [] }
      : await tx.query(
          `UPDATE tasks t SET state = 'running', attempts = attempts + 1, lease_owner = $3,
             lease_token = $4, lease_expires_at = $5, claimed_at = $6, updated_at = $6
           WHERE t.id = $1 AND t.state = 'queued' AND t.lane = $2 AND t.available_at <= $6
             AND ($7::boolean OR NOT EXISTS (SELECT 1 FROM tasks q WHERE q.state = 'queued'
               AND q.lane = $2 AND q.available_at <= $6 AND q.kind = t.kind AND q.id <> t.id
               AND q.sort_key <= t.sort_key))
           RETURNING *`,
          [op.id, op.lane, op.workerId, op.leaseToken, expires, op.now, op.overtake === true],
        );
  const row = rows[0];
  if (!row) {
    if (!op.required) return;
    throw handoffRefusedError(op.id, op.lane);
  }
  const task = taskFromRow(row);
  tx.append(claimedEvent(task, task.attempts, expires, op.workerId, true));
}

/**
 * The `task.redrive` op: dead → queued with a fresh budget of attempts (attempt numbers keep
 * counting) and the poison counter cleared. INVALID_STATE unless dead (NOT_FOUND when gone).
 */
export async function redriveTask(tx: PgTx, op: Op<'task.redrive'>): Promise<void> {
  const { rows } = await tx.query<{ options: string }>(
    `SELECT options FROM tasks WHERE id = $1 AND state = 'dead' FOR UPDATE`,
    [op.id],
  );
  if (!rows[0]) throw await notDeadError(tx, op.id, 'redrive');
  // As SQLite's json_set: the key keeps its place, or is added last.
  const options = { ...(JSON.parse(rows[0].options) as object), consecutive_fingerprint: null };
  await tx.query(
    `UPDATE tasks SET state = 'queued', available_at = $2, sort_key = $3, lease_owner = NULL,
       lease_token = NULL, lease_expires_at = NULL, updated_at = $2,
       max_attempts = attempts + max_attempts, options = $4
     WHERE id = $1`,
    [op.id, op.now, op.sortKey, JSON.stringify(options)],
  );
}

/** The `task.purge` op: deletes a dead task and its attempts (INVALID_STATE unless dead). */
export async function purgeTask(tx: PgTx, op: Op<'task.purge'>): Promise<void> {
  const { rows } = await tx.query<{ n: number }>(
    `WITH gone AS (DELETE FROM tasks WHERE id = $1 AND state = 'dead' RETURNING id),
       attempts_gone AS (DELETE FROM attempts WHERE task_id IN (SELECT id FROM gone))
     SELECT count(*)::int AS n FROM gone`,
    [op.id],
  );
  if (rows[0]?.n !== 1) throw await notDeadError(tx, op.id, 'purge');
}
