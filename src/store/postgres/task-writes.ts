/**
 * The queue's claim and submit paths for the PostgreSQL adapter, run inside one READ COMMITTED
 * write transaction ({@link PgTx}) while other nodes write the same tables.
 *
 * - Claims: one `UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED)` per lane hands each due
 *   task to exactly one claimer (another node's claim skips the rows this one locked). A task is
 *   due when `available_at` is at or before BOTH the caller's `now` and the database clock, so a
 *   node whose clock runs ahead never takes work early. A lane with a concurrency limit is
 *   locked (its `lanes` row, `FOR UPDATE`, lanes in name order) BEFORE its running tasks are
 *   counted: the count is a fresh statement after the lock, so it sees every claim committed by
 *   the node that held the lock, and two nodes cannot both fill the last slot. Lanes without a
 *   limit take no lock.
 * - Submits: idempotency keys are serialised across nodes by transaction-scoped advisory locks
 *   (one per key, taken in hash order) before the keys are read, so two nodes submitting the
 *   same key at once end with one task and one deduplicated answer — never a unique violation.
 *   A lane's depth limit is checked under its `lanes` row lock (the same lock claims take).
 *   Tasks go in with one multi-row `INSERT … SELECT FROM unnest(…)` per 5,000.
 */
import { errors } from '../../core/index.ts';
import { DB_NOW_MS } from '../migrations/postgres.ts';
import { type Row, taskFromRow, toJson } from '../rows.ts';
import { idempotencyConflictError, queueFullError } from '../task-errors.ts';
import { claimedEvent, keyReleasedEvent, newLeaseToken, queuedEvent } from '../task-events.ts';
import type {
  ClaimedTask,
  ClaimRequest,
  NewSession,
  SubmitRequest,
  SubmitResult,
  TaskRecord,
} from '../types.ts';
import type { PgTx } from './tx.ts';

/** Anything with PgTx's `query`: a transaction, or the store's pooled reader. */
export type Queryable = Pick<PgTx, 'query'>;

const ALL_KINDS = ['agent_step', 'job', 'plan_task'];
/** Rows per multi-row insert: 10,000 tasks are two statements. */
const INSERT_CHUNK = 5_000;

/**
 * Locks the `lanes` rows of those of `lanes` that declare a concurrency (in name order, so two
 * claimers never deadlock on them) and answers each one's free slots, counted after the lock.
 */
async function laneRoom(tx: PgTx, lanes: readonly string[]): Promise<Map<string, number>> {
  const room = new Map<string, number>();
  const limited = await tx.query<{ name: string; concurrency: number }>(
    `SELECT name, concurrency FROM lanes WHERE name = ANY($1::text[]) AND concurrency IS NOT NULL
     ORDER BY name FOR UPDATE`,
    [[...new Set(lanes)]],
  );
  if (limited.rowCount === 0) return room;
  for (const row of limited.rows) room.set(row.name, row.concurrency);
  // A statement of its own, after the lock: it sees what the lock's previous holder committed.
  const running = await tx.query<{ lane: string; n: number }>(
    `SELECT lane, count(*)::int AS n FROM tasks WHERE state = 'running' AND lane = ANY($1::text[])
     GROUP BY lane`,
    [[...room.keys()]],
  );
  for (const row of running.rows) room.set(row.lane, room.get(row.lane)! - row.n);
  return room;
}

/** The free slots of one lane under its concurrency (null: no limit), its row locked. */
export async function lockLaneRoom(tx: PgTx, lane: string): Promise<number | null> {
  return (await laneRoom(tx, [lane])).get(lane) ?? null;
}

const CLAIM_SQL = `UPDATE tasks SET state = 'running', attempts = attempts + 1, lease_owner = $1,
    lease_token = $2 || ':' || n, lease_expires_at = $3, claimed_at = $4, updated_at = $4
  WHERE id IN (SELECT id FROM tasks
    WHERE state = 'queued' AND lane = $5 AND available_at <= LEAST($4::bigint, ${DB_NOW_MS})
      AND kind = ANY($6::text[])
    ORDER BY sort_key, n LIMIT $7 FOR UPDATE SKIP LOCKED)
  RETURNING *`;

