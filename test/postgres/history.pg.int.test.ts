/**
 * The PostgreSQL adapter's history paths against a real server, each in a fresh schema: retention
 * (bounded batches, the contiguous event prefix and its anchor, REPLAY_GAP, concurrent prunes and
 * appends), the effect journal's compare-and-set (two connections racing one key), shared rate
 * windows (two connections racing the last slot), session deletion (refusals, counts, a writer
 * racing it) and read snapshots (isolation, closing). Races are forced, not hoped for: the second
 * connection is seen waiting on a lock in pg_stat_activity before the first commits.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import type { RateLimits } from '../../src/core/index.ts';
import {
  getEffect,
  insertEffect,
  transitionEffect,
} from '../../src/store/postgres/effect-writes.ts';
import { chainEvents } from '../../src/store/postgres/event-log.ts';
import { rateUsage, takeRate } from '../../src/store/postgres/rate-writes.ts';
import { hasPrunable, prune, readEvents } from '../../src/store/postgres/retention.ts';
import { deleteSession } from '../../src/store/postgres/session-delete.ts';
import { PostgresSnapshot } from '../../src/store/postgres/snapshot.ts';
import { deleteUnusedWorkflows, pinWorkflow } from '../../src/store/postgres/workflow-gc.ts';
import type {
  EffectRecord,
  EffectTransitionTarget,
  PruneInput,
  StoreOp,
} from '../../src/store/types.ts';
import { rejection } from '../helpers/wait.ts';
import { HistoryDb, T0, uid } from './history-db.ts';

let db: HistoryDb;
beforeEach(async () => {
  db = await HistoryDb.create();
});
afterEach(async () => {
  await db.drop();
});

const policy = { finishedBefore: T0 + 50, deadBefore: T0 + 50, eventsBefore: T0 + 50 };
const pruneInput = (system: string, limit = 100): PruneInput => ({
  policy,
  limit,
  event: { session_id: system, trace_id: 'tr_retention' },
});
const reader = () => db.reader;
const seqs = (events: ReadonlyArray<{ seq: number }>) => events.map((e) => e.seq);

describe('retention', () => {
  it('prunes each kind by its rules, cuts contiguous event prefixes, anchors them and answers REPLAY_GAP', async () => {
    const system = await db.session('system');
    const a = await db.session();
    const b = await db.session();
    const oldA = await db.events(a, 5, T0 + 1);
    const newA = await db.events(a, 2, T0 + 100);
    // b: old, new, old — only the first is a prefix older than the cut-off.
    await db.events(b, 1, T0 + 1);
    await db.events(b, 1, T0 + 100);
    await db.events(b, 1, T0 + 2);

    const dead = await db.task(a, { state: 'dead', updated_at: T0 + 10 });
    await db.attempt(dead);
    const deadNew = await db.task(a, { state: 'dead', updated_at: T0 + 60 });
    const finished = await db.task(a, { state: 'succeeded', updated_at: T0 + 10 });
    await db.attempt(finished);
    const queued = await db.task(a, { state: 'queued', updated_at: T0 + 10 });

    const live = await db.process(a, { state: 'running', workflow_hash: 'wf1' });
    const ofLive = await db.task(a, { state: 'succeeded', updated_at: T0 + 10, process_id: live });
    const done = await db.process(a, {
      state: 'terminated',
      completed_at: T0 + 10,
      workflow_hash: 'wf1',
    });
    const ofDone = await db.task(a, { state: 'failed', updated_at: T0 + 10, process_id: done });
    await db.attempt(ofDone);
    await db.interrupt(a, done, 'resolved');
    const holdsDead = await db.process(a, {
      state: 'terminated',
      completed_at: T0 + 10,
      workflow_hash: 'wf2',
    });
    const deadOfRun = await db.task(a, {
      state: 'dead',
      updated_at: T0 + 60,
      process_id: holdsDead,
    });
    const asks = await db.process(a, {
      state: 'zombie',
      completed_at: T0 + 10,
      workflow_hash: 'wf2',
    });
    await db.interrupt(a, asks, 'pending');
    await db.process(a, {
      state: 'zombie',
      completed_at: T0 + 10,
      workflow_hash: 'wf3',
    });

    await db.effect('fx_done', { status: 'done', updated_at: T0 + 10 });
    await db.effect('fx_task_gone', { status: 'failed', updated_at: T0 + 10, task_id: 't_gone' });
    await db.effect('fx_task_kept', { status: 'done', updated_at: T0 + 10, task_id: deadNew });
    await db.effect('fx_pending', { status: 'pending', updated_at: T0 + 10 });
    await db.effect('fx_new', { status: 'done', updated_at: T0 + 60 });

    expect(
      await hasPrunable(reader(), { finishedBefore: T0, deadBefore: T0, eventsBefore: T0 }),
    ).toBe(false);
    expect(await hasPrunable(reader(), policy)).toBe(true);

    db.clock.set(T0 + 200);
    const { value: result, events: noted } = await db.tx((tx) => prune(tx, pruneInput(system)));
    expect(result).toEqual({
      tasks: 2, // finished + ofDone
      dead_tasks: 1,
      attempts: 3,
      processes: 2, // done, alone
      interrupts: 1,
      effects: 2,
      events: 6, // a: 5, b: 1
      sessions: 2,
      more: false,
    });
    expect(await hasPrunable(reader(), policy)).toBe(false);

    const tasks = (await db.query<{ id: string }>('SELECT id FROM tasks')).map((r) => r.id);
    expect(tasks.sort()).toEqual([deadNew, queued, ofLive, deadOfRun].sort());
    expect(await db.count('attempts')).toBe(0);
    const pids = (await db.query<{ pid: string }>('SELECT pid FROM processes')).map((r) => r.pid);
    expect(pids.sort()).toEqual([live, holdsDead, asks].sort()); // not done, not alone
    expect(await db.count('interrupts')).toBe(1); // the pending one
    const workflows = (await db.query<{ hash: string }>('SELECT hash FROM workflows')).map(
      (r) => r.hash,
    );
    expect(workflows.sort()).toEqual(['wf1', 'wf2']); // wf3's only run went
    const effects = (await db.query<{ k: string }>('SELECT idempotency_key AS k FROM effects')).map(
      (r) => r.k,
    );
    expect(effects.sort()).toEqual(['fx_new', 'fx_pending', 'fx_task_kept']);

    // The anchor: the last pruned event; the kept chain continues from it.
    const [head] = await db.query<{ pruned_seq: number; pruned_hash: string; last_seq: number }>(
      'SELECT pruned_seq, pruned_hash, last_seq FROM sessions WHERE id = $1',
      [a],
    );
    expect(head).toEqual({ pruned_seq: 5, pruned_hash: oldA[4]!.hash, last_seq: 7 });
    const kept = await readEvents(reader(), { sessionId: a });
    expect(kept).toEqual(newA);
    expect(kept[0]!.prev_hash).toBe(head!.pruned_hash);
    expect(seqs(await readEvents(reader(), { sessionId: a, afterSeq: 5 }))).toEqual([6, 7]);
    expect(seqs(await readEvents(reader(), { sessionId: a, afterSeq: 6 }))).toEqual([7]);
    for (const afterSeq of [0, 2, 4]) {
      const gap = await rejection(readEvents(reader(), { sessionId: a, afterSeq }));
      expect(gap.code).toBe('REPLAY_GAP');
      expect(gap.details).toEqual({ session_id: a, after_seq: afterSeq, oldest_seq: 6 });
    }
    expect(seqs(await readEvents(reader(), { sessionId: b }))).toEqual([2, 3]);

    expect(noted.map((e) => [e.session_id, e.type])).toEqual([[system, 'retention.pruned']]);
    expect(noted[0]!.data).toEqual({
      tasks: 2,
      dead_tasks: 1,
      attempts: 3,
      processes: 2,
      interrupts: 1,
      effects: 2,
      events: 6,
      sessions: 2,
      finished_before: policy.finishedBefore,
      dead_before: policy.deadBefore,
      events_before: policy.eventsBefore,
    });

    // Nothing left: no event, nothing deleted.
    const again = await db.tx((tx) => prune(tx, pruneInput(system)));
    expect(again.value).toMatchObject({ tasks: 0, events: 0, sessions: 0, more: false });
    expect(again.events).toEqual([]);
  });

  it('deletes at most `limit` rows of each kind per batch and says `more` until done', async () => {
    const system = await db.session('system');
    const sessions = [await db.session(), await db.session(), await db.session()];
    for (const s of sessions) await db.events(s, 3, T0 + 1);
    for (let i = 0; i < 5; i++)
      await db.task(sessions[0]!, { state: 'canceled', updated_at: T0 + i });
    db.clock.set(T0 + 200);

    const batches = [];
    for (;;) {
      const { value } = await db.tx((tx) => prune(tx, pruneInput(system, 2)));
      batches.push(value);
      expect(value.events).toBeLessThanOrEqual(2);
      expect(value.tasks).toBeLessThanOrEqual(2);
      if (!value.more) break;
      expect(batches.length).toBeLessThan(20);
    }
    expect(batches.reduce((n, r) => n + r.events, 0)).toBe(9);
    expect(batches.reduce((n, r) => n + r.tasks, 0)).toBe(5);
    expect(batches[0]).toMatchObject({ tasks: 2, events: 2, more: true });
    for (const s of sessions) {
      const [head] = await db.query<{ pruned_seq: number }>(
        'SELECT pruned_seq FROM sessions WHERE id = $1',
        [s],
      );
      expect(head!.pruned_seq).toBe(3);
      expect(await readEvents(reader(), { sessionId: s })).toEqual([]);
    }
    // One retention.pruned per batch that deleted something.
    const notes = await readEvents(reader(), { sessionId: system });
    expect(notes.length).toBe(batches.filter((r) => r.tasks + r.events > 0).length);
  });

  it('two nodes pruning at once delete each row once; a prune waits for an append to the session it cuts', async () => {
    const system = await db.session('system');
    const s = await db.session();
    await db.events(s, 4, T0 + 1);
    for (let i = 0; i < 3; i++) await db.task(s, { state: 'succeeded', updated_at: T0 + 1 });
    db.clock.set(T0 + 200);

    const first = await db.open();
    const one = await prune(first.tx, pruneInput(system));
    expect(one).toMatchObject({ tasks: 3, events: 4 });
    const second = await db.open();
    const pending = prune(second.tx, pruneInput(system));
    // The second sees the tasks locked (skips them) and waits for the session head.
    await db.blocked(second.pid);
    await first.commit();
    const two = await pending;
    await second.commit();
    expect(two).toMatchObject({ tasks: 0, events: 0, sessions: 0 });

    // An append holding the head (chained, not yet committed) makes the prune wait; the prune
    // then cuts from the head the append left.
    await db.events(s, 2, T0 + 2);
    const append = await db.open();
    append.tx.append({ session_id: s, type: 'fixture' as never, trace_id: 'tr', data: {} });
    db.clock.set(T0 + 300); // newer than the cut-off: stays
    await chainEvents(append.tx, append.tx.pending.splice(0), db.clock);
    const pruning = await db.open();
    const cut = prune(pruning.tx, pruneInput(system));
    await db.blocked(pruning.pid);
    await append.commit();
    expect(await cut).toMatchObject({ events: 2, sessions: 1 });
    await pruning.commit();
    const [head] = await db.query<{ pruned_seq: number; pruned_hash: string; last_seq: number }>(
      'SELECT pruned_seq, pruned_hash, last_seq FROM sessions WHERE id = $1',
      [s],
    );
    expect(head).toMatchObject({ pruned_seq: 6, last_seq: 7 });
    const kept = await readEvents(reader(), { sessionId: s });
    expect(seqs(kept)).toEqual([7]);
    expect(kept[0]!.prev_hash).toBe(head!.pruned_hash);
  });

  it('a prune holding a session head makes an append to it wait, and the chain stays intact', async () => {
    const system = await db.session('system');
    const s = await db.session();
    await db.events(s, 3, T0 + 1);
    db.clock.set(T0 + 200);
    const pruning = await db.open();
    expect(await prune(pruning.tx, pruneInput(system))).toMatchObject({ events: 3 });
    const append = await db.open();
    append.tx.append({ session_id: s, type: 'fixture' as never, trace_id: 'tr', data: {} });
    const appended = append.commit();
    await db.blocked(append.pid);
    await pruning.commit();
    const [event] = await appended;
    const [head] = await db.query<{ pruned_hash: string }>(
      'SELECT pruned_hash FROM sessions WHERE id = $1',
      [s],
    );
    expect(event).toMatchObject({ seq: 4, prev_hash: head!.pruned_hash });
    expect(seqs(await readEvents(reader(), { sessionId: s, afterSeq: 3 }))).toEqual([4]);
  });

  it('event reads: limits, a process filter, and no anchor check for a contiguous page', async () => {
    const s = await db.session();
    const p = uid('p');
    await db.events(s, 3, T0);
    await db.events(s, 2, T0, { process_id: p });
    await db.events(s, 1, T0);
    expect(seqs(await readEvents(reader(), { sessionId: s, limit: 2 }))).toEqual([1, 2]);
    expect(seqs(await readEvents(reader(), { sessionId: s, afterSeq: 2, limit: 2 }))).toEqual([
      3, 4,
    ]);
    expect(seqs(await readEvents(reader(), { sessionId: s, processId: p }))).toEqual([4, 5]);
    expect(seqs(await readEvents(reader(), { sessionId: s, processId: p, afterSeq: 1 }))).toEqual([
      4, 5,
    ]);
    expect(await readEvents(reader(), { sessionId: s, afterSeq: 6 })).toEqual([]);
    expect(await readEvents(reader(), { sessionId: 's_missing', afterSeq: 3 })).toEqual([]);
    for (const limit of [0, -1, 1.5]) {
      const error = await rejection(readEvents(reader(), { sessionId: s, limit }));
      expect(error.code).toBe('INVALID_PARAMS');
    }
  });
});

describe('effects', () => {
  const row = (key: string, over: Partial<EffectRecord> = {}): EffectRecord => ({
    idempotency_key: key,
    tool: 'http.get',
    request_hash: 'h1',
    status: 'pending',
    result_hash: null,
    result: null,
    owner: 'lt_a',
    owner_worker: 'worker-a',
    task_id: null,
    session_id: null,
    error: null,
    created_at: T0,
    updated_at: T0,
    ...over,
  });
  const transition = (
    key: string,
    from: { status: EffectRecord['status']; owner: string | null },
    to: Partial<EffectTransitionTarget>,
  ): Extract<StoreOp, { op: 'effect.transition' }> => ({
    op: 'effect.transition',
    key,
    from,
    to: {
      status: 'pending',
      owner: 'lt_a',
      owner_worker: 'worker-a',
      task_id: null,
      session_id: null,
      result_hash: null,
      result: null,
      error: null,
      ...to,
    },
    now: T0 + 10,
  });

  it('insert-once and compare-and-set transitions with the documented errors', async () => {
    const first = row('k1', { result: { a: [1] } });
    await db.tx((tx) => insertEffect(tx, { op: 'effect.insert', row: first }));
    expect(await getEffect(reader(), 'k1')).toEqual(first);
    const conflict = await rejection(
      db.tx((tx) => insertEffect(tx, { op: 'effect.insert', row: row('k1', { owner: 'lt_b' }) })),
    );
    expect(conflict.code).toBe('CONFLICT');
    expect(conflict.message).toBe("effect 'k1' already exists (pending); read it and decide");
    expect(conflict.details).toEqual({ effect_key: 'k1', status: 'pending' });

    await db.tx((tx) =>
      transitionEffect(
        tx,
        transition(
          'k1',
          { status: 'pending', owner: 'lt_a' },
          { status: 'done', result_hash: 'r', result: { ok: true } },
        ),
      ),
    );
    expect(await getEffect(reader(), 'k1')).toMatchObject({
      status: 'done',
      result: { ok: true },
      updated_at: T0 + 10,
    });
    const late = await rejection(
      db.tx((tx) =>
        transitionEffect(
          tx,
          transition('k1', { status: 'pending', owner: 'lt_b' }, { status: 'failed' }),
        ),
      ),
    );
    expect(late.code).toBe('INVALID_STATE');
    expect(late.message).toBe(
      "effect 'k1' is done under another owner, not pending as expected; nothing was changed",
    );
    expect(late.details).toEqual({
      effect_key: 'k1',
      status: 'done',
      owner_worker: 'worker-a',
      expected: 'pending',
    });
    const missing = await rejection(
      db.tx((tx) =>
        transitionEffect(tx, transition('k_missing', { status: 'pending', owner: 'x' }, {})),
      ),
    );
    expect(missing.code).toBe('NOT_FOUND');

    // A record without owner is matched by owner null (IS NOT DISTINCT FROM).
    await db.tx((tx) => insertEffect(tx, { op: 'effect.insert', row: row('k2', { owner: null }) }));
    await db.tx((tx) =>
      transitionEffect(tx, transition('k2', { status: 'pending', owner: null }, { owner: 'lt_c' })),
    );
    expect(await getEffect(reader(), 'k2')).toMatchObject({ owner: 'lt_c' });
  });

  it('two connections inserting one key: the second waits, then gets CONFLICT (not a unique violation)', async () => {
    const a = await db.open();
    const b = await db.open();
    await insertEffect(a.tx, { op: 'effect.insert', row: row('race') });
    const second = insertEffect(b.tx, { op: 'effect.insert', row: row('race', { owner: 'lt_b' }) });
    second.catch(() => undefined);
    await db.blocked(b.pid);
    await a.commit();
    const error = await rejection(second);
    await b.rollback();
    expect(error.code).toBe('CONFLICT');
    expect(error.details).toEqual({ effect_key: 'race', status: 'pending' });
    expect(await getEffect(reader(), 'race')).toMatchObject({ owner: 'lt_a' });
  });

  it('the second insert goes ahead when the first rolls back', async () => {
    const a = await db.open();
    const b = await db.open();
    await insertEffect(a.tx, { op: 'effect.insert', row: row('undo') });
    const second = insertEffect(b.tx, { op: 'effect.insert', row: row('undo', { owner: 'lt_b' }) });
    await db.blocked(b.pid);
    await a.rollback();
    await second;
    await b.commit();
    expect(await getEffect(reader(), 'undo')).toMatchObject({ owner: 'lt_b' });
  });

  it('two connections racing one transition: exactly one applies', async () => {
    await db.tx((tx) => insertEffect(tx, { op: 'effect.insert', row: row('cas') }));
    const a = await db.open();
    const b = await db.open();
    await transitionEffect(
      a.tx,
      transition('cas', { status: 'pending', owner: 'lt_a' }, { status: 'done' }),
    );
    const second = transitionEffect(
      b.tx,
      transition('cas', { status: 'pending', owner: 'lt_a' }, { status: 'failed' }),
    );
    second.catch(() => undefined);
    await db.blocked(b.pid);
    await a.commit();
    const error = await rejection(second);
    await b.rollback();
    expect(error.code).toBe('INVALID_STATE');
    expect(error.details).toMatchObject({ status: 'done', expected: 'pending' });
    expect(await getEffect(reader(), 'cas')).toMatchObject({ status: 'done' });
  });
});

describe('shared rate windows', () => {
  const limits = (perMinute: number): RateLimits => ({
    per_minute: perMinute,
    per_hour: 1_000,
    per_day: 10_000,
    burst: perMinute,
  });

  it('counts every take against the same windows and refuses past the limit', async () => {
    for (let i = 0; i < 3; i++) await db.tx((tx) => takeRate(tx, 'model:a', limits(3), T0 + i));
    const refused = await rejection(db.tx((tx) => takeRate(tx, 'model:a', limits(3), T0 + 3)));
    expect(refused.code).toBe('RATE_LIMITED');
    expect(refused.details).toMatchObject({ key: 'model:a' });
    expect(refused.retryAfterMs).toBeGreaterThan(0);
    await db.tx((tx) => takeRate(tx, 'model:b', limits(3), T0 + 3));
    expect(await rateUsage(reader(), T0 + 3)).toEqual({ 'model:a': 3, 'model:b': 1 });
    // A minute later the window has moved on.
    await db.tx((tx) => takeRate(tx, 'model:a', limits(3), T0 + 61_000));
    expect((await rateUsage(reader(), T0 + 61_000))['model:a']).toBe(1);
  });

  for (const before of [0, 2]) {
    it(`two connections racing the last slot (${before} taken before): exactly one passes`, async () => {
      const key = uid('rate');
      for (let i = 0; i < before; i++)
        await db.tx((tx) => takeRate(tx, key, limits(before + 1), T0));
      const a = await db.open();
      const b = await db.open();
      await takeRate(a.tx, key, limits(before + 1), T0 + 1);
      const second = takeRate(b.tx, key, limits(before + 1), T0 + 1);
      second.catch(() => undefined);
      await db.blocked(b.pid); // on the key's advisory lock, even with no rows to lock
      await a.commit();
      const error = await rejection(second);
      await b.rollback();
      expect(error.code).toBe('RATE_LIMITED');
      expect((await rateUsage(reader(), T0 + 1))[key]).toBe(before + 1);
    });
  }
});

describe('session deletion', () => {
  it('refuses live work with its ids and counts, the system session, and a missing session', async () => {
    const system = await db.session('system');
    const s = await db.session('doomed');
    const run = await db.process(s, { state: 'running' });
    const queued = await db.task(s, { state: 'queued' });
    const running = await db.task(s, { state: 'running' });
    const ask = await db.interrupt(s, run, 'pending');
    await db.task(s, { state: 'succeeded' });
    const event = { session_id: system, trace_id: 'tr_delete' };

    const refused = await rejection(db.tx((tx) => deleteSession(tx, { id: s, event })));
    expect(refused.code).toBe('INVALID_STATE');
    expect(refused.message).toBe(
      `session 'doomed' has live work: 1 unfinished run(s) (${run}); 2 queued or running task(s) (${queued}, ${running}); 1 pending interrupt(s) (${ask}); cancel or finish it first`,
    );
    expect(refused.details).toEqual({
      session_id: s,
      key: 'doomed',
      live: { processes: [run], tasks: [queued, running], interrupts: [ask] },
      live_counts: { processes: 1, tasks: 2, interrupts: 1 },
    });
    expect(await db.count('tasks', 'session_id = $1', [s])).toBe(3);

    const own = await rejection(db.tx((tx) => deleteSession(tx, { id: system, event })));
    expect(own.code).toBe('INVALID_STATE');
    expect(own.details).toEqual({ session_id: system, key: 'system' });
    const target = await db.session();
    const self = await rejection(
      db.tx((tx) =>
        deleteSession(tx, { id: target, event: { session_id: target, trace_id: 't' } }),
      ),
    );
    expect(self.code).toBe('INVALID_STATE');
    const missing = await rejection(db.tx((tx) => deleteSession(tx, { id: 's_missing', event })));
    expect(missing.code).toBe('NOT_FOUND');
  });

  it('deletes everything of the session with exact counts and a session.deleted event', async () => {
    const system = await db.session('system');
    const s = await db.session('gone');
    const other = await db.session();
    await db.events(s, 4, T0 + 1);
    await db.events(other, 1, T0 + 1);
    const p1 = await db.process(s, {
      state: 'terminated',
      completed_at: T0,
      workflow_hash: 'wf_only',
    });
    await db.process(s, { state: 'zombie', completed_at: T0, workflow_hash: 'wf_shared' });
    await db.process(other, { state: 'running', workflow_hash: 'wf_shared' });
    const t1 = await db.task(s, { state: 'succeeded', process_id: p1 });
    await db.attempt(t1, 1);
    await db.attempt(t1, 2);
    const t2 = await db.task(s, { state: 'dead' });
    await db.attempt(t2);
    await db.effect('fx1', { status: 'done', task_id: t1 });
    await db.effect('fx2', { status: 'pending', task_id: t2 });
    await db.effect('fx_other', { status: 'done', task_id: null });
    await db.interrupt(s, p1, 'resolved');
    await db.query(
      `INSERT INTO fair_clock (lane, session_id, rank, last_key) VALUES ('default', $1, 2, 5)`,
      [s],
    );

    db.clock.set(T0 + 500);
    const { value: counts, events } = await db.tx((tx) =>
      deleteSession(tx, { id: s, event: { session_id: system, trace_id: 'tr_delete' } }),
    );
    const expected = { events: 4, processes: 2, tasks: 2, attempts: 3, interrupts: 1, effects: 2 };
    expect(counts).toEqual(expected);
    expect(events.map((e) => [e.session_id, e.type, e.trace_id])).toEqual([
      [system, 'session.deleted', 'tr_delete'],
    ]);
    expect(events[0]!.data).toEqual({ id: s, key: 'gone', counts: expected });
    for (const table of ['tasks', 'processes', 'interrupts', 'events', 'fair_clock'])
      expect(await db.count(table, 'session_id = $1', [s])).toBe(0);
    expect(await db.count('sessions', 'id = $1', [s])).toBe(0);
    expect(await db.count('attempts')).toBe(0);
    expect(
      (await db.query<{ k: string }>('SELECT idempotency_key AS k FROM effects')).map((r) => r.k),
    ).toEqual(['fx_other']);
    expect(
      (await db.query<{ hash: string }>('SELECT hash FROM workflows ORDER BY hash')).map(
        (r) => r.hash,
      ),
    ).toEqual(['wf_shared']);
    expect(seqs(await readEvents(reader(), { sessionId: other }))).toEqual([1]);
  });

  it('a session that was pruned counts only the events it still had', async () => {
    const system = await db.session('system');
    const s = await db.session();
    await db.events(s, 3, T0 + 1);
    await db.events(s, 2, T0 + 100);
    db.clock.set(T0 + 200);
    await db.tx((tx) => prune(tx, pruneInput(system)));
    const { value } = await db.tx((tx) =>
      deleteSession(tx, { id: s, event: { session_id: system, trace_id: 't' } }),
    );
    expect(value.events).toBe(2);
  });

  it('a writer adding work to the session waits for the deletion and then fails on it', async () => {
    const system = await db.session('system');
    const s = await db.session();
    const deleting = await db.open();
    await deleteSession(deleting.tx, { id: s, event: { session_id: system, trace_id: 't' } });
    const writer = await db.pool.connect();
    try {
      const pid = (await writer.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!
        .pid;
      const insert = writer.query(
        `INSERT INTO interrupts (id, session_id, kind, prompt, data, status, trace_id, created_at)
         VALUES ('i_late', $1, 'approval', 'p', '{}', 'pending', 't', 0)`,
        [s],
      );
      insert.catch(() => undefined);
      await db.blocked(pid);
      await deleting.commit();
      await expect(insert).rejects.toMatchObject({ code: '23503' }); // foreign key: the session is gone
    } finally {
      writer.release();
    }
    expect(await db.count('interrupts')).toBe(0);
  });

  it('a deletion waits for a writer that added work first, then refuses it', async () => {
    const system = await db.session('system');
    const s = await db.session();
    const writer = await db.open();
    await writer.tx.query(
      `INSERT INTO interrupts (id, session_id, kind, prompt, data, status, trace_id, created_at)
       VALUES ('i_first', $1, 'approval', 'p', '{}', 'pending', 't', 0)`,
      [s],
    );
    const deleting = await db.open();
    const pending = deleteSession(deleting.tx, {
      id: s,
      event: { session_id: system, trace_id: 't' },
    });
    pending.catch(() => undefined);
    await db.blocked(deleting.pid);
    await writer.commit();
    const refused = await rejection(pending);
    await deleting.rollback();
    expect(refused.code).toBe('INVALID_STATE');
    expect(refused.details).toMatchObject({ live: { interrupts: ['i_first'] } });
  });
});

describe('workflow definitions', () => {
  it('a run pinned by a writer keeps its definition from a concurrent clean-up', async () => {
    const s = await db.session();
    await db.workflow('wf_x');
    const writer = await db.open();
    await pinWorkflow(writer.tx, 'wf_x');
    await writer.tx.query(
      `INSERT INTO processes (pid, session_id, user_id, workflow_name, workflow_hash, state, priority,
         quota, usage, envelope, current_stage, trace_id, version, created_at, updated_at)
       VALUES ('p_new', $1, 'u', 'w', 'wf_x', 'new', 'normal', '{}', '{}', '{}', 's', 't', 1, 0, 0)`,
      [s],
    );
    const cleaner = await db.open();
    const cleaning = deleteUnusedWorkflows(cleaner.tx, ['wf_x']);
    await db.blocked(cleaner.pid);
    await writer.commit();
    expect(await cleaning).toBe(0);
    await cleaner.commit();
    expect(await db.count('workflows', 'hash = $1', ['wf_x'])).toBe(1);
    // Unused: it goes.
    await db.query(`DELETE FROM processes WHERE pid = 'p_new'`);
    expect((await db.tx((tx) => deleteUnusedWorkflows(tx, ['wf_x', 'wf_x']))).value).toBe(1);
  });
});

describe('snapshots', () => {
  it('does not see commits made after it opened, and keeps its own REPLAY_GAP view', async () => {
    const system = await db.session('system');
    const s = await db.session();
    await db.events(s, 2, T0 + 1);
    const snapshot = await PostgresSnapshot.open(db.pool, 'test');
    try {
      await db.events(s, 1, T0 + 100);
      const added = await db.session();
      db.clock.set(T0 + 200);
      expect((await db.tx((tx) => prune(tx, pruneInput(system)))).value.events).toBe(2);

      expect((await snapshot.getSession(s))?.last_seq).toBe(2);
      expect(await snapshot.getSession(added)).toBeUndefined();
      expect((await snapshot.listSessions()).map((r) => r.id).sort()).toEqual([system, s].sort());
      expect(seqs(await snapshot.readEvents({ sessionId: s }))).toEqual([1, 2]);
      expect(seqs(await snapshot.readEvents({ sessionId: s, afterSeq: 1 }))).toEqual([2]);
      expect(
        (await snapshot.readEvents({ sessionId: s, limit: 0 }).catch((e: unknown) => e)) as object,
      ).toMatchObject({
        code: 'INVALID_PARAMS',
      });
    } finally {
      await snapshot.close();
    }
    await snapshot.close(); // idempotent
    const closed = await rejection(snapshot.listSessions());
    expect(closed.code).toBe('INTERNAL');
    // Outside the snapshot: the prune and the new event are there.
    const gap = await rejection(readEvents(reader(), { sessionId: s, afterSeq: 1 }));
    expect(gap.code).toBe('REPLAY_GAP');
    // Its connection went back to the pool, idle and outside any transaction.
    expect(db.pool.totalCount - db.pool.idleCount).toBe(0);
    const states = await db.query<{ state: string }>(
      `SELECT state FROM pg_stat_activity WHERE application_name = $1
         AND state LIKE 'idle in transaction%'`,
      [db.schema],
    );
    expect(states).toEqual([]);
  });

  it('answers STORE_UNAVAILABLE when its connection is killed, and still closes', async () => {
    const snapshot = await PostgresSnapshot.open(db.pool, 'postgres://test');
    const [{ pid }] = (await db.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity WHERE application_name = $1
         AND query LIKE 'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY%'`,
      [db.schema],
    )) as [{ pid: number }];
    await db.query('SELECT pg_terminate_backend($1)', [pid]);
    const error = await rejection(snapshot.listSessions());
    expect(error.code).toBe('STORE_UNAVAILABLE');
    await snapshot.close();
    expect(db.pool.totalCount - db.pool.idleCount).toBe(0);
  });
});
