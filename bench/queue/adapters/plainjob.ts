/**
 * plainjob on better-sqlite3, one SQLite file per run. A plainjob worker runs one job at a time
 * (claim → run → mark done), so concurrency C means C workers on the same queue and connection
 * (its README's way to scale is more workers). plainjob can only poll: an idle worker looks
 * again after `pollIntervall` ms.
 */
import Database from 'better-sqlite3';
import { better, defineQueue, defineWorker, type Queue, type Worker } from 'plainjob';

import {
  type AdapterContext,
  type OnJob,
  type Payload,
  pollUntil,
  type QueueAdapter,
  readPragmas,
  removeSqlite,
  silent,
  sqliteFile,
} from '../types.ts';

export function plainjob(ctx: AdapterContext): QueueAdapter {
  const file = sqliteFile(ctx, 'plainjob');
  let db: Database.Database | undefined;
  let queue: Queue | undefined;
  let workers: Worker[] = [];
  let running: Promise<void>[] = [];
  let completed = 0;
  const problems: string[] = [];
  return {
    name: 'plainjob',
    backend: 'SQLite (WAL), in-process',
    server: null,
    prefetch: '0 (each of the C workers claims one job when it is free)',
    settings: `addMany (one transaction per 1,000); C workers of one job each; pollIntervall ${ctx.pollMs} ms; logger silenced`,
    enqueueBatch: 1_000,
    async setup() {
      db = new Database(file);
      queue = defineQueue({ connection: better(db), logger: silent });
    },
    readPragmas: () => readPragmas(db!, 'read back from the connection plainjob uses'),
    async startWorker(concurrency: number, onJob: OnJob) {
      workers = Array.from({ length: concurrency }, () =>
        defineWorker(
          'noop',
          async (job) => {
            onJob(JSON.parse(job.data) as Payload);
          },
          {
            queue: queue!,
            logger: silent,
            pollIntervall: ctx.pollMs,
            onCompleted: () => {
              completed += 1;
            },
            onFailed: (_job, error) => problems.push(`failed: ${error.slice(0, 200)}`),
          },
        ),
      );
      running = workers.map((w) =>
        w.start().catch((error: unknown) => {
          problems.push(`worker crashed: ${String(error)}`);
        }),
      );
    },
    async enqueue(payloads: readonly Payload[]) {
      queue!.addMany('noop', payloads as Payload[]);
    },
    async enqueueOne(payload: Payload) {
      queue!.add('noop', payload);
    },
    async waitCompleted(n: number, deadline: number) {
      await pollUntil(() => completed >= n, 1, deadline, `${n} completions`);
    },
    anomalies: () => [...problems],
    async stop() {
      await Promise.all(workers.map((w) => w.stop()));
      await Promise.race([Promise.all(running), new Promise((r) => setTimeout(r, 2_000))]);
    },
    async teardown() {
      queue?.close();
      removeSqlite(file);
    },
  };
}
