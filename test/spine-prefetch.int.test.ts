/**
 * Prefetch does not hoard (issue 6): a worker claims at most its concurrency ahead of its free
 * slots, so a second worker started a moment later gets its share of a backlog; and tasks a
 * stopping worker hands back unstarted cost no attempt (attempts back to what they were, no
 * attempt row, a `task.released` event).
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { type JobContext, JobQueue, JobWorker } from '../src/queue/index.ts';
import { type EventRecord, openSqliteStore, type Store } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { sleep } from './helpers/wait.ts';

const TASKS = 40;
const TASK_MS = 100;

const stores: Store[] = [];
const workers: JobWorker[] = [];
afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.stop({ abort: true });
  for (const store of stores.splice(0)) await store.close();
});
afterAll(removeTempDirs);

async function open(file: string): Promise<Store> {
  const store = await openSqliteStore({ file });
  stores.push(store);
  return store;
}

function newWorker(queue: JobQueue, id: string, concurrency: number): JobWorker {
  const worker = new JobWorker({ queue, id, concurrency, heartbeat: 'timer', random: () => 0 });
  workers.push(worker);
  return worker;
}

async function waitUntil(
  check: () => boolean | Promise<boolean>,
  what: string,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline)
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(5);
  }
}

async function eventsOf(store: Store, taskId: string): Promise<EventRecord[]> {
  const out: EventRecord[] = [];
  for (const session of await store.listSessions())
    out.push(
      ...(await store.readEvents({ sessionId: session.id, limit: 100_000 })).filter(
        (e) => e.task_id === taskId,
      ),
    );
  return out;
}

/** Resolves after `ms`, or rejects when the job's signal aborts. */
function work(job: JobContext, ms: number): Promise<{ ok: true }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => resolve({ ok: true }), ms);
    job.signal.addEventListener('abort', () => {
      clearTimeout(timer);
      reject(job.signal.reason as Error);
    });
  });
}

describe('prefetch', () => {
  it(`a worker started first does not hoard a backlog of ${TASKS}: a second worker gets its share`, async () => {
    const file = join(tempDir(), 'q.db');
    const storeA = await open(file);
    const storeB = await open(file); // B has its own connection, as another process would
    const queueA = new JobQueue({ store: storeA, lanes: { slow: {} } });
    const queueB = new JobQueue({ store: storeB, lanes: { slow: {} } });
    await queueA.submitMany(
      Array.from({ length: TASKS }, (_, i) => ({
        name: 'slow',
        payload: { i },
        options: { lane: 'slow' },
      })),
    );
    const started = { a: 0, b: 0 };
    const a = newWorker(queueA, 'worker-a', 2);
    a.handle('slow', (job) => {
      started.a += 1;
      return work(job, TASK_MS);
    });
    const b = newWorker(queueB, 'worker-b', 2);
    b.handle('slow', (job) => {
      started.b += 1;
      return work(job, TASK_MS);
    });
    await a.start();
    await waitUntil(() => started.a >= 2, 'worker A to start its first handlers');
    const heldByA = (await storeA.listTasks({ states: ['running'], limit: 1_000 })).length;
    await b.start();
    await waitUntil(
      async () => (await storeA.countByState()).tasks.succeeded === TASKS,
      'every task to finish',
    );
    console.info(
      `prefetch: A (started first) held ${heldByA} tasks when B started; handlers started A ${started.a}, B ${started.b}`,
    );
    // A holds its 2 running tasks plus at most 2 prefetched, never the backlog.
    expect(heldByA).toBeLessThanOrEqual(4);
    expect(started.a + started.b).toBe(TASKS);
    expect(started.b).toBeGreaterThan(0);
    // Both workers run 2 at a time once B is up: B gets close to half of what is left.
    expect(started.b).toBeGreaterThanOrEqual(Math.floor((TASKS - heldByA) / 4));
  });

  it('an explicit prefetch above the concurrency is honoured, and bounds what the worker holds', async () => {
    const store = await open(join(tempDir(), 'q.db'));
    const queue = new JobQueue({ store, lanes: { slow: {} } });
    await queue.submitMany(
      Array.from({ length: 40 }, (_, i) => ({
        name: 'slow',
        payload: { i },
        options: { lane: 'slow' },
      })),
    );
    const worker = new JobWorker({
      queue,
      id: 'deep',
      concurrency: 2,
      prefetch: 10,
      heartbeat: 'timer',
    });
    workers.push(worker);
    let started = 0;
    worker.handle('slow', (job) => {
      started += 1;
      return work(job, 60_000); // held until the worker stops
    });
    await worker.start();
    await waitUntil(() => started >= 2, 'the first handlers');
    await waitUntil(
      async () => (await store.listTasks({ states: ['running'], limit: 1_000 })).length >= 12,
      '2 running + 10 prefetched',
    );
    await sleep(200); // a claim loop that overshot would have claimed more by now
    expect((await store.listTasks({ states: ['running'], limit: 1_000 })).length).toBe(12);
    expect(started).toBe(2);
  });
});

