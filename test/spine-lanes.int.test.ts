/**
 * Lane limits are store configuration and hold across OS processes (DESIGN.md §6 "Limits that
 * must hold across processes … are enforced in the store"):
 *
 * - concurrency: two processes, each a JobWorker allowed 4 handlers, on lane `small` declared
 *   with concurrency 2: never more than 2 handlers run at once across both (measured by a
 *   shared counter in a second database, and by sampling running tasks in the queue);
 * - max depth: declared by one process, it holds for submits from another process that never
 *   set it (QUEUE_FULL with retry_after_ms).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import Database from 'better-sqlite3';
import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { JobQueue } from '../src/queue/index.ts';
import { openSqliteStore, type Store } from '../src/store/index.ts';
import { killChildren, moduleUrl, spawnModule, spawnScript } from './helpers/child.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { sleep } from './helpers/wait.ts';

const LANE_WORKER = fileURLToPath(new URL('./helpers/lane-worker-process.ts', import.meta.url));
const STORE_MODULE = moduleUrl('src/store/index.ts');
const QUEUE_MODULE = moduleUrl('src/queue/index.ts');
const TASKS = 60;

const stores: Store[] = [];
afterEach(async () => {
  await killChildren();
  for (const store of stores.splice(0)) await store.close();
});
afterAll(removeTempDirs);

describe('lane limits across processes', () => {
  it('lane concurrency 2 holds across two processes whose workers each allow 4', async () => {
    const dir = tempDir();
    const file = join(dir, 'q.db');
    const counterFile = join(dir, 'counter.db');
    const stopFile = join(dir, 'stop');
    const counter = new Database(counterFile);
    counter.exec(`CREATE TABLE c (running INTEGER NOT NULL, peak INTEGER NOT NULL);
      INSERT INTO c VALUES (0, 0);
      CREATE TABLE starts (os_pid INTEGER NOT NULL, task_id TEXT NOT NULL, at INTEGER NOT NULL);`);
    const store = await openSqliteStore({ file });
    stores.push(store);
    const queue = new JobQueue({ store, lanes: { small: { concurrency: 2 } } });
    await queue.ready();

    const children = [0, 1].map(() => spawnScript(LANE_WORKER, [file, counterFile, stopFile]));
    await Promise.all(children.map((c) => c.line((l) => l === 'ready', 'a lane worker to start')));
    const ids = (
      await queue.submitMany(
        Array.from({ length: TASKS }, (_, i) => ({
          name: 'hold',
          payload: { i },
          options: { lane: 'small' },
        })),
      )
    ).map((s) => s.id);

    // Sample the queue itself too: running tasks of the lane (claimed, prefetched or started).
    let runningPeak = 0;
    const deadline = Date.now() + 30_000;
    for (;;) {
      const running = await store.listTasks({ states: ['running'], lane: 'small', limit: 100 });
      runningPeak = Math.max(runningPeak, running.length);
      const done = await store.listTasks({ states: ['succeeded'], lane: 'small', limit: 1_000 });
      if (done.length === TASKS) break;
      if (Date.now() > deadline) throw new Error(`only ${done.length}/${TASKS} tasks finished`);
      await sleep(3);
    }
    writeFileSync(stopFile, '');
    expect(await Promise.all(children.map((c) => c.exited))).toEqual([0, 0]);

    const { running, peak } = counter.prepare('SELECT running, peak FROM c').get() as {
      running: number;
      peak: number;
    };
    const perProcess = counter
      .prepare('SELECT os_pid, count(*) AS n FROM starts GROUP BY os_pid')
      .all() as Array<{ os_pid: number; n: number }>;
    counter.close();
    console.info(
      `lane small (concurrency 2), 2 processes × 4 handlers: peak ${peak} handlers at once, ${runningPeak} running tasks sampled at most; starts per process ${perProcess.map((p) => p.n).join(' + ')}`,
    );
    expect(running).toBe(0);
    expect(peak).toBeLessThanOrEqual(2);
    expect(peak).toBe(2); // the limit was reached, so the check above was not vacuous
    expect(runningPeak).toBeLessThanOrEqual(2);
    expect(perProcess.reduce((a, p) => a + p.n, 0)).toBe(TASKS);
    // Neither process hoarded the lane: both ran handlers.
    expect(perProcess).toHaveLength(2);
    for (const id of ids) expect((await store.getTask(id))?.attempts).toBe(1);
  }, 60_000);

  it('max depth declared by one process holds for submits from another process', async () => {
    const dir = tempDir();
    const file = join(dir, 'q.db');
    const go = join(dir, 'go');
    const store = await openSqliteStore({ file });
    stores.push(store);
    // The other process uses lane `small` but sets no limits of its own.
    const child = spawnModule(`
import { existsSync } from 'node:fs';
import { JobQueue } from ${JSON.stringify(QUEUE_MODULE)};
import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
const store = await openSqliteStore({ file: ${JSON.stringify(file)}, mustExist: true });
const queue = new JobQueue({ store, lanes: { small: {} } });
await queue.ready();
console.log('ready');
while (!existsSync(${JSON.stringify(go)})) await new Promise((resolve) => setTimeout(resolve, 10));
for (let i = 0; i < 7; i++) {
  try {
    const { id } = await queue.submit('fill', { i }, { lane: 'small' });
    console.log(JSON.stringify({ i, ok: true, id }));
  } catch (error) {
    console.log(JSON.stringify({ i, ok: false, code: error.code, retry_after_ms: error.retryAfterMs ?? null }));
  }
}
console.log('done');
await store.close();
`);
    await child.line((l) => l === 'ready', 'the submitting process to start');
    // This process declares the depth limit (after the other one started).
    const queue = new JobQueue({ store, lanes: { small: { maxDepth: 5 } } });
    await queue.ready();
    writeFileSync(go, '');
    await child.line((l) => l === 'done', 'the submits');
    const results = child.lines
      .filter((l) => l.startsWith('{"i"'))
      .map(
        (l) =>
          JSON.parse(l) as {
            i: number;
            ok: boolean;
            code?: string;
            retry_after_ms?: number | null;
          },
      );
    expect(results.filter((r) => r.ok).map((r) => r.i)).toEqual([0, 1, 2, 3, 4]);
    const refused = results.filter((r) => !r.ok);
    expect(refused.map((r) => r.i)).toEqual([5, 6]);
    for (const r of refused) {
      expect(r.code).toBe('QUEUE_FULL');
      expect(r.retry_after_ms).toBeGreaterThan(0);
    }
    expect(await store.countQueued('small')).toBe(5);
    expect(await child.exited).toBe(0);
  });
});
