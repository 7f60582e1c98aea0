/**
 * Cancel races (issue 6): a cancel is compare-and-set on the state it read, so a task that
 * finishes between the read and the write is answered truthfully and never gets a
 * `task.canceled` after its `task.succeeded`; a run cancelled while its step completes ends in
 * exactly one terminal state, and the ledger verifies.
 *
 * The interleavings are forced with store wrappers (the other side commits between the
 * canceller's read and its write), then exercised at random with real workers.
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { buildWorkflow, isWardenError, type LoadedWorkflow } from '../src/core/index.ts';
import { Kernel, verifyLedger } from '../src/kernel/index.ts';
import { JobQueue, JobWorker } from '../src/queue/index.ts';
import { AgentRegistry, Worker } from '../src/runtime/index.ts';
import {
  type ClaimedTask,
  type EventRecord,
  openSqliteStore,
  type ProcessRecord,
  type Store,
} from '../src/store/index.ts';
import { wrapStore } from './helpers/store-spy.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { sleep } from './helpers/wait.ts';

const stores: Store[] = [];
const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const store of stores.splice(0)) await store.close();
});
afterAll(removeTempDirs);

async function open(): Promise<Store> {
  const store = await openSqliteStore({ file: join(tempDir(), 'c.db') });
  stores.push(store);
  return store;
}

async function allEvents(store: Store): Promise<EventRecord[]> {
  const out: EventRecord[] = [];
  for (const session of await store.listSessions())
    out.push(...(await store.readEvents({ sessionId: session.id, limit: 100_000 })));
  return out;
}

/** Task ids whose log has both a `task.succeeded` and a `task.canceled` (in either order). */
function succeededAndCanceled(events: readonly EventRecord[]): string[] {
  const byTask = new Map<string, string[]>();
  for (const e of events)
    if (e.task_id && (e.type === 'task.succeeded' || e.type === 'task.canceled'))
      byTask.set(e.task_id, [...(byTask.get(e.task_id) ?? []), e.type]);
  return [...byTask].filter(([, types]) => new Set(types).size === 2).map(([id]) => id);
}

function claimJob(store: Store, workerId: string): Promise<ClaimedTask[]> {
  return store.claimTasks({
    lanes: ['default'],
    kinds: ['job'],
    workerId,
    limit: 1,
    leaseMs: 10_000,
    now: Date.now(),
  });
}

/** The worker's successful settle of `claim`, with its event. */
function succeed(store: Store, claim: ClaimedTask) {
  return store.settleTasks([
    {
      id: claim.task.id,
      leaseToken: claim.leaseToken,
      state: 'succeeded',
      result: { ok: true },
      attemptOutcome: 'succeeded',
      now: Date.now(),
      events: [
        {
          session_id: claim.task.session_id,
          type: 'task.succeeded',
          trace_id: claim.task.trace_id,
          task_id: claim.task.id,
          attempt: claim.attempt,
          data: { attempt: claim.attempt },
        },
      ],
    },
  ]);
}

// =============================================================================================

