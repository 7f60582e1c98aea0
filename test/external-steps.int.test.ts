/**
 * Steps of `external` stages (src/kernel/external-steps.ts), on SQLite and PostgreSQL: a client
 * takes the run's step and reports it; asking again while it is outstanding hands out the same
 * step and counts nothing (jeeves defect #1); a report must name the issued stage (defect #9);
 * an in-process worker never runs them; a lapsed lease hands the step out again.
 */
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { ManualClock, type WorkflowInput } from '../src/core/index.ts';
import { Kernel } from '../src/kernel/index.ts';
import { stepTaskId } from '../src/kernel/process-ops.ts';
import { Worker } from '../src/runtime/index.ts';
import { openSqliteStore, type Store } from '../src/store/index.ts';
import { countingStore } from './helpers/counting-store.ts';
import { dropSchemas, openFreshPgStore } from './helpers/postgres.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { rejection, sleep } from './helpers/wait.ts';

const OWNER = 'remote/jeeves/test';

const linear: WorkflowInput = {
  name: 'linear',
  stages: ['understand', 'think', 'respond'].map((name, i, all) => ({
    name,
    agent: { kind: 'external', config: { name, index: i } },
    ...(i + 1 < all.length ? { default_next: all[i + 1] } : {}),
  })),
};

const adapters: Array<[string, (clock: ManualClock) => Promise<Store>]> = [
  ['sqlite', (clock) => openSqliteStore({ file: join(tempDir(), 'x.db'), clock })],
  ['postgres', (clock) => openFreshPgStore({ clock })],
];

const opened: Store[] = [];
const workers: Worker[] = [];
afterEach(async () => {
  for (const w of workers.splice(0)) await w.stop();
  for (const s of opened.splice(0)) await s.close();
});
afterAll(async () => {
  removeTempDirs();
  await dropSchemas();
});

