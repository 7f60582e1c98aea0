/**
 * Fixes from the review of the spine (issue 6):
 * - stop() during start() waits for the start, and nothing keeps working afterwards; a start
 *   that fails undoes itself and can be tried again;
 * - a lane with a lane-wide concurrency gets no prefetch (prefetched tasks hold its slots), so
 *   two workers share it instead of one holding every slot;
 * - the lease reaper of a process that cannot reclaim a kind (no hook) does not read those
 *   expired leases again and again.
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { WardenError } from '../src/core/index.ts';
import { JobQueue, JobWorker } from '../src/queue/index.ts';
import { openSqliteStore, type Store } from '../src/store/index.ts';
import { wrapStore } from './helpers/store-spy.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { sleep } from './helpers/wait.ts';

const stores: Store[] = [];
const workers: JobWorker[] = [];
afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.stop({ abort: true });
  for (const store of stores.splice(0)) await store.close();
});
afterAll(removeTempDirs);

async function open(file = join(tempDir(), 'q.db')): Promise<Store> {
  const store = await openSqliteStore({ file });
  stores.push(store);
  return store;
}

describe('start and stop', () => {
  it('stop() during start() waits for it; afterwards nothing claims', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const worker = new JobWorker({ queue, heartbeat: 'timer' });
    worker.handle('job', () => null);
    const starting = worker.start();
    const stopping = worker.stop();
    await Promise.all([starting, stopping]);
    const { id } = await queue.submit('job', null);
    await sleep(300);
    expect((await queue.get(id)).state).toBe('queued');
    expect(worker.claimTransactions).toBe(0);
  });

  it('a start that fails undoes itself and can be tried again', async () => {
    const raw = await open();
    let fail = true;
    const store = wrapStore(raw, {
      listLanes: () =>
        fail
          ? Promise.reject(new WardenError('STORE_BUSY', 'injected: the store is busy'))
          : raw.listLanes(),
    });
    const queue = new JobQueue({ store });
    const worker = new JobWorker({ queue, heartbeat: 'timer' });
    workers.push(worker);
    worker.handle('job', () => 'done');
    await expect(worker.start()).rejects.toThrow(/injected/);
    fail = false;
    await worker.start();
    const { id } = await queue.submit('job', null);
    expect(await queue.result(id, { timeoutMs: 5_000 })).toBe('done');
  });
});

describe('prefetch and lane-wide concurrency', () => {
  it('two workers share a lane of concurrency 4 (no prefetch holds its slots)', async () => {
    const file = join(tempDir(), 'q.db');
    const [a, b] = [await open(file), await open(file)];
    const lanes = { shared: { concurrency: 4 } };
    const queueA = new JobQueue({ store: a, lanes });
    const queueB = new JobQueue({ store: b, lanes });
    await queueA.submitMany(
      Array.from({ length: 24 }, (_, i) => ({
        name: 'slow',
        payload: i,
        options: { lane: 'shared' },
      })),
    );
    const started = { a: 0, b: 0 };
    const make = (queue: JobQueue, key: 'a' | 'b') => {
      const worker = new JobWorker({ queue, concurrency: 4, heartbeat: 'timer' });
      workers.push(worker);
      worker.handle('slow', async () => {
        started[key] += 1;
        await sleep(60);
        return null;
      });
      return worker;
    };
    const workerA = make(queueA, 'a');
    await workerA.start();
    await sleep(30);
    // A runs 4 (the lane's limit) and holds nothing more.
    expect((await a.listTasks({ states: ['running'] })).length).toBeLessThanOrEqual(4);
    await make(queueB, 'b').start();
    const deadline = Date.now() + 15_000;
    while ((await a.countByState()).tasks.succeeded !== 24 && Date.now() < deadline)
      await sleep(10);
    expect(started.a + started.b).toBe(24);
    expect(started.b).toBeGreaterThan(0);
  });
});

describe('lease reaper and kinds it cannot reclaim', () => {
  it('an expired workflow step in a process without a kernel is not read again every pass', async () => {
    const raw = await open();
    const queue = new JobQueue({ store: raw });
    await queue.ready();
    // An agent_step whose lease expired long ago, in a database with no kernel around.
    const system = await queue.sessions.system();
    const now = Date.now();
    await raw.commit([
      {
        op: 'task.insert',
        row: {
          ...(await queue.submit('job', null)).task,
          id: 't_step_ghost',
          kind: 'agent_step',
          idempotency_key: null,
          session_id: system.id,
        },
      },
    ]);
    const [ghost] = await raw.claimTasks({
      lanes: ['default'],
      kinds: ['agent_step'],
      workerId: 'ghost',
      limit: 1,
      leaseMs: 1,
      now,
    });
    expect(ghost?.task.id).toBe('t_step_ghost');
    await sleep(5); // its lease has expired
    let reads = 0;
    const store = wrapStore(raw, {
      findExpiredLeases: (...args: Parameters<Store['findExpiredLeases']>) => {
        reads += 1;
        return raw.findExpiredLeases(...args);
      },
    });
    const worker = new JobWorker({ queue: new JobQueue({ store }), heartbeat: 'timer' });
    workers.push(worker);
    worker.handle('job', () => null);
    await worker.start();
    const afterStart = reads;
    await sleep(1_200);
    // Before the fix the reaper re-armed every 250 ms on the step it cannot handle.
    expect(reads - afterStart).toBeLessThanOrEqual(1);
    expect((await raw.getTask('t_step_ghost'))?.state).toBe('running');
  });
});
