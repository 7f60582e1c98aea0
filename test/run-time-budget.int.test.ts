/**
 * The run-time budget (`bounds.timeout`) counts only time a step is running (docs/concepts.md
 * "Time limits"): not time the step waits in the queue, not time the run waits for a person
 * (that wait is bounded by the interrupt's TTL), and not time lost with a dead worker. Time a
 * step spends running counts while it runs: the step is stopped when the budget runs out.
 * A manual clock stands for hours passing, so each case would end the run with
 * `timeout_exceeded` if that time counted.
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  buildWorkflow,
  isWardenError,
  type LoadedWorkflow,
  ManualClock,
  type WorkflowInput,
} from '../src/core/index.ts';
import { Kernel } from '../src/kernel/index.ts';
import { AgentRegistry, Worker } from '../src/runtime/index.ts';
import { type EventRecord, openSqliteStore, type Store } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { rejection, waitForProcess } from './helpers/wait.ts';

const HOUR = 3_600_000;

interface Harness {
  readonly store: Store;
  readonly kernel: Kernel;
  readonly clock: ManualClock;
  startWorker(agents?: AgentRegistry): Promise<Worker>;
}

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(removeTempDirs);

async function harness(): Promise<Harness> {
  const clock = new ManualClock(Date.now());
  const store = await openSqliteStore({ file: join(tempDir(), 'w.db'), clock });
  const kernel = new Kernel({ store, clock });
  closers.push(async () => {
    kernel.close();
    await store.close();
  });
  return {
    store,
    kernel,
    clock,
    async startWorker(agents = new AgentRegistry()) {
      const worker = new Worker({ kernel, agents, concurrency: 1 });
      closers.push(() => worker.stop({ abort: true }));
      await worker.start();
      return worker;
    },
  };
}

function wf(spec: Omit<WorkflowInput, 'name'>): LoadedWorkflow {
  return buildWorkflow({ name: 'budgeted', ...spec });
}

const twoStages = (timeout: number) =>
  wf({
    bounds: { timeout },
    stages: [
      { name: 'first', agent: { kind: 'noop' }, default_next: 'second' },
      { name: 'second', agent: { kind: 'noop' } },
    ],
  });

async function eventsOf(store: Store, sessionId: string): Promise<EventRecord[]> {
  return store.readEvents({ sessionId, afterSeq: 0, limit: 10_000 });
}

describe('the run-time budget counts only running steps', () => {
  it('time a step waits in the queue does not count', async () => {
    const h = await harness();
    const started = await h.kernel.startRun({ workflow: twoStages(1_000) });
    h.clock.advance(2 * HOUR); // no worker for two hours
    await h.startWorker();
    const done = await waitForProcess(h.kernel, started.pid);
    expect(done.terminal_reason).toBe('completed');
  });

  it('time waiting for a person does not count; the wait is bounded by the interrupt TTL', async () => {
    const h = await harness();
    await h.startWorker();
    const started = await h.kernel.startRun({
      workflow: wf({
        bounds: { timeout: 1_000 },
        stages: [
          {
            name: 'approve',
            interrupt: { kind: 'confirmation', prompt: 'go?', ttl: '3h' },
            default_next: 'after',
          },
          { name: 'after', agent: { kind: 'noop' } },
        ],
      }),
    });
    const waiting = await waitForProcess(h.kernel, started.pid, (p) => p.state === 'waiting');
    const [ask] = await h.store.listInterrupts({ processId: waiting.pid, status: 'pending' });
    h.clock.advance(2 * HOUR); // within the TTL, far past the run-time budget
    await h.kernel.resolveInterrupt(ask!.id, { approved: true });
    const done = await waitForProcess(h.kernel, started.pid);
    expect(done.terminal_reason).toBe('completed');
    expect(done.envelope.outputs.after).toBeDefined();
  });

  it('an answer after the interrupt TTL is refused and the expiry rule applies instead', async () => {
    const h = await harness();
    await h.startWorker();
    const started = await h.kernel.startRun({
      workflow: wf({
        stages: [
          {
            name: 'approve',
            interrupt: { kind: 'confirmation', prompt: 'go?', ttl: '1m' },
            routing: [{ when: { field: 'interrupt.approved', eq: true }, next: 'pay' }],
          },
          { name: 'pay', agent: { kind: 'noop' } },
        ],
      }),
    });
    const waiting = await waitForProcess(h.kernel, started.pid, (p) => p.state === 'waiting');
    const [ask] = await h.store.listInterrupts({ processId: waiting.pid, status: 'pending' });
    h.clock.advance(2 * 60_000);
    const refused = await rejection(h.kernel.resolveInterrupt(ask!.id, { approved: true }));
    expect(isWardenError(refused, 'INVALID_STATE')).toBe(true);
    expect(refused.message).toMatch(/expired at .* before it was answered/);
    const done = await waitForProcess(h.kernel, started.pid);
    // A confirmation expires as a denial: the late approval did not pay.
    expect(done.terminal_reason).toBe('completed');
    expect(done.envelope.outputs.pay).toBeUndefined();
    expect((await h.store.getInterrupt(ask!.id))?.status).toBe('expired');
  });

  it('time lost with a dead worker does not count: a run resumed hours later finishes', async () => {
    const h = await harness();
    const started = await h.kernel.startRun({ workflow: twoStages(1_000) });
    // A worker claims and begins the first step, then dies holding the lease.
    const [claim] = await h.store.claimTasks({
      lanes: [h.kernel.agentLane],
      kinds: ['agent_step'],
      workerId: 'dead-host/1/gone',
      limit: 1,
      leaseMs: 5_000,
      now: h.clock.now(),
    });
    expect(await h.kernel.orchestrator.beginStep(claim!)).not.toBeNull();
    expect((await h.kernel.getProcess(started.pid)).state).toBe('running');
    h.clock.advance(2 * HOUR); // the machine was down
    await h.kernel.recover();
    h.clock.advance(60_000); // past the retry backoff of the lost attempt
    await h.startWorker();
    const done = await waitForProcess(h.kernel, started.pid);
    expect(done.terminal_reason).toBe('completed');
    const types = (await eventsOf(h.store, started.session_id)).map((e) => e.type);
    expect(types).toContain('task.lease_expired');
  });

  it('a running step is stopped when the budget runs out, and the run ends timeout_exceeded', async () => {
    const h = await harness();
    let aborted = false;
    const agents = new AgentRegistry().register('slow', async (ctx) => {
      // The manual clock passes the budget while the step runs; the worker's deadline fires.
      h.clock.advance(2 * HOUR);
      await new Promise<void>((resolve) => {
        ctx.signal.addEventListener('abort', () => {
          aborted = true;
          resolve();
        });
      });
      return { output: { finished: true } };
    });
    await h.startWorker(agents);
    const started = await h.kernel.startRun({
      workflow: wf({
        bounds: { timeout: 200 },
        stages: [
          { name: 'slow', agent: { kind: 'typescript', name: 'slow' }, default_next: 'after' },
          { name: 'after', agent: { kind: 'noop' } },
        ],
      }),
    });
    const done = await waitForProcess(h.kernel, started.pid);
    expect(aborted).toBe(true);
    expect(done.terminal_reason).toBe('timeout_exceeded');
    expect(done.envelope.outputs.slow).toBeUndefined();
    const events = await eventsOf(h.store, started.session_id);
    const failed = events.find((e) => e.type === 'stage.failed');
    expect(failed?.data).toMatchObject({
      stage: 'slow',
      error: { code: 'QUOTA_EXCEEDED' },
      will_retry: false,
    });
    expect(
      events.some(
        (e) => e.type === 'stage.started' && (e.data as { stage: string }).stage === 'after',
      ),
    ).toBe(false);
  });

  it("finished steps' running time adds up across steps", async () => {
    const h = await harness();
    const agents = new AgentRegistry().register('takes-an-hour', () => {
      h.clock.advance(HOUR);
      return Promise.resolve({ output: {} });
    });
    await h.startWorker(agents);
    const started = await h.kernel.startRun({
      workflow: wf({
        bounds: { timeout: '90m' },
        stages: [
          { name: 'a', agent: { kind: 'typescript', name: 'takes-an-hour' }, default_next: 'b' },
          { name: 'b', agent: { kind: 'typescript', name: 'takes-an-hour' }, default_next: 'c' },
          { name: 'c', agent: { kind: 'noop' } },
        ],
      }),
    });
    const done = await waitForProcess(h.kernel, started.pid);
    // a: 1 h, b: 1 h → 2 h > 90 min: c is never started.
    expect(done.terminal_reason).toBe('timeout_exceeded');
    expect(done.envelope.active_ms).toBeGreaterThanOrEqual(2 * HOUR);
    expect(done.envelope.outputs.a).toBeDefined();
    expect(done.envelope.outputs.c).toBeUndefined();
  });
});
