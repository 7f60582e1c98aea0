/**
 * graphile-worker on the local PostgreSQL (database bench_graphile). Each run installs its own
 * schema, dropped afterwards. Uses the batch APIs the project documents for throughput
 * (https://worker.graphile.org/docs/performance): addJobs, a local queue and batched completion.
 */
import pg from 'pg';
import { Logger, makeWorkerUtils, run, type Runner, type WorkerUtils } from 'graphile-worker';

import {
  type AdapterContext,
  type OnJob,
  type Payload,
  pollUntil,
  type QueueAdapter,
} from '../types.ts';

const LOCAL_QUEUE = Number(process.env.BENCH_GRAPHILE_LOCAL_QUEUE ?? 256);
const quiet = new Logger(() => () => {});

export function graphileWorker(ctx: AdapterContext): QueueAdapter {
  const connectionString = ctx.pgUrl('bench_graphile');
  const schema = `gw_${ctx.runId.replace(/\W/g, '_')}`;
  let utils: WorkerUtils | undefined;
  let runner: Runner | undefined;
  let probe: pg.Client | undefined;
  const problems: string[] = [];
  return {
    name: 'graphile-worker',
    backend: 'PostgreSQL (local)',
    server: 'postgres',
    // Its documented batching: the local queue locks up to this many jobs ahead of the workers.
    prefetch: `≤ ${LOCAL_QUEUE} (localQueue.size)`,
    settings: `addJobs (1,000 per call); concurrency = C; localQueue.size ${LOCAL_QUEUE}; completeJobBatchDelay 0; maxPoolSize C + 2; LISTEN/NOTIFY wake-up`,
    enqueueBatch: 1_000,
    async setup() {
      utils = await makeWorkerUtils({ connectionString, schema, logger: quiet });
      await utils.migrate();
      probe = new pg.Client({ connectionString });
      await probe.connect();
    },
    async startWorker(concurrency: number, onJob: OnJob) {
      runner = await run({
        connectionString,
        schema,
        concurrency,
        maxPoolSize: concurrency + 2,
        noHandleSignals: true,
        logger: quiet,
        taskList: {
          noop: async (payload) => {
            onJob(payload as Payload);
          },
        },
        preset: {
          worker: {
            localQueue: { size: LOCAL_QUEUE },
            completeJobBatchDelay: 0,
            failJobBatchDelay: 0,
          },
        },
      });
      runner.events.on('job:error', ({ error }) =>
        problems.push(`job:error ${String((error as Error)?.message ?? error)}`),
      );
      runner.events.on('pool:listen:error', ({ error }) =>
        problems.push(`listen error ${String((error as Error)?.message ?? error)}`),
      );
    },
    async enqueue(payloads: readonly Payload[]) {
      await utils!.addJobs(payloads.map((payload) => ({ identifier: 'noop', payload })));
    },
    async enqueueOne(payload: Payload) {
      await utils!.addJob('noop', payload);
    },
    async waitCompleted(_n: number, deadline: number) {
      // Completed jobs are deleted: none left means every job's completion is committed.
      await pollUntil(
        async () => {
          const r = await probe!.query(`select count(*)::int as n from "${schema}"._private_jobs`);
          return (r.rows[0] as { n: number }).n === 0;
        },
        5,
        deadline,
        'the jobs table to empty',
      );
    },
    anomalies: () => [...problems],
    async stop() {
      await runner?.stop();
    },
    async teardown() {
      await utils?.release();
      try {
        await probe?.query(`drop schema if exists "${schema}" cascade`);
      } finally {
        await probe?.end();
      }
    },
  };
}