describe('JobQueue.cancel against a task that finishes meanwhile', () => {
  it.each(['running', 'queued'] as const)(
    'a task read as %s that succeeds before the cancel writes: the answer is succeeded and no task.canceled is written',
    async (readAs) => {
      const store = await open();
      const { id } = await new JobQueue({ store }).submit('work', {});
      let claim: ClaimedTask | undefined;
      if (readAs === 'running') [claim] = await claimJob(store, 'worker-1');
      let raced = false;
      // The canceller's read sees `readAs`; the worker finishes before the canceller writes.
      const racing = wrapStore(store, {
        getTask: async (taskId) => {
          const seen = await store.getTask(taskId);
          if (!raced && taskId === id) {
            raced = true;
            if (!claim) [claim] = await claimJob(store, 'worker-1');
            const [outcome] = await succeed(store, claim!);
            expect(outcome?.ok).toBe(true);
          }
          return seen;
        },
      });
      const answer = await new JobQueue({ store: racing }).cancel(id, 'race');
      expect(raced).toBe(true);
      expect(answer.state).toBe('succeeded');
      const task = (await store.getTask(id))!;
      expect(task.state).toBe('succeeded');
      expect(task.result).toEqual({ ok: true });
      const types = (await allEvents(store)).filter((e) => e.task_id === id).map((e) => e.type);
      expect(types).toContain('task.succeeded');
      expect(types).not.toContain('task.canceled');
      expect((await store.listAttempts(id)).map((a) => a.outcome)).toEqual(['succeeded']);
    },
  );

  it('cancels racing a JobWorker at random: every answer is the final state, no task both succeeds and is canceled', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const worker = new JobWorker({ queue, concurrency: 8, heartbeat: 'timer' });
    worker.handle('quick', async () => {
      await sleep(Math.floor(Math.random() * 4));
      return { ok: true };
    });
    await worker.start();
    cleanups.push(() => worker.stop({ abort: true }));
    const TASKS = 150;
    // Submitted one after another; each cancelled after a random delay, so some cancels land
    // while the task is queued, some while it runs, some after it succeeded.
    const cancels: Array<Promise<{ id: string; state: string }>> = [];
    for (let i = 0; i < TASKS; i++) {
      const { id } = await queue.submit('quick', { i });
      cancels.push(
        sleep(Math.floor(Math.random() * 30)).then(async () => {
          try {
            return { id, state: (await queue.cancel(id, 'race')).state };
          } catch (error) {
            return { id, state: isWardenError(error) ? `error ${error.code}` : String(error) };
          }
        }),
      );
      await sleep(Math.floor(Math.random() * 3));
    }
    const answers = await Promise.all(cancels);
    const deadline = Date.now() + 15_000;
    for (;;) {
      const open = await store.listTasks({ states: ['queued', 'running'], limit: 1 });
      if (open.length === 0) break;
      if (Date.now() > deadline) throw new Error('tasks left unfinished');
      await sleep(10);
    }
    const counts: Record<string, number> = {};
    for (const { id, state } of answers) {
      counts[state] = (counts[state] ?? 0) + 1;
      expect(['succeeded', 'canceled'], `cancel of ${id} answered ${state}`).toContain(state);
      expect((await store.getTask(id))?.state, `task ${id}`).toBe(state);
    }
    console.info(`cancel races with a JobWorker: answers ${JSON.stringify(counts)}`);
    expect(succeededAndCanceled(await allEvents(store))).toEqual([]);
    expect((await verifyLedger(store)).ok).toBe(true);
  });
});