/**
 * Claims up to `request.limit` due tasks across `request.lanes` (in order), each with a fresh
 * lease token (`<random base>:<n>`), and appends a `task.claimed` event per task. Tasks of one
 * lane come back by sort_key then id.
 */
export async function claimTasks(tx: PgTx, request: ClaimRequest): Promise<ClaimedTask[]> {
  if (request.kinds?.length === 0 || request.limit <= 0 || request.lanes.length === 0) return [];
  const claimed: ClaimedTask[] = [];
  const kinds = request.kinds ?? ALL_KINDS;
  const expires = request.now + request.leaseMs;
  const room = await laneRoom(tx, request.lanes);
  for (const lane of request.lanes) {
    let limit = request.limit - claimed.length;
    if (limit <= 0) break;
    const free = room.get(lane);
    if (free !== undefined) limit = Math.min(limit, free);
    if (limit <= 0) continue;
    const { rows } = await tx.query(CLAIM_SQL, [
      request.workerId,
      newLeaseToken(),
      expires,
      request.now,
      lane,
      kinds,
      limit,
    ]);
    if (rows.length === 0) continue;
    if (free !== undefined) room.set(lane, free - rows.length);
    const tasks = rows
      .map(taskFromRow)
      .sort((a, b) => a.sort_key - b.sort_key || (a.id < b.id ? -1 : 1));
    for (const task of tasks) {
      tx.append(claimedEvent(task, task.attempts, expires, request.workerId));
      claimed.push({ task, attempt: task.attempts, leaseToken: task.lease_token! });
    }
  }
  return claimed;
}

/** Column order of {@link insertTaskRows} (every column but the identity `n`). */
const TASK_COLUMNS = [
  ['id', 'text'],
  ['kind', 'text'],
  ['name', 'text'],
  ['lane', 'text'],
  ['session_id', 'text'],
  ['process_id', 'text'],
  ['payload', 'text'],
  ['state', 'text'],
  ['priority', 'int'],
  ['sort_key', 'bigint'],
  ['available_at', 'bigint'],
  ['attempts', 'int'],
  ['max_attempts', 'int'],
  ['lease_owner', 'text'],
  ['lease_token', 'text'],
  ['lease_expires_at', 'bigint'],
  ['claimed_at', 'bigint'],
  ['idempotency_key', 'text'],
  ['last_error', 'text'],
  ['result', 'text'],
  ['trace_id', 'text'],
  ['options', 'text'],
  ['created_at', 'bigint'],
  ['updated_at', 'bigint'],
] as const;
const INSERT_SQL = `INSERT INTO tasks (${TASK_COLUMNS.map(([c]) => c).join(', ')})
  SELECT * FROM unnest(${TASK_COLUMNS.map(([, type], i) => `$${i + 1}::${type}[]`).join(', ')})`;

/** Inserts tasks as they are, one multi-row statement per {@link INSERT_CHUNK}. */
async function insertTaskRows(tx: PgTx, tasks: readonly TaskRecord[]): Promise<void> {
  for (let start = 0; start < tasks.length; start += INSERT_CHUNK) {
    const end = Math.min(tasks.length, start + INSERT_CHUNK);
    const columns: unknown[][] = TASK_COLUMNS.map(() => new Array<unknown>(end - start));
    for (let i = start; i < end; i++) {
      const t = tasks[i]!;
      const j = i - start;
      columns[0]![j] = t.id;
      columns[1]![j] = t.kind;
      columns[2]![j] = t.name;
      columns[3]![j] = t.lane;
      columns[4]![j] = t.session_id;
      columns[5]![j] = t.process_id;
      columns[6]![j] = JSON.stringify(t.payload ?? null);
      columns[7]![j] = t.state;
      columns[8]![j] = t.priority;
      columns[9]![j] = t.sort_key;
      columns[10]![j] = t.available_at;
      columns[11]![j] = t.attempts;
      columns[12]![j] = t.max_attempts;
      columns[13]![j] = t.lease_owner;
      columns[14]![j] = t.lease_token;
      columns[15]![j] = t.lease_expires_at;
      columns[16]![j] = t.claimed_at ?? null;
      columns[17]![j] = t.idempotency_key;
      columns[18]![j] = toJson(t.last_error);
      columns[19]![j] = toJson(t.result);
      columns[20]![j] = t.trace_id;
      columns[21]![j] = JSON.stringify(t.options);
      columns[22]![j] = t.created_at;
      columns[23]![j] = t.updated_at;
    }
    await tx.query(INSERT_SQL, columns);
  }
}

