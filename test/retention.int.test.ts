/**
 * Retention (issue 6, defect 8): a day of simulated work on a real SQLite file with a manual
 * clock stays bounded once the horizons pass; pruning keeps the ledger verifiable from its
 * anchor, answers REPLAY_GAP for stale cursors, deletes in bounded batches, and an idle sweep
 * writes nothing.
 */
import { statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { loadConfig, retentionOptionsOf } from '../src/cli/config.ts';
import {
  buildWorkflow,
  type ErrorCode,
  isWardenError,
  ManualClock,
  type WardenError,
} from '../src/core/index.ts';
import { Kernel, verifyLedger } from '../src/kernel/index.ts';
import {
  EffectJournal,
  JobQueue,
  resolveRetentionOptions,
  type RetentionOptions,
  RetentionSweeper,
  type SweepResult,
} from '../src/queue/index.ts';
import { openSqliteStore, type Store, type TaskSettle } from '../src/store/index.ts';
import { deleteEvent, editEventData } from './helpers/event-tamper.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
/** Short horizons so a simulated day crosses them many times. */
const HORIZONS = { finishedMs: HOUR, deadMs: 2 * HOUR, eventsMs: 2 * HOUR } as const;

const open: Array<{ close(): Promise<void> | void }> = [];

async function setup(options: RetentionOptions = HORIZONS) {
  const clock = new ManualClock();
  const file = join(tempDir(), 'warden.db');
  const store = await openSqliteStore({ file, clock });
  const queue = new JobQueue({ store, clock });
  const kernel = new Kernel({ store, clock });
  const sweeper = new RetentionSweeper({ store, clock, ...options });
  open.push({ close: () => store.close() }, { close: () => kernel.close() });
  return { clock, file, store, queue, kernel, sweeper };
}

/** Claims every due job and settles it: every 10th fails for good, one in 50 goes dead. */
async function workOff(store: Store, now: number, counter: { n: number }): Promise<void> {
  for (;;) {
    const claimed = await store.claimTasks({
      lanes: ['default'],
      kinds: ['job'],
      workerId: 'sim',
      limit: 100,
      leaseMs: 15_000,
      now,
    });
    if (claimed.length === 0) return;
    const settles: TaskSettle[] = claimed.map((c) => {
      counter.n += 1;
      const state = counter.n % 50 === 0 ? 'dead' : counter.n % 10 === 0 ? 'failed' : 'succeeded';
      return {
        id: c.task.id,
        leaseToken: c.leaseToken,
        state,
        result: state === 'succeeded' ? { ok: counter.n } : undefined,
        error: state === 'succeeded' ? null : { code: 'JOB_FAILED', message: 'boom' },
        attemptOutcome: state === 'succeeded' ? 'succeeded' : 'failed',
        now,
        events: [
          {
            session_id: c.task.session_id,
            type: state === 'succeeded' ? 'task.succeeded' : `task.${state}`,
            trace_id: c.task.trace_id,
            task_id: c.task.id,
            attempt: c.attempt,
            data: { note: 'x'.repeat(200) },
          },
        ],
      };
    });
    const outcomes = await store.settleTasks(settles);
    expect(outcomes.every((o) => o.ok)).toBe(true);
  }
}

/** Pages that hold data (not free), seen from another connection. */
function livePages(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    const pages = db.pragma('page_count', { simple: true }) as number;
    const free = db.pragma('freelist_count', { simple: true }) as number;
    return pages - free;
  } finally {
    db.close();
  }
}

