/**
 * graphile-worker: addJobs (bulk insert) from the producer; in each node `run()` with the
 * throughput settings its documentation recommends (https://worker.graphile.org/docs/performance):
 * a local queue and batched completion. The pool is created and its connections opened in
 * `connect()`, outside the clock, and handed to `run()` as `pgPool`.
 */
import { Logger, makeWorkerUtils, run, type Runner, type WorkerUtils } from 'graphile-worker';
import pg from 'pg';

import {
  countRows,
  type Payload,
  type PgContext,
  type PgSystem,
  probeClient,
  type Producer,
  type WorkerNode,
} from '../system.ts';

const LOCAL_QUEUE = Number(process.env.BENCH_GRAPHILE_LOCAL_QUEUE ?? 256);
const quiet = new Logger(() => () => {});

/** Opens `size` connections at once, so none is opened inside the clock. */
async function warm(pool: pg.Pool, size: number): Promise<void> {
  const clients = await Promise.all(Array.from({ length: size }, () => pool.connect()));
  for (const c of clients) c.release();
}

export const graphileWorker: PgSystem = {
  info: (ctx) => ({
    name: 'graphile-worker',
    prefetch: `≤ ${LOCAL_QUEUE} (localQueue.size)`,
    settings: `addJobs (${ctx.batchSize} per call); per node: concurrency ${ctx.concurrency}, localQueue.size ${LOCAL_QUEUE}, completeJobBatchDelay 0, pgPool of ${ctx.poolSize} (opened before the clock), LISTEN/NOTIFY wake-up`,
  }),
  unavailable: async () => null,
  producer(ctx: PgContext): Producer {
    let utils: WorkerUtils | undefined;
    let probe: pg.Client | undefined;
    return {
      async setup() {
        utils = await makeWorkerUtils({
          connectionString: ctx.url,
          schema: ctx.schema,
          logger: quiet,
        });
        await utils.migrate();
        probe = await probeClient(ctx.url, 'bench-pg');
      },
      async enqueue(payloads) {
        await utils!.addJobs(payloads.map((payload) => ({ identifier: 'noop', payload })));
      },
      async enqueueOne(payload) {
        await utils!.addJob('noop', payload);
      },
      // Completed jobs are deleted: what is left is unfinished.
      unfinished: () =>
        countRows(probe!, `select count(*)::int as n from "${ctx.schema}"._private_jobs`),
      async close() {
        await utils?.release();
        await probe?.end();
      },
    };
  },
  worker(ctx: PgContext): WorkerNode {
    let pool: pg.Pool | undefined;
    let runner: Runner | undefined;
    const problems: string[] = [];
    return {
      async connect() {
        pool = new pg.Pool({
          connectionString: ctx.url,
          max: ctx.poolSize,
          application_name: 'bench-pg-graphile',
        });
        pool.on('error', (error) => problems.push(`pool error: ${error.message}`));
        // graphile-worker checks that a pool it is given handles its clients' errors too.
        pool.on('connect', (client) =>
          client.on('error', (error) => problems.push(`client error: ${error.message}`)),
        );
        await warm(pool, ctx.poolSize);
      },
      async start(onJob) {
        runner = await run({
          pgPool: pool!,
          schema: ctx.schema,
          concurrency: ctx.concurrency,
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
      anomalies: () => [...problems],
      async stop() {
        await runner?.stop();
        await pool?.end();
      },
    };
  },
};