/**
 * Serialises writers of these idempotency keys across nodes until the transaction ends: one
 * advisory lock per key (scoped to the schema), taken in lock-key order so two submits of
 * overlapping keys queue instead of deadlocking. A read after it sees every commit of an earlier
 * holder (READ COMMITTED takes a fresh snapshot per statement).
 */
export async function lockIdempotencyKeys(tx: PgTx, keys: readonly string[]): Promise<void> {
  if (keys.length === 0) return;
  await tx.query(
    `SELECT count(pg_advisory_xact_lock(k)) FROM (
       SELECT DISTINCT hashtextextended('warden:idempotency:' || current_schema() || ':' || key, 0) AS k
       FROM unnest($1::text[]) AS key ORDER BY k) AS keys`,
    [keys],
  );
}

/**
 * Inserts tasks (the `task.insert` op, schedule firings): their idempotency keys locked first so
 * a concurrent submit of the same key waits for this transaction instead of failing on the
 * unique index.
 */
export async function insertTasks(tx: PgTx, tasks: readonly TaskRecord[]): Promise<void> {
  const keys: string[] = [];
  for (const t of tasks) if (t.idempotency_key !== null) keys.push(t.idempotency_key);
  await lockIdempotencyKeys(tx, keys);
  await insertTaskRows(tx, tasks);
}

/**
 * QUEUE_FULL (retryable) when the tasks added per lane would take a lane past its declared
 * max depth. Lanes with a limit are locked (`lanes` row, name order) before their depth is
 * counted, so two nodes submitting at once cannot both take the last places. The first lane of
 * `adding` (in its order) that is full is reported.
 */
export async function assertLaneRoom(tx: PgTx, adding: ReadonlyMap<string, number>): Promise<void> {
  if (adding.size === 0) return;
  const limited = await tx.query<{ name: string; max_depth: number }>(
    `SELECT name, max_depth FROM lanes WHERE name = ANY($1::text[]) AND max_depth IS NOT NULL
     ORDER BY name FOR UPDATE`,
    [[...adding.keys()]],
  );
  if (limited.rowCount === 0) return;
  const max = new Map(limited.rows.map((r) => [r.name, r.max_depth]));
  const depth = new Map<string, number>();
  const counted = await tx.query<{ lane: string; n: number }>(
    `SELECT lane, count(*)::int AS n FROM tasks WHERE state = 'queued' AND lane = ANY($1::text[])
     GROUP BY lane`,
    [[...max.keys()]],
  );
  for (const row of counted.rows) depth.set(row.lane, row.n);
  for (const [lane, n] of adding) {
    const limit = max.get(lane);
    if (limit === undefined) continue;
    const queued = depth.get(lane) ?? 0;
    if (queued + n > limit) throw queueFullError(lane, queued, limit, n);
  }
}

/**
 * Inserts tasks with idempotency and lane depth checks, creating the sessions they need (see
 * Store.submitTasks): same answers, events and errors as the SQLite adapter.
 */