describe.each(adapters)('external steps on %s', (_name, openStore) => {
  async function kernelWith(clock = new ManualClock()) {
    const store = await openStore(clock);
    opened.push(store);
    return { kernel: new Kernel({ store, clock }), store, clock };
  }

  it('a linear run of 3 external stages ends with 3 hops, however often the client asks', async () => {
    const { kernel } = await kernelWith();
    const run = await kernel.startRun({ workflow: linear, input: 'hi' });
    const seen: string[] = [];
    for (let i = 0; i < 3; i++) {
      const first = await kernel.external.take(run.pid, { owner: OWNER });
      const again = await kernel.external.take(run.pid, { owner: OWNER });
      expect(first.kind).toBe('run');
      expect(again.kind).toBe('run');
      if (first.kind !== 'run' || again.kind !== 'run') return;
      expect(again.stage.name).toBe(first.stage.name);
      expect(again.step).toBe(first.step);
      expect(again.process.usage.agent_hops).toBe(i + 1);
      expect(first.stage.agent).toEqual({
        kind: 'external',
        config: { name: first.stage.name, index: i },
      });
      seen.push(first.stage.name);
      await kernel.external.report(run.pid, {
        stage: first.stage.name,
        success: true,
        output: { said: first.stage.name },
        usage: { llm_calls: 1, input_tokens: 10, output_tokens: 5 },
      });
    }
    expect(seen).toEqual(['understand', 'think', 'respond']);
    const done = await kernel.external.take(run.pid, { owner: OWNER });
    expect(done.kind).toBe('terminated');
    const p = await kernel.getProcess(run.pid);
    expect(p.state).toBe('terminated');
    expect(p.terminal_reason).toBe('completed');
    expect(p.usage).toMatchObject({
      agent_hops: 3,
      llm_calls: 3,
      input_tokens: 30,
      output_tokens: 15,
      iterations: 0,
    });
    expect(p.envelope.outputs).toEqual({
      understand: { said: 'understand' },
      think: { said: 'think' },
      respond: { said: 'respond' },
    });
    // One stage.started per step, though the client asked twice each time.
    const events = await kernel.store.readEvents({ sessionId: p.session_id, limit: 1_000 });
    expect(events.filter((e) => e.type === 'stage.started')).toHaveLength(3);
    expect(events.filter((e) => e.type === 'stage.completed')).toHaveLength(3);
  });

  it('refuses a report for another stage, and one for a step not handed out, changing nothing', async () => {
    const { kernel } = await kernelWith();
    const run = await kernel.startRun({ workflow: linear });
    const early = await rejection(
      kernel.external.report(run.pid, { stage: 'understand', success: true, output: {} }),
    );
    expect(early.code).toBe('INVALID_STATE');
    expect(early.message).toMatch(/not handed out/);
    await kernel.external.take(run.pid, { owner: OWNER });
    const wrong = await rejection(
      kernel.external.report(run.pid, { stage: 'think', success: true, output: {} }),
    );
    expect(wrong.code).toBe('INVALID_STATE');
    expect(wrong.message).toMatch(/waiting for a result of stage 'understand', not 'think'/);
    const p = await kernel.getProcess(run.pid);
    expect(p.envelope.current_stage).toBe('understand');
    expect(p.envelope.outputs).toEqual({});
    expect(p.usage.agent_hops).toBe(1);
    const unknown = await rejection(kernel.external.take('p_nope', { owner: OWNER }));
    expect(unknown.code).toBe('NOT_FOUND');
  });

  it('a failed step takes error_next, or terminates the run as tool_failed_fatally', async () => {
    const { kernel } = await kernelWith();
    const workflow: WorkflowInput = {
      name: 'errors',
      stages: [
        { name: 'a', agent: { kind: 'external' }, default_next: 'b', error_next: 'recover' },
        { name: 'b', agent: { kind: 'external' } },
        { name: 'recover', agent: { kind: 'external' } },
      ],
    };
    const run = await kernel.startRun({ workflow });
    await kernel.external.take(run.pid, { owner: OWNER });
    await kernel.external.report(run.pid, {
      stage: 'a',
      success: false,
      error: 'boom',
      usage: { llm_calls: 2 },
    });
    const next = await kernel.external.take(run.pid, { owner: OWNER });
    expect(next.kind === 'run' && next.stage.name).toBe('recover');
    await kernel.external.report(run.pid, { stage: 'recover', success: false, error: 'again' });
    const p = await kernel.getProcess(run.pid);
    expect(p.state).toBe('terminated');
    expect(p.terminal_reason).toBe('tool_failed_fatally');
    expect(p.usage.llm_calls).toBe(2);
    expect(p.envelope.errors.map((e) => [e.stage, e.message])).toEqual([
      ['a', 'boom'],
      ['recover', 'again'],
    ]);
  });

  it('an in-process worker never runs an external step', async () => {
    const { kernel, store } = await kernelWith();
    const worker = new Worker({ kernel, concurrency: 2 });
    workers.push(worker);
    await worker.start();
    const run = await kernel.startRun({ workflow: linear });
    await sleep(300);
    const tasks = await store.listTasks({ processId: run.pid });
    expect(tasks).toHaveLength(1);
    expect(tasks[0]).toMatchObject({ state: 'queued', lane: 'external' });
    expect((await kernel.getProcess(run.pid)).envelope.step_started_at ?? null).toBeNull();
    const taken = await kernel.external.take(run.pid, { owner: OWNER });
    expect(taken.kind).toBe('run');
  });

  it('a lapsed lease (the client died) is reclaimed and the step handed out again', async () => {
    const clock = new ManualClock();
    const { kernel } = await kernelWith(clock);
    const run = await kernel.startRun({ workflow: linear });
    const first = await kernel.external.take(run.pid, { owner: OWNER, leaseMs: 5_000 });
    expect(first.kind === 'run' && first.attempt).toBe(1);
    clock.advance(6_000);
    const recovered = await kernel.recover();
    expect(recovered.reclaimed).toBe(1);
    const early = await kernel.external.take(run.pid, { owner: 'remote/jeeves/other' });
    expect(early.kind).toBe('busy');
    const retryAt = early.kind === 'busy' ? early.availableAt : undefined;
    expect(retryAt).toBeGreaterThanOrEqual(clock.now());
    clock.advance(retryAt! - clock.now());
    const second = await kernel.external.take(run.pid, { owner: 'remote/jeeves/other' });
    expect(second.kind).toBe('run');
    if (second.kind !== 'run') return;
    expect(second.stage.name).toBe('understand');
    expect(second.attempt).toBe(2);
    // Still one hop: the same step, run a second time.
    expect(second.process.usage.agent_hops).toBe(1);
    await kernel.external.report(run.pid, { stage: 'understand', success: true, output: {} });
    const third = await kernel.external.take(run.pid, { owner: OWNER });
    expect(third.kind === 'run' && third.stage.name).toBe('think');
  });

  it('asking again renews the lease only past half of it; another owner is never handed a held step', async () => {
    const clock = new ManualClock();
    const { kernel, store } = await kernelWith(clock);
    const run = await kernel.startRun({ workflow: linear });
    const first = await kernel.external.take(run.pid, { owner: OWNER, leaseMs: 10_000 });
    expect(first.kind).toBe('run');
    const held = async () =>
      (await store.listTasks({ processId: run.pid, states: ['running'] }))[0]!;
    const expiresAt = (await held()).lease_expires_at!;
    clock.advance(4_000);
    await kernel.external.take(run.pid, { owner: OWNER, leaseMs: 10_000 });
    expect((await held()).lease_expires_at).toBe(expiresAt); // nothing written
    clock.advance(2_000);
    await kernel.external.take(run.pid, { owner: OWNER, leaseMs: 10_000 });
    expect((await held()).lease_expires_at).toBe(clock.now() + 10_000);
    // Another worker of the session waits instead of running the same step twice.
    const other = await kernel.external.take(run.pid, { owner: `${OWNER}/w2` });
    expect(other.kind).toBe('busy');
    expect((await kernel.getProcess(run.pid)).usage.agent_hops).toBe(1);
  });

  it('a report with a taker records the result and hands out the next step in one commit', async () => {
    const clock = new ManualClock();
    const store = await openStore(clock);
    opened.push(store);
    // The kernel's store, counting commits (every write the kernel makes is one).
    const commits = countingStore(store, 'commit');
    const kernel = new Kernel({ store: commits.store, clock });
    const run = await kernel.startRun({ workflow: linear });
    const first = await kernel.external.take(run.pid, { owner: OWNER, leaseMs: 10_000 });
    expect(first.kind === 'run' && first.stage.name).toBe('understand');

    commits.reset();
    const reported = await kernel.external.reportAndTakeNext(
      run.pid,
      { stage: 'understand', success: true, output: { n: 1 } },
      { owner: OWNER, leaseMs: 10_000 },
    );
    expect(commits.calls()).toBe(1);
    expect(reported.next?.stage.name).toBe('think');
    expect(reported.next?.step).toBe(2);
    expect(reported.next?.attempt).toBe(1);
    expect(reported.next?.process.state).toBe('running');
    expect(reported.next?.process.usage.agent_hops).toBe(2);
    const [task] = await store.listTasks({ processId: run.pid, states: ['running'] });
    expect(task?.lease_owner).toBe(OWNER);
    expect(task?.lease_expires_at).toBe(clock.now() + 10_000);
    expect(task?.lane).toBe('external');

    // Asking again is the same step and writes nothing; another owner is not handed it.
    const again = await kernel.external.take(run.pid, { owner: OWNER, leaseMs: 10_000 });
    expect(again.kind === 'run' && [again.stage.name, again.step]).toEqual(['think', 2]);
    expect((await kernel.external.take(run.pid, { owner: `${OWNER}/w2` })).kind).toBe('busy');
    expect(commits.calls()).toBe(1);

    // A failed step hands nothing out (the run terminates: no error_next).
    const second = await kernel.external.reportAndTakeNext(
      run.pid,
      { stage: 'think', success: true, output: {} },
      { owner: OWNER },
    );
    expect(second.next?.stage.name).toBe('respond');
    const failed = await kernel.external.reportAndTakeNext(
      run.pid,
      { stage: 'respond', success: false, error: 'no' },
      { owner: OWNER },
    );
    expect(failed.next).toBeNull();
    expect(failed.process.terminal_reason).toBe('tool_failed_fatally');

    const p = await kernel.getProcess(run.pid);
    expect(p.usage.agent_hops).toBe(3);
    const events = await kernel.store.readEvents({ sessionId: p.session_id, limit: 1_000 });
    // The events say what happened in order, as if the client had asked: completed → started.
    const stageEvents = events
      .filter((e) => e.type === 'stage.started' || e.type === 'stage.completed')
      .map((e) => `${e.type}:${(e.data as { stage: string }).stage}`);
    expect(stageEvents).toEqual([
      'stage.started:understand',
      'stage.completed:understand',
      'stage.started:think',
      'stage.completed:think',
      'stage.started:respond',
    ]);
    expect(events.filter((e) => e.type === 'task.claimed')).toHaveLength(3);
  });

  it('a report whose next step is not external leaves it to the in-process workers', async () => {
    const { kernel, store } = await kernelWith();
    const mixed: WorkflowInput = {
      name: 'mixed',
      stages: [
        { name: 'ask', agent: { kind: 'external' }, default_next: 'local' },
        { name: 'local', agent: { kind: 'typescript', name: 'noop' } },
      ],
    };
    const run = await kernel.startRun({ workflow: mixed });
    expect((await kernel.external.take(run.pid, { owner: OWNER })).kind).toBe('run');
    const reported = await kernel.external.reportAndTakeNext(
      run.pid,
      { stage: 'ask', success: true, output: {} },
      { owner: OWNER },
    );
    expect(reported.next).toBeNull();
    const [queued] = await store.listTasks({ processId: run.pid, states: ['queued'] });
    expect(queued?.lane).toBe(kernel.agentLane);
    expect(queued?.lease_owner ?? null).toBeNull();
  });
});

