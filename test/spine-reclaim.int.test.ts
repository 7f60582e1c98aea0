/**
 * A run never hangs on a dead worker (DESIGN.md §6 "Recovery at start and while running"):
 * every running worker reclaims expired leases continuously, without a restart or a call to
 * `recover()`. A ghost — a worker id that claims a task and then never heartbeats or reports —
 * stands for a process that died holding a lease.
 *
 * - a workflow step held by a ghost is reclaimed by the runtime Worker that is already running,
 *   and the run finishes;
 * - a job held by a ghost is reclaimed by the running JobWorker;
 * - a process without a kernel (no `agent_step` reclaim hook) leaves expired steps alone: a
 *   kernel-bearing process takes them;
 * - a reclaim of a lease renewed between the read and the write is refused (store level and
 *   through the reclaim path), for jobs and for steps.
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { buildWorkflow, type LoadedWorkflow, ManualClock } from '../src/core/index.ts';
import { Kernel, verifyLedger } from '../src/kernel/index.ts';
import { JobQueue, JobWorker, reclaimExpiredLeases } from '../src/queue/index.ts';
import { AgentRegistry, Worker } from '../src/runtime/index.ts';
import {
  type EventRecord,
  openSqliteStore,
  type Store,
  type StoreOp,
  type TaskRecord,
  type TaskSettle,
} from '../src/store/index.ts';
import { wrapStore } from './helpers/store-spy.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { rejection, sleep, waitForProcess } from './helpers/wait.ts';

const GHOST = 'ghost-host/1/never-heartbeats';
const GHOST_LEASE_MS = 500;
/**
 * How long a ghost's task may take to be reclaimed and finished: its lease plus a wide margin
 * for a loaded machine, far below the 15 s default lease a worker would otherwise wait out.
 */
const RECLAIM_DEADLINE_MS = 8_000;
/** The worker's own lease: as short as the ghost's, or the 15 s default (longer). */
const OWN_LEASES = [
  ['as short as the ghost lease', GHOST_LEASE_MS],
  ['15 s, longer than the ghost lease', 15_000],
] as const;

// ---------------------------------------------------------------------------------------------
// Resources

const stores: Store[] = [];
const kernels: Kernel[] = [];
const stoppers: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const stop of stoppers.splice(0).reverse()) await stop();
  for (const kernel of kernels.splice(0)) kernel.close();
  for (const store of stores.splice(0)) await store.close();
});
afterAll(removeTempDirs);

async function open(file: string, clock?: ManualClock): Promise<Store> {
  const store = await openSqliteStore({ file, ...(clock ? { clock } : {}) });
  stores.push(store);
  return store;
}

function kernelOn(store: Store, clock?: ManualClock): Kernel {
  const kernel = new Kernel({ store, ...(clock ? { clock } : {}) });
  kernels.push(kernel);
  return kernel;
}

async function startWorker(
  kernel: Kernel,
  agents: AgentRegistry,
  options: { concurrency?: number; leaseMs?: number } = {},
): Promise<Worker> {
  const worker = new Worker({ kernel, agents, concurrency: 1, ...options });
  await worker.start();
  stoppers.push(() => worker.stop({ abort: true }));
  return worker;
}

async function startJobWorker(
  queue: JobQueue,
  handlers: Record<string, () => Promise<unknown>>,
  options: { concurrency?: number; prefetch?: number; leaseMs?: number } = {},
): Promise<JobWorker> {
  const worker = new JobWorker({ queue, heartbeat: 'timer', random: () => 0, ...options });
  for (const [name, handler] of Object.entries(handlers)) worker.handle(name, handler);
  await worker.start();
  stoppers.push(() => worker.stop({ abort: true }));
  return worker;
}

// ---------------------------------------------------------------------------------------------
// Helpers

async function waitUntil<T>(
  probe: () => T | undefined | null | false | Promise<T | undefined | null | false>,
  what: string,
  timeoutMs = 10_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(10);
  }
}