export async function submitTasks(tx: PgTx, request: SubmitRequest): Promise<SubmitResult[]> {
  const keys = new Set<string>();
  for (const t of request.tasks) if (t.idempotency_key !== null) keys.add(t.idempotency_key);
  const known = new Map<string, TaskRecord>();
  if (keys.size > 0) {
    await lockIdempotencyKeys(tx, [...keys]);
    const { rows } = await tx.query('SELECT * FROM tasks WHERE idempotency_key = ANY($1::text[])', [
      [...keys],
    ]);
    for (const row of rows) known.set(row.idempotency_key as string, taskFromRow(row));
  }
  const results: SubmitResult[] = [];
  const fresh: TaskRecord[] = [];
  /** Per result, the index in `fresh` of the task it answers with (-1: an existing task). */
  const answers: number[] = [];
  /** Keys of this batch's new tasks → index in `fresh`. */
  const pending = new Map<string, number>();
  const released: string[] = [];
  const sessions = request.sessions?.length ? new SessionResolver(tx, request.sessions) : null;
  for (let task of request.tasks) {
    const key = task.idempotency_key;
    if (key !== null) {
      // A key used earlier in this batch always deduplicates: that task is being created now.
      const earlier = pending.get(key);
      const existing = earlier === undefined ? known.get(key) : fresh[earlier];
      if (existing) {
        if (
          earlier !== undefined ||
          request.now - existing.created_at < request.idempotencyWindowMs
        ) {
          if (existing.options.request_hash !== task.options.request_hash)
            throw idempotencyConflictError(key, existing.id);
          results.push({ task: existing, deduplicated: true });
          answers.push(earlier ?? -1);
          continue;
        }
        // The window has passed: the key is free, and the old task says so in its log.
        released.push(existing.id);
        tx.append(keyReleasedEvent(existing, request.idempotencyWindowMs, task.id));
      }
    }
    if (sessions) task = sessions.placed(task) ?? (await sessions.place(task));
    if (key !== null) pending.set(key, fresh.length);
    answers.push(fresh.length);
    fresh.push(task);
    tx.append(queuedEvent(task));
    results.push({ task, deduplicated: false });
  }
  const clocks = request.fairness ? await fairKeys(tx, fresh, request.fairness, request.now) : null;
  if (clocks !== null && clocks.size > 0) {
    // Answer with the records as inserted (their fair sort keys).
    for (let i = 0; i < results.length; i++)
      if (answers[i]! >= 0) results[i] = { ...results[i]!, task: fresh[answers[i]!]! };
  }
  // Depth is checked for new tasks only: a duplicate submit to a full lane still deduplicates.
  const adding = new Map<string, number>();
  for (const t of fresh) adding.set(t.lane, (adding.get(t.lane) ?? 0) + 1);
  await assertLaneRoom(tx, adding);
  if (released.length > 0)
    await tx.query('UPDATE tasks SET idempotency_key = NULL WHERE id = ANY($1::text[])', [
      released,
    ]);
  await insertTaskRows(tx, fresh);
  if (clocks && clocks.size > 0) await saveFairClocks(tx, clocks);
  return results;
}

/**
 * Gives each due task of `tasks` (replaced in place) its session's next virtual start time
 * (start-time fair queueing, see SubmitRequest.fairness); answers the clocks to save. The clocks
 * are read in one statement without a lock: two nodes submitting for the same session at the
 * same instant may give their tasks overlapping start times (a slightly larger share for that
 * session), never a clock that runs backwards (saveFairClocks keeps the greatest).
 */
async function fairKeys(
  tx: PgTx,
  tasks: TaskRecord[],
  fairness: { readonly quantumMs: number; readonly agingMs: number },
  now: number,
): Promise<Map<string, number>> {
  const clocks = new Map<string, number>();
  const wanted = new Map<string, [string, string, number]>();
  for (const t of tasks)
    if (t.available_at <= now)
      wanted.set(clockKey(t.lane, t.session_id, t.priority), [t.lane, t.session_id, t.priority]);
  if (wanted.size === 0) return clocks;
  const triples = [...wanted.values()];
  const { rows } = await tx.query<{
    lane: string;
    session_id: string;
    rank: number;
    last_key: number;
  }>(
    `SELECT f.lane, f.session_id, f.rank, f.last_key
     FROM unnest($1::text[], $2::text[], $3::int[]) AS w(lane, session_id, rank)
     JOIN fair_clock f ON f.lane = w.lane AND f.session_id = w.session_id AND f.rank = w.rank`,
    [triples.map((w) => w[0]), triples.map((w) => w[1]), triples.map((w) => w[2])],
  );
  const stored = new Map<string, number>();
  for (const r of rows) stored.set(clockKey(r.lane, r.session_id, r.rank), Number(r.last_key));
  for (let i = 0; i < tasks.length; i++) {
    const task = tasks[i]!;
    if (task.available_at > now) continue;
    const key = clockKey(task.lane, task.session_id, task.priority);
    const last = clocks.get(key) ?? stored.get(key) ?? -Infinity;
    const start = Math.max(task.available_at, last + fairness.quantumMs);
    clocks.set(key, start);
    tasks[i] = { ...task, sort_key: start + task.priority * fairness.agingMs };
  }
  return clocks;
}

