/**
 * A JobWorker in its own OS process, for lane tests: it works lane `small` (declared with
 * concurrency 2) with a per-worker concurrency of 4, and its `hold` handler counts how many
 * handlers run at once across EVERY process in a shared counter database.
 *
 *   node lane-worker-process.ts <db> <counterDb> <stopFile>
 *
 * The counter database has one row `c(running, peak)`, updated in one statement per change, so
 * `peak` is the true maximum across processes. Prints `ready` once working; exits 0 once
 * `stopFile` exists.
 */
import { existsSync } from 'node:fs';

import Database from 'better-sqlite3';

import { JobQueue, JobWorker } from '../../src/queue/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';

const [file, counterFile, stopFile] = process.argv.slice(2) as [string, string, string];
const counter = new Database(counterFile);
counter.pragma('busy_timeout = 10000');
const enter = counter.prepare('UPDATE c SET running = running + 1, peak = max(peak, running + 1)');
const leave = counter.prepare('UPDATE c SET running = running - 1');
const log = counter.prepare('INSERT INTO starts (os_pid, task_id, at) VALUES (?, ?, ?)');

const store = await openSqliteStore({ file, mustExist: true });
const queue = new JobQueue({ store, lanes: { small: { concurrency: 2 } } });
const worker = new JobWorker({ queue, lanes: ['small'], concurrency: 4 });
worker.handle('hold', async (job) => {
  enter.run();
  log.run(process.pid, job.id, Date.now());
  try {
    await new Promise((resolve) => setTimeout(resolve, 20 + Math.floor(Math.random() * 30)));
  } finally {
    leave.run();
  }
  return { by: process.pid };
});
await worker.start();
console.log('ready');
while (!existsSync(stopFile)) await new Promise((resolve) => setTimeout(resolve, 50));
await worker.stop();
await store.close();
counter.close();