describe('step task ids', () => {
  it('a step’s task id is derived from the run and step; a run whose tasks predate that still works', async () => {
    const file = join(tempDir(), 'old.db');
    const clock = new ManualClock();
    const store = await openSqliteStore({ file, clock });
    opened.push(store);
    const kernel = new Kernel({ store, clock });
    const run = await kernel.startRun({ workflow: linear });
    const [task] = await store.listTasks({ processId: run.pid });
    expect(task?.id).toBe(stepTaskId(run.pid, 1));

    // A task id from before the rule (random): the client still gets its step, and reports it.
    const db = new Database(file);
    db.prepare('UPDATE task_data SET id = ? WHERE id = ?').run('t_01OLDRANDOMID', task!.id);
    db.close();
    const taken = await kernel.external.take(run.pid, { owner: OWNER });
    expect(taken.kind === 'run' && [taken.stage.name, taken.step]).toEqual(['understand', 1]);
    const again = await kernel.external.take(run.pid, { owner: OWNER });
    expect(again.kind === 'run' && again.step).toBe(1);
    const reported = await kernel.external.reportAndTakeNext(
      run.pid,
      { stage: 'understand', success: true, output: {} },
      { owner: OWNER },
    );
    expect(reported.next?.stage.name).toBe('think');
    expect((await store.getTask('t_01OLDRANDOMID'))?.state).toBe('succeeded');
    expect((await store.getTask(stepTaskId(run.pid, 2)))?.lease_owner).toBe(OWNER);
  });
});
