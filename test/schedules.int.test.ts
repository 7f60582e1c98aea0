/**
 * Schedules that cannot fire (DESIGN.md §6, "Schedules"; issue 6, defect 7): each schedule fires
 * in its own transaction, so one whose task cannot be built (an unknown lane, an oversized
 * payload, bad stored options) never blocks the others. Its failure is recorded — a
 * `schedule.failed` event, `failures` + 1 and `last_error` — and the occurrence is retried after
 * a capped exponential backoff (1 s, 2 s, 4 s … 1 h); a later successful firing resets
 * `failures`. Deferral is compare-and-set on `next_run_at` like firing, so two queues on one
 * database record each failed occurrence once.
 *
 * Bad schedules are written through the store directly: `JobQueue.schedule` validates them, but
 * stored rows can still go bad (a lane removed from the configuration, a lowered payload limit,
 * a row written by an older or newer release).
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { ManualClock } from '../src/core/index.ts';
import { JobQueue } from '../src/queue/index.ts';
import {
  type EventRecord,
  openSqliteStore,
  type ScheduleRecord,
  type Store,
} from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const stores: Store[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});
afterAll(removeTempDirs);

async function open(clock: ManualClock, file = join(tempDir(), 's.db')): Promise<Store> {
  const store = await openSqliteStore({ file, clock });
  stores.push(store);
  return store;
}

/** Writes a schedule row as-is, bypassing JobQueue.schedule's validation. */
async function putRawSchedule(
  store: Store,
  clock: ManualClock,
  row: Partial<ScheduleRecord> & Pick<ScheduleRecord, 'name' | 'next_run_at'>,
): Promise<void> {
  const now = clock.now();
  await store.commit([
    {
      op: 'schedule.upsert',
      row: {
        id: `sch_${row.name}`,
        kind: 'interval',
        expr: '60000',
        job: 'tick',
        lane: 'default',
        payload: null,
        options: {},
        enabled: true,
        last_run_at: null,
        last_task_id: null,
        failures: 0,
        last_error: null,
        created_at: now,
        updated_at: now,
        ...row,
      },
    },
  ]);
}

async function byName(store: Store, name: string): Promise<ScheduleRecord> {
  const found = (await store.listSchedules()).find((s) => s.name === name);
  if (!found) throw new Error(`no schedule ${name}`);
  return found;
}

async function systemEvents(store: Store, type: string): Promise<EventRecord[]> {
  const system = await store.getSessionByKey('system');
  if (!system) return [];
  const events = await store.readEvents({ sessionId: system.id, limit: 10_000 });
  return events.filter((e) => e.type === type);
}

