/**
 * Parallel stages on the real kernel and worker, over SQLite and PostgreSQL
 * (docs/workflows.md#parallel-stages): branches run at the same time and join; an `any` join
 * cancels the loser's task; a failed branch ends the run and cancels the others;
 * max_concurrent_agents serialises; the run-time budget counts overlapping branches once;
 * cancel; external branches are handed out one at a time. The shipped example drives the CLI
 * and runs on SQLite only.
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  buildWorkflow,
  type LoadedWorkflow,
  ManualClock,
  outstandingSteps,
  WardenError,
  type WorkflowInput,
} from '../src/core/index.ts';
import { Kernel, type StepContext } from '../src/kernel/index.ts';
import { AgentRegistry, Worker } from '../src/runtime/index.ts';
import {
  type EventRecord,
  openSqliteStore,
  type ProcessRecord,
  type Store,
} from '../src/store/index.ts';
import { runCli } from './helpers/cli.ts';
import { dropSchemas, openFreshPgStore } from './helpers/postgres.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { waitFor, waitForProcess } from './helpers/wait.ts';

const open: Array<{ store: Store; kernel: Kernel; workers: Worker[] }> = [];

/**
 * Opens a fresh store. A manual clock is the node's own clock: SQLite uses it as it is, PostgreSQL
 * corrects it to the database's for its own timestamps (events); the kernel is given it as it is.
 */
type OpenStore = (clock?: ManualClock) => Promise<Store>;

const adapters: Array<[string, OpenStore]> = [
  [
    'sqlite',
    (clock) => openSqliteStore({ file: join(tempDir(), 'p.db'), ...(clock && { clock }) }),
  ],
  ['postgres', (clock) => openFreshPgStore(clock && { clock })],
];

afterEach(async () => {
  for (const h of open.splice(0)) {
    for (const w of h.workers) await w.stop({ abort: true });
    h.kernel.close();
    await h.store.close();
  }
});
afterAll(async () => {
  removeTempDirs();
  await dropSchemas();
});

function parallel(input: Omit<WorkflowInput, 'name' | 'mode'>): LoadedWorkflow {
  return buildWorkflow({ name: 'par', mode: 'parallel', ...input });
}

/** Two external branches and an external join of both. */
function externalJoin(): LoadedWorkflow {
  return parallel({
    stages: [
      { name: 'first', agent: { kind: 'external' } },
      { name: 'second', agent: { kind: 'external' } },
      { name: 'both', agent: { kind: 'external' }, requires: ['first', 'second'] },
    ],
  });
}

async function eventsOf(store: Store, p: ProcessRecord): Promise<EventRecord[]> {
  return store.readEvents({ sessionId: p.session_id, processId: p.pid, limit: 10_000 });
}

/** Each stage's running window: its stage.started and stage.completed times. */
function windows(events: readonly EventRecord[]): Map<string, { start: number; end: number }> {
  const out = new Map<string, { start: number; end: number }>();
  for (const e of events) {
    const stage = (e.data as { stage: string }).stage;
    if (e.type === 'stage.started') out.set(stage, { start: e.ts, end: Infinity });
    if (e.type === 'stage.completed') out.get(stage)!.end = e.ts;
  }
  return out;
}

const delayed = (name: string, delay: number, extra: Record<string, unknown> = {}) => ({
  name,
  agent: { kind: 'noop' as const, delay, output: { from: name } },
  ...extra,
});

