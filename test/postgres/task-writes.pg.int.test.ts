/**
 * The PostgreSQL queue paths (src/store/postgres/task-*.ts, schedule-writes.ts) called directly
 * on a real server, in a fresh schema: answers, rows and the events each transaction appends,
 * and the races that matter when several nodes write at once — overlapping claims, a lane's
 * concurrency across connections, two settles with one token, a reclaim ahead of the database
 * clock, the same idempotency key from two connections, one schedule occurrence fired twice.
 * Races are forced, not hoped for: the second connection is seen waiting on the first's lock
 * (pg_stat_activity) before the first commits.
 */
import { randomBytes } from 'node:crypto';

import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { isWardenError, type WardenError } from '../../src/core/index.ts';
import { POSTGRES_MIGRATIONS } from '../../src/store/migrations/postgres.ts';
import { PG_TYPES } from '../../src/store/postgres/connection.ts';
import {
  deferSchedule,
  deleteSchedule,
  fireSchedule,
  upsertLane,
  upsertSchedule,
  upsertService,
} from '../../src/store/postgres/schedule-writes.ts';
import { applyTaskOp } from '../../src/store/postgres/task-ops.ts';
import {
  countQueued,
  findExpiredLeases,
  listAttempts,
  listDueSchedules,
  listLanes,
  listLeaseOwners,
  listServices,
  nextDue,
  nextLeaseExpiry,
  queueDepths,
} from '../../src/store/postgres/task-reads.ts';
import {
  heartbeatOne,
  heartbeatTasks,
  settleOne,
  settleTasks,
} from '../../src/store/postgres/task-settle.ts';
import { claimTasks, insertTasks, submitTasks } from '../../src/store/postgres/task-writes.ts';
import { PgTransaction } from '../../src/store/postgres/tx.ts';
import type {
  ClaimRequest,
  NewEvent,
  ScheduleRecord,
  SubmitRequest,
  TaskRecord,
} from '../../src/store/types.ts';
import { waitFor } from '../helpers/wait.ts';
import { sessionRow, T0, taskRow } from '../store-contract/contract.ts';

// Not test/helpers/postgres.ts: these tests need no store, only the schema and a pool.
const PG_URL = process.env.WARDEN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `wt_tasks_${randomBytes(6).toString('hex')}`;
const pool = new pg.Pool({
  connectionString: PG_URL,
  max: 8,
  options: `-c search_path=${schema}`,
  // bigint columns as numbers: the adapter's own type parsers.
  types: PG_TYPES,
});

beforeAll(async () => {
  await pool.query(`CREATE SCHEMA ${schema}`);
  for (const m of POSTGRES_MIGRATIONS) await pool.query(m.sql);
});

afterAll(async () => {
  await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await pool.end();
});