describe('handing back prefetched tasks on stop', () => {
  /**
   * Four tasks, one of which (`retried`) already failed once; a worker with concurrency 2 runs
   * two of them (until `release`, or until aborted) and holds the other two prefetched.
   */
  async function prefetched() {
    const store = await open(join(tempDir(), 'q.db'));
    const queue = new JobQueue({ store });
    const { id: retried } = await queue.submit('hold', { n: 'retried' });
    const fresh: string[] = [];
    for (let i = 0; i < 3; i++) fresh.push((await queue.submit('hold', { i })).id);
    const [claim] = await store.claimTasks({
      lanes: ['default'],
      kinds: ['job'],
      workerId: 'earlier-worker',
      limit: 1,
      leaseMs: 10_000,
      now: Date.now(),
    });
    expect(claim?.task.id).toBe(retried);
    const last = (await store.getTask(fresh[2]!))!;
    const [failed] = await store.settleTasks([
      {
        id: retried,
        leaseToken: claim!.leaseToken,
        state: 'queued',
        error: { code: 'BOOM', message: 'failed once', retryable: true },
        availableAt: Date.now(),
        sortKey: last.sort_key + 1, // claimed after every fresh task
        attemptOutcome: 'failed',
        now: Date.now(),
        events: [],
      },
    ]);
    expect(failed?.ok).toBe(true);
    const ids = [retried, ...fresh];
    const before = new Map<string, { attempts: number; rows: unknown[] }>();
    for (const id of ids)
      before.set(id, {
        attempts: (await store.getTask(id))!.attempts,
        rows: (await store.listAttempts(id)).map((r) => [r.attempt, r.outcome]),
      });
    expect(before.get(retried)).toEqual({ attempts: 1, rows: [[1, 'failed']] });

    const worker = newWorker(queue, 'stopping-worker', 2);
    const startedIds: string[] = [];
    const pending = new Set<() => void>();
    worker.handle('hold', (job) => {
      startedIds.push(job.id);
      return new Promise((resolve, reject) => {
        const done = () => {
          pending.delete(done);
          resolve({ ok: true });
        };
        pending.add(done);
        job.signal.addEventListener('abort', () => {
          pending.delete(done);
          reject(job.signal.reason as Error);
        });
      });
    });
    await worker.start();
    await waitUntil(
      () => startedIds.length === 2 && worker.stats.claimed === 4,
      'two handlers running and two tasks prefetched',
    );
    const unstarted = ids.filter((id) => !startedIds.includes(id));
    expect(unstarted).toHaveLength(2);
    expect(unstarted).toContain(retried);
    for (const id of unstarted) expect((await store.getTask(id))?.state).toBe('running');
    return {
      store,
      worker,
      startedIds: () => [...startedIds],
      unstarted,
      before,
      /** Lets every handler started so far finish. */
      release: () => {
        for (const done of [...pending]) done();
      },
    };
  }

  /** A handed-back task is queued as it was before the claim, with one `task.released`. */
  async function expectHandedBack(
    store: Store,
    id: string,
    before: { attempts: number; rows: unknown[] },
  ): Promise<void> {
    const task = (await store.getTask(id))!;
    expect(task, `handed back ${id}`).toMatchObject({
      state: 'queued',
      attempts: before.attempts,
      lease_owner: null,
      lease_token: null,
    });
    expect((await store.listAttempts(id)).map((r) => [r.attempt, r.outcome])).toEqual(before.rows);
    const types = (await eventsOf(store, id)).map((e) => e.type);
    expect(types.filter((t) => t === 'task.released')).toHaveLength(1);
    expect(types.at(-1)).toBe('task.released');
    expect(types).not.toContain('task.lease_expired');
  }

  it('a graceful stop hands back the prefetched tasks: attempts as before, no attempt row, task.released', async () => {
    const h = await prefetched();
    const stopping = h.worker.stop();
    // The prefetched tasks go back while the running handlers are still running.
    await waitUntil(
      async () =>
        (await Promise.all(h.unstarted.map((id) => h.store.getTask(id)))).every(
          (t) => t?.state === 'queued',
        ),
      'the prefetched tasks to be handed back',
    );
    h.release();
    await stopping;
    expect(h.startedIds()).toHaveLength(2);
    for (const id of h.unstarted) await expectHandedBack(h.store, id, h.before.get(id)!);
    // The next claim of a handed-back task is the attempt it would have been.
    const next = (
      await h.store.claimTasks({
        lanes: ['default'],
        kinds: ['job'],
        workerId: 'next-worker',
        limit: 10,
        leaseMs: 10_000,
        now: Date.now(),
      })
    ).filter((c) => h.unstarted.includes(c.task.id));
    expect(next.map((c) => [c.task.id, c.attempt]).sort()).toEqual(
      h.unstarted.map((id) => [id, h.before.get(id)!.attempts + 1]).sort(),
    );
  });

  it('stop({abort: true}) aborts the running handlers and hands back the prefetched tasks without starting them', async () => {
    const h = await prefetched();
    try {
      const stopped = await Promise.race([
        h.worker.stop({ abort: true }).then(() => true),
        sleep(5_000).then(() => false),
      ]);
      expect(h.startedIds(), 'handlers started after stop({abort: true}) was called').toHaveLength(
        2,
      );
      expect(stopped, 'stop({abort: true}) returned').toBe(true);
      for (const id of h.unstarted) await expectHandedBack(h.store, id, h.before.get(id)!);
    } finally {
      h.release(); // handlers started by mistake must not outlive the test
    }
  });
});