function gate(): { wait: Promise<void>; open: () => void } {
  let open!: () => void;
  const wait = new Promise<void>((resolve) => (open = resolve));
  return { wait, open };
}

async function allEvents(store: Store): Promise<EventRecord[]> {
  const out: EventRecord[] = [];
  for (const session of await store.listSessions())
    out.push(...(await store.readEvents({ sessionId: session.id, limit: 100_000 })));
  return out;
}

async function taskEvents(store: Store, taskId: string, type?: string): Promise<EventRecord[]> {
  return (await allEvents(store)).filter(
    (e) => e.task_id === taskId && (type === undefined || e.type === type),
  );
}

/** One stage; a lost lease is retried quickly (the default backoff is 1 s). */
function oneStage(agent: { kind: 'noop' } | { kind: 'typescript'; name: string }): LoadedWorkflow {
  return buildWorkflow({
    name: 'reclaim-test',
    stages: [{ name: 'work', agent, retry: { max_attempts: 3, backoff: 10, max_backoff: 20 } }],
  });
}

function ghostClaim(store: Store, kind: 'agent_step' | 'job', lane: string, now = Date.now()) {
  return store.claimTasks({
    lanes: [lane],
    kinds: [kind],
    workerId: GHOST,
    limit: 1,
    leaseMs: GHOST_LEASE_MS,
    now,
  });
}

/** What a reclaim that must not happen would have changed. */
async function taskSnapshot(store: Store, id: string) {
  const task = (await store.getTask(id))!;
  return {
    state: task.state,
    attempts: task.attempts,
    lease_owner: task.lease_owner,
    lease_token: task.lease_token,
    /** Outcome and end of each attempt (a running one is listed as outcome `running`). */
    attempts_ended: (await store.listAttempts(id)).map((a) => [a.outcome, a.ended_at]),
    events: (await taskEvents(store, id)).map((e) => e.type),
  };
}

// =============================================================================================

