/**
 * The kernel's process table (src/kernel/process-table.ts: jeeves KernelService's bare
 * processes), on SQLite and PostgreSQL: the lifecycle table, FIFO within a priority (the Rust
 * port's LIFO heap: defect 5), one termination path with the force rule (defect 17), per-field
 * quota and usage kept after termination (defects 6, 12, 13), owner/user isolation (defect 15),
 * two schedulers popping at once, and every change in the event log.
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { ManualClock } from '../src/core/index.ts';
import { JEEVES_DEFAULT_QUOTA, resolveResourceQuota } from '../src/core/jeeves/index.ts';
import { type CreatePcbInput, Kernel, type PcbActor, pcbMetaOf } from '../src/kernel/index.ts';
import { openSqliteStore, type Store } from '../src/store/index.ts';
import { openPostgresStore } from '../src/store/postgres/pg-store.ts';
import { dropSchemas, freshSchema, PG_URL } from './helpers/postgres.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { rejection } from './helpers/wait.ts';

/** Per adapter: a new database, returning how to open (another) store on it. */
const adapters: Array<[string, () => (clock: ManualClock) => Promise<Store>]> = [
  [
    'sqlite',
    () => {
      const file = join(tempDir(), 'pcb.db');
      return (clock) => openSqliteStore({ file, clock });
    },
  ],
  [
    'postgres',
    () => {
      const schema = freshSchema();
      return (clock) => openPostgresStore({ url: PG_URL, schema, poolSize: 4, clock });
    },
  ],
];

const opened: Store[] = [];
afterEach(async () => {
  for (const s of opened.splice(0)) await s.close();
});
afterAll(async () => {
  removeTempDirs();
  await dropSchemas();
});

const ALICE: PcbActor = { owner: 'token:t1', userId: 'alice' };

function pcb(pid: string, extra: Partial<CreatePcbInput> = {}): CreatePcbInput {
  return {
    owner: 'token:t1',
    pid,
    userId: 'alice',
    sessionId: 's1',
    requestId: `req-${pid}`,
    priority: 'normal',
    quota: JEEVES_DEFAULT_QUOTA,
    ...extra,
  };
}

