/**
 * pg-boss: `insert` (bulk) from the producer; in each node `work` with `localConcurrency`
 * pollers × `batchSize` = the node's concurrency (4 × 8 for 32), burst mode, LISTEN/NOTIFY
 * (`useListenNotify`, the queue created with `notify`) and the lowest polling interval it
 * accepts (0.5 s). `boss.start()` (connections, schema check) runs in `connect()`, outside the
 * clock; `work()` in `start()`.
 */
import pg from 'pg';
import { PgBoss } from 'pg-boss';

import {
  countRows,
  type Payload,
  type PgContext,
  type PgSystem,
  probeClient,
  type Producer,
  type WorkerNode,
} from '../system.ts';

const POLLERS = Number(process.env.BENCH_PGBOSS_POLLERS ?? 4);
const QUEUE = 'bench';

function makeBoss(ctx: PgContext, problems: string[]): PgBoss {
  const boss = new PgBoss({
    connectionString: ctx.url,
    schema: ctx.schema,
    max: ctx.poolSize,
    application_name: 'bench-pg-pgboss',
    useListenNotify: true,
    schedule: false,
    warningQueueSize: 10_000_000,
  });
  boss.on('error', (error: Error) => problems.push(`error: ${error.message}`));
  boss.on('warning', (w: { message?: string; type?: string }) => {
    if (w?.type !== 'queue_backlog') problems.push(`warning: ${w?.type ?? ''} ${w?.message ?? ''}`);
  });
  return boss;
}

const split = (ctx: PgContext) => {
  const pollers = Math.min(POLLERS, ctx.concurrency);
  return { pollers, batchSize: Math.max(1, Math.floor(ctx.concurrency / pollers)) };
};

export const pgBoss: PgSystem = {
  info(ctx) {
    const { pollers, batchSize } = split(ctx);
    return {
      name: 'pg-boss',
      prefetch: `0 (each poller fetches a batch of ${batchSize} when its previous batch is done)`,
      settings: `insert (${ctx.batchSize} per call); per node: work with localConcurrency ${pollers} × batchSize ${batchSize} (= ${pollers * batchSize} in flight), burstWhenBatchFull, pollingIntervalSeconds 0.5 (the minimum), useListenNotify + queue notify, pool max ${ctx.poolSize}, supervise on (its default), schedule off`,
    };
  },
  unavailable: async () => null,
  producer(ctx: PgContext): Producer {
    let boss: PgBoss | undefined;
    let probe: pg.Client | undefined;
    const problems: string[] = [];
    return {
      async setup() {
        boss = makeBoss(ctx, problems);
        await boss.start();
        await boss.createQueue(QUEUE, { notify: true });
        probe = await probeClient(ctx.url, 'bench-pg');
      },
      async enqueue(payloads) {
        await boss!.insert(
          QUEUE,
          payloads.map((data) => ({ data })),
        );
      },
      async enqueueOne(payload) {
        await boss!.send(QUEUE, payload);
      },
      unfinished: () =>
        countRows(
          probe!,
          `select count(*)::int as n from "${ctx.schema}".job where name = $1 and state < 'completed'`,
          [QUEUE],
        ),
      async close() {
        await boss?.stop({ graceful: false, close: true, timeout: 10_000 });
        await probe?.end();
      },
    };
  },
  worker(ctx: PgContext): WorkerNode {
    let boss: PgBoss | undefined;
    const problems: string[] = [];
    const { pollers, batchSize } = split(ctx);
    return {
      async connect() {
        boss = makeBoss(ctx, problems);
        await boss.start();
      },
      async start(onJob) {
        await boss!.work<Payload>(
          QUEUE,
          {
            localConcurrency: pollers,
            batchSize,
            pollingIntervalSeconds: 0.5,
            notifyPollingIntervalSeconds: 0.5,
            burstWhenBatchFull: true,
          },
          async (jobs) => {
            for (const job of jobs) onJob(job.data);
          },
        );
      },
      anomalies: () => [...problems],
      async stop() {
        await boss?.stop({ graceful: true, close: true, timeout: 10_000 });
      },
    };
  },
};