describe('a running worker reclaims a ghost lease without a restart', () => {
  it.each(OWN_LEASES)(
    'a step held by a ghost is reclaimed by the already-running runtime Worker, and its run finishes (own lease %s)',
    async (_, leaseMs) => {
      const store = await open(join(tempDir(), 'w.db'));
      const kernel = kernelOn(store);
      const hold = gate();
      const agents = new AgentRegistry().register('hold', async () => {
        await hold.wait;
        return { output: { held: true } };
      });
      // One slot, busy with run A's step (its own lease, renewed by heartbeats), so the ghost wins
      // the claim of run B's step.
      const worker = await startWorker(kernel, agents, { concurrency: 1, leaseMs });
      const a = await kernel.startRun({ workflow: oneStage({ kind: 'typescript', name: 'hold' }) });
      await waitUntil(() => worker.activeCount === 1, 'the worker to start run A');
      const b = await kernel.startRun({ workflow: oneStage({ kind: 'noop' }) });
      const [claim] = await ghostClaim(store, 'agent_step', kernel.agentLane);
      expect(claim?.task.process_id).toBe(b.pid);
      // The ghost began the step (the run is `running`), then died.
      expect(await kernel.orchestrator.beginStep(claim!)).not.toBeNull();
      expect((await kernel.getProcess(b.pid)).state).toBe('running');
      const ghostAt = Date.now();
      hold.open();
      expect((await waitForProcess(kernel, a.pid)).terminal_reason).toBe('completed');

      // No restart, no recover(): the running worker takes the step back once the lease expires.
      const done = await waitForProcess(
        kernel,
        b.pid,
        (p) => p.state === 'terminated',
        RECLAIM_DEADLINE_MS,
      );
      const finishedAfterMs = Date.now() - ghostAt;
      expect(done.terminal_reason).toBe('completed');
      const [expired] = await taskEvents(store, claim!.task.id, 'task.lease_expired');
      expect(expired?.data).toMatchObject({ owner: GHOST, why: 'lease_expired', attempt: 1 });
      const attempts = await store.listAttempts(claim!.task.id);
      expect(attempts.map((x) => [x.worker_id, x.outcome])).toEqual([
        [GHOST, 'lease_expired'],
        [worker.id, 'succeeded'],
      ]);
      console.info(
        `ghost step (lease ${GHOST_LEASE_MS} ms) reclaimed and its run finished ${finishedAfterMs} ms after the ghost claimed it`,
      );
      expect((await verifyLedger(store)).ok).toBe(true);
    },
  );

  it('a job held by a ghost is reclaimed by a JobWorker started while the lease is live', async () => {
    const store = await open(join(tempDir(), 'q.db'));
    const queue = new JobQueue({ store });
    const { id } = await queue.submit('work', { n: 1 });
    const [claim] = await ghostClaim(store, 'job', 'default');
    expect(claim?.task.id).toBe(id);
    const worker = await startJobWorker(queue, { work: () => Promise.resolve({ ok: true }) });
    const task = await waitUntil(async () => {
      const t = await store.getTask(id);
      return t?.state === 'succeeded' ? t : undefined;
    }, 'the ghost job to be reclaimed and run');
    expect(task.attempts).toBe(2);
    expect(worker.stats.reclaimed).toBe(1);
    const [expired] = await taskEvents(store, id, 'task.lease_expired');
    expect(expired?.data).toMatchObject({ owner: GHOST, why: 'lease_expired' });
  });

  it.each(OWN_LEASES)(
    'a job held by a ghost is reclaimed by a busy JobWorker (own lease %s)',
    async (_, leaseMs) => {
      const store = await open(join(tempDir(), 'q.db'));
      const queue = new JobQueue({ store });
      const hold = gate();
      // One slot and no prefetch: while `hold` runs, the worker claims nothing, so the ghost gets
      // `work`.
      const worker = await startJobWorker(
        queue,
        { hold: () => hold.wait, work: () => Promise.resolve({ ok: true }) },
        { concurrency: 1, prefetch: 0, leaseMs },
      );
      await queue.submit('hold', {});
      await waitUntil(() => worker.stats.claimed === 1, 'the worker to claim `hold`');
      const { id } = await queue.submit('work', {});
      const [claim] = await ghostClaim(store, 'job', 'default');
      expect(claim?.task.id).toBe(id);
      const ghostAt = Date.now();
      hold.open();
      await waitUntil(
        async () => (await store.getTask(id))?.state === 'succeeded',
        'the ghost job to be reclaimed and run',
        RECLAIM_DEADLINE_MS,
      );
      console.info(
        `ghost job (lease ${GHOST_LEASE_MS} ms) reclaimed by a busy worker and finished ${Date.now() - ghostAt} ms after the ghost claimed it`,
      );
      expect((await taskEvents(store, id, 'task.lease_expired')).length).toBe(1);
    },
  );
});