describe('a schedule that cannot fire', () => {
  it('does not block the others; its failure is recorded with an event, and it backs off', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const store = await open(clock);
    const queue = new JobQueue({ store, clock, maxPayloadBytes: 1_024 });
    await queue.schedule('good', { everyMs: 60_000, job: 'tick', payload: { n: 1 } });
    const due = clock.now() + 60_000;
    // Due one millisecond earlier than the good one, so they are tried first.
    await putRawSchedule(store, clock, { name: 'bad-lane', lane: 'nowhere', next_run_at: due - 1 });
    await putRawSchedule(store, clock, {
      name: 'bad-payload',
      payload: { blob: 'x'.repeat(2_000) },
      next_run_at: due - 1,
    });
    await putRawSchedule(store, clock, {
      name: 'bad-options',
      options: { attempts: 'many' },
      next_run_at: due - 1,
    });

    clock.set(due);
    const fired = await queue.fireDueSchedules();
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({ name: 'tick', payload: { n: 1 }, state: 'queued' });
    expect((await store.listTasks()).map((t) => t.id)).toEqual([fired[0]!.id]);
    expect(await byName(store, 'good')).toMatchObject({
      failures: 0,
      last_error: null,
      last_task_id: fired[0]!.id,
      next_run_at: due + 60_000,
    });

    const expectedCodes = {
      'bad-lane': 'INVALID_PARAMS',
      'bad-payload': 'PAYLOAD_TOO_LARGE',
      'bad-options': 'INVALID_PARAMS',
    } as const;
    for (const [name, code] of Object.entries(expectedCodes)) {
      const s = await byName(store, name);
      expect(s.failures, name).toBe(1);
      expect(s.last_error?.code, name).toBe(code);
      expect(s.next_run_at, name).toBe(due + 1_000); // first retry after 1 s
      expect(s.last_task_id, name).toBeNull();
    }
    const failed = await systemEvents(store, 'schedule.failed');
    expect(failed.map((e) => (e.data as { name: string }).name).sort()).toEqual(
      Object.keys(expectedCodes).sort(),
    );
    expect(failed.find((e) => (e.data as { name: string }).name === 'bad-lane')!.data).toEqual({
      name: 'bad-lane',
      job: 'tick',
      lane: 'nowhere',
      occurrence: due - 1,
      error: {
        code: 'INVALID_PARAMS',
        message: expect.stringContaining("unknown lane 'nowhere'") as unknown,
      },
      failures: 1,
      retry_at: due + 1_000,
    });

    // Nothing is due until the retry: no write, no event.
    clock.set(due + 999);
    expect(await queue.fireDueSchedules()).toEqual([]);
    expect(await systemEvents(store, 'schedule.failed')).toHaveLength(3);

    // The backoff doubles: 1 s, 2 s, 4 s …
    clock.set(due + 1_000);
    expect(await queue.fireDueSchedules()).toEqual([]);
    expect(await byName(store, 'bad-lane')).toMatchObject({
      failures: 2,
      next_run_at: due + 1_000 + 2_000,
    });
    clock.set(due + 3_000);
    expect(await queue.fireDueSchedules()).toEqual([]);
    expect(await byName(store, 'bad-lane')).toMatchObject({
      failures: 3,
      next_run_at: due + 3_000 + 4_000,
    });
    expect(await systemEvents(store, 'schedule.failed')).toHaveLength(9);
  });

  it('backs off at most one hour', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const store = await open(clock);
    const queue = new JobQueue({ store, clock });
    await putRawSchedule(store, clock, {
      name: 'hopeless',
      lane: 'nowhere',
      failures: 40,
      next_run_at: clock.now(),
    });
    expect(await queue.fireDueSchedules()).toEqual([]);
    expect(await byName(store, 'hopeless')).toMatchObject({
      failures: 41,
      next_run_at: clock.now() + 3_600_000,
    });
  });

  it('a later successful firing resets failures and last_error', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const file = join(tempDir(), 's.db');
    const store = await open(clock, file);
    await putRawSchedule(store, clock, {
      name: 'reports',
      lane: 'reports',
      next_run_at: clock.now(),
    });
    // A queue without the lane cannot fire it …
    expect(await new JobQueue({ store, clock }).fireDueSchedules()).toEqual([]);
    expect(await byName(store, 'reports')).toMatchObject({ failures: 1 });
    // … one that declares it can, once the retry is due.
    const fixed = new JobQueue({ store, clock, lanes: { reports: {} } });
    clock.advance(1_000);
    const fired = await fixed.fireDueSchedules();
    expect(fired).toHaveLength(1);
    expect(fired[0]).toMatchObject({ lane: 'reports', name: 'tick' });
    expect(await byName(store, 'reports')).toMatchObject({
      failures: 0,
      last_error: null,
      last_task_id: fired[0]!.id,
    });
    // The task's `task.queued` event names the schedule and the occurrence it fired.
    const queued = (await systemEvents(store, 'task.queued')).find(
      (e) => e.task_id === fired[0]!.id,
    );
    expect(queued?.data).toMatchObject({ schedule: 'reports', occurrence: clock.now() });
  });

  it('two queues on one database: the good schedule fires once per occurrence, the bad one fails once per occurrence', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const file = join(tempDir(), 's.db');
    const storeA = await open(clock, file);
    const storeB = await open(clock, file);
    const queueA = new JobQueue({ store: storeA, clock });
    const queueB = new JobQueue({ store: storeB, clock });
    await queueA.schedule('good', { everyMs: 1_000, job: 'tick' });
    await putRawSchedule(storeA, clock, {
      name: 'bad',
      lane: 'nowhere',
      next_run_at: clock.now() + 1_000,
    });
    // Both queues see the same due rows and race to fire them, five times.
    for (let round = 1; round <= 5; round++) {
      clock.advance(1_000);
      const fired = await Promise.all([queueA.fireDueSchedules(), queueB.fireDueSchedules()]);
      expect(fired.flat(), `round ${round}`).toHaveLength(1);
    }
    expect(await storeB.listTasks()).toHaveLength(5);
    // The bad one was due at t = 1 s, then (backing off) 2 s and 4 s: three failures, each
    // recorded once, for three distinct occurrences.
    const failed = await systemEvents(storeB, 'schedule.failed');
    const occurrences = failed.map((e) => (e.data as { occurrence: number }).occurrence);
    expect(occurrences).toHaveLength(3);
    expect(new Set(occurrences).size).toBe(3);
    expect(failed.map((e) => (e.data as { failures: number }).failures)).toEqual([1, 2, 3]);
    expect(await byName(storeB, 'bad')).toMatchObject({ failures: 3 });
  });
});

describe('a schedule and its lane’s max depth', () => {
  it('does not fire past the lane’s max depth; the occurrence fires once there is room', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const store = await open(clock);
    const queue = new JobQueue({ store, clock, lanes: { small: { maxDepth: 1 } } });
    await queue.submit('filler', null, { lane: 'small' });
    await queue.schedule('tick', { everyMs: 60_000, job: 'tick', lane: 'small' });
    clock.advance(60_000);
    const due = (await byName(store, 'tick')).next_run_at;
    await expect(queue.fireDueSchedules()).rejects.toSatisfy(
      (e: unknown) => (e as { code?: string }).code === 'QUEUE_FULL',
    );
    expect(await store.countQueued('small')).toBe(1);
    expect((await byName(store, 'tick')).next_run_at).toBe(due); // still due, not skipped
    // The filler is taken: the same occurrence fires now.
    await store.claimTasks({
      lanes: ['small'],
      workerId: 'w',
      limit: 1,
      leaseMs: 10_000,
      now: clock.now(),
    });
    const fired = await queue.fireDueSchedules();
    expect(fired).toHaveLength(1);
    expect((await byName(store, 'tick')).next_run_at).toBe(due + 60_000);
  });
});
