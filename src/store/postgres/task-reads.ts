/**
 * The queue's reads for the PostgreSQL adapter, on any {@link Queryable} (the store's pooled
 * reader or a transaction). Each answer is one statement, so it reads one snapshot. Reads that
 * decide whether work is due (due schedules, expired leases) compare with the database clock as
 * well as the caller's `now`, as the writes they lead to do.
 */
import { TASK_KINDS, type TaskKind } from '../../core/index.ts';
import { DB_NOW_MS } from '../migrations/postgres.ts';
import { attemptFromRow, type Row, scheduleFromRow, taskFromRow } from '../rows.ts';
import type {
  AttemptRecord,
  LaneRecord,
  ScheduleRecord,
  ServiceRecord,
  TaskRecord,
} from '../types.ts';
import type { Queryable } from './task-writes.ts';

/** Queued tasks of a lane. */
export async function countQueued(q: Queryable, lane: string): Promise<number> {
  const { rows } = await q.query<{ n: number }>(
    `SELECT count(*)::int AS n FROM tasks WHERE state = 'queued' AND lane = $1`,
    [lane],
  );
  return rows[0]!.n;
}

/** Queued tasks per lane (lanes with none are absent). */
export async function queueDepths(q: Queryable): Promise<Record<string, number>> {
  const { rows } = await q.query<{ lane: string; n: number }>(
    `SELECT lane, count(*)::int AS n FROM tasks WHERE state = 'queued' GROUP BY lane`,
  );
  return Object.fromEntries(rows.map((r) => [r.lane, r.n]));
}

/** Tasks per state (the task half of Store.countByState). */
export async function countTasksByState(q: Queryable): Promise<Record<string, number>> {
  const { rows } = await q.query<{ state: string; n: number }>(
    'SELECT state, count(*)::int AS n FROM tasks GROUP BY state',
  );
  return Object.fromEntries(rows.map((r) => [r.state, r.n]));
}

/**
 * The earliest `available_at` of a queued task (of these kinds) in those of `lanes` that have a
 * free slot under their concurrency, or null.
 */
export async function nextDue(
  q: Queryable,
  lanes: readonly string[],
  kinds: readonly TaskKind[] = TASK_KINDS,
): Promise<number | null> {
  if (lanes.length === 0 || kinds.length === 0) return null;
  const { rows } = await q.query<{ t: number | null }>(
    `SELECT min(due.available_at) AS t
     FROM unnest($1::text[]) AS l(name)
     LEFT JOIN lanes ON lanes.name = l.name
     CROSS JOIN LATERAL (SELECT available_at FROM tasks
       WHERE state = 'queued' AND lane = l.name AND kind = ANY($2::text[])
       ORDER BY available_at LIMIT 1) AS due
     WHERE lanes.concurrency IS NULL
       OR lanes.concurrency > (SELECT count(*) FROM tasks r WHERE r.state = 'running' AND r.lane = l.name)`,
    [[...new Set(lanes)], kinds],
  );
  const t = rows[0]?.t;
  return t === null || t === undefined ? null : Number(t);
}

/** The earliest lease expiry of a running task (of these kinds), or null. */
export async function nextLeaseExpiry(
  q: Queryable,
  kinds: readonly TaskKind[] = TASK_KINDS,
): Promise<number | null> {
  const { rows } = await q.query<{ t: number }>(
    `SELECT lease_expires_at AS t FROM tasks WHERE state = 'running' AND kind = ANY($1::text[])
     ORDER BY lease_expires_at LIMIT 1`,
    [kinds],
  );
  return rows[0] ? Number(rows[0].t) : null;
}

/** Declared lanes, by name. */
export async function listLanes(q: Queryable): Promise<LaneRecord[]> {
  const { rows } = await q.query<Row>('SELECT * FROM lanes ORDER BY name');
  return rows.map((r) => ({
    name: r.name as string,
    concurrency: (r.concurrency as number | null) ?? null,
    max_depth: (r.max_depth as number | null) ?? null,
    updated_at: Number(r.updated_at),
  }));
}