describe('steps are reclaimed only where a kernel can move their run on', () => {
  it('a JobWorker without a kernel leaves an expired step alone; a kernel-bearing worker takes it', async () => {
    const file = join(tempDir(), 'w.db');
    // Create the run, then let its kernel go: no process has a kernel for now.
    const creator = await open(file);
    const creatorKernel = new Kernel({ store: creator });
    const run = await creatorKernel.startRun({ workflow: oneStage({ kind: 'noop' }) });
    creatorKernel.close();

    const jobs = await open(file);
    const queue = new JobQueue({ store: jobs });
    const { id: jobId } = await queue.submit('work', {});
    const now = Date.now();
    const [step] = await ghostClaim(jobs, 'agent_step', 'agents', now);
    const [job] = await ghostClaim(jobs, 'job', 'default', now);
    expect(step?.task.process_id).toBe(run.pid);
    expect(job?.task.id).toBe(jobId);
    const stepBefore = await taskSnapshot(jobs, step!.task.id);

    // Both leases expire together; the JobWorker's reaper takes the job (so it did look after
    // the expiry) and must leave the step: it cannot move a run on.
    const worker = await startJobWorker(queue, { work: () => Promise.resolve({ ok: true }) });
    await waitUntil(
      async () => (await jobs.getTask(jobId))?.state === 'succeeded',
      'the ghost job to be reclaimed by the JobWorker',
    );
    await sleep(600); // a few more reaper passes (they come at least every 250 ms while expired)
    expect(worker.stats.reclaimed).toBe(1);
    expect(await taskSnapshot(jobs, step!.task.id)).toEqual(stepBefore);
    expect(stepBefore).toMatchObject({ state: 'running', lease_owner: GHOST, attempts: 1 });

    // A process with a kernel and a runtime Worker takes the step and finishes the run.
    const kernelStore = await open(file);
    const kernel = kernelOn(kernelStore);
    await startWorker(kernel, new AgentRegistry());
    const done = await waitForProcess(kernel, run.pid, (p) => p.state === 'terminated');
    expect(done.terminal_reason).toBe('completed');
    const expired = await taskEvents(kernelStore, step!.task.id, 'task.lease_expired');
    expect(expired).toHaveLength(1);
    expect((await verifyLedger(kernelStore)).ok).toBe(true);
  });
});