describe.each(adapters)('on %s', (_adapter, openStore) => {
  async function setup(agents = new AgentRegistry(), concurrency = 4) {
    const store = await openStore();
    const kernel = new Kernel({ store });
    const worker = new Worker({ kernel, agents, concurrency });
    const h = { store, kernel, workers: [worker] };
    open.push(h);
    await worker.start();
    return { store, kernel, worker };
  }

  /** A kernel on a manual clock and no worker: the test claims and reports steps itself. */
  async function manual() {
    const clock = new ManualClock(1_000_000);
    const store = await openStore(clock);
    const kernel = new Kernel({ store, clock });
    open.push({ store, kernel, workers: [] });
    const claimAndBegin = async (leaseMs = 10_000): Promise<StepContext> => {
      const [claim] = await store.claimTasks({
        lanes: ['agents'],
        kinds: ['agent_step'],
        workerId: 'w1',
        limit: 1,
        leaseMs,
        now: clock.now(),
      });
      const step = await kernel.orchestrator.beginStep(claim!);
      return step!;
    };
    return { store, kernel, clock, claimAndBegin };
  }

  describe('parallel stages on the kernel', () => {
    it('branches run at the same time and the join waits for all of them', async () => {
      const { kernel, store } = await setup();
      const workflow = parallel({
        stages: [
          delayed('a', 400),
          delayed('b', 400),
          delayed('c', 400),
          delayed('merge', 10, { requires: ['a', 'b', 'c'] }),
        ],
      });
      const started = Date.now();
      const run = await kernel.startRun({ workflow });
      const done = await waitForProcess(kernel, run.pid);
      const wall = Date.now() - started;
      expect(done.terminal_reason).toBe('completed');
      expect(done.usage.agent_hops).toBe(4);
      expect(done.envelope.outputs).toEqual({
        a: { from: 'a' },
        b: { from: 'b' },
        c: { from: 'c' },
        merge: { from: 'merge' },
      });

      const events = await eventsOf(store, done);
      const w = windows(events);
      // The three branches overlap: each started before any other ended.
      const branches = ['a', 'b', 'c'].map((s) => w.get(s)!);
      const lastStart = Math.max(...branches.map((b) => b.start));
      const firstEnd = Math.min(...branches.map((b) => b.end));
      expect(lastStart).toBeLessThan(firstEnd);
      expect(wall).toBeLessThan(3 * 400);
      // The join started after every branch completed.
      expect(w.get('merge')!.start).toBeGreaterThanOrEqual(Math.max(...branches.map((b) => b.end)));
      // The run-time budget counts the overlapping branches once.
      expect(done.envelope.active_ms).toBeLessThanOrEqual(wall);
      expect(done.envelope.active_ms).toBeGreaterThanOrEqual(400);

      // The start commit forks the branches in stage order; the join is logged.
      const forks = events.filter((e) => e.type === 'stage.forked').map((e) => e.data);
      expect(forks).toEqual([
        { stage: 'a', step: 1 },
        { stage: 'b', step: 2 },
        { stage: 'c', step: 3 },
        { stage: 'merge', step: 4, requires: ['a', 'b', 'c'] },
      ]);
      const joined = events.find((e) => e.type === 'stage.joined')!;
      expect(joined.data).toEqual({
        stage: 'merge',
        step: 4,
        join_strategy: 'all',
        waited_for: { a: 'completed', b: 'completed', c: 'completed' },
      });
      const completed = events.filter((e) => e.type === 'stage.completed');
      expect(completed.map((e) => (e.data as { stage: string }).stage).sort()).toEqual([
        'a',
        'b',
        'c',
        'merge',
      ]);
      expect(events.filter((e) => e.type === 'stage.cancelled')).toEqual([]);
      expect(done.envelope.pending).toBeNull();
    });

    it('join any: the first branch starts the join, the slow one is cancelled and never recorded', async () => {
      const { kernel, store, worker } = await setup();
      const workflow = parallel({
        stages: [
          delayed('fast', 50),
          delayed('slow', 5_000),
          delayed('pick', 10, { requires: ['fast', 'slow'], join_strategy: 'any' }),
        ],
      });
      const started = Date.now();
      const run = await kernel.startRun({ workflow });
      const done = await waitForProcess(kernel, run.pid);
      expect(Date.now() - started).toBeLessThan(4_000);
      expect(done.terminal_reason).toBe('completed');
      expect(Object.keys(done.envelope.outputs).sort()).toEqual(['fast', 'pick']);
      expect(done.envelope.branches).toMatchObject({
        fast: { status: 'completed' },
        slow: { status: 'cancelled', step: 2 },
        pick: { status: 'completed' },
      });
      const events = await eventsOf(store, done);
      expect(events.filter((e) => e.type === 'stage.cancelled').map((e) => e.data)).toEqual([
        { stage: 'slow', step: 2, reason: 'join', join: 'pick', winner: 'fast' },
      ]);
      const tasks = await store.listTasks({ processId: run.pid });
      const slowTask = tasks.find((t) => t.name === 'slow')!;
      expect(slowTask.state).toBe('canceled');
      expect(events.some((e) => e.type === 'task.canceled' && e.task_id === slowTask.id)).toBe(
        true,
      );
      expect(
        events
          .filter((e) => e.type === 'stage.completed')
          .map((e) => (e.data as { stage: string }).stage),
      ).toEqual(['fast', 'pick']);
      // The worker running the slow branch was told: its agent was aborted, long before 5 s.
      await waitFor(() => worker.activeCount === 0, 2_000, 'the slow branch to be aborted');
    });

    it('a branch that fails without error_next ends the run and cancels the running branches', async () => {
      const agents = new AgentRegistry().register('explode', async () => {
        await new Promise((resolve) => setTimeout(resolve, 100));
        throw new WardenError('TOOL_ERROR', 'exploded', { retryable: false });
      });
      const { kernel, store, worker } = await setup(agents);
      const workflow = parallel({
        stages: [
          { name: 'bad', agent: { kind: 'typescript', name: 'explode' } },
          delayed('long', 10_000),
          delayed('after_long', 10, { requires: ['long'] }),
        ],
      });
      const run = await kernel.startRun({ workflow });
      const done = await waitForProcess(kernel, run.pid);
      expect(done.terminal_reason).toBe('tool_failed_fatally');
      expect(done.terminal_message).toBe("stage 'bad' failed: exploded");
      const events = await eventsOf(store, done);
      expect(events.filter((e) => e.type === 'stage.cancelled').map((e) => e.data)).toEqual([
        { stage: 'long', step: 2, reason: 'run_ended' },
      ]);
      const tasks = await store.listTasks({ processId: run.pid });
      expect(Object.fromEntries(tasks.map((t) => [t.name, t.state]))).toEqual({
        bad: 'failed',
        long: 'canceled',
      });
      expect(done.usage.agent_hops).toBe(2);
      await waitFor(() => worker.activeCount === 0, 2_000, 'the long branch to be aborted');
    });

    it('error_next end tolerates a failure: after-stages still run, the run completes', async () => {
      const agents = new AgentRegistry().register('explode', () => {
        throw new WardenError('TOOL_ERROR', 'exploded', { retryable: false });
      });
      const { kernel } = await setup(agents);
      const workflow = parallel({
        stages: [
          { name: 'optional', agent: { kind: 'typescript', name: 'explode' }, error_next: 'end' },
          delayed('main', 20),
          delayed('report', 10, { requires: ['main'], after: ['optional'] }),
        ],
      });
      const done = await waitForProcess(kernel, (await kernel.startRun({ workflow })).pid);
      expect(done.terminal_reason).toBe('completed');
      expect(done.envelope.branches).toMatchObject({
        optional: { status: 'failed' },
        main: { status: 'completed' },
        report: { status: 'completed' },
      });
    });

    it('max_concurrent_agents 1 runs the branches one after another', async () => {
      const { kernel, store } = await setup();
      const workflow = parallel({
        max_concurrent_agents: 1,
        stages: [delayed('a', 100), delayed('b', 100), delayed('c', 100)],
      });
      const done = await waitForProcess(kernel, (await kernel.startRun({ workflow })).pid);
      expect(done.terminal_reason).toBe('completed');
      const w = windows(await eventsOf(store, done));
      expect(w.get('b')!.start).toBeGreaterThanOrEqual(w.get('a')!.end);
      expect(w.get('c')!.start).toBeGreaterThanOrEqual(w.get('b')!.end);
    });

    it('cancelling a parallel run cancels every outstanding branch', async () => {
      const { kernel, store } = await setup();
      const workflow = parallel({ stages: [delayed('a', 10_000), delayed('b', 10_000)] });
      const run = await kernel.startRun({ workflow });
      await waitFor(async () => (await kernel.getProcess(run.pid)).state === 'running');
      const cancelled = await kernel.cancelRun(run.pid);
      expect(cancelled.terminal_reason).toBe('user_cancelled');
      const events = await eventsOf(store, cancelled);
      expect(
        events
          .filter((e) => e.type === 'stage.cancelled')
          .map((e) => (e.data as { stage: string }).stage),
      ).toEqual(['a', 'b']);
      const tasks = await store.listTasks({ processId: run.pid });
      expect(tasks.map((t) => t.state)).toEqual(['canceled', 'canceled']);
    });
  });

  // The same 3 runs on both stores: ~1–2 s on SQLite, ~5–7 s on PostgreSQL (a commit there takes
  // ~15–30 ms under this load and most of them conflict and are retried: withCasRetry).
  describe('wide fan-out', () => {
    it('3 runs of 40 llm branches on 2 workers: every step reports, none waits for a lapsed lease', async () => {
      const store = await openStore();
      const kernel = new Kernel({ store });
      const errors: string[] = [];
      const workers = [0, 1].map(
        () =>
          new Worker({
            kernel,
            concurrency: 16,
            onError: (e, c) => errors.push(`${c.where} ${e.code} ${e.message}`),
          }),
      );
      open.push({ store, kernel, workers });
      for (const w of workers) await w.start();
      const names = Array.from({ length: 40 }, (_, i) => `b${i}`);
      const workflow = parallel({
        bounds: { max_agent_hops: 41, max_llm_calls: 41 },
        stages: [
          ...names.map((name) => ({
            name,
            agent: { kind: 'llm' as const, prompt: 'x', script: [{ text: name }] },
          })),
          { name: 'join', agent: { kind: 'noop' }, requires: names },
        ],
      });
      const runs = await Promise.all([0, 1, 2].map(() => kernel.startRun({ workflow })));
      const done = await Promise.all(
        runs.map((r) => waitForProcess(kernel, r.pid, undefined, 60_000)),
      );
      // Every branch writes the same process row; a step whose commits kept conflicting would
      // be reported here and wait ~15 s for its lease to lapse (on PostgreSQL ~30 did, before
      // withCasRetry waited up to 256 ms and tried 64 times).
      expect(errors).toEqual([]);
      for (const p of done) {
        expect(p.terminal_reason).toBe('completed');
        expect(p.usage.agent_hops).toBe(41);
        expect(p.usage.llm_calls).toBe(40);
        expect(Object.values(p.envelope.stage_calls).reduce((a, b) => a + b, 0)).toBe(40);
      }
    }, 60_000);
  });

  describe('parallel stages, step by step', () => {
    it('any outstanding branch reports by step number; a lost branch is reclaimed and run again; run time counts once', async () => {
      const { kernel, store, clock, claimAndBegin } = await manual();
      const workflow = parallel({
        stages: [
          { name: 'a', agent: { kind: 'noop' } },
          { name: 'b', agent: { kind: 'noop' } },
          { name: 'c', agent: { kind: 'noop' }, requires: ['a', 'b'] },
        ],
      });
      const run = await kernel.startRun({ workflow });
      expect(run.state).toBe('ready');
      const a = await claimAndBegin();
      const b1 = await claimAndBegin(5_000);
      expect([a.stage.name, a.step, b1.stage.name, b1.step]).toEqual(['a', 1, 'b', 2]);
      let p = await kernel.getProcess(run.pid);
      expect(p.state).toBe('running');
      expect(p.envelope.branches).toMatchObject({
        a: { status: 'outstanding', started_at: 1_000_000 },
        b: { status: 'outstanding', started_at: 1_000_000 },
      });

      clock.advance(100);
      p = await kernel.orchestrator.completeStep(a, { output: { a: 1 } });
      // b still runs: the run stays running; the 100 ms both ran count once.
      expect(p.state).toBe('running');
      expect(p.envelope.active_ms).toBe(100);
      expect(outstandingSteps(p.workflow, p.envelope)).toEqual([{ step: 2, stage: 'b' }]);

      // b's worker dies: its lease lapses and the step goes back to the queue.
      clock.advance(6_000);
      expect((await kernel.recover()).reclaimed).toBe(1);
      p = await kernel.getProcess(run.pid);
      expect(p.state).toBe('ready');
      expect(p.envelope.active_ms).toBe(100); // the time only the dead branch ran is dropped
      expect(p.envelope.branches!.b).toMatchObject({ status: 'outstanding', started_at: null });

      clock.advance(60_000); // past the retry backoff
      const b2 = await claimAndBegin();
      expect([b2.step, b2.claim.attempt]).toEqual([2, 2]);
      const stale = await kernel.orchestrator
        .completeStep(b1, { output: { stale: true } })
        .catch((e: unknown) => e as WardenError);
      expect((stale as WardenError).code).toBe('LEASE_LOST');
      clock.advance(50);
      p = await kernel.orchestrator.completeStep(b2, { output: { b: 2 } });
      expect(p.envelope.active_ms).toBe(150);
      expect(p.state).toBe('ready');
      expect(outstandingSteps(p.workflow, p.envelope)).toEqual([{ step: 3, stage: 'c' }]);
      const c = await claimAndBegin();
      p = await kernel.orchestrator.completeStep(c, { output: {} });
      expect(p.terminal_reason).toBe('completed');
      expect(p.envelope.outputs.b).toEqual({ b: 2 });
      expect(p.usage.agent_hops).toBe(3);

      const events = await eventsOf(store, p);
      const completed = events
        .filter((e) => e.type === 'stage.completed')
        .map((e) => (e.data as { stage: string }).stage);
      expect(completed).toEqual(['a', 'b', 'c']);
      expect(
        events
          .filter((e) => e.type === 'stage.failed')
          .map((e) => e.data as { stage: string; will_retry: boolean }),
      ).toMatchObject([{ stage: 'b', step: 2, will_retry: true }]);
    });
  });

  describe('external branches of a parallel run', () => {
    it('a client is handed one external step at a time, lowest stage order first', async () => {
      const store = await openStore();
      const kernel = new Kernel({ store });
      open.push({ store, kernel, workers: [] });
      const workflow = externalJoin();
      const run = await kernel.startRun({ workflow });
      const owner = 'remote/test';
      const one = await kernel.external.take(run.pid, { owner });
      const again = await kernel.external.take(run.pid, { owner });
      expect(one.kind === 'run' && one.stage.name).toBe('first');
      expect(again.kind === 'run' && [again.stage.name, again.step]).toEqual(['first', 1]);
      expect(again.kind === 'run' && again.process.usage.agent_hops).toBe(2);
      // The other branch is outstanding too; a report for it before it was handed out is refused.
      const early = await kernel.external
        .report(run.pid, { stage: 'second', success: true, output: {} })
        .catch((e: unknown) => e as WardenError);
      expect((early as WardenError).code).toBe('INVALID_STATE');
      await kernel.external.report(run.pid, { stage: 'first', success: true, output: { n: 1 } });
      const two = await kernel.external.take(run.pid, { owner });
      expect(two.kind === 'run' && two.stage.name).toBe('second');
      const wrong = await kernel.external
        .report(run.pid, { stage: 'both', success: true, output: {} })
        .catch((e: unknown) => e as WardenError);
      expect((wrong as WardenError).message).toMatch(
        /waiting for a result of stage 'second', not 'both'/,
      );
      await kernel.external.report(run.pid, { stage: 'second', success: true, output: { n: 2 } });
      const p = await kernel.getProcess(run.pid);
      expect(outstandingSteps(p.workflow, p.envelope)).toEqual([{ step: 3, stage: 'both' }]);
      const three = await kernel.external.take(run.pid, { owner });
      expect(three.kind === 'run' && three.stage.name).toBe('both');
      await kernel.external.report(run.pid, { stage: 'both', success: true, output: {} });
      expect((await kernel.external.take(run.pid, { owner })).kind).toBe('terminated');
      expect((await kernel.getProcess(run.pid)).terminal_reason).toBe('completed');
    });

    it('a report given a stale read of the run loses nothing: the compare-and-set retries', async () => {
      const store = await openStore();
      const kernel = new Kernel({ store });
      open.push({ store, kernel, workers: [] });
      const workflow = externalJoin();
      const run = await kernel.startRun({ workflow });
      expect((await kernel.external.take(run.pid, { owner: 'remote/w1' })).kind).toBe('run');
      expect((await kernel.external.take(run.pid, { owner: 'remote/w2' })).kind).toBe('run');
      const stale = await kernel.getProcess(run.pid);
      await kernel.external.report(run.pid, { stage: 'first', success: true, output: { n: 1 } });
      // w2 reports with the read from before w1's report (as a handler's read can be, on
      // another node): the join still sees both branches and hands out `both`.
      const reported = await kernel.external.reportAndTakeNext(
        run.pid,
        { stage: 'second', success: true, output: { n: 2 } },
        { owner: 'remote/w2' },
        stale,
      );
      expect(reported.next?.stage.name).toBe('both');
      const p = await kernel.getProcess(run.pid);
      expect(p.envelope.outputs).toMatchObject({ first: { n: 1 }, second: { n: 2 } });
      expect(outstandingSteps(p.workflow, p.envelope)).toEqual([{ step: 3, stage: 'both' }]);
      const asked = await kernel.external.take(run.pid, { owner: 'remote/w2' });
      expect(asked.kind === 'run' && [asked.stage.name, asked.step]).toEqual(['both', 3]);
      expect((await kernel.external.take(run.pid, { owner: 'remote/w1' })).kind).toBe('busy');
    });

    it('a worker finishing a sequential step never takes the next one when it is external', async () => {
      const { kernel, store } = await setup();
      const workflow = buildWorkflow({
        name: 'seq',
        stages: [
          { ...delayed('internal', 20), default_next: 'outside' },
          { name: 'outside', agent: { kind: 'external' } },
        ],
      });
      const run = await kernel.startRun({ workflow });
      await waitFor(async () => (await kernel.getProcess(run.pid)).envelope.step === 2);
      await new Promise((resolve) => setTimeout(resolve, 200));
      const p = await kernel.getProcess(run.pid);
      expect(p.state).toBe('ready');
      const tasks = await store.listTasks({ processId: run.pid, states: ['queued', 'running'] });
      expect(tasks).toMatchObject([{ name: 'outside', state: 'queued', lane: 'external' }]);
    });

    it('a worker finishing an internal branch never takes an external one in its commit', async () => {
      const { kernel, store } = await setup();
      const workflow = parallel({
        stages: [
          delayed('internal', 20),
          { name: 'outside', agent: { kind: 'external' }, requires: ['internal'] },
        ],
      });
      const run = await kernel.startRun({ workflow });
      await waitFor(async () => {
        const p = await kernel.getProcess(run.pid);
        return outstandingSteps(p.workflow, p.envelope).some((s) => s.stage === 'outside');
      });
      const tasks = await store.listTasks({ processId: run.pid, states: ['queued', 'running'] });
      expect(tasks).toMatchObject([{ name: 'outside', state: 'queued', lane: 'external' }]);
    });
  });
});

