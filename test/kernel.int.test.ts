/**
 * The kernel on a real SQLite store (DESIGN.md §5, §6): durable starts, lease fencing of
 * stale reports, lease reclaim, retries with backoff, cancellation, interrupts (resolve,
 * expiry, restart), the hash-chained event log and scheduling order.
 */
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  backoffCeilingMs,
  buildWorkflow,
  type Clock,
  isWardenError,
  type LoadedWorkflow,
  ManualClock,
  type Priority,
  WardenError,
  type WorkflowInput,
} from '../src/core/index.ts';
import { Kernel, type StepContext, verifyLedger } from '../src/kernel/index.ts';
import { AgentRegistry, Worker } from '../src/runtime/index.ts';
import {
  type ClaimedTask,
  type EventRecord,
  openSqliteStore,
  type ProcessRecord,
  type Store,
} from '../src/store/index.ts';
import { deleteEvent, editEventData } from './helpers/event-tamper.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { rejection, waitForProcess } from './helpers/wait.ts';

interface Harness {
  readonly file: string;
  readonly store: Store;
  readonly kernel: Kernel;
  readonly workers: Worker[];
}

const open: Harness[] = [];

async function harness(options: { clock?: Clock; file?: string } = {}): Promise<Harness> {
  const file = options.file ?? join(tempDir(), 'w.db');
  const store = await openSqliteStore({
    file,
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const kernel = new Kernel({ store, ...(options.clock ? { clock: options.clock } : {}) });
  const h: Harness = { file, store, kernel, workers: [] };
  open.push(h);
  return h;
}

async function startWorker(
  h: Harness,
  agents: AgentRegistry = new AgentRegistry(),
): Promise<Worker> {
  const worker = new Worker({
    kernel: h.kernel,
    agents,
    concurrency: 1,
  });
  h.workers.push(worker);
  await worker.start();
  return worker;
}

async function closeHarness(h: Harness): Promise<void> {
  const i = open.indexOf(h);
  if (i !== -1) open.splice(i, 1);
  for (const w of h.workers.splice(0)) await w.stop({ abort: true });
  h.kernel.close();
  await h.store.close();
}

afterEach(async () => {
  for (const h of [...open]) await closeHarness(h);
});

afterAll(() => removeTempDirs());

const waitFor = waitForProcess;

async function waitUntil(check: () => boolean | Promise<boolean>, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

async function sessionEvents(store: Store, sessionId: string): Promise<EventRecord[]> {
  return store.readEvents({ sessionId, limit: 10_000 });
}

async function eventsOf(store: Store, p: ProcessRecord): Promise<EventRecord[]> {
  return store.readEvents({ sessionId: p.session_id, processId: p.pid, limit: 10_000 });
}

function ofType(events: readonly EventRecord[], type: string): EventRecord[] {
  return events.filter((e) => e.type === type);
}

function wf(input: Omit<WorkflowInput, 'name'> & { name?: string }): LoadedWorkflow {
  return buildWorkflow({ name: 'kernel-test', model: 'scripted', ...input });
}

const twoStages = (): LoadedWorkflow =>
  wf({
    stages: [
      { name: 'one', agent: { kind: 'noop', output: { n: 1 } }, default_next: 'two' },
      { name: 'two', agent: { kind: 'noop', output: { n: 2 } } },
    ],
  });

async function claimOne(
  h: Harness,
  options: { leaseMs?: number; workerId?: string } = {},
): Promise<ClaimedTask | undefined> {
  const [claim] = await h.store.claimTasks({
    lanes: ['agents'],
    kinds: ['agent_step'],
    workerId: options.workerId ?? 'w1',
    limit: 1,
    leaseMs: options.leaseMs ?? 10_000,
    now: h.kernel.clock.now(),
  });
  return claim;
}

async function claimAndBegin(h: Harness, options: { leaseMs?: number } = {}): Promise<StepContext> {
  const claim = await claimOne(h, options);
  expect(claim).toBeDefined();
  const step = await h.kernel.orchestrator.beginStep(claim!);
  expect(step).not.toBeNull();
  return step!;
}

/** What a stale or forged report must not change. */
async function observable(h: Harness, pid: string) {
  const p = await h.kernel.getProcess(pid);
  const events = await sessionEvents(h.store, p.session_id);
  return {
    version: p.version,
    state: p.state,
    events: events.length,
    step: p.envelope.step,
    outputs: p.envelope.outputs,
    history: p.envelope.history.length,
    usage: p.usage,
  };
}

describe('a durable start', () => {
  it('creates the process and its first queued step in one commit, with contiguous events', async () => {
    const h = await harness();
    const batches: (readonly EventRecord[])[] = [];
    const unsubscribe = h.store.onCommit((events) => batches.push(events));
    const p = await h.kernel.startRun({ workflow: twoStages(), input: { x: 1 } });
    unsubscribe();

    expect(p.state).toBe('ready');
    expect((await h.kernel.getProcess(p.pid)).state).toBe('ready');
    const tasks = await h.store.listTasks({ processId: p.pid });
    expect(tasks).toHaveLength(1);
    expect(tasks[0]!).toMatchObject({
      kind: 'agent_step',
      state: 'queued',
      lane: 'agents',
      name: 'one',
      attempts: 0,
      payload: { pid: p.pid, step: 1, stage: 'one' },
    });

    const events = await eventsOf(h.store, p);
    const created = ofType(events, 'process.created');
    const queued = ofType(events, 'task.queued');
    expect(created).toHaveLength(1);
    expect(queued).toHaveLength(1);
    expect(queued[0]!.seq).toBe(created[0]!.seq + 1);
    expect(queued[0]!.task_id).toBe(tasks[0]!.id);

    // Both events (and the state change) were committed together.
    const batch = batches.find((b) => b.some((e) => e.type === 'process.created'));
    expect(batch).toBeDefined();
    expect(batch!.map((e) => e.type)).toContain('task.queued');
    expect(batch!.map((e) => e.type)).toContain('process.state_changed');
    const seqs = batch!.map((e) => e.seq);
    expect(seqs).toEqual(seqs.map((_, i) => seqs[0]! + i));
  });
});

describe('stale and forged reports', () => {
  it('a second completeStep for the same step is rejected and changes nothing', async () => {
    const h = await harness();
    const p = await h.kernel.startRun({ workflow: twoStages() });
    const step = await claimAndBegin(h);

    const after = await h.kernel.orchestrator.completeStep(step, { output: { first: true } });
    expect(after.envelope.outputs.one).toEqual({ first: true });
    expect(after.envelope.step).toBe(2);
    const before = await observable(h, p.pid);

    const error = await rejection(
      h.kernel.orchestrator.completeStep(step, { output: { second: true } }),
    );
    // A stale report: see the report for the error code (LEASE_LOST vs INVALID_STATE).
    expect(['LEASE_LOST', 'INVALID_STATE']).toContain(error.code);
    expect(await observable(h, p.pid)).toEqual(before);
    expect((await h.kernel.getProcess(p.pid)).envelope.outputs.one).toEqual({ first: true });
  });

  it('a second completeStep after the run terminated is rejected with LEASE_LOST', async () => {
    const h = await harness();
    const p = await h.kernel.startRun({
      workflow: wf({ stages: [{ name: 'only', agent: { kind: 'noop' } }] }),
    });
    const step = await claimAndBegin(h);
    const done = await h.kernel.orchestrator.completeStep(step, { output: { first: true } });
    expect(done.terminal_reason).toBe('completed');
    const before = await observable(h, p.pid);

    const error = await rejection(
      h.kernel.orchestrator.completeStep(step, { output: { second: true } }),
    );
    expect(error.code).toBe('LEASE_LOST');
    expect(await observable(h, p.pid)).toEqual(before);
  });

  it('the double report of a step that moved on is LEASE_LOST like any other stale report', async () => {
    const h = await harness();
    await h.kernel.startRun({ workflow: twoStages() });
    const step = await claimAndBegin(h);
    await h.kernel.orchestrator.completeStep(step, { output: { first: true } });

    const error = await rejection(
      h.kernel.orchestrator.completeStep(step, { output: { second: true } }),
    );
    expect(error.code, error.message).toBe('LEASE_LOST');
  });

  it('a completeStep with a forged lease token is LEASE_LOST and changes nothing', async () => {
    const h = await harness();
    const p = await h.kernel.startRun({ workflow: twoStages() });
    const step = await claimAndBegin(h);
    const before = await observable(h, p.pid);

    const forged: StepContext = { ...step, claim: { ...step.claim, leaseToken: 'forged-token' } };
    const error = await rejection(h.kernel.orchestrator.completeStep(forged, { output: { x: 1 } }));
    expect(error.code).toBe('LEASE_LOST');
    expect(await observable(h, p.pid)).toEqual(before);
    const failed = await rejection(
      h.kernel.orchestrator.failStep(forged, new WardenError('INVALID_PARAMS', 'forged')),
    );
    expect(failed.code).toBe('LEASE_LOST');
    expect(await observable(h, p.pid)).toEqual(before);
    const task = await h.store.getTask(step.claim.task.id);
    expect(task!.state).toBe('running');
    expect(task!.lease_token).toBe(step.claim.leaseToken);

    // The genuine holder can still report.
    const after = await h.kernel.orchestrator.completeStep(step, { output: { genuine: true } });
    expect(after.envelope.outputs.one).toEqual({ genuine: true });
  });
});

describe('lease reclaim', () => {
  // The fallback stage exists only when error_next leads to it (an unreachable stage is invalid).
  const retried = (errorNext?: 'fallback'): LoadedWorkflow =>
    wf({
      stages: [
        {
          name: 'work',
          agent: { kind: 'noop' },
          retry: { max_attempts: 2, backoff: 10, max_backoff: 20 },
          ...(errorNext ? { error_next: errorNext } : {}),
        },
        ...(errorNext
          ? [{ name: 'fallback', agent: { kind: 'noop' as const, output: { recovered: true } } }]
          : []),
      ],
    });

  it('requeues an expired lease as a failed attempt and fences out the old token', async () => {
    const clock = new ManualClock();
    const h = await harness({ clock });
    const p = await h.kernel.startRun({ workflow: retried() });
    const step = await claimAndBegin(h, { leaseMs: 1_000 });
    expect((await h.kernel.getProcess(p.pid)).state).toBe('running');

    clock.advance(500);
    expect(await h.kernel.recovery.reclaimLeases(() => 0)).toBe(0);
    clock.advance(501);
    expect(await h.kernel.recovery.reclaimLeases(() => 0)).toBe(1);

    const task = (await h.store.getTask(step.claim.task.id))!;
    expect(task.state).toBe('queued');
    expect(task.attempts).toBe(1);
    expect(task.lease_token).toBeNull();
    expect(task.last_error?.code).toBe('LEASE_EXPIRED');
    const attempts = await h.store.listAttempts(task.id);
    expect(attempts).toHaveLength(1);
    expect(attempts[0]!).toMatchObject({ attempt: 1, outcome: 'lease_expired' });
    expect((await h.kernel.getProcess(p.pid)).state).toBe('ready');
    const events = await eventsOf(h.store, p);
    expect(ofType(events, 'task.lease_expired')).toHaveLength(1);
    expect(ofType(events, 'task.retry_scheduled')).toHaveLength(1);

    const before = await observable(h, p.pid);
    const error = await rejection(
      h.kernel.orchestrator.completeStep(step, { output: { late: 1 } }),
    );
    expect(error.code).toBe('LEASE_LOST');
    expect(await observable(h, p.pid)).toEqual(before);

    // The next claim is attempt 2 with a fresh token.
    const again = await claimAndBegin(h, { leaseMs: 1_000 });
    expect(again.claim.attempt).toBe(2);
    expect(again.claim.leaseToken).not.toBe(step.claim.leaseToken);
    const done = await h.kernel.orchestrator.completeStep(again, { output: { ok: true } });
    expect(done.terminal_reason).toBe('completed');
  });

  it('at max_attempts the task goes dead and the run terminates with tool_failed_fatally', async () => {
    const clock = new ManualClock();
    const h = await harness({ clock });
    const p = await h.kernel.startRun({ workflow: retried() });
    await claimAndBegin(h, { leaseMs: 1_000 });
    clock.advance(1_001);
    expect(await h.kernel.recovery.reclaimLeases(() => 0)).toBe(1);
    const second = await claimAndBegin(h, { leaseMs: 1_000 });
    clock.advance(1_001);
    expect(await h.kernel.recovery.reclaimLeases(() => 0)).toBe(1);

    const task = (await h.store.getTask(second.claim.task.id))!;
    expect(task.state).toBe('dead');
    expect(task.attempts).toBe(2);
    const attempts = await h.store.listAttempts(task.id);
    expect(attempts.map((a) => a.outcome)).toEqual(['lease_expired', 'lease_expired']);
    const final = await h.kernel.getProcess(p.pid);
    expect(final.state).toBe('terminated');
    expect(final.terminal_reason).toBe('tool_failed_fatally');
    expect(ofType(await eventsOf(h.store, p), 'task.dead')).toHaveLength(1);
    const error = await rejection(h.kernel.orchestrator.completeStep(second, { output: {} }));
    expect(error.code).toBe('LEASE_LOST');
  });

  it('at max_attempts the run follows error_next when the stage has one', async () => {
    const clock = new ManualClock();
    const h = await harness({ clock });
    const p = await h.kernel.startRun({ workflow: retried('fallback') });
    await claimAndBegin(h, { leaseMs: 1_000 });
    clock.advance(1_001);
    await h.kernel.recovery.reclaimLeases(() => 0);
    const second = await claimAndBegin(h, { leaseMs: 1_000 });
    clock.advance(1_001);
    await h.kernel.recovery.reclaimLeases(() => 0);

    expect((await h.store.getTask(second.claim.task.id))!.state).toBe('dead');
    const moved = await h.kernel.getProcess(p.pid);
    expect(moved.state).toBe('ready');
    expect(moved.current_stage).toBe('fallback');
    expect(moved.envelope.errors.map((e) => e.code)).toEqual(['LEASE_EXPIRED']);
    const queued = await h.store.listTasks({ processId: p.pid, states: ['queued'] });
    expect(queued.map((t) => t.name)).toEqual(['fallback']);

    const last = await claimAndBegin(h);
    const done = await h.kernel.orchestrator.completeStep(last, { output: { recovered: true } });
    expect(done.terminal_reason).toBe('completed');
    expect(done.envelope.outputs.fallback).toEqual({ recovered: true });
  });
});

describe('retries with backoff', () => {
  it('a retryable failure is retried with jittered backoff until it succeeds', async () => {
    const h = await harness();
    let calls = 0;
    const agents = new AgentRegistry().register('flaky', (ctx) => {
      calls += 1;
      if (calls <= 2)
        return Promise.reject(new WardenError('PROVIDER_ERROR', 'flaky', { retryable: true }));
      return Promise.resolve({ output: { attempt: ctx.attempt } });
    });
    await startWorker(h, agents);
    const p = await h.kernel.startRun({
      workflow: wf({
        stages: [
          {
            name: 'call',
            agent: { kind: 'typescript', name: 'flaky' },
            retry: { max_attempts: 5, backoff: 10, max_backoff: 20 },
          },
        ],
      }),
    });
    const done = await waitFor(h.kernel, p.pid);

    expect(done.terminal_reason).toBe('completed');
    expect(done.envelope.outputs.call).toEqual({ attempt: 3 });
    expect(calls).toBe(3);
    const [task] = await h.store.listTasks({ processId: p.pid });
    expect(task!.state).toBe('succeeded');
    expect(task!.attempts).toBe(3);
    const attempts = await h.store.listAttempts(task!.id);
    expect(attempts.map((a) => a.outcome)).toEqual(['failed', 'failed', 'succeeded']);

    const retries = ofType(await eventsOf(h.store, p), 'task.retry_scheduled');
    expect(retries).toHaveLength(2);
    for (const event of retries) {
      const data = event.data as { attempt: number; delay_ms: number; error: { code: string } };
      const ceiling = backoffCeilingMs({ base_ms: 10, max_ms: 20, jitter: 'full' }, data.attempt);
      expect(data.delay_ms).toBeGreaterThanOrEqual(0);
      expect(data.delay_ms).toBeLessThanOrEqual(ceiling);
      expect(ceiling).toBeLessThanOrEqual(20);
      expect(data.error.code).toBe('PROVIDER_ERROR');
    }
    expect(retries.map((e) => (e.data as { attempt: number }).attempt)).toEqual([1, 2]);
  });

  it('a non-retryable failure fails at once and follows error_next', async () => {
    const h = await harness();
    let calls = 0;
    const agents = new AgentRegistry().register('bad', () => {
      calls += 1;
      return Promise.reject(new WardenError('INVALID_PARAMS', 'bad input'));
    });
    await startWorker(h, agents);
    const p = await h.kernel.startRun({
      workflow: wf({
        stages: [
          {
            name: 'call',
            agent: { kind: 'typescript', name: 'bad' },
            retry: { max_attempts: 5, backoff: 10, max_backoff: 20 },
            error_next: 'recover',
          },
          { name: 'recover', agent: { kind: 'noop', output: { recovered: true } } },
        ],
      }),
    });
    const done = await waitFor(h.kernel, p.pid);

    expect(done.terminal_reason).toBe('completed');
    expect(calls).toBe(1);
    expect(done.envelope.outputs.recover).toEqual({ recovered: true });
    expect(done.envelope.errors).toMatchObject([{ stage: 'call', code: 'INVALID_PARAMS' }]);
    const tasks = await h.store.listTasks({ processId: p.pid });
    const call = tasks.find((t) => t.name === 'call')!;
    expect(call.state).toBe('failed');
    expect(call.attempts).toBe(1);
    const events = await eventsOf(h.store, p);
    expect(ofType(events, 'task.retry_scheduled')).toHaveLength(0);
    expect(
      ofType(events, 'route.taken').map((e) => e.data as { from: string; to: string; via: string }),
    ).toContainEqual({ from: 'call', to: 'recover', via: 'error_next' });
  });

  it('a retryable failure that never succeeds ends the run after max_attempts', async () => {
    const h = await harness();
    let calls = 0;
    const agents = new AgentRegistry().register('down', () => {
      calls += 1;
      return Promise.reject(new WardenError('PROVIDER_ERROR', 'down', { retryable: true }));
    });
    await startWorker(h, agents);
    const p = await h.kernel.startRun({
      workflow: wf({
        stages: [
          {
            name: 'call',
            agent: { kind: 'typescript', name: 'down' },
            retry: { max_attempts: 3, backoff: 5, max_backoff: 10 },
          },
        ],
      }),
    });
    const done = await waitFor(h.kernel, p.pid);

    expect(done.terminal_reason).toBe('llm_failed_fatally');
    expect(calls).toBe(3);
    const [task] = await h.store.listTasks({ processId: p.pid });
    expect(task!.state).toBe('failed');
    expect(task!.attempts).toBe(3);
  });
});

describe('cancel', () => {
  it('delivers an AbortSignal to the running agent and ends the run as user_cancelled', async () => {
    const h = await harness();
    let markStarted!: () => void;
    const started = new Promise<void>((resolve) => (markStarted = resolve));
    let observed: { aborted: boolean; code: string | undefined } | undefined;
    const agents = new AgentRegistry().register('waiter', async (ctx) => {
      markStarted();
      await new Promise<void>((resolve) => {
        if (ctx.signal.aborted) resolve();
        ctx.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      const reason: unknown = ctx.signal.reason;
      observed = {
        aborted: ctx.signal.aborted,
        code: isWardenError(reason) ? reason.code : undefined,
      };
      return { output: { finished_anyway: true } };
    });
    await startWorker(h, agents);
    const p = await h.kernel.startRun({
      workflow: wf({
        stages: [
          { name: 'wait', agent: { kind: 'typescript', name: 'waiter' }, default_next: 'next' },
          { name: 'next', agent: { kind: 'noop' } },
        ],
      }),
    });
    await started;
    const running = await h.kernel.getProcess(p.pid);
    expect(running.state).toBe('running');

    const cancelled = await h.kernel.cancelRun(p.pid);
    expect(cancelled.state).toBe('terminated');
    expect(cancelled.terminal_reason).toBe('user_cancelled');
    await waitUntil(() => observed !== undefined);
    expect(observed).toEqual({ aborted: true, code: 'CANCELED' });
    // Let the worker finish its (rejected) report before inspecting.
    await waitUntil(() => h.workers[0]!.activeCount === 0);

    const final = await h.kernel.getProcess(p.pid);
    expect(final.terminal_reason).toBe('user_cancelled');
    expect(final.envelope.outputs.wait).toBeUndefined();
    const tasks = await h.store.listTasks({ processId: p.pid });
    expect(tasks).toHaveLength(1);
    expect(tasks[0]!.state).toBe('canceled');
    const attempts = await h.store.listAttempts(tasks[0]!.id);
    expect(attempts.map((a) => a.outcome)).toEqual(['canceled']);
    const events = await eventsOf(h.store, final);
    expect(ofType(events, 'task.canceled')).toHaveLength(1);
    expect(ofType(events, 'process.terminated')).toHaveLength(1);
    expect(ofType(events, 'stage.completed')).toHaveLength(0);
  });

  it('cancelling a queued run cancels its task; cancelling a terminated run changes nothing', async () => {
    const h = await harness();
    const p = await h.kernel.startRun({ workflow: twoStages() });
    const cancelled = await h.kernel.cancelRun(p.pid, 'not needed');
    expect(cancelled.terminal_reason).toBe('user_cancelled');
    expect(cancelled.terminal_message).toBe('not needed');
    const [task] = await h.store.listTasks({ processId: p.pid });
    expect(task!.state).toBe('canceled');

    const before = await observable(h, p.pid);
    const again = await h.kernel.cancelRun(p.pid, 'twice');
    expect(again.version).toBe(before.version);
    expect(again.terminal_message).toBe('not needed');
    expect(await observable(h, p.pid)).toEqual(before);

    // A worker that claims nothing (the task is canceled) leaves it so.
    expect(await claimOne(h)).toBeUndefined();
  });
});

describe('interrupts', () => {
  const gated = (
    kind: 'confirmation' | 'clarification' = 'confirmation',
    ttl?: number,
  ): LoadedWorkflow =>
    wf({
      stages: [
        {
          name: 'gate',
          interrupt: { kind, prompt: 'ok?', ...(ttl ? { ttl } : {}) },
          routing: [{ when: { field: 'interrupt.approved', eq: true }, next: 'yes' }],
          default_next: 'no',
        },
        { name: 'yes', agent: { kind: 'noop', output: { path: 'yes' } } },
        { name: 'no', agent: { kind: 'noop', output: { path: 'no' } } },
      ],
    });

  it('a gate stage waits with one pending interrupt; approval follows the routing; a second resolve is INVALID_STATE', async () => {
    const h = await harness();
    const p = await h.kernel.startRun({ workflow: gated() });
    expect(p.state).toBe('waiting');
    const pending = await h.store.listInterrupts({ processId: p.pid, status: 'pending' });
    expect(pending).toHaveLength(1);
    expect(pending[0]!).toMatchObject({ kind: 'confirmation', prompt: 'ok?', stage: 'gate' });
    expect(await h.store.listTasks({ processId: p.pid })).toHaveLength(0);

    const { interrupt, process } = await h.kernel.resolveInterrupt(pending[0]!.id, {
      approved: true,
    });
    expect(interrupt.status).toBe('resolved');
    expect(interrupt.response).toEqual({ approved: true });
    expect(process!.current_stage).toBe('yes');
    expect(process!.state).toBe('ready');

    const before = await observable(h, p.pid);
    const error = await rejection(h.kernel.resolveInterrupt(pending[0]!.id, { approved: false }));
    expect(error.code).toBe('INVALID_STATE');
    expect(await observable(h, p.pid)).toEqual(before);

    await startWorker(h);
    const done = await waitFor(h.kernel, p.pid);
    expect(done.terminal_reason).toBe('completed');
    expect(done.envelope.outputs.yes).toEqual({ path: 'yes' });
    expect(done.envelope.outputs.no).toBeUndefined();
    expect(done.envelope.outputs.gate).toEqual({ approved: true });
  });

  it('an expired confirmation is a denial and routing continues', async () => {
    const clock = new ManualClock();
    const h = await harness({ clock });
    const p = await h.kernel.startRun({ workflow: gated('confirmation', 60_000) });
    const [pending] = await h.store.listInterrupts({ processId: p.pid, status: 'pending' });
    expect(pending!.expires_at).toBe(clock.now() + 60_000);
    expect(await h.kernel.nextDeadline()).toBe(pending!.expires_at);

    clock.advance(59_999);
    expect(await h.kernel.interrupts.expireDue()).toBe(0);
    clock.advance(2);
    expect(await h.kernel.interrupts.expireDue()).toBe(1);

    const expired = (await h.store.getInterrupt(pending!.id))!;
    expect(expired.status).toBe('expired');
    const moved = await h.kernel.getProcess(p.pid);
    expect(moved.state).toBe('ready');
    expect(moved.current_stage).toBe('no');
    expect(moved.envelope.last_interrupt?.response).toEqual({ approved: false, expired: true });

    await startWorker(h);
    const done = await waitFor(h.kernel, p.pid);
    expect(done.terminal_reason).toBe('completed');
    expect(done.envelope.outputs.no).toEqual({ path: 'no' });
    expect(done.envelope.outputs.yes).toBeUndefined();
  });

  it('an expired clarification terminates the run with interrupt_expired', async () => {
    const clock = new ManualClock();
    const h = await harness({ clock });
    const p = await h.kernel.startRun({ workflow: gated('clarification', 1_000) });
    const [pending] = await h.store.listInterrupts({ processId: p.pid, status: 'pending' });
    clock.advance(1_001);
    expect(await h.kernel.interrupts.expireDue()).toBe(1);

    expect((await h.store.getInterrupt(pending!.id))!.status).toBe('expired');
    const final = await h.kernel.getProcess(p.pid);
    expect(final.state).toBe('terminated');
    expect(final.terminal_reason).toBe('interrupt_expired');
    expect(ofType(await eventsOf(h.store, p), 'interrupt.expired')).toHaveLength(1);
    // Expired once; a later resolve changes nothing.
    const error = await rejection(h.kernel.resolveInterrupt(pending!.id, { text: 'late' }));
    expect(error.code).toBe('INVALID_STATE');
  });

  it('cancelling a waiting run cancels its pending interrupt', async () => {
    const h = await harness();
    const p = await h.kernel.startRun({ workflow: gated() });
    const [pending] = await h.store.listInterrupts({ processId: p.pid, status: 'pending' });

    const cancelled = await h.kernel.cancelRun(p.pid);
    expect(cancelled.terminal_reason).toBe('user_cancelled');
    expect((await h.store.getInterrupt(pending!.id))!.status).toBe('cancelled');
    const error = await rejection(h.kernel.resolveInterrupt(pending!.id, { approved: true }));
    expect(error.code).toBe('INVALID_STATE');
    expect((await h.kernel.getProcess(p.pid)).terminal_reason).toBe('user_cancelled');
  });

  it('a pending interrupt survives closing and reopening the store, and resolving it resumes the run', async () => {
    const first = await harness();
    const p = await first.kernel.startRun({ workflow: gated() });
    const [pending] = await first.store.listInterrupts({ processId: p.pid, status: 'pending' });
    await closeHarness(first);

    const second = await harness({ file: first.file });
    const reloaded = (await second.store.getInterrupt(pending!.id))!;
    expect(reloaded.status).toBe('pending');
    expect(reloaded.prompt).toBe('ok?');
    expect((await second.kernel.getProcess(p.pid)).state).toBe('waiting');

    await second.kernel.resolveInterrupt(pending!.id, { approved: true });
    await startWorker(second);
    const done = await waitFor(second.kernel, p.pid);
    expect(done.terminal_reason).toBe('completed');
    expect(done.envelope.outputs.yes).toEqual({ path: 'yes' });
    expect((await verifyLedger(second.store)).ok).toBe(true);
  });
});

describe('the event log', () => {
  async function completedRun(h: Harness): Promise<ProcessRecord> {
    await startWorker(h);
    const p = await h.kernel.startRun({ workflow: twoStages(), input: { q: 'x' } });
    const done = await waitFor(h.kernel, p.pid);
    expect(done.terminal_reason).toBe('completed');
    for (const w of h.workers.splice(0)) await w.stop();
    return done;
  }

  it('every session has seq 1..N contiguous and verifies', async () => {
    const h = await harness();
    await completedRun(h);
    await h.kernel.startRun({ workflow: twoStages(), sessionKey: 'other' });

    const sessions = await h.store.listSessions();
    expect(sessions.length).toBeGreaterThanOrEqual(2);
    for (const session of sessions) {
      const events = await sessionEvents(h.store, session.id);
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(session.last_seq).toBe(events.length);
      expect(session.last_hash).toBe(events.at(-1)!.hash);
      for (const [i, e] of events.entries())
        if (i > 0) expect(e.prev_hash).toBe(events[i - 1]!.hash);
    }
    const verified = await verifyLedger(h.store);
    expect(verified.ok).toBe(true);
    expect(verified.sessions.every((s) => s.ok && s.break === null)).toBe(true);
  });

  it('detects an edited event at its seq', async () => {
    const h = await harness();
    const p = await completedRun(h);
    const events = await sessionEvents(h.store, p.session_id);
    const target = events[Math.floor(events.length / 2)]!;

    const db = new Database(h.file);
    try {
      editEventData(db, p.session_id, target.seq, JSON.stringify({ tampered: true }));
    } finally {
      db.close();
    }

    const verified = await verifyLedger(h.store);
    expect(verified.ok).toBe(false);
    const session = verified.sessions.find((s) => s.session_id === p.session_id)!;
    expect(session.ok).toBe(false);
    expect(session.break?.seq).toBe(target.seq);
    expect(session.break?.reason).toBe('hash_mismatch');
    expect((await verifyLedger(h.store, p.session_id)).ok).toBe(false);
  });

  it('detects a deleted tail as a head mismatch', async () => {
    const h = await harness();
    const p = await completedRun(h);
    const events = await sessionEvents(h.store, p.session_id);
    const last = events.at(-1)!;

    const db = new Database(h.file);
    try {
      deleteEvent(db, p.session_id, last.seq);
    } finally {
      db.close();
    }

    const verified = await verifyLedger(h.store, p.session_id);
    expect(verified.ok).toBe(false);
    expect(verified.sessions[0]!.break).toMatchObject({ reason: 'head_mismatch', seq: last.seq });
  });

  it('detects a deleted middle event as a seq gap', async () => {
    const h = await harness();
    const p = await completedRun(h);
    const events = await sessionEvents(h.store, p.session_id);
    const middle = events[3]!;

    const db = new Database(h.file);
    try {
      deleteEvent(db, p.session_id, middle.seq);
    } finally {
      db.close();
    }

    const verified = await verifyLedger(h.store, p.session_id);
    expect(verified.ok).toBe(false);
    expect(verified.sessions[0]!.break).toMatchObject({ reason: 'seq_gap', seq: middle.seq });
  });
});

describe('scheduler ordering', () => {
  async function startAll(h: Harness, priorities: Priority[], clock?: ManualClock) {
    const pids: Array<{ pid: string; priority: Priority }> = [];
    for (const priority of priorities) {
      const p = await h.kernel.startRun({ workflow: twoStages(), priority, sessionKey: 'main' });
      pids.push({ pid: p.pid, priority });
      clock?.advance(1);
    }
    return pids;
  }

  async function claimOrder(h: Harness, n: number): Promise<string[]> {
    const order: string[] = [];
    for (let i = 0; i < n; i++) {
      const claim = await claimOne(h);
      expect(claim).toBeDefined();
      order.push((claim!.task.payload as { pid: string }).pid);
    }
    expect(await claimOne(h)).toBeUndefined();
    return order;
  }

  it('claims by priority, FIFO within a priority (jeeves defect #5)', async () => {
    const h = await harness();
    const runs = await startAll(h, ['low', 'normal', 'high', 'normal']);
    const order = await claimOrder(h, 4);
    expect(order).toEqual([runs[2]!.pid, runs[1]!.pid, runs[3]!.pid, runs[0]!.pid]);
  });

  it('keeps FIFO within a priority even when tasks are enqueued in the same millisecond', async () => {
    const clock = new ManualClock();
    const h = await harness({ clock });
    const runs = await startAll(h, ['normal', 'low', 'normal', 'high', 'normal', 'normal']);
    const order = await claimOrder(h, 6);
    expect(order).toEqual([
      runs[3]!.pid,
      runs[0]!.pid,
      runs[2]!.pid,
      runs[4]!.pid,
      runs[5]!.pid,
      runs[1]!.pid,
    ]);
  });

  it('ages: a low-priority task that waited longer than the rank gap is served first', async () => {
    const clock = new ManualClock();
    const h = await harness({ clock });
    const [low] = await startAll(h, ['low']);
    // low (rank 3) vs high (rank 1): a 2 · 10 s head start is enough.
    clock.advance(20_001);
    const [high] = await startAll(h, ['high']);
    expect(await claimOrder(h, 2)).toEqual([low!.pid, high!.pid]);
  });
});