describe('a lease renewed between the read and the reclaim is never stolen', () => {
  /** The settle a reclaimer builds from a read of an expired lease. */
  function reclaimOf(task: TaskRecord, now: number): TaskSettle {
    const error = {
      code: 'LEASE_EXPIRED',
      message: `the lease held by ${task.lease_owner} expired`,
      retryable: true,
      fingerprint: 'LEASE_EXPIRED',
    };
    const base = {
      session_id: task.session_id,
      trace_id: task.trace_id,
      process_id: task.process_id,
      task_id: task.id,
      attempt: task.attempts,
    };
    return {
      id: task.id,
      leaseToken: task.lease_token!,
      state: 'queued',
      error,
      availableAt: now,
      sortKey: now,
      attemptOutcome: 'lease_expired',
      expiredBy: now,
      now,
      events: [
        { ...base, type: 'task.lease_expired', data: { owner: task.lease_owner } },
        { ...base, type: 'task.retry_scheduled', data: { attempt: task.attempts } },
      ],
    };
  }

  it('store level: find expired, heartbeat, then settleTasks/commit with expiredBy change nothing', async () => {
    const store = await open(join(tempDir(), 'q.db'));
    const queue = new JobQueue({ store });
    const { id } = await queue.submit('work', {});
    const t0 = Date.now();
    const [claim] = await store.claimTasks({
      lanes: ['default'],
      kinds: ['job'],
      workerId: 'w-live',
      limit: 1,
      leaseMs: GHOST_LEASE_MS,
      now: t0,
    });
    expect(claim?.task.id).toBe(id);
    const later = t0 + GHOST_LEASE_MS + 500;
    const [expired] = await store.findExpiredLeases(later);
    expect(expired?.id).toBe(id);
    // The owner renews just after the reclaimer read.
    await store.heartbeat(id, claim!.leaseToken, 10_000, later);
    const before = await taskSnapshot(store, id);

    const settle = reclaimOf(expired!, later);
    const [outcome] = await store.settleTasks([settle]);
    expect(outcome?.ok).toBe(false);
    expect(outcome?.error?.code).toBe('LEASE_LOST');
    expect(await taskSnapshot(store, id)).toEqual(before);

    const { events, ...op } = settle;
    const ops: StoreOp[] = [
      { op: 'task.settle', ...op },
      ...events.map((event): StoreOp => ({ op: 'event', event })),
    ];
    expect((await rejection(store.commit(ops))).code).toBe('LEASE_LOST');
    expect(await taskSnapshot(store, id)).toEqual(before);
    expect(before).toMatchObject({
      state: 'running',
      lease_token: claim!.leaseToken,
      attempts: 1,
      attempts_ended: [['running', null]],
    });
    // The renewed owner still completes.
    const [done] = await store.settleTasks([
      {
        id,
        leaseToken: claim!.leaseToken,
        state: 'succeeded',
        result: { ok: true },
        attemptOutcome: 'succeeded',
        now: later + 1,
        events: [],
      },
    ]);
    expect(done?.ok).toBe(true);
  });

  it('reclaimExpiredLeases: a job renewed after the find is not reclaimed', async () => {
    const store = await open(join(tempDir(), 'q.db'));
    const queue = new JobQueue({ store });
    const { id } = await queue.submit('work', {});
    const t0 = Date.now();
    const [claim] = await store.claimTasks({
      lanes: ['default'],
      kinds: ['job'],
      workerId: 'w-live',
      limit: 1,
      leaseMs: GHOST_LEASE_MS,
      now: t0,
    });
    const later = t0 + GHOST_LEASE_MS + 500;
    const racing = wrapStore(store, {
      findExpiredLeases: async (now, dead, limit) => {
        const found = await store.findExpiredLeases(now, dead, limit);
        await store.heartbeat(id, claim!.leaseToken, 10_000, later); // renewed meanwhile
        return found;
      },
    });
    const before = { ...(await taskSnapshot(store, id)), lease_expires_at: later + 10_000 };
    const count = await reclaimExpiredLeases(racing, later, {
      isDeadOwner: () => false,
      agingMs: 10_000,
      random: () => 0,
    });
    expect(count).toBe(0);
    const after = await taskSnapshot(store, id);
    expect({ ...after, lease_expires_at: (await store.getTask(id))!.lease_expires_at }).toEqual(
      before,
    );
  });

  it('the kernel step hook: a step renewed after the find is not reclaimed and its run is untouched', async () => {
    const clock = new ManualClock(Date.now());
    const file = join(tempDir(), 'w.db');
    const store = await open(file, clock);
    let renew: (() => Promise<unknown>) | null = null;
    const racing = wrapStore(store, {
      findExpiredLeases: async (now, dead, limit) => {
        const found = await store.findExpiredLeases(now, dead, limit);
        if (renew) await renew();
        return found;
      },
    });
    const kernel = kernelOn(racing, clock);
    const run = await kernel.startRun({ workflow: oneStage({ kind: 'noop' }) });
    const [claim] = await store.claimTasks({
      lanes: [kernel.agentLane],
      kinds: ['agent_step'],
      workerId: 'w-live',
      limit: 1,
      leaseMs: GHOST_LEASE_MS,
      now: clock.now(),
    });
    const step = await kernel.orchestrator.beginStep(claim!);
    expect(step).not.toBeNull();
    clock.advance(GHOST_LEASE_MS + 500);
    renew = () => store.heartbeat(claim!.task.id, claim!.leaseToken, 10_000, clock.now());
    const processBefore = await kernel.getProcess(run.pid);
    const eventsBefore = (await allEvents(store)).length;

    expect(await kernel.recovery.reclaimLeases(() => 0)).toBe(0);

    const task = (await store.getTask(claim!.task.id))!;
    expect(task).toMatchObject({ state: 'running', lease_token: claim!.leaseToken, attempts: 1 });
    expect((await store.listAttempts(task.id)).map((a) => [a.outcome, a.ended_at])).toEqual([
      ['running', null],
    ]);
    expect((await allEvents(store)).length).toBe(eventsBefore);
    expect((await kernel.getProcess(run.pid)).version).toBe(processBefore.version);
    // The live owner finishes the run.
    const done = await kernel.orchestrator.completeStep(step!, { output: { ok: true } });
    expect(done.terminal_reason).toBe('completed');
  });
});