describe('the shipped example', () => {
  it('examples/parallel-research.yaml runs through warden run: join all, a race, a tolerated failure', async () => {
    const home = tempDir();
    expect((await runCli(['init'], { home })).code).toBe(0);
    const result = await runCli(['run', 'examples/parallel-research.yaml', '--no-interactive'], {
      home,
    });
    expect(result.code, result.stderr).toBe(0);
    const lines = result.stdout.split('\n').map((l) => l.trim());
    expect(lines, result.stdout).toContain(
      '⊘ live_answer cancelled: cached_answer won the any join of answer',
    );
    // publish joins once both of its requirements completed, then forks once. (Its step
    // number depends on whether live_answer got a slot before it lost the race: timing.)
    const joined = lines.indexOf('⋈ publish (all of {"answer":"completed","write":"completed"})');
    const completed = (stage: string) => lines.findIndex((l) => l.startsWith(`✓ ${stage} `));
    expect(joined, result.stdout).toBeGreaterThan(
      Math.max(completed('write'), completed('answer')),
    );
    expect(
      lines.findIndex((l) => /^⑂ publish step \d+$/.test(l)),
      result.stdout,
    ).toBeGreaterThan(joined);
    expect(lines.filter((l) => /^⑂ publish step/.test(l))).toHaveLength(1);
    expect(lines, result.stdout).toContain('→ end (error_next)');
    expect(lines.some((l) => l.startsWith('■ completed'))).toBe(true);
    expect(lines.filter((l) => l.startsWith('✓ ')).length).toBe(6);
  }, 30_000);
});
