/**
 * The PostgreSQL schedule, lane and service writes (src/store/postgres/schedule-writes.ts) and
 * the queue's reads (task-reads.ts) on a real server, in a fresh schema: an occurrence fires once
 * even from two connections at once, deferrals, and due times on the database clock.
 */
import { randomBytes } from 'node:crypto';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

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
  findExpiredLeases,
  listDueSchedules,
  listLanes,
  listLeaseOwners,
  listServices,
  nextDue,
  nextLeaseExpiry,
  queueDepths,
} from '../../src/store/postgres/task-reads.ts';
import { claimTasks } from '../../src/store/postgres/task-writes.ts';
import type { ScheduleRecord, TaskRecord } from '../../src/store/types.ts';
import { T0, taskRow } from '../store-contract/contract.ts';
import {
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
} from './queue-db.ts';

beforeAll(setupSchema);
afterAll(dropSchema);

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