describe('cancelling a run while its step completes', () => {
  function twoStages(): LoadedWorkflow {
    return buildWorkflow({
      name: 'cancel-race',
      stages: [
        { name: 'one', agent: { kind: 'noop', output: { n: 1 } }, default_next: 'two' },
        { name: 'two', agent: { kind: 'noop', output: { n: 2 } } },
      ],
    });
  }

  /** A kernel on a store whose reads can run `during` between the read and the caller's write. */
  async function harness() {
    const store = await open();
    const during: {
      listTasks?: (() => Promise<void>) | undefined;
      getProcess?: (() => Promise<void>) | undefined;
    } = {};
    const racing = wrapStore(store, {
      listTasks: async (filter) => {
        const seen = await store.listTasks(filter);
        const hook = during.listTasks;
        during.listTasks = undefined;
        await hook?.();
        return seen;
      },
      getProcess: async (pid) => {
        const seen = await store.getProcess(pid);
        const hook = during.getProcess;
        during.getProcess = undefined;
        await hook?.();
        return seen;
      },
    });
    const kernel = new Kernel({ store: racing });
    cleanups.push(() => kernel.close());
    const run = await kernel.startRun({ workflow: twoStages() });
    const [claim] = await store.claimTasks({
      lanes: [kernel.agentLane],
      kinds: ['agent_step'],
      workerId: 'step-worker',
      limit: 1,
      leaseMs: 10_000,
      now: Date.now(),
    });
    const step = (await kernel.orchestrator.beginStep(claim!))!;
    expect(step).not.toBeNull();
    return { store, kernel, run, step, during };
  }

  /** Exactly one terminal state, consistent tasks, a verified ledger. */
  async function expectOneEnd(store: Store, run: ProcessRecord): Promise<ProcessRecord> {
    const p = (await store.getProcess(run.pid))!;
    expect(p.state).toBe('terminated');
    const events = await store.readEvents({
      sessionId: run.session_id,
      processId: run.pid,
      limit: 10_000,
    });
    expect(events.filter((e) => e.type === 'process.terminated')).toHaveLength(1);
    expect(succeededAndCanceled(events)).toEqual([]);
    const open = await store.listTasks({ processId: run.pid, states: ['queued', 'running'] });
    expect(open).toEqual([]);
    expect((await verifyLedger(store)).ok).toBe(true);
    return p;
  }

  it('the step commits between the cancel’s read and its write: the cancel looks again, one end', async () => {
    const { store, kernel, run, step, during } = await harness();
    let completed: ProcessRecord | undefined;
    // cancelRun reads the run's tasks (the step is running); the step then commits.
    during.listTasks = async () => {
      completed = await kernel.orchestrator.completeStep(step, { output: { n: 1 } });
    };
    const cancelled = await kernel.cancelRun(run.pid, 'race');
    expect(completed?.state).not.toBe('terminated'); // step one done, step two queued
    expect(cancelled.state).toBe('terminated');
    const p = await expectOneEnd(store, run);
    expect(p.terminal_reason).toBe('user_cancelled');
    const tasks = await store.listTasks({ processId: run.pid });
    expect(tasks.map((t) => t.state).sort()).toEqual(['canceled', 'succeeded']);
    expect(p.envelope.outputs).toEqual({ one: { n: 1 } });
  });

  it('the cancel commits between the step’s read and its write: the late completion is LEASE_LOST, one end', async () => {
    const { store, kernel, run, step, during } = await harness();
    let cancelled: ProcessRecord | undefined;
    during.getProcess = async () => {
      cancelled = await kernel.cancelRun(run.pid, 'race');
    };
    let error: unknown;
    try {
      await kernel.orchestrator.completeStep(step, { output: { n: 1 } });
    } catch (caught) {
      error = caught;
    }
    expect(isWardenError(error, 'LEASE_LOST'), `completeStep failed with ${String(error)}`).toBe(
      true,
    );
    expect(cancelled?.terminal_reason).toBe('user_cancelled');
    const p = await expectOneEnd(store, run);
    expect(p.terminal_reason).toBe('user_cancelled');
    expect(p.envelope.outputs).toEqual({});
    const tasks = await store.listTasks({ processId: run.pid });
    expect(tasks.map((t) => t.state)).toEqual(['canceled']);
  });

  it('cancelRun racing a real Worker at random: every run ends exactly once and the ledger verifies', async () => {
    const store = await open();
    const kernel = new Kernel({
      store,
      rateLimits: { per_minute: 100_000, per_hour: 1_000_000, per_day: 10_000_000, burst: 10_000 },
    });
    cleanups.push(() => kernel.close());
    const agents = new AgentRegistry().register('quick', async () => {
      await sleep(Math.floor(Math.random() * 6));
      return { output: { ok: true } };
    });
    const worker = new Worker({ kernel, agents, concurrency: 8 });
    await worker.start();
    cleanups.push(() => worker.stop({ abort: true }));
    const workflow = buildWorkflow({
      name: 'cancel-random',
      stages: [
        { name: 'a', agent: { kind: 'typescript', name: 'quick' }, default_next: 'b' },
        { name: 'b', agent: { kind: 'typescript', name: 'quick' }, default_next: 'c' },
        { name: 'c', agent: { kind: 'typescript', name: 'quick' } },
      ],
    });
    const RUNS = 40;
    const runs = await Promise.all(
      Array.from({ length: RUNS }, async (_, i) => {
        await sleep(i * 10);
        const run = await kernel.startRun({ workflow, sessionKey: `c${i % 4}` });
        await sleep(Math.floor(Math.random() * 300));
        await kernel.cancelRun(run.pid, 'race');
        return run;
      }),
    );
    // The cancels are committed; what was still running must wind down.
    const deadline = Date.now() + 15_000;
    while (worker.activeCount > 0) {
      if (Date.now() > deadline) throw new Error('steps still running after every run ended');
      await sleep(10);
    }
    const reasons: Record<string, number> = {};
    for (const run of runs) {
      const p = await expectOneEnd(store, run);
      reasons[p.terminal_reason ?? 'none'] = (reasons[p.terminal_reason ?? 'none'] ?? 0) + 1;
      expect(['completed', 'user_cancelled']).toContain(p.terminal_reason);
    }
    console.info(`cancelRun races with a Worker: terminal reasons ${JSON.stringify(reasons)}`);
  });
});
