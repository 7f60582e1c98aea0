/**
 * The PostgreSQL claim and submit paths (src/store/postgres/task-writes.ts) called directly on a
 * real server, in a fresh schema: answers, rows and the events each transaction appends, and the
 * races that matter when several nodes write at once — overlapping claims, a lane's concurrency
 * and depth across connections, the same idempotency key from two connections. Races are forced,
 * not hoped for: the second connection is seen waiting on the first's lock (pg_stat_activity)
 * before the first commits.
 */
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { upsertLane } from '../../src/store/postgres/schedule-writes.ts';
import { countQueued, nextDue } from '../../src/store/postgres/task-reads.ts';
import { settleOne } from '../../src/store/postgres/task-settle.ts';
import { claimTasks, insertTasks, submitTasks } from '../../src/store/postgres/task-writes.ts';
import type { SubmitRequest, TaskRecord } from '../../src/store/types.ts';
import { sessionRow, T0, taskRow } from '../store-contract/contract.ts';
import {
  begin,
  claimOf,
  dropSchema,
  inTx,
  lane,
  newSession,
  pool,
  queued,
  rejection,
  running,
  setupSchema,
  taskState,
  waitingOnLock,
} from './queue-db.ts';

beforeAll(setupSchema);
afterAll(dropSchema);

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