function rowCount(file: string, table: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function errorOf(promise: Promise<unknown>): Promise<WardenError> {
  try {
    await promise;
  } catch (error) {
    if (isWardenError(error)) return error;
    throw error;
  }
  throw new Error('expected a WardenError');
}

const WORKFLOW = buildWorkflow({
  name: 'sim',
  stages: [{ name: 'a', agent: { kind: 'noop' } }],
});

/*
 * Store-level test data: these two write effect records straight through `store.commit`, with no
 * `effect.*` events, fence or owning task. They bypass the effect journal on purpose — retention
 * only sees rows — so do not copy them into code that needs the journal's guarantees.
 */

/** A pending effect record owned by a made-up attempt (no event, no task). */
async function insertPendingEffect(store: Store, key: string, now: number): Promise<void> {
  await store.commit([
    {
      op: 'effect.insert',
      row: {
        idempotency_key: key,
        tool: 'mail',
        request_hash: 'h',
        status: 'pending',
        result_hash: null,
        result: null,
        owner: 'lt_sim',
        owner_worker: 'sim',
        task_id: null,
        session_id: null,
        error: null,
        created_at: now,
        updated_at: now,
      },
    },
  ]);
}

/** Moves a record made by {@link insertPendingEffect} to done (no event). */
async function markEffectDone(store: Store, key: string, result: unknown, now: number) {
  await store.commit([
    {
      op: 'effect.transition',
      key,
      from: { status: 'pending', owner: 'lt_sim' },
      to: {
        status: 'done',
        owner: 'lt_sim',
        owner_worker: 'sim',
        task_id: null,
        session_id: null,
        result_hash: 'r',
        result,
        error: null,
      },
      now,
    },
  ]);
}

describe('retention', () => {
  afterEach(async () => {
    for (const o of open.splice(0).reverse()) await o.close();
  });
  afterAll(removeTempDirs);

  it('keeps a day of continuous work bounded, verifiable and replay-safe', async () => {
    const { clock, file, store, queue, kernel, sweeper } = await setup();
    const start = clock.now();
    // Never pruned: a task still queued (due tomorrow) and an effect still pending.
    const waiting = await queue.submit('later', {}, { delayMs: 30 * HOUR });
    await insertPendingEffect(store, 'effect:pending', start);

    const counter = { n: 0 };
    const pagesAt: Record<number, number> = {};
    const sweeps: SweepResult[] = [];
    const STEP = 5 * MINUTE;
    for (let t = STEP; t <= 24 * HOUR; t += STEP) {
      clock.set(start + t);
      const now = clock.now();
      const step = t / STEP;
      await queue.submitMany(
        Array.from({ length: 20 }, (_, i) => ({
          name: 'sim.job',
          payload: { step, i, body: 'y'.repeat(300) },
          options: { idempotencyKey: `job:${step}:${i}` },
        })),
      );
      await workOff(store, now, counter);
      // An effect per step, finished at once; and a run, cancelled at once (terminated).
      const key = `effect:${step}`;
      await insertPendingEffect(store, key, now);
      await markEffectDone(store, key, { sent: step }, now);
      const run = await kernel.startRun({ workflow: WORKFLOW, sessionKey: `user:${step % 3}` });
      await kernel.cancelRun(run.pid);

      if (step % 2 === 0) sweeps.push(await sweeper.sweep());
      if (t % HOUR === 0) pagesAt[t / HOUR] = livePages(file);
    }

    // Bounded: linear growth would make hour 24 four times hour 6; retention keeps it flat.
    expect(pagesAt[24]!).toBeLessThanOrEqual(pagesAt[6]! * 1.25);
    expect(pagesAt[24]!).toBeLessThan(pagesAt[3]! * 2);
    // Only the last hour of finished jobs (and two of dead ones) is left, plus the queued one.
    // What is left is what the horizons keep: about 1 h 10 min of finished work (sweeps run
    // every 10 min), 2 h 10 min of dead tasks, and the queued task.
    const left = {
      tasks: rowCount(file, 'tasks'),
      processes: rowCount(file, 'processes'),
      effects: rowCount(file, 'effects'),
      events: rowCount(file, 'events'),
    };
    console.log(`retention: rows left after 24 h ${JSON.stringify(left)}`);
    expect(left.tasks).toBeLessThanOrEqual(14 * 21 + 26 + 1);
    expect(left.processes).toBeLessThanOrEqual(14);
    expect(left.effects).toBeLessThanOrEqual(15);
    expect(await store.getTask(waiting.id)).toMatchObject({ state: 'queued' });
    expect(await store.getEffect('effect:pending')).toMatchObject({ status: 'pending' });
    const pruned = sweeps.reduce(
      (sum, s) => ({
        tasks: sum.tasks + s.tasks,
        dead: sum.dead + s.dead_tasks,
        events: sum.events + s.events,
      }),
      { tasks: 0, dead: 0, events: 0 },
    );
    expect(pruned.tasks).toBeGreaterThan(20 * 12 * 20);
    expect(pruned.dead).toBeGreaterThan(0);
    expect(pruned.events).toBeGreaterThan(0);
    console.log(
      `retention: live pages by hour ${JSON.stringify(pagesAt)}; worst prune transaction ${Math.max(...sweeps.map((s) => s.maxBatchMs)).toFixed(2)} ms over ${sweeps.reduce((n, s) => n + s.batches, 0)} batches`,
    );

    // The ledger still verifies, from each session's anchor.
    const verified = await verifyLedger(store);
    expect(verified.ok).toBe(true);
    const system = (await store.getSessionByKey('system'))!;
    expect(system.pruned_seq).toBeGreaterThan(0);
    expect(verified.sessions.find((s) => s.key === 'system')).toMatchObject({
      ok: true,
      pruned_seq: system.pruned_seq,
      head_seq: system.last_seq,
      events: system.last_seq - system.pruned_seq!,
    });

    // Every sweep that deleted something said so in the system session.
    const kept = await store.readEvents({ sessionId: system.id, limit: 10_000 });
    const notes = kept.filter((e) => e.type === 'retention.pruned');
    expect(notes.length).toBeGreaterThan(0);
    expect(notes.at(-1)!.data).toMatchObject({
      finished_before: clock.now() - HOUR,
      events_before: clock.now() - 2 * HOUR,
    });

    // A cursor older than retention is REPLAY_GAP; the anchor itself is a valid cursor.
    const oldest = system.pruned_seq! + 1;
    const gap = await errorOf(store.readEvents({ sessionId: system.id, afterSeq: 0 }));
    expect(gap.code).toBe<ErrorCode>('REPLAY_GAP');
    expect(gap.details).toMatchObject({ oldest_seq: oldest, session_id: system.id });
    const fromAnchor = await store.readEvents({ sessionId: system.id, afterSeq: oldest - 1 });
    expect(fromAnchor[0]!.seq).toBe(oldest);
    expect(kept[0]!.seq).toBe(oldest);
    // The same with a process filter, in a run's session.
    const user = (await store.getSessionByKey('user:0'))!;
    expect(user.pruned_seq).toBeGreaterThan(0);
    const [runEvent] = await store.readEvents({ sessionId: user.id, limit: 1 });
    const byProcess = { sessionId: user.id, processId: runEvent!.process_id! };
    expect((await errorOf(store.readEvents({ ...byProcess, afterSeq: 1 }))).code).toBe(
      'REPLAY_GAP',
    );
    expect(
      (await store.readEvents({ ...byProcess, afterSeq: user.pruned_seq! })).length,
    ).toBeGreaterThan(0);
  });

  it('still finds tampering of what remains, including the link to the anchor', async () => {
    const { clock, file, store, queue, sweeper } = await setup();
    for (let i = 0; i < 30; i++) {
      await queue.submit('j', { i });
      clock.advance(10 * MINUTE);
    }
    expect((await sweeper.sweep()).events).toBeGreaterThan(0);
    const system = (await store.getSessionByKey('system'))!;
    const first = system.pruned_seq! + 1;
    expect((await verifyLedger(store)).ok).toBe(true);

    const sql = (statement: string, ...params: unknown[]) => {
      const raw = new Database(file);
      try {
        raw.prepare(statement).run(...params);
      } finally {
        raw.close();
      }
    };
    const tamper = (edit: (db: Database.Database) => void) => {
      const raw = new Database(file);
      try {
        edit(raw);
      } finally {
        raw.close();
      }
    };
    const verify = async () => (await verifyLedger(store, system.id)).sessions[0]!;

    // A kept event's data.
    const [original] = await store.readEvents({ sessionId: system.id, limit: 3 });
    const third = (await store.readEvents({ sessionId: system.id, afterSeq: first + 1 }))[0]!;
    tamper((db) => editEventData(db, system.id, first + 2, '{"tampered":true}'));
    expect((await verify()).break).toMatchObject({ seq: first + 2, reason: 'hash_mismatch' });
    tamper((db) => editEventData(db, system.id, first + 2, JSON.stringify(third.data)));
    expect((await verify()).ok).toBe(true);

    // The anchor no longer matches the first kept event's prev_hash.
    sql('UPDATE sessions SET pruned_hash = ? WHERE id = ?', 'f'.repeat(64), system.id);
    expect((await verify()).break).toMatchObject({ seq: first, reason: 'prev_hash_mismatch' });
    sql('UPDATE sessions SET pruned_hash = ? WHERE id = ?', original!.prev_hash, system.id);
    expect((await verify()).ok).toBe(true);

    // The first kept event deleted without moving the anchor.
    tamper((db) => deleteEvent(db, system.id, first));
    expect((await verify()).break).toMatchObject({ seq: first, reason: 'seq_gap' });
  });

  it('deletes a backlog in bounded batches, one short transaction each', async () => {
    const { clock, file, store, queue } = await setup();
    const counter = { n: 0 };
    for (let i = 0; i < 12; i++) {
      await queue.submitMany(
        Array.from({ length: 500 }, (_, j) => ({ name: 'bulk', payload: { i, j } })),
      );
      await workOff(store, clock.now(), counter);
    }
    clock.advance(31 * 24 * HOUR);
    // Defaults (batch 500) except the clock: everything is past every horizon.
    const sweeper = new RetentionSweeper({ store, clock });
    const result = await sweeper.sweep();
    expect(result.tasks + result.dead_tasks).toBe(6_000);
    expect(result.batches).toBeGreaterThanOrEqual(12);
    expect(result.more).toBe(false);
    expect(rowCount(file, 'tasks')).toBe(0);
    expect(rowCount(file, 'attempts')).toBe(0);
    const system = (await store.getSessionByKey('system'))!;
    const left = await store.readEvents({ sessionId: system.id, limit: 10_000 });
    expect(left.length).toBe(result.batches);
    expect(left.every((e) => e.type === 'retention.pruned')).toBe(true);
    console.log(
      `retention backlog: ${result.tasks + result.dead_tasks} tasks, ${result.events} events in ${result.batches} batches of ≤500; worst transaction ${result.maxBatchMs.toFixed(2)} ms`,
    );
    expect((await verifyLedger(store)).ok).toBe(true);
  });

  it('keeps a run with a dead task until the dead horizon, then prunes both', async () => {
    const { clock, store, kernel, sweeper } = await setup();
    const run = await kernel.startRun({ workflow: WORKFLOW });
    const [claim] = await store.claimTasks({
      lanes: [kernel.agentLane],
      workerId: 'w',
      limit: 1,
      leaseMs: 15_000,
      now: clock.now(),
    });
    await store.settleTasks([
      {
        id: claim!.task.id,
        leaseToken: claim!.leaseToken,
        state: 'dead',
        attemptOutcome: 'failed',
        error: { code: 'JOB_FAILED', message: 'x' },
        now: clock.now(),
        events: [],
      },
    ]);
    await kernel.cancelRun(run.pid);
    clock.advance(HOUR + MINUTE);
    await sweeper.sweep();
    expect(await store.getProcess(run.pid)).toBeDefined();
    expect(await store.getTask(claim!.task.id)).toMatchObject({ state: 'dead' });
    clock.advance(HOUR);
    const result = await sweeper.sweep();
    expect(result).toMatchObject({ dead_tasks: 1, processes: 1 });
    expect(await store.getProcess(run.pid)).toBeUndefined();
    expect(await store.getTask(claim!.task.id)).toBeUndefined();
    expect(await store.listAttempts(claim!.task.id)).toEqual([]);
  });

  it('keeps the effects of a task that still exists: a dead task redriven after finishedMs does not repeat them', async () => {
    const { clock, store, queue, sweeper } = await setup();
    const journal = new EffectJournal(store, clock);
    const { id } = await queue.submit('charge', { amount: 5 });
    const claimIt = async () => {
      const [claimed] = await store.claimTasks({
        lanes: ['default'],
        kinds: ['job'],
        workerId: 'w',
        limit: 1,
        leaseMs: 15_000,
        now: clock.now(),
      });
      return claimed!;
    };
    const bury = (leaseToken: string) =>
      store.settleTasks([
        {
          id,
          leaseToken,
          state: 'dead',
          attemptOutcome: 'failed',
          error: { code: 'JOB_FAILED', message: 'failed after charging' },
          now: clock.now(),
          events: [],
        },
      ]);
    let charges = 0;
    const charge = () => {
      charges += 1;
      return { charge: `ch_${charges}` };
    };
    // The handler charges, then fails, and the job goes to the dead-letter queue.
    const first = await claimIt();
    expect(await journal.forClaim(first).effect('charge:1', { amount: 5 }, charge)).toEqual({
      charge: 'ch_1',
    });
    await bury(first.leaseToken);

    // Past the finished horizon, not the dead one: the task is kept, and so is its effect.
    clock.advance(HOUR + MINUTE);
    const now = clock.now();
    const policy = { finishedBefore: now - HOUR, deadBefore: now - 2 * HOUR, eventsBefore: 0 };
    expect(await store.hasPrunable(policy)).toBe(false);
    expect((await sweeper.sweep()).effects).toBe(0);
    expect(await store.getEffect('charge:1')).toMatchObject({ status: 'done', task_id: id });

    // An operator redrives it: the new attempt finds the charge done and does not charge again.
    await queue.redrive(id);
    const second = await claimIt();
    expect(await journal.forClaim(second).effect('charge:1', { amount: 5 }, charge)).toEqual({
      charge: 'ch_1',
    });
    expect(charges).toBe(1);

    // Once the task itself is pruned (dead again, past the dead horizon), its effect goes too.
    await bury(second.leaseToken);
    clock.advance(2 * HOUR + MINUTE);
    expect(await sweeper.sweep()).toMatchObject({ dead_tasks: 1, effects: 1 });
    expect(await store.getTask(id)).toBeUndefined();
    expect(await store.getEffect('charge:1')).toBeUndefined();
  });

  it('makes no write transaction when nothing is prunable', async () => {
    const { clock, file, store, queue, sweeper } = await setup();
    const watcher = new Database(file, { readonly: true });
    open.push({
      close: () => {
        watcher.close();
      },
    });
    const version = () => watcher.pragma('data_version', { simple: true }) as number;
    const wal = () => statSync(`${file}-wal`).size;

    // A fresh database: no sweep creates the system session or anything else.
    let before = version();
    let walBefore = wal();
    expect(await sweeper.sweep()).toMatchObject({ batches: 0, tasks: 0, events: 0 });
    expect(version()).toBe(before);
    expect(wal()).toBe(walBefore);
    expect(await store.getSessionByKey('system')).toBeUndefined();

    // Recent work only: still nothing to prune.
    await queue.submit('j', {});
    await workOff(store, clock.now(), { n: 0 });
    clock.advance(30 * MINUTE);
    before = version();
    walBefore = wal();
    expect((await sweeper.sweep()).batches).toBe(0);
    expect(version()).toBe(before);
    expect(wal()).toBe(walBefore);

    // Once it is old, one sweep prunes it; the next one is idle again.
    clock.advance(2 * HOUR);
    expect((await sweeper.sweep()).batches).toBeGreaterThan(0);
    before = version();
    walBefore = wal();
    expect((await sweeper.sweep()).batches).toBe(0);
    expect(version()).toBe(before);
    expect(wal()).toBe(walBefore);
  });

  it('runs in the background on an unref timer and stops cleanly', async () => {
    const { clock, store, queue } = await setup();
    await queue.submit('j', {});
    await workOff(store, clock.now(), { n: 0 });
    clock.advance(8 * 24 * HOUR);
    const sweeper = new RetentionSweeper({ store, clock });
    sweeper.start();
    const deadline = Date.now() + 5_000;
    while ((await store.listTasks({ limit: 1 })).length > 0) {
      if (Date.now() > deadline) throw new Error('the background sweep did not run');
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    await sweeper.stop();
  });

  it.each<[RetentionOptions, string]>([
    [{ finishedMs: 1_000 }, 'retention options: finishedMs: expected at least 60000 (1 minute)'],
    [{ eventsMs: 1.5 * HOUR + 0.5 }, 'retention options: eventsMs:'],
    [{ batchSize: 0 }, 'retention options: batchSize:'],
    [{ intervalMs: 10 }, 'retention options: intervalMs:'],
    [{ finishedMs: 40 * 24 * HOUR }, 'retention options: deadMs: expected at least finishedMs'],
    [{ deadMs: HOUR, finishedMs: 2 * HOUR }, 'retention options: deadMs: expected at least'],
    [{ horizon: 1 } as RetentionOptions, 'retention options: '],
  ])('rejects %j with INVALID_PARAMS naming the field', (options, message) => {
    let error: unknown;
    try {
      resolveRetentionOptions(options);
    } catch (e) {
      error = e;
    }
    expect(isWardenError(error, 'INVALID_PARAMS')).toBe(true);
    expect((error as WardenError).message).toContain(message);
  });

  it('documents its defaults', () => {
    expect(resolveRetentionOptions()).toEqual({
      finishedMs: 7 * 24 * HOUR,
      deadMs: 30 * 24 * HOUR,
      eventsMs: 30 * 24 * HOUR,
      intervalMs: 10 * MINUTE,
      batchSize: 500,
    });
  });

  it('config.yaml `retention:` maps onto the sweeper, with CONFIG_INVALID naming the key', () => {
    const home = tempDir();
    const config = (yaml: string) => {
      writeFileSync(join(home, 'config.yaml'), yaml);
      return loadConfig({ home });
    };
    const retention = config(
      'retention:\n  finished: 2d\n  events: 12h\n  batch_size: 100\n',
    ).retention;
    expect(retention.enabled).toBe(true);
    expect(resolveRetentionOptions(retentionOptionsOf(retention))).toMatchObject({
      finishedMs: 2 * 24 * HOUR,
      deadMs: 30 * 24 * HOUR,
      eventsMs: 12 * HOUR,
      batchSize: 100,
    });
    expect(config('').retention).toEqual({ enabled: true });
    for (const [yaml, message] of [
      ['retention:\n  finished: 40d\n', 'retention.dead: expected at least finished'],
      ['retention:\n  events: 10s\n', 'retention.events: expected at least 60000 (1 minute)'],
      ['retention:\n  batch_size: 0\n', 'retention.batch_size:'],
      ['retention:\n  horizon: 1d\n', 'Unrecognized key: "horizon"'],
    ] as const) {
      let error: unknown;
      try {
        config(yaml);
      } catch (e) {
        error = e;
      }
      expect(isWardenError(error, 'CONFIG_INVALID')).toBe(true);
      expect((error as WardenError).message).toContain(message);
    }
  });
});
