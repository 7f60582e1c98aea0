/**
 * Submits are atomic (DESIGN.md §2.1; issue 6, defect 3): the sessions a batch needs are created
 * in the submit's own transaction, so a refused batch (QUEUE_FULL, IDEMPOTENCY_CONFLICT) leaves
 * the database exactly as it was; and releasing an idempotency key whose window has passed is a
 * state change with its own event, in the same transaction as the new task.
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { GENESIS_HASH, ManualClock } from '../src/core/index.ts';
import { JobQueue } from '../src/queue/index.ts';
import { openSqliteStore, type Store, type TaskRecord } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { rejection } from './helpers/wait.ts';

const stores: Store[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
});
afterAll(removeTempDirs);

async function open(clock?: ManualClock): Promise<Store> {
  const store = await openSqliteStore({
    file: join(tempDir(), 'q.db'),
    ...(clock ? { clock } : {}),
  });
  stores.push(store);
  return store;
}

async function snapshot(store: Store) {
  const sessions = await store.listSessions();
  const events = [];
  for (const s of sessions) events.push(...(await store.readEvents({ sessionId: s.id })));
  return { sessions, events, tasks: await store.listTasks() };
}

describe('a refused submit changes nothing', () => {
  it('QUEUE_FULL on a batch with a new session key creates no session and no event', async () => {
    const store = await open();
    const queue = new JobQueue({ store, lanes: { small: { maxDepth: 1 } } });
    await queue.submit('job', { n: 0 }, { lane: 'small' });
    const before = await snapshot(store);
    const error = await rejection(
      queue.submitMany([
        { name: 'job', payload: { n: 1 }, options: { lane: 'small', session: 'brand-new' } },
        { name: 'job', payload: { n: 2 }, options: { session: 'another-new' } },
      ]),
    );
    expect(error.code).toBe('QUEUE_FULL');
    expect(await store.getSessionByKey('brand-new')).toBeUndefined();
    expect(await store.getSessionByKey('another-new')).toBeUndefined();
    expect(await snapshot(store)).toEqual(before);
  });

  it('IDEMPOTENCY_CONFLICT on a batch with a new session key creates no session and no event', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    await queue.submit('job', { n: 1 }, { idempotencyKey: 'k1' });
    const before = await snapshot(store);
    const error = await rejection(
      queue.submitMany([
        { name: 'job', payload: { n: 9 }, options: { session: 'fresh' } },
        { name: 'job', payload: { n: 2 }, options: { idempotencyKey: 'k1' } },
      ]),
    );
    expect(error.code).toBe('IDEMPOTENCY_CONFLICT');
    expect(await snapshot(store)).toEqual(before);
  });

  it('a submit that only deduplicates creates no session', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const first = await queue.submit('job', { n: 1 }, { idempotencyKey: 'k1' });
    const before = await snapshot(store);
    const again = await queue.submit('job', { n: 1 }, { idempotencyKey: 'k1', session: 'unused' });
    expect(again).toMatchObject({ id: first.id, deduplicated: true });
    expect(await snapshot(store)).toEqual(before);
  });
});

describe('sessions created by a submit', () => {
  it('are created in the submit transaction: session.created is seq 1, then the task events', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    await queue.submit('warm-up', null); // the system session exists: only 'team' is new
    const commits: string[][] = [];
    const off = store.onCommit((events) => commits.push(events.map((e) => e.type)));
    const [a, b] = await queue.submitMany([
      { name: 'job', payload: { n: 1 }, options: { session: 'team' } },
      { name: 'job', payload: { n: 2 }, options: { session: 'team' } },
    ]);
    off();
    // One commit: the session and its tasks exist together or not at all.
    expect(commits).toEqual([['session.created', 'task.queued', 'task.queued']]);
    const session = (await store.getSessionByKey('team'))!;
    expect(a!.task.session_id).toBe(session.id);
    expect(b!.task.session_id).toBe(session.id);
    const events = await store.readEvents({ sessionId: session.id });
    expect(events.map((e) => [e.seq, e.type, e.task_id])).toEqual([
      [1, 'session.created', null],
      [2, 'task.queued', a!.id],
      [3, 'task.queued', b!.id],
    ]);
    expect(events[0]!.data).toEqual({ key: 'team', settings: {} });
    // The next submit reuses the session.
    const c = await queue.submit('job', { n: 3 }, { session: 'team' });
    expect(c.task.session_id).toBe(session.id);
    expect((await store.listSessions()).filter((s) => s.key === 'team')).toHaveLength(1);
  });

  it('a key created meanwhile by another process is used, and the tasks are moved to it', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const now = Date.now();
    // What another process's queue prepared: a new row for a key that does not exist yet …
    const prepared = await queue.sessions.prepare('raced');
    expect(prepared.create).not.toBeNull();
    // … and what this process did meanwhile: create the session with that key.
    const winner = await new JobQueue({ store }).sessions.ensure('raced');
    const task: TaskRecord = {
      ...(await queue.submit('seed', null)).task,
      id: 't_raced_1',
      session_id: prepared.id,
      idempotency_key: null,
    };
    const [result] = await store.submitTasks({
      tasks: [task],
      sessions: [prepared.create!],
      idempotencyWindowMs: 1_000,
      now,
    });
    expect(result!.task.session_id).toBe(winner.id);
    expect((await store.getTask('t_raced_1'))!.session_id).toBe(winner.id);
    expect(await store.getSession(prepared.id)).toBeUndefined();
    expect((await store.listSessions()).filter((s) => s.key === 'raced')).toHaveLength(1);
    expect(prepared.create!.row).toMatchObject({
      key: 'raced',
      last_seq: 0,
      last_hash: GENESIS_HASH,
    });
  });
});

describe('idempotency keys', () => {
  it('releasing a key whose window has passed writes task.idempotency_key_released on the old task', async () => {
    const clock = new ManualClock(1_700_000_000_000);
    const store = await open(clock);
    const queue = new JobQueue({ store, clock, idempotencyWindowMs: 60_000 });
    const old = await queue.submit('job', { n: 1 }, { idempotencyKey: 'nightly', session: 'ops' });
    clock.advance(59_999);
    expect(await queue.submit('job', { n: 1 }, { idempotencyKey: 'nightly' })).toMatchObject({
      id: old.id,
      deduplicated: true,
    });
    clock.advance(1);
    const fresh = await queue.submit('job', { n: 1 }, { idempotencyKey: 'nightly' });
    expect(fresh.deduplicated).toBe(false);
    expect(fresh.id).not.toBe(old.id);
    expect((await store.getTask(old.id))!.idempotency_key).toBeNull();
    expect((await store.getTask(fresh.id))!.idempotency_key).toBe('nightly');
    // The release is recorded in the old task's session, in the new task's transaction.
    const events = await store.readEvents({ sessionId: old.task.session_id });
    const released = events.filter((e) => e.type === 'task.idempotency_key_released');
    expect(released).toHaveLength(1);
    expect(released[0]).toMatchObject({
      task_id: old.id,
      trace_id: old.task.trace_id,
      data: {
        idempotency_key: 'nightly',
        created_at: old.task.created_at,
        window_ms: 60_000,
        reused_by: fresh.id,
      },
    });
  });

  it('a key repeated within one batch deduplicates, whatever the window', async () => {
    const store = await open();
    const queue = new JobQueue({ store, idempotencyWindowMs: 0 });
    const [a, b] = await queue.submitMany([
      { name: 'job', payload: { n: 1 }, options: { idempotencyKey: 'same' } },
      { name: 'job', payload: { n: 1 }, options: { idempotencyKey: 'same' } },
    ]);
    expect(b).toMatchObject({ id: a!.id, deduplicated: true });
    expect(await store.listTasks()).toHaveLength(1);
  });
});