describe.each(adapters)('process table on %s', (_name, database) => {
  let openStore: (clock: ManualClock) => Promise<Store>;
  async function kernelWith(clock = new ManualClock()) {
    openStore = database();
    const store = await openStore(clock);
    opened.push(store);
    return { kernel: new Kernel({ store, clock }), store, clock };
  }

  it('walks the lifecycle table and logs every change', async () => {
    const { kernel, store, clock } = await kernelWith();
    const table = kernel.processTable;
    const { process: created, created: isNew } = await table.create(pcb('p1'));
    expect(isNew).toBe(true);
    expect(created.state).toBe('new');
    expect(pcbMetaOf(created)).toMatchObject({ pid: 'p1', session_id: 's1', request_id: 'req-p1' });
    clock.advance(10);
    expect((await table.schedule(ALICE, 'p1')).state).toBe('ready');
    clock.advance(10);
    const running = await table.nextRunnable(ALICE);
    expect(running.state).toBe('running');
    expect(running.started_at).toBe(clock.now());
    expect(pcbMetaOf(running)!.last_scheduled_at).toBe(clock.now());
    expect((await table.transition(ALICE, 'p1', 'waiting', 'needs input')).state).toBe('waiting');
    expect((await table.transition(ALICE, 'p1', 'ready', 'answered')).state).toBe('ready');
    expect((await table.nextRunnable(ALICE)).state).toBe('running');
    expect((await table.transition(ALICE, 'p1', 'blocked', 'resource')).state).toBe('blocked');
    expect((await table.transition(ALICE, 'p1', 'ready', '')).state).toBe('ready');
    expect((await table.nextRunnable(ALICE)).state).toBe('running');
    clock.advance(1_500);
    const done = await table.terminate(ALICE, 'p1', { reason: 'finished', force: true });
    expect(done).toMatchObject({ state: 'terminated', terminal_message: 'finished' });
    expect(done.completed_at).toBe(clock.now());
    expect(table.elapsedSeconds(done)).toBe(1.52);
    clock.advance(5_000);
    expect(table.elapsedSeconds(await table.get(ALICE, 'p1'))).toBe(1.52); // stops at the end
    expect((await table.transition(ALICE, 'p1', 'zombie', 'reaped')).state).toBe('zombie');

    const events = await store.readEvents({ sessionId: done.session_id });
    const moves = events
      .filter((e) => e.type === 'process.state_changed')
      .map((e) => `${(e.data as { from: string }).from}>${(e.data as { to: string }).to}`);
    expect(moves).toEqual([
      'new>ready',
      'ready>running',
      'running>waiting',
      'waiting>ready',
      'ready>running',
      'running>blocked',
      'blocked>ready',
      'ready>running',
      'running>terminated',
      'terminated>zombie',
    ]);
    expect(events.filter((e) => e.type === 'process.created')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'process.terminated')).toHaveLength(1);
    expect((await kernel.store.getProcess(done.pid))?.state).toBe('zombie');
  });

  it('refuses illegal moves with INVALID_STATE and changes nothing', async () => {
    const { kernel } = await kernelWith();
    const table = kernel.processTable;
    await table.create(pcb('p1'));
    expect((await rejection(table.transition(ALICE, 'p1', 'running', ''))).code).toBe(
      'INVALID_STATE',
    );
    await table.schedule(ALICE, 'p1');
    const again = await rejection(table.schedule(ALICE, 'p1'));
    expect(again.code).toBe('INVALID_STATE');
    expect(again.message).toMatch(/only a NEW process can be scheduled/);
    await table.nextRunnable(ALICE);
    // One termination path: TransitionState(→TERMINATED) of a RUNNING process needs force too.
    const viaTransition = await rejection(table.transition(ALICE, 'p1', 'terminated', 'x'));
    expect(viaTransition.code).toBe('INVALID_STATE');
    expect(viaTransition.message).toMatch(/needs force/);
    const unforced = await rejection(table.terminate(ALICE, 'p1', { reason: 'x', force: false }));
    expect(unforced.code).toBe('INVALID_STATE');
    expect((await table.get(ALICE, 'p1')).state).toBe('running');
    await table.terminate(ALICE, 'p1', { reason: 'stop', force: true });
    // Terminating a terminal process is a success that changes nothing.
    const before = await table.get(ALICE, 'p1');
    const after = await table.terminate(ALICE, 'p1', { reason: 'again', force: false });
    expect(after.version).toBe(before.version);
    expect(after.terminal_message).toBe('stop');
    // A NEW process terminates without force, through the same path.
    await table.create(pcb('p2'));
    expect((await table.transition(ALICE, 'p2', 'terminated', 'never ran')).state).toBe(
      'terminated',
    );
  });

  it('pops READY processes FIFO within a priority, best priority first', async () => {
    const { kernel, clock } = await kernelWith();
    const table = kernel.processTable;
    const order = [
      ['a-normal', 'normal'],
      ['b-low', 'low'],
      ['c-normal', 'normal'],
      ['d-realtime', 'realtime'],
      ['e-normal', 'normal'],
      ['f-high', 'high'],
    ] as const;
    for (const [pid, priority] of order) {
      await table.create(pcb(pid, { priority }));
      await table.schedule(ALICE, pid);
      clock.advance(1);
    }
    const popped: string[] = [];
    for (let i = 0; i < order.length; i++)
      popped.push(pcbMetaOf(await table.nextRunnable(ALICE))!.pid);
    expect(popped).toEqual(['d-realtime', 'f-high', 'a-normal', 'c-normal', 'e-normal', 'b-low']);
    const empty = await rejection(table.nextRunnable(ALICE));
    expect(empty.code).toBe('NOT_FOUND');
    expect(empty.message).toBe('no runnable process');
    // A re-queued process goes to the back of its class.
    await table.transition(ALICE, 'a-normal', 'ready', 'preempted');
    clock.advance(1);
    await table.transition(ALICE, 'c-normal', 'ready', 'preempted');
    clock.advance(1);
    await table.transition(ALICE, 'e-normal', 'ready', 'preempted');
    expect(pcbMetaOf(await table.nextRunnable(ALICE))!.pid).toBe('a-normal');
    expect(pcbMetaOf(await table.nextRunnable(ALICE))!.pid).toBe('c-normal');
    expect(pcbMetaOf(await table.nextRunnable(ALICE))!.pid).toBe('e-normal');
  });

  it('two schedulers popping at once never get the same process', async () => {
    const { kernel, clock } = await kernelWith();
    const store2 = await openStore(clock);
    opened.push(store2);
    const other = new Kernel({ store: store2, clock });
    const pids = Array.from({ length: 12 }, (_, i) => `p${String(i).padStart(2, '0')}`);
    for (const pid of pids) {
      await kernel.processTable.create(pcb(pid));
      await kernel.processTable.schedule(ALICE, pid);
    }
    const pops = await Promise.all(
      pids.map((_, i) => (i % 2 === 0 ? kernel : other).processTable.nextRunnable(ALICE)),
    );
    expect(pops.map((p) => pcbMetaOf(p)!.pid).sort()).toEqual(pids);
    expect(await other.processTable.counts(ALICE)).toEqual({
      byState: { running: 12 },
      total: 12,
      ready: 0,
    });
  });

  it('keeps ownership: users, callers and duplicate pids', async () => {
    const { kernel } = await kernelWith();
    const table = kernel.processTable;
    await table.create(pcb('shared'));
    // The same pid again from the same user: the existing PCB, unchanged.
    const again = await table.create(pcb('shared', { priority: 'high' }));
    expect(again.created).toBe(false);
    expect(again.process.priority).toBe('normal');
    // From another user of the caller: ALREADY_EXISTS (the original returned the PCB).
    expect((await rejection(table.create(pcb('shared', { userId: 'bob' })))).code).toBe(
      'ALREADY_EXISTS',
    );
    const bob: PcbActor = { owner: 'token:t1', userId: 'bob' };
    const denied = await rejection(table.get(bob, 'shared'));
    expect(denied.code).toBe('FORBIDDEN');
    expect(denied.message).not.toMatch(/alice/); // names nobody
    expect((await rejection(table.schedule(bob, 'shared'))).code).toBe('FORBIDDEN');
    // Another caller has its own namespace: the same pid is a different process.
    const other: PcbActor = { owner: 'token:t2', userId: 'alice' };
    expect((await rejection(table.get(other, 'shared'))).code).toBe('NOT_FOUND');
    const theirs = await table.create(pcb('shared', { owner: 'token:t2' }));
    expect(theirs.created).toBe(true);
    expect(theirs.process.pid).not.toBe(again.process.pid);
    expect(await table.list({ owner: 'token:t2', userId: null })).toHaveLength(1);
    expect(await table.list(bob)).toHaveLength(0);
    expect(await table.list({ owner: 'token:t1', userId: null })).toHaveLength(1);
  });

  it('records usage into one record kept after termination, and checks quotas in order', async () => {
    const { kernel, clock } = await kernelWith();
    const table = kernel.processTable;
    // Five fields set, as the Python client does: the rest keep their defaults (defect 6).
    const quota = resolveResourceQuota({
      max_llm_calls: 2,
      max_tool_calls: 5,
      max_agent_hops: 4,
      max_iterations: 1,
      timeout_seconds: 60,
    });
    expect(quota.max_inference_requests).toBe(100);
    await table.create(pcb('q', { quota }));
    expect((await table.checkQuota(ALICE, 'q'))!.exceeded).toBeNull();
    let p = await table.recordUsage(ALICE, 'q', {
      llm_calls: 2,
      tool_calls: 1,
      tokens_in: 100,
      tokens_out: 50,
      inference_requests: 3,
      inference_input_chars: 1_000,
    });
    expect(p.usage).toMatchObject({ llm_calls: 2, tool_calls: 1, input_tokens: 100 });
    expect(pcbMetaOf(p)).toMatchObject({ inference_requests: 3, inference_input_chars: 1_000 });
    expect((await table.checkQuota(ALICE, 'q'))!.exceeded).toBeNull(); // 2 is not over 2
    p = await table.recordUsage(ALICE, 'q', { llm_calls: 1, agent_hops: 9 });
    expect((await table.checkQuota(ALICE, 'q'))!.exceeded).toBe('max_llm_calls_exceeded');
    // The ScheduleProcess pre-flight refuses and changes nothing.
    const refused = await rejection(table.schedule(ALICE, 'q'));
    expect(refused.code).toBe('QUOTA_EXCEEDED');
    expect(refused.message).toBe('quota limit exceeded: max_llm_calls_exceeded');
    expect((await table.get(ALICE, 'q')).state).toBe('new');
    // Usage survives termination (Go deleted the tracker, so CheckQuota then said "within").
    await table.terminate(ALICE, 'q', { reason: 'done', force: false });
    expect((await table.checkQuota(ALICE, 'q'))!.exceeded).toBe('max_llm_calls_exceeded');
    expect((await table.get(ALICE, 'q')).usage.llm_calls).toBe(3);
    // Bad deltas are refused whole.
    expect((await rejection(table.recordUsage(ALICE, 'q', { llm_calls: -1 }))).code).toBe(
      'INVALID_PARAMS',
    );
    expect(await table.checkQuota(ALICE, 'nobody')).toBeUndefined();
    // The timeout counts wall time since creation.
    await table.create(pcb('slow', { quota: resolveResourceQuota({ timeout_seconds: 2 }) }));
    clock.advance(2_500);
    expect((await table.checkQuota(ALICE, 'slow'))!.exceeded).toBe('timeout_exceeded');
  });

  it('counts by state, with READY as the queue depth', async () => {
    const { kernel } = await kernelWith();
    const table = kernel.processTable;
    for (const pid of ['a', 'b', 'c', 'd']) await table.create(pcb(pid));
    await table.schedule(ALICE, 'a');
    await table.schedule(ALICE, 'b');
    await table.nextRunnable(ALICE);
    await table.terminate(ALICE, 'd', { reason: '', force: false });
    expect(await table.counts(ALICE)).toEqual({
      byState: { new: 1, ready: 1, running: 1, terminated: 1 },
      total: 4,
      ready: 1,
    });
    expect((await table.list(ALICE, { state: 'new' })).map((p) => pcbMetaOf(p)!.pid)).toEqual([
      'c',
    ]);
  });
});