/** An open transaction on its own connection: commit or roll it back. */
interface OpenTx {
  readonly tx: PgTransaction;
  readonly pid: number;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

async function begin(): Promise<OpenTx> {
  const client = await pool.connect();
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  await client.query('BEGIN');
  const tx = new PgTransaction(client);
  return {
    tx,
    pid,
    async commit() {
      await client.query('COMMIT');
      client.release();
    },
    async rollback() {
      await client.query('ROLLBACK');
      client.release();
    },
  };
}

/** Runs `fn` in one transaction; answers its value and the events it appended. */
async function inTx<T>(
  fn: (tx: PgTransaction) => Promise<T>,
): Promise<{ value: T; events: NewEvent[] }> {
  const open = await begin();
  try {
    const value = await fn(open.tx);
    await open.commit();
    return { value, events: open.tx.pending };
  } catch (error) {
    await open.rollback();
    throw error;
  }
}

/** Waits until connection `pid` is blocked on a lock (a row, advisory or transaction lock). */
async function waitingOnLock(pid: number): Promise<void> {
  await waitFor(
    async () =>
      (
        await pool.query<{ w: string | null }>(
          'SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1',
          [pid],
        )
      ).rows[0]?.w === 'Lock',
    10_000,
    `connection ${pid} waiting on a lock`,
  );
}

async function rejection(promise: Promise<unknown>): Promise<WardenError> {
  try {
    await promise;
  } catch (error) {
    if (isWardenError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

async function newSession(): Promise<string> {
  const s = sessionRow();
  await pool.query(
    `INSERT INTO sessions (id, key, settings, created_at, updated_at, last_seq, last_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [s.id, s.key, JSON.stringify(s.settings), s.created_at, s.updated_at, 0, s.last_hash],
  );
  return s.id;
}

const lane = () => `lane-${randomBytes(4).toString('hex')}`;
const claimOf = (over: Partial<ClaimRequest>): ClaimRequest => ({
  lanes: ['default'],
  workerId: 'w-1',
  limit: 10,
  leaseMs: 30_000,
  now: T0,
  ...over,
});
const taskState = async (id: string) =>
  (await pool.query<Record<string, unknown>>('SELECT * FROM tasks WHERE id = $1', [id])).rows[0];
const running = async (name: string) =>
  (
    await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks WHERE lane = $1 AND state = 'running'`,
      [name],
    )
  ).rows[0]!.n;

async function queued(
  sessionId: string,
  n: number,
  over: Partial<TaskRecord> = {},
): Promise<TaskRecord[]> {
  const rows = Array.from({ length: n }, () => taskRow(sessionId, over));
  await inTx((tx) => insertTasks(tx, rows));
  return rows;
}

describe('claims', () => {
  it('take due tasks by sort key, one token base per claim, one task.claimed event each', async () => {
    const s = await newSession();
    const l = lane();
    const rows = [30, 10, 20].map((k) => taskRow(s, { lane: l, sort_key: T0 + k }));
    const later = taskRow(s, { lane: l, available_at: T0 + 5_000, sort_key: T0 });
    const other = taskRow(s, { lane: l, kind: 'agent_step' });
    await inTx((tx) => insertTasks(tx, [...rows, later, other]));

    const { value: claimed, events } = await inTx((tx) =>
      claimTasks(tx, claimOf({ lanes: [l], kinds: ['job'], now: T0 + 1, workerId: 'w-a' })),
    );
    expect(claimed.map((c) => c.task.sort_key - T0)).toEqual([10, 20, 30]);
    const bases = new Set(claimed.map((c) => c.leaseToken.split(':')[0]));
    expect(bases.size).toBe(1);
    expect(new Set(claimed.map((c) => c.leaseToken)).size).toBe(3);
    for (const c of claimed) {
      expect(c.task).toMatchObject({
        state: 'running',
        attempts: 1,
        lease_owner: 'w-a',
        lease_token: c.leaseToken,
        lease_expires_at: T0 + 30_001,
        claimed_at: T0 + 1,
        updated_at: T0 + 1,
      });
      expect(c.attempt).toBe(1);
    }
    expect(events).toEqual(
      claimed.map((c) => ({
        session_id: s,
        type: 'task.claimed',
        trace_id: c.task.trace_id,
        process_id: null,
        task_id: c.task.id,
        attempt: 1,
        data: { lane: l, lease_expires_at: T0 + 30_001, worker_id: 'w-a' },
      })),
    );
    expect((await taskState(later.id))?.state).toBe('queued');
    expect((await taskState(other.id))?.state).toBe('queued');
    expect((await inTx((tx) => claimTasks(tx, claimOf({ lanes: [l], kinds: [] })))).value).toEqual(
      [],
    );
  });

  it('respect the limit across lanes, in lane order', async () => {
    const s = await newSession();
    const [a, b] = [lane(), lane()];
    await queued(s, 2, { lane: a });
    await queued(s, 3, { lane: b });
    const first = (await inTx((tx) => claimTasks(tx, claimOf({ lanes: [a, b], limit: 3 })))).value;
    expect(first.map((c) => c.task.lane)).toEqual([a, a, b]);
    const second = (await inTx((tx) => claimTasks(tx, claimOf({ lanes: [a, b], limit: 5 })))).value;
    expect(second.map((c) => c.task.lane)).toEqual([b, b]);
  });

  it('never take a task the database clock does not consider due', async () => {
    const s = await newSession();
    const l = lane();
    const soon = Date.now() + 3_600_000;
    await queued(s, 1, { lane: l, available_at: soon, sort_key: soon });
    // A node whose clock runs an hour and more ahead thinks the task is due: it is not.
    const early = await inTx((tx) => claimTasks(tx, claimOf({ lanes: [l], now: soon + 1 })));
    expect(early.value).toEqual([]);
    expect(early.events).toEqual([]);
    expect(await nextDue(pool, [l])).toBe(soon);
  });

  it('from two connections at once never hand out the same task', async () => {
    const s = await newSession();
    const l = lane();
    await queued(s, 40, { lane: l });
    const a = await begin();
    const b = await begin();
    const fromA = await claimTasks(a.tx, claimOf({ lanes: [l], limit: 25, workerId: 'w-a' }));
    // B runs while A still holds its rows: SKIP LOCKED gives it the others, without waiting.
    const fromB = await claimTasks(b.tx, claimOf({ lanes: [l], limit: 25, workerId: 'w-b' }));
    await a.commit();
    await b.commit();
    expect(fromA).toHaveLength(25);
    expect(fromB).toHaveLength(15);
    const ids = [...fromA, ...fromB].map((c) => c.task.id);
    expect(new Set(ids).size).toBe(40);
    expect(await running(l)).toBe(40);
    const owners = await pool.query<{ lease_owner: string; n: number }>(
      `SELECT lease_owner, count(*)::int AS n FROM tasks WHERE lane = $1 GROUP BY lease_owner
       ORDER BY lease_owner`,
      [l],
    );
    expect(owners.rows).toEqual([
      { lease_owner: 'w-a', n: 25 },
      { lease_owner: 'w-b', n: 15 },
    ]);
  });

  it("hold a lane's concurrency across connections: the second claimer waits for the first", async () => {
    const s = await newSession();
    const l = lane();
    await inTx((tx) =>
      upsertLane(tx, { name: l, concurrency: 3, max_depth: null, updated_at: T0 }),
    );
    await queued(s, 10, { lane: l });
    const a = await begin();
    const b = await begin();
    const fromA = await claimTasks(a.tx, claimOf({ lanes: [l], limit: 5, workerId: 'w-a' }));
    expect(fromA).toHaveLength(3);
    const pendingB = claimTasks(b.tx, claimOf({ lanes: [l], limit: 5, workerId: 'w-b' }));
    await waitingOnLock(b.pid);
    await a.commit();
    expect(await pendingB).toEqual([]);
    await b.commit();
    expect(await running(l)).toBe(3);
    expect(await nextDue(pool, [l])).toBeNull(); // no free slot: nothing is due for this lane

    // Free one slot; two connections race for it many times: never more than 3 running.
    for (let round = 0; round < 5; round++) {
      const one = (
        await pool.query<{ id: string; lease_token: string }>(
          `SELECT id, lease_token FROM tasks WHERE lane = $1 AND state = 'running' LIMIT 1`,
          [l],
        )
      ).rows[0]!;
      await inTx((tx) =>
        settleOne(tx, {
          id: one.id,
          leaseToken: one.lease_token,
          state: 'succeeded',
          attemptOutcome: 'succeeded',
          now: T0 + 10,
        }),
      );
      const [x, y] = await Promise.all([
        inTx((tx) => claimTasks(tx, claimOf({ lanes: [l], limit: 5, workerId: 'w-x' }))),
        inTx((tx) => claimTasks(tx, claimOf({ lanes: [l], limit: 5, workerId: 'w-y' }))),
      ]);
      expect(x.value.length + y.value.length).toBe(1);
      expect(await running(l)).toBe(3);
    }
  });
});

describe('settles', () => {
  async function claimedOne(s: string, over: Partial<ClaimRequest> = {}) {
    const l = lane();
    const [row] = await queued(s, 1, { lane: l });
    const [c] = (await inTx((tx) => claimTasks(tx, claimOf({ lanes: [l], ...over })))).value;
    expect(c?.task.id).toBe(row!.id);
    return c!;
  }

  it('a settle records the attempt and moves the task; a stale token is LEASE_LOST', async () => {
    const s = await newSession();
    const c = await claimedOne(s, { workerId: 'w-a', now: T0 + 5 });
    const item = {
      id: c.task.id,
      leaseToken: c.leaseToken,
      state: 'queued' as const,
      error: { code: 'E', message: 'x'.repeat(100_000), retryable: true },
      availableAt: T0 + 500,
      sortKey: T0 + 400,
      options: { ...c.task.options, consecutive_fingerprint: { fingerprint: 'f', count: 1 } },
      attemptOutcome: 'failed' as const,
      now: T0 + 50,
    };
    expect((await inTx((tx) => settleOne(tx, item))).value).toBe(true);
    const row = await taskState(c.task.id);
    expect(row).toMatchObject({
      state: 'queued',
      available_at: T0 + 500,
      sort_key: T0 + 400,
      lease_token: null,
      lease_owner: null,
      lease_expires_at: null,
      updated_at: T0 + 50,
      attempts: 1,
    });
    const stored = JSON.parse(row!.last_error as string) as { message: string };
    expect(stored.message.length).toBeLessThan(100_000); // bounded, as SQLite stores it
    expect(JSON.parse(row!.options as string)).toEqual(item.options);
    const attempts = await listAttempts(pool, c.task.id);
    expect(attempts).toEqual([
      {
        task_id: c.task.id,
        attempt: 1,
        lease_token: c.leaseToken,
        worker_id: 'w-a',
        started_at: T0 + 5,
        ended_at: T0 + 50,
        outcome: 'failed',
        error: stored,
      },
    ]);
    expect((await inTx((tx) => settleOne(tx, item))).value).toBe(false);
    const lost = await rejection(
      inTx((tx) => applyTaskOp(tx, { op: 'task.settle', ...item, now: T0 + 60 })),
    );
    expect(lost.code).toBe('LEASE_LOST');
    expect(lost.details).toMatchObject({ task_id: c.task.id, attempt: 1, state: 'queued' });
    const missing = await rejection(
      inTx((tx) => applyTaskOp(tx, { op: 'task.settle', ...item, id: 't_missing' })),
    );
    expect(missing.code).toBe('NOT_FOUND');
  });

  it('released hands a task back unstarted: no attempt row, attempts back', async () => {
    const s = await newSession();
    const c = await claimedOne(s);
    const { value: outcomes } = await inTx((tx) =>
      settleTasks(tx, [
        {
          id: c.task.id,
          leaseToken: c.leaseToken,
          state: 'queued',
          attemptOutcome: 'released',
          now: T0 + 9,
          events: [],
        },
      ]),
    );
    expect(outcomes).toEqual([{ id: c.task.id, ok: true }]);
    expect(await taskState(c.task.id)).toMatchObject({
      state: 'queued',
      attempts: 0,
      claimed_at: null,
      lease_token: null,
      available_at: T0 + 9,
      sort_key: T0 + 9,
    });
    expect(await listAttempts(pool, c.task.id)).toEqual([]);
  });

  it('a batch settles each task alone and appends only the applied events, in item order', async () => {
    const s = await newSession();
    const l = lane();
    await queued(s, 4, { lane: l });
    const claimed = (await inTx((tx) => claimTasks(tx, claimOf({ lanes: [l] })))).value;
    const [a, b, c, d] = claimed;
    const ev = (n: string): NewEvent => ({
      session_id: s,
      type: 'task.succeeded',
      trace_id: n,
      data: { n },
    });
    const { value: outcomes, events } = await inTx((tx) =>
      settleTasks(tx, [
        {
          id: b!.task.id,
          leaseToken: b!.leaseToken,
          state: 'succeeded',
          result: { ok: 'b' },
          attemptOutcome: 'succeeded',
          now: T0 + 1,
          events: [ev('b')],
        },
        {
          id: a!.task.id,
          leaseToken: 'lt_stale',
          state: 'succeeded',
          attemptOutcome: 'succeeded',
          now: T0 + 1,
          events: [ev('a')],
        },
        {
          id: c!.task.id,
          leaseToken: c!.leaseToken,
          state: 'dead',
          error: { code: 'X', message: 'no' },
          attemptOutcome: 'failed',
          now: T0 + 2,
          events: [ev('c')],
        },
        {
          id: b!.task.id,
          leaseToken: b!.leaseToken,
          state: 'succeeded',
          attemptOutcome: 'succeeded',
          now: T0 + 3,
          events: [ev('b2')],
        },
        {
          id: d!.task.id,
          leaseToken: d!.leaseToken,
          state: 'queued',
          attemptOutcome: 'released',
          now: T0 + 4,
          events: [ev('d')],
        },
        {
          id: 't_nope',
          leaseToken: 'x',
          state: 'succeeded',
          attemptOutcome: 'succeeded',
          now: T0,
          events: [],
        },
      ]),
    );
    expect(outcomes.map((o) => [o.id, o.ok, o.error?.code])).toEqual([
      [b!.task.id, true, undefined],
      [a!.task.id, false, 'LEASE_LOST'],
      [c!.task.id, true, undefined],
      [b!.task.id, false, 'LEASE_LOST'],
      [d!.task.id, true, undefined],
      ['t_nope', false, 'NOT_FOUND'],
    ]);
    expect(outcomes[1]!.error?.details).toMatchObject({ state: 'running', attempt: 1 });
    expect(events.map((e) => e.trace_id)).toEqual(['b', 'c', 'd']);
    expect(await taskState(b!.task.id)).toMatchObject({
      state: 'succeeded',
      result: '{"ok":"b"}',
      last_error: null,
      updated_at: T0 + 1,
    });
    expect(await taskState(c!.task.id)).toMatchObject({
      state: 'dead',
      last_error: '{"code":"X","message":"no"}',
    });
    expect(await taskState(a!.task.id)).toMatchObject({ state: 'running' });
    expect(await taskState(d!.task.id)).toMatchObject({ state: 'queued', attempts: 0 });
    expect((await listAttempts(pool, c!.task.id)).map((x) => x.outcome)).toEqual(['failed']);
    expect((await listAttempts(pool, a!.task.id)).map((x) => x.outcome)).toEqual(['running']);
  });

  it('two settles with the same token from two connections: exactly one applies', async () => {
    const s = await newSession();
    const c = await claimedOne(s);
    const item = {
      id: c.task.id,
      leaseToken: c.leaseToken,
      state: 'succeeded' as const,
      attemptOutcome: 'succeeded' as const,
      now: T0 + 1,
      events: [],
    };
    const a = await begin();
    const b = await begin();
    expect(await settleOne(a.tx, item)).toBe(true);
    const second = settleOne(b.tx, item);
    await waitingOnLock(b.pid);
    await a.commit();
    expect(await second).toBe(false);
    await b.commit();

    // The batch path too, both sent at once.
    const d = await claimedOne(s);
    const both = await Promise.all([
      inTx((tx) => settleTasks(tx, [{ ...item, id: d.task.id, leaseToken: d.leaseToken }])),
      inTx((tx) => settleTasks(tx, [{ ...item, id: d.task.id, leaseToken: d.leaseToken }])),
    ]);
    const oks = both.map((r) => r.value[0]!.ok).sort();
    expect(oks).toEqual([false, true]);
    const lost = both.find((r) => !r.value[0]!.ok)!.value[0]!.error!;
    expect(lost.code).toBe('LEASE_LOST');
    expect(lost.details).toMatchObject({ state: 'succeeded' });
    expect(await listAttempts(pool, d.task.id)).toHaveLength(1);
    expect(await listAttempts(pool, c.task.id)).toHaveLength(1);
  });

  it('a reclaim applies only once the database clock agrees the lease expired', async () => {
    const s = await newSession();
    const now = Date.now();
    const live = await claimedOne(s, { now, leaseMs: 600_000 });
    const expires = now + 600_000;
    // A node whose clock runs 11 minutes ahead believes the lease expired: it did not.
    const reclaim = {
      id: live.task.id,
      leaseToken: live.leaseToken,
      state: 'queued' as const,
      attemptOutcome: 'lease_expired' as const,
      expiredBy: expires + 60_000,
      now: expires + 60_000,
      events: [],
    };
    expect((await inTx((tx) => settleOne(tx, reclaim))).value).toBe(false);
    const [outcome] = (await inTx((tx) => settleTasks(tx, [reclaim]))).value;
    expect(outcome).toMatchObject({ ok: false, error: { code: 'LEASE_LOST' } });
    expect(await findExpiredLeases(pool, expires + 60_000)).not.toContainEqual(
      expect.objectContaining({ id: live.task.id }),
    );
    expect((await taskState(live.task.id))?.state).toBe('running');

    // An expiredBy before the lease's end does not apply either, whatever the database clock.
    const old = await claimedOne(s, { now: T0, leaseMs: 1_000 });
    const early = { ...reclaim, id: old.task.id, leaseToken: old.leaseToken, expiredBy: T0 + 999 };
    expect((await inTx((tx) => settleTasks(tx, [early]))).value[0]!.ok).toBe(false);
    // Expired by both clocks: it applies.
    const due = { ...early, expiredBy: T0 + 1_000, now: T0 + 1_000 };
    expect((await inTx((tx) => settleTasks(tx, [due]))).value[0]!.ok).toBe(true);
    expect((await listAttempts(pool, old.task.id)).map((a) => a.outcome)).toEqual([
      'lease_expired',
    ]);
  });

  it('heartbeats extend only leases held under their token', async () => {
    const s = await newSession();
    const l = lane();
    await queued(s, 2, { lane: l });
    const [a, b] = (await inTx((tx) => claimTasks(tx, claimOf({ lanes: [l] })))).value;
    const lost = await inTx((tx) =>
      heartbeatTasks(
        tx,
        [
          { id: b!.task.id, leaseToken: b!.leaseToken },
          { id: a!.task.id, leaseToken: 'lt_old' },
          { id: 't_gone', leaseToken: 'x' },
        ],
        5_000,
        T0 + 100,
      ),
    );
    expect(lost.value).toEqual([a!.task.id, 't_gone']);
    expect(lost.events).toEqual([]);
    expect((await taskState(b!.task.id))?.lease_expires_at).toBe(T0 + 5_100);
    expect((await taskState(a!.task.id))?.lease_expires_at).toBe(T0 + 30_000);
    expect(
      (await inTx((tx) => heartbeatOne(tx, a!.task.id, a!.leaseToken, 1_000, T0 + 200))).value,
    ).toBe(T0 + 1_200);
    expect(
      (await rejection(inTx((tx) => heartbeatOne(tx, a!.task.id, 'lt_x', 1_000, T0)))).code,
    ).toBe('LEASE_LOST');
    expect((await rejection(inTx((tx) => heartbeatOne(tx, 't_x', 'lt_x', 1_000, T0)))).code).toBe(
      'NOT_FOUND',
    );
  });
});

describe('commit ops on tasks', () => {
  it('task.cancel closes a running attempt; a missed compare-and-set is CONFLICT', async () => {
    const s = await newSession();
    const l = lane();
    const [t] = await queued(s, 1, { lane: l });
    const [c] = (await inTx((tx) => claimTasks(tx, claimOf({ lanes: [l], workerId: 'w-c' }))))
      .value;
    const miss = await rejection(
      inTx((tx) =>
        applyTaskOp(tx, {
          op: 'task.cancel',
          id: t!.id,
          expectState: 'queued',
          leaseToken: null,
          now: T0 + 1,
        }),
      ),
    );
    expect(miss.code).toBe('CONFLICT');
    expect(miss.message).toBe(`task ${t!.id} is running now (it was queued); read it again`);
    expect(miss.details).toEqual({ task_id: t!.id, state: 'running', expected: 'queued' });
    await inTx((tx) =>
      applyTaskOp(tx, {
        op: 'task.cancel',
        id: t!.id,
        expectState: 'running',
        leaseToken: c!.leaseToken,
        now: T0 + 2,
      }),
    );
    expect(await taskState(t!.id)).toMatchObject({
      state: 'canceled',
      lease_token: null,
      lease_owner: null,
    });
    expect(await listAttempts(pool, t!.id)).toMatchObject([
      { attempt: 1, outcome: 'canceled', worker_id: 'w-c', ended_at: T0 + 2, error: null },
    ]);
    const gone = await rejection(
      inTx((tx) =>
        applyTaskOp(tx, {
          op: 'task.cancel',
          id: 't_none',
          expectState: 'queued',
          leaseToken: null,
          now: T0,
        }),
      ),
    );
    expect(gone.code).toBe('NOT_FOUND');
  });

  it('task.fence holds the lease until commit', async () => {
    const s = await newSession();
    const l = lane();
    await queued(s, 1, { lane: l });
    const [c] = (await inTx((tx) => claimTasks(tx, claimOf({ lanes: [l] })))).value;
    const a = await begin();
    await applyTaskOp(a.tx, { op: 'task.fence', id: c!.task.id, leaseToken: c!.leaseToken });
    const b = await begin();
    const settle = settleOne(b.tx, {
      id: c!.task.id,
      leaseToken: c!.leaseToken,
      state: 'succeeded',
      attemptOutcome: 'succeeded',
      now: T0,
    });
    // The settle waits for the fenced transaction to end.
    await waitingOnLock(b.pid);
    await a.commit();
    expect(await settle).toBe(true);
    await b.commit();
    const lost = await rejection(
      inTx((tx) =>
        applyTaskOp(tx, { op: 'task.fence', id: c!.task.id, leaseToken: c!.leaseToken }),
      ),
    );
    expect(lost.code).toBe('LEASE_LOST');
    expect(lost.details).toMatchObject({ state: 'succeeded', attempt: 1 });
  });

  it('task.handoff claims the caller’s task unless someone waits ahead or the lane is full', async () => {
    const s = await newSession();
    const l = lane();
    const mine = taskRow(s, { lane: l, sort_key: T0 });
    const { events } = await inTx(async (tx) => {
      await applyTaskOp(tx, { op: 'task.insert', row: mine });
      await applyTaskOp(tx, {
        op: 'task.handoff',
        id: mine.id,
        lane: l,
        workerId: 'w-h',
        leaseToken: 'lt_h',
        leaseMs: 1_000,
        now: T0 + 5,
      });
    });
    expect(events).toEqual([
      {
        session_id: s,
        type: 'task.claimed',
        trace_id: mine.trace_id,
        process_id: null,
        task_id: mine.id,
        attempt: 1,
        data: { handoff: true, lane: l, lease_expires_at: T0 + 1_005, worker_id: 'w-h' },
      },
    ]);
    expect(await taskState(mine.id)).toMatchObject({
      state: 'running',
      lease_token: 'lt_h',
      claimed_at: T0 + 5,
    });

    // Someone of the same kind waits ahead: not handed off (CONFLICT when required).
    await queued(s, 1, { lane: l, sort_key: T0 - 1 });
    const next = taskRow(s, { lane: l, sort_key: T0 });
    const handoff = {
      op: 'task.handoff' as const,
      id: next.id,
      lane: l,
      workerId: 'w-h',
      leaseToken: 'lt_h2',
      leaseMs: 1_000,
      now: T0 + 6,
    };
    const quiet = await inTx(async (tx) => {
      await applyTaskOp(tx, { op: 'task.insert', row: next });
      await applyTaskOp(tx, handoff);
    });
    expect(quiet.events).toEqual([]);
    expect((await taskState(next.id))?.state).toBe('queued');
    const refused = await rejection(
      inTx(async (tx) => {
        const row = taskRow(s, { lane: l, sort_key: T0 + 10 });
        await applyTaskOp(tx, { op: 'task.insert', row });
        await applyTaskOp(tx, { ...handoff, id: row.id, required: true });
      }),
    );
    expect(refused.code).toBe('CONFLICT');
    expect(refused.details).toMatchObject({ handoff: 'refused' });
    // With overtake it goes ahead anyway.
    const over = taskRow(s, { lane: l, sort_key: T0 + 10 });
    await inTx(async (tx) => {
      await applyTaskOp(tx, { op: 'task.insert', row: over });
      await applyTaskOp(tx, { ...handoff, id: over.id, overtake: true, required: true });
    });
    expect((await taskState(over.id))?.state).toBe('running');

    // A full lane refuses it (2 running, concurrency 2).
    await inTx((tx) =>
      upsertLane(tx, { name: l, concurrency: 2, max_depth: null, updated_at: T0 }),
    );
    const full = await rejection(
      inTx(async (tx) => {
        const row = taskRow(s, { lane: l, sort_key: T0 - 100 });
        await applyTaskOp(tx, { op: 'task.insert', row });
        await applyTaskOp(tx, { ...handoff, id: row.id, overtake: true, required: true });
      }),
    );
    expect(full.code).toBe('CONFLICT');
  });

  it('task.redrive and task.purge act on dead tasks only', async () => {
    const s = await newSession();
    const options = {
      backoff_ms: 1,
      max_backoff_ms: 2,
      timeout_ms: null,
      poison_threshold: 3,
      consecutive_fingerprint: { fingerprint: 'f', count: 3 },
    };
    const dead = taskRow(s, { lane: lane(), state: 'dead', attempts: 3, max_attempts: 3, options });
    const alive = taskRow(s, { lane: lane() });
    await inTx((tx) => insertTasks(tx, [dead, alive]));
    await inTx((tx) =>
      applyTaskOp(tx, { op: 'task.redrive', id: dead.id, sortKey: T0 + 7, now: T0 + 8 }),
    );
    const row = await taskState(dead.id);
    expect(row).toMatchObject({
      state: 'queued',
      available_at: T0 + 8,
      sort_key: T0 + 7,
      updated_at: T0 + 8,
      max_attempts: 6,
      attempts: 3,
    });
    expect(row!.options).toBe(JSON.stringify({ ...options, consecutive_fingerprint: null }));

    const notDead = await rejection(
      inTx((tx) => applyTaskOp(tx, { op: 'task.redrive', id: alive.id, sortKey: 0, now: 0 })),
    );
    expect(notDead.code).toBe('INVALID_STATE');
    expect(notDead.message).toBe(
      `task ${alive.id} is queued, not dead; only dead tasks can be redriven`,
    );
    const purgeAlive = await rejection(
      inTx((tx) => applyTaskOp(tx, { op: 'task.purge', id: alive.id })),
    );
    expect(purgeAlive.message).toBe(
      `task ${alive.id} is queued, not dead; only dead tasks can be purged`,
    );
    expect(
      (await rejection(inTx((tx) => applyTaskOp(tx, { op: 'task.purge', id: 't_no' })))).code,
    ).toBe('NOT_FOUND');

    const gone = taskRow(s, { lane: lane(), state: 'dead' });
    await inTx((tx) => insertTasks(tx, [gone]));
    await pool.query(
      `INSERT INTO attempts (task_id, attempt, lease_token, worker_id, started_at, outcome)
       VALUES ($1, 1, 'lt', 'w', 0, 'failed')`,
      [gone.id],
    );
    await inTx((tx) => applyTaskOp(tx, { op: 'task.purge', id: gone.id }));
    expect(await taskState(gone.id)).toBeUndefined();
    expect(await listAttempts(pool, gone.id)).toEqual([]);
  });
});

describe('submits', () => {
  const request = (tasks: TaskRecord[], over: Partial<SubmitRequest> = {}): SubmitRequest => ({
    tasks,
    idempotencyWindowMs: 60_000,
    now: T0,
    ...over,
  });

  it('10,000 tasks go in with a handful of statements, each with its task.queued event', async () => {
    const s = await newSession();
    const l = lane();
    const rows = Array.from({ length: 10_000 }, (_, i) =>
      taskRow(s, { lane: l, sort_key: T0 + i }),
    );
    let statements = 0;
    const { value, events } = await inTx((tx) => {
      const query = tx.query.bind(tx);
      tx.query = (text: string, values?: readonly unknown[]) => {
        statements += 1;
        return query(text, values);
      };
      return submitTasks(tx, request(rows));
    });
    expect(statements).toBeLessThanOrEqual(4);
    expect(value).toHaveLength(10_000);
    expect(value.every((r) => !r.deduplicated)).toBe(true);
    expect(events).toHaveLength(10_000);
    expect(events[0]).toEqual({
      session_id: s,
      type: 'task.queued',
      trace_id: rows[0]!.trace_id,
      process_id: null,
      task_id: rows[0]!.id,
      data: { available_at: T0, kind: 'job', lane: l, name: 'job-1', priority: 2 },
    });
    expect(await countQueued(pool, l)).toBe(10_000);
    const back = await pool.query<Record<string, unknown>>('SELECT * FROM tasks WHERE id = $1', [
      rows[9_999]!.id,
    ]);
    expect(back.rows[0]).toMatchObject({
      sort_key: T0 + 9_999,
      payload: JSON.stringify(rows[9_999]!.payload),
    });
  });

  it('idempotency keys deduplicate within the window, conflict on another request, release past it', async () => {
    const s = await newSession();
    const key = `k-${randomBytes(4).toString('hex')}`;
    const first = taskRow(s, {
      idempotency_key: key,
      options: { ...taskRow(s).options, request_hash: 'h1' },
    });
    const twin = { ...taskRow(s), idempotency_key: key, options: first.options };
    const a = await inTx((tx) => submitTasks(tx, request([first, twin])));
    expect(a.value.map((r) => [r.task.id, r.deduplicated])).toEqual([
      [first.id, false],
      [first.id, true],
    ]);
    expect(a.events).toHaveLength(1);
    const again = await inTx((tx) => submitTasks(tx, request([twin], { now: T0 + 59_999 })));
    expect(again.value[0]).toMatchObject({ deduplicated: true, task: { id: first.id } });
    expect(again.events).toEqual([]);

    const other = { ...twin, options: { ...twin.options, request_hash: 'h2' } };
    const conflict = await rejection(inTx((tx) => submitTasks(tx, request([other]))));
    expect(conflict.code).toBe('IDEMPOTENCY_CONFLICT');
    expect(conflict.details).toEqual({ idempotency_key: key, task_id: first.id });

    const late = await inTx((tx) => submitTasks(tx, request([other], { now: T0 + 60_000 })));
    expect(late.value[0]).toMatchObject({ deduplicated: false, task: { id: other.id } });
    expect(late.events.map((e) => e.type)).toEqual([
      'task.idempotency_key_released',
      'task.queued',
    ]);
    expect(late.events[0]).toMatchObject({
      task_id: first.id,
      data: { idempotency_key: key, created_at: T0, window_ms: 60_000, reused_by: other.id },
    });
    expect((await taskState(first.id))?.idempotency_key).toBeNull();
    expect((await taskState(other.id))?.idempotency_key).toBe(key);
  });

  it('the same key from two connections at once makes one task', async () => {
    const s = await newSession();
    const key = `k-${randomBytes(4).toString('hex')}`;
    const one = taskRow(s, { idempotency_key: key });
    const two = { ...taskRow(s), idempotency_key: key };
    const a = await begin();
    const b = await begin();
    await submitTasks(a.tx, request([one]));
    const pendingB = submitTasks(b.tx, request([two]));
    await waitingOnLock(b.pid);
    await a.commit();
    const [answer] = await pendingB;
    await b.commit();
    expect(answer).toMatchObject({ deduplicated: true, task: { id: one.id } });
    expect(b.tx.pending).toEqual([]);

    // And sent together, many times: always one task per key, never an error.
    for (let i = 0; i < 10; i++) {
      const k = `${key}-${i}`;
      const [x, y] = await Promise.all([
        inTx((tx) => submitTasks(tx, request([{ ...taskRow(s), idempotency_key: k }]))),
        inTx((tx) => submitTasks(tx, request([{ ...taskRow(s), idempotency_key: k }]))),
      ]);
      expect([x.value[0]!.deduplicated, y.value[0]!.deduplicated].sort()).toEqual([false, true]);
      expect(x.value[0]!.task.id).toBe(y.value[0]!.task.id);
    }
    const counted = await pool.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM tasks WHERE idempotency_key LIKE $1',
      [`${key}%`],
    );
    expect(counted.rows[0]!.n).toBe(11);
  });

  it('a lane at its max depth refuses the whole batch (QUEUE_FULL), across connections', async () => {
    const s = await newSession();
    const l = lane();
    await inTx((tx) =>
      upsertLane(tx, { name: l, concurrency: null, max_depth: 3, updated_at: T0 }),
    );
    await inTx((tx) =>
      submitTasks(tx, request([taskRow(s, { lane: l }), taskRow(s, { lane: l })])),
    );
    const full = await rejection(
      inTx((tx) =>
        submitTasks(
          tx,
          request([taskRow(s, { lane: lane() }), taskRow(s, { lane: l }), taskRow(s, { lane: l })]),
        ),
      ),
    );
    expect(full.code).toBe('QUEUE_FULL');
    expect(full.retryAfterMs).toBe(1_000);
    expect(full.message).toBe(`lane '${l}' is full (2 queued, max depth 3); retry later`);
    expect(full.details).toEqual({ lane: l, depth: 2, max_depth: 3, submitted: 2 });
    expect(await countQueued(pool, l)).toBe(2);

    // Two connections each adding the last place: one of them is refused.
    const results = await Promise.allSettled([
      inTx((tx) => submitTasks(tx, request([taskRow(s, { lane: l })]))),
      inTx((tx) => submitTasks(tx, request([taskRow(s, { lane: l })]))),
    ]);
    expect(results.map((r) => r.status).sort()).toEqual(['fulfilled', 'rejected']);
    expect(await countQueued(pool, l)).toBe(3);
  });

  it('creates the sessions new tasks need, or moves them to the existing one', async () => {
    const existing = await newSession();
    const key = (
      await pool.query<{ key: string }>('SELECT key FROM sessions WHERE id = $1', [existing])
    ).rows[0]!.key;
    const fresh = sessionRow();
    const taken = sessionRow({ key });
    const t1 = taskRow(fresh.id);
    const t2 = taskRow(taken.id);
    const t3 = taskRow(fresh.id);
    const { value, events } = await inTx((tx) =>
      submitTasks(
        tx,
        request([t1, t2, t3], {
          sessions: [
            { row: fresh, traceId: 'tr-new' },
            { row: taken, traceId: 'tr-taken' },
            { row: sessionRow(), traceId: 'unused' },
          ],
        }),
      ),
    );
    expect(value.map((r) => r.task.session_id)).toEqual([fresh.id, existing, fresh.id]);
    expect(events.map((e) => [e.type, e.session_id])).toEqual([
      ['session.created', fresh.id],
      ['task.queued', fresh.id],
      ['task.queued', existing],
      ['task.queued', fresh.id],
    ]);
    expect(events[0]).toMatchObject({
      trace_id: 'tr-new',
      data: { key: fresh.key, settings: fresh.settings },
    });
    expect((await taskState(t2.id))?.session_id).toBe(existing);
  });

  it('fair queueing interleaves sessions and keeps each clock', async () => {
    const [big, small] = [await newSession(), await newSession()];
    const l = lane();
    const fairness = { quantumMs: 10, agingMs: 1_000 };
    const bigs = Array.from({ length: 5 }, () => taskRow(big, { lane: l, priority: 0 }));
    const dup = { ...taskRow(big, { lane: l }), idempotency_key: `fair-${l}` };
    const first = await inTx((tx) =>
      submitTasks(tx, request([...bigs, dup, { ...dup, id: 't_dup_twin' }], { fairness })),
    );
    expect(first.value.map((r) => r.task.sort_key - T0)).toEqual([0, 10, 20, 30, 40, 2_000, 2_000]);
    expect(first.value[6]!.deduplicated).toBe(true);
    const second = await inTx((tx) =>
      submitTasks(
        tx,
        request(
          [taskRow(small, { lane: l, priority: 0 }), taskRow(big, { lane: l, priority: 0 })],
          { fairness },
        ),
      ),
    );
    expect(second.value.map((r) => r.task.sort_key - T0)).toEqual([0, 50]);
    const clocks = await pool.query<{ session_id: string; rank: number; last_key: number }>(
      'SELECT session_id, rank, last_key FROM fair_clock WHERE lane = $1 ORDER BY session_id, rank',
      [l],
    );
    expect(clocks.rows).toEqual(
      [
        { session_id: big, rank: 0, last_key: T0 + 50 },
        { session_id: big, rank: 2, last_key: T0 },
        { session_id: small, rank: 0, last_key: T0 },
      ].sort((x, y) =>
        x.session_id < y.session_id ? -1 : x.session_id > y.session_id ? 1 : x.rank - y.rank,
      ),
    );
    const stored = await taskState(bigs[4]!.id);
    expect(stored?.sort_key).toBe(T0 + 40);
  });
});

describe('schedules', () => {
  const schedule = (over: Partial<ScheduleRecord> = {}): ScheduleRecord => ({
    id: `sch_${randomBytes(4).toString('hex')}`,
    name: `nightly-${randomBytes(4).toString('hex')}`,
    kind: 'interval',
    expr: '60000',
    job: 'job-1',
    lane: 'default',
    payload: { a: 1 },
    options: {},
    enabled: true,
    next_run_at: T0,
    last_run_at: null,
    last_task_id: null,
    failures: 0,
    last_error: null,
    created_at: T0,
    updated_at: T0,
    ...over,
  });

  it('an occurrence fires once, even from two connections at once', async () => {
    const s = await newSession();
    const sch = schedule();
    await inTx((tx) => upsertSchedule(tx, sch));
    expect((await listDueSchedules(pool, T0)).map((x) => x.id)).toContain(sch.id);
    const fire = (task: TaskRecord) => ({
      id: sch.id,
      expectedNextRunAt: T0,
      nextRunAt: T0 + 60_000,
      task,
      now: T0 + 1,
    });
    const [x, y] = await Promise.all([
      inTx((tx) => fireSchedule(tx, fire(taskRow(s)))),
      inTx((tx) => fireSchedule(tx, fire(taskRow(s)))),
    ]);
    const fired = [x, y].filter((r) => r.value !== null);
    expect(fired).toHaveLength(1);
    const task = fired[0]!.value!;
    expect(fired[0]!.events).toEqual([
      {
        session_id: s,
        type: 'task.queued',
        trace_id: task.trace_id,
        process_id: null,
        task_id: task.id,
        data: {
          available_at: T0,
          kind: 'job',
          lane: 'default',
          name: 'job-1',
          priority: 2,
          schedule: sch.name,
          occurrence: T0,
        },
      },
    ]);
    expect([x, y].find((r) => r.value === null)!.events).toEqual([]);
    const row = (
      await pool.query<Record<string, unknown>>('SELECT * FROM schedules WHERE id = $1', [sch.id])
    ).rows[0];
    expect(row).toMatchObject({
      next_run_at: T0 + 60_000,
      last_run_at: T0,
      last_task_id: task.id,
      failures: 0,
    });
    expect((await taskState(task.id))?.state).toBe('queued');
  });

  it('a deferred occurrence backs off with its event; a future one is not due by the database clock', async () => {
    const sch = schedule({ next_run_at: T0 + 5 });
    await inTx((tx) => upsertSchedule(tx, sch));
    const defer = {
      id: sch.id,
      expectedNextRunAt: T0 + 5,
      retryAt: T0 + 1_000,
      error: { code: 'QUEUE_FULL', message: 'full' },
      now: T0 + 6,
      sessionId: 'system',
      traceId: 'tr-d',
    };
    const { value, events } = await inTx((tx) => deferSchedule(tx, defer));
    expect(value).toMatchObject({ failures: 1, next_run_at: T0 + 1_000, last_error: defer.error });
    expect(events).toEqual([
      {
        session_id: 'system',
        type: 'schedule.failed',
        trace_id: 'tr-d',
        data: {
          name: sch.name,
          job: 'job-1',
          lane: 'default',
          occurrence: T0 + 5,
          error: defer.error,
          failures: 1,
          retry_at: T0 + 1_000,
        },
      },
    ]);
    expect((await inTx((tx) => deferSchedule(tx, defer))).value).toBeNull();

    const future = Date.now() + 3_600_000;
    const ahead = schedule({ next_run_at: future });
    await inTx((tx) => upsertSchedule(tx, ahead));
    expect((await listDueSchedules(pool, future + 1)).map((x) => x.id)).not.toContain(ahead.id);
    await inTx((tx) => deleteSchedule(tx, ahead.name));
    expect((await rejection(inTx((tx) => deleteSchedule(tx, ahead.name)))).code).toBe('NOT_FOUND');
  });
});

describe('reads', () => {
  it('answer depths, due times, leases, lanes and services', async () => {
    const s = await newSession();
    const [a, b] = [lane(), lane()];
    await queued(s, 3, { lane: a, available_at: T0 + 7 });
    await queued(s, 1, { lane: b, available_at: T0 + 3 });
    const depths = await queueDepths(pool);
    expect(depths[a]).toBe(3);
    expect(depths[b]).toBe(1);
    expect(await nextDue(pool, [a, b])).toBe(T0 + 3);
    expect(await nextDue(pool, [a, b], ['agent_step'])).toBeNull();
    await inTx((tx) => upsertLane(tx, { name: b, concurrency: 1, max_depth: 9, updated_at: T0 }));
    await inTx((tx) =>
      claimTasks(tx, claimOf({ lanes: [b], now: T0 + 3, workerId: 'w-r', leaseMs: 50 })),
    );
    expect(await nextDue(pool, [a, b])).toBe(T0 + 7);
    expect(await nextLeaseExpiry(pool)).not.toBeNull();
    expect(await nextLeaseExpiry(pool, [])).toBeNull();
    expect(await listLeaseOwners(pool)).toContain('w-r');
    const expired = await findExpiredLeases(pool, T0 + 53, [], 10);
    expect(expired.map((t) => t.lane)).toContain(b);
    expect(await findExpiredLeases(pool, T0 + 52, ['w-r'], 10, ['job'])).toEqual(
      expect.arrayContaining([expect.objectContaining({ lane: b, lease_owner: 'w-r' })]),
    );
    // No change when the limits are the same; a change is written.
    await inTx((tx) =>
      upsertLane(tx, { name: b, concurrency: 1, max_depth: 9, updated_at: T0 + 1 }),
    );
    expect((await listLanes(pool)).find((x) => x.name === b)).toEqual({
      name: b,
      concurrency: 1,
      max_depth: 9,
      updated_at: T0,
    });
    await inTx((tx) =>
      upsertService(tx, {
        name: `svc-${a}`,
        type: 'worker',
        capabilities: ['x'],
        max_concurrency: 2,
        owner: 'o',
        health: 'ok',
        registered_at: T0,
        updated_at: T0,
      }),
    );
    expect((await listServices(pool)).find((x) => x.name === `svc-${a}`)).toEqual({
      name: `svc-${a}`,
      type: 'worker',
      capabilities: ['x'],
      max_concurrency: 2,
      owner: 'o',
      health: 'ok',
      registered_at: T0,
      updated_at: T0,
    });
    await inTx((tx) => applyTaskOp(tx, { op: 'service.delete', name: `svc-${a}` }));
    expect((await listServices(pool)).find((x) => x.name === `svc-${a}`)).toBeUndefined();
  });
});