const clockKey = (lane: string, sessionId: string, rank: number): string =>
  `${lane}\u0000${sessionId}\u0000${rank}`;

async function saveFairClocks(tx: PgTx, clocks: ReadonlyMap<string, number>): Promise<void> {
  const lanes: string[] = [];
  const sessionIds: string[] = [];
  const ranks: number[] = [];
  const lasts: number[] = [];
  for (const [key, last] of clocks) {
    const [lane, sessionId, rank] = key.split('\u0000') as [string, string, string];
    lanes.push(lane);
    sessionIds.push(sessionId);
    ranks.push(Number(rank));
    lasts.push(last);
  }
  await tx.query(
    `INSERT INTO fair_clock (lane, session_id, rank, last_key)
     SELECT * FROM unnest($1::text[], $2::text[], $3::int[], $4::bigint[])
     ON CONFLICT (lane, session_id, rank)
       DO UPDATE SET last_key = GREATEST(fair_clock.last_key, excluded.last_key)`,
    [lanes, sessionIds, ranks, lasts],
  );
}

/**
 * Creates the sessions a submit needs, inside its transaction, the first time a new task uses
 * one (see SubmitRequest.sessions): the existing session with the key wins, else the row is
 * inserted with its `session.created` event (seq 1, before the task's `task.queued`). Two nodes
 * creating the same key at once: the second waits on the first's insert and takes its session.
 */
class SessionResolver {
  readonly #tx: PgTx;
  readonly #wanted: ReadonlyMap<string, NewSession>;
  readonly #ids = new Map<string, string>();

  constructor(tx: PgTx, sessions: readonly NewSession[]) {
    this.#tx = tx;
    this.#wanted = new Map(sessions.map((s) => [s.row.id, s]));
  }

  /** The task as placed, when no database work is needed (undefined: call {@link place}). */
  placed(task: TaskRecord): TaskRecord | undefined {
    if (!this.#wanted.has(task.session_id)) return task;
    const id = this.#ids.get(task.session_id);
    if (id === undefined) return undefined;
    return id === task.session_id ? task : { ...task, session_id: id };
  }

  /** The task, moved to the real id of the session it names (creating that session). */
  async place(task: TaskRecord): Promise<TaskRecord> {
    const wanted = this.#wanted.get(task.session_id)!;
    const row = wanted.row;
    const inserted = await this.#tx.query(
      `INSERT INTO sessions (id, key, settings, created_at, updated_at, last_seq, last_hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING`,
      [
        row.id,
        row.key,
        JSON.stringify(row.settings),
        row.created_at,
        row.updated_at,
        row.last_seq,
        row.last_hash,
      ],
    );
    let id = row.id;
    if (inserted.rowCount === 1) {
      this.#tx.append({
        session_id: row.id,
        type: 'session.created',
        trace_id: wanted.traceId,
        data: { key: row.key, settings: row.settings },
      });
    } else {
      const existing = await this.#tx.query<Row>('SELECT id FROM sessions WHERE key = $1', [
        row.key,
      ]);
      // The id was taken by a session with another key: the same answer as session.insert.
      if (existing.rowCount === 0)
        throw errors.conflict(`a session with id '${row.id}' exists already`, {
          session_id: row.id,
        });
      id = existing.rows[0]!.id as string;
    }
    this.#ids.set(row.id, id);
    return id === task.session_id ? task : { ...task, session_id: id };
  }
}