/** Registered services of every node, by name. */
export async function listServices(q: Queryable): Promise<ServiceRecord[]> {
  const { rows } = await q.query<Row>('SELECT * FROM services ORDER BY name');
  return rows.map((r) => ({
    name: r.name as string,
    type: r.type as string,
    capabilities: JSON.parse(r.capabilities as string) as string[],
    max_concurrency: r.max_concurrency as number,
    owner: r.owner as string,
    health: r.health as string,
    registered_at: Number(r.registered_at),
    updated_at: Number(r.updated_at),
  }));
}

/** Every schedule, by name. */
export async function listSchedules(q: Queryable): Promise<ScheduleRecord[]> {
  const { rows } = await q.query<Row>('SELECT * FROM schedules ORDER BY name');
  return rows.map(scheduleFromRow);
}

/**
 * Enabled schedules due by `now` and by the database clock (a node whose clock runs ahead does
 * not see them early), earliest first.
 */
export async function listDueSchedules(q: Queryable, now: number): Promise<ScheduleRecord[]> {
  const { rows } = await q.query<Row>(
    `SELECT * FROM schedules WHERE enabled = 1 AND next_run_at <= LEAST($1::bigint, ${DB_NOW_MS})
     ORDER BY next_run_at`,
    [now],
  );
  return rows.map(scheduleFromRow);
}

/**
 * Running tasks (of these kinds) whose lease expired by `now` — and by the database clock, as
 * the reclaim's own fence requires — earliest first (at most `limit`), then those of each dead
 * owner (at most `limit` each); each task once. `limit` is checked by the caller (rowLimit).
 */
export async function findExpiredLeases(
  q: Queryable,
  now: number,
  deadOwners: readonly string[] = [],
  limit = 1_000,
  kinds: readonly TaskKind[] = TASK_KINDS,
): Promise<TaskRecord[]> {
  const expired = await q.query<Row>(
    `SELECT * FROM tasks WHERE state = 'running' AND kind = ANY($2::text[])
       AND lease_expires_at <= LEAST($1::bigint, ${DB_NOW_MS})
     ORDER BY lease_expires_at, id LIMIT $3`,
    [now, kinds, limit],
  );
  const rows = expired.rows;
  if (deadOwners.length > 0) {
    const owned = await q.query<Row>(
      `SELECT t.* FROM unnest($1::text[]) WITH ORDINALITY AS o(owner, i)
       CROSS JOIN LATERAL (SELECT * FROM tasks
         WHERE state = 'running' AND lease_owner = o.owner AND kind = ANY($2::text[])
         ORDER BY lease_expires_at, id LIMIT $3) AS t
       ORDER BY o.i, t.lease_expires_at, t.id`,
      [deadOwners, kinds, limit],
    );
    rows.push(...owned.rows);
  }
  const seen = new Set<string>();
  const tasks: TaskRecord[] = [];
  for (const row of rows) {
    if (seen.has(row.id as string)) continue;
    seen.add(row.id as string);
    tasks.push(taskFromRow(row));
  }
  return tasks;
}

/** Distinct lease owners of running tasks. */
export async function listLeaseOwners(q: Queryable): Promise<string[]> {
  const { rows } = await q.query<{ lease_owner: string }>(
    `SELECT DISTINCT lease_owner FROM tasks WHERE state = 'running' AND lease_owner IS NOT NULL
     ORDER BY lease_owner`,
  );
  return rows.map((r) => r.lease_owner);
}

/**
 * A task's attempts by number: the finished ones are rows, the running one is read off the task
 * itself — both in one statement, so a settle committing meanwhile is seen whole or not at all.
 */
export async function listAttempts(q: Queryable, taskId: string): Promise<AttemptRecord[]> {
  const { rows } = await q.query<Row>(
    `SELECT task_id, attempt, lease_token, worker_id, started_at, ended_at, outcome, error
     FROM attempts WHERE task_id = $1
     UNION ALL
     SELECT id, attempts, lease_token, lease_owner, COALESCE(claimed_at, updated_at), NULL,
       'running', NULL
     FROM tasks WHERE id = $1 AND state = 'running'
     ORDER BY attempt`,
    [taskId],
  );
  return rows.map(attemptFromRow);
}
