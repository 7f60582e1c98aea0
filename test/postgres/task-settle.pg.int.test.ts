/**
 * The PostgreSQL fenced writes (src/store/postgres/task-settle.ts, and the task ops of
 * task-ops.ts) called directly on a real server, in a fresh schema: settles, releases, batch
 * settles, heartbeats, cancel, fence, handoff, redrive and purge — and the races: two settles
 * with one token from two connections, a reclaim ahead of the database clock, a settle waiting
 * on a fence.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { upsertLane } from '../../src/store/postgres/schedule-writes.ts';
import { applyTaskOp } from '../../src/store/postgres/task-ops.ts';
import { findExpiredLeases, listAttempts } from '../../src/store/postgres/task-reads.ts';
import {
  heartbeatOne,
  heartbeatTasks,
  settleOne,
  settleTasks,
} from '../../src/store/postgres/task-settle.ts';
import { claimTasks, insertTasks } from '../../src/store/postgres/task-writes.ts';
import type { ClaimRequest, NewEvent } from '../../src/store/types.ts';
import { T0, taskRow } from '../store-contract/contract.ts';
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
  setupSchema,
  taskState,
  waitingOnLock,
} from './queue-db.ts';

beforeAll(setupSchema);
afterAll(dropSchema);

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
