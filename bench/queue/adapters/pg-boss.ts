/**
 * pg-boss on the local PostgreSQL (database bench_pgboss). Each run installs its own schema,
 * dropped afterwards. Batch insert, batched fetch with burst mode, LISTEN/NOTIFY wake-up and the
 * lowest polling interval pg-boss accepts (0.5 s).
 *
 * Concurrency mapping: pg-boss hands a handler a batch of jobs. With C = 32, `localConcurrency`
 * pollers each fetch `batchSize` = C / localConcurrency jobs and run them together, so at most C
 * handlers are in flight, as for every other system. Several pollers are pg-boss's throughput
 * lever (one poller waits for its whole batch before fetching again), so it gets 4 × 8 by
 * default: the same in-flight cap of C, more round trips overlapping.
 */
import pg from 'pg';
import { PgBoss } from 'pg-boss';

import {
  type AdapterContext,
  type OnJob,
  type Payload,
  pollUntil,
  type QueueAdapter,
} from '../types.ts';

const POLLERS = Number(process.env.BENCH_PGBOSS_POLLERS ?? 4);
const QUEUE = 'bench';

export function pgBoss(ctx: AdapterContext): QueueAdapter {
  const connectionString = ctx.pgUrl('bench_pgboss');
  const schema = `pgb_${ctx.runId.replace(/\W/g, '_')}`;
  let boss: PgBoss | undefined;
  let probe: pg.Client | undefined;
  const problems: string[] = [];
  const pollers = Math.min(POLLERS, ctx.concurrency);
  const batchSize = Math.max(1, Math.floor(ctx.concurrency / pollers));
  return {
    name: 'pg-boss',
    backend: 'PostgreSQL (local)',
    server: 'postgres',
    // A fetched batch is handed to one handler call at once, all inside the in-flight cap.
    prefetch: `0 (each poller fetches a batch of ${batchSize} only when its previous batch is done)`,
    settings: `insert (1,000 per call); work with localConcurrency ${pollers} × batchSize ${batchSize} (= C in flight), burstWhenBatchFull, pollingIntervalSeconds 0.5 (the minimum), useListenNotify + queue notify; pool max ${pollers + 4}`,
    enqueueBatch: 1_000,
    async setup() {
      boss = new PgBoss({
        connectionString,
        schema,
        max: pollers + 4,
        useListenNotify: true,
        schedule: false,
        warningQueueSize: 10_000_000,
      });
      boss.on('error', (error: Error) => problems.push(`error: ${error.message}`));
      boss.on('warning', (w: { message?: string; type?: string }) => {
        if (w?.type !== 'queue_backlog')
          problems.push(`warning: ${w?.type ?? ''} ${w?.message ?? ''}`);
      });
      await boss.start();
      await boss.createQueue(QUEUE, { notify: true });
      probe = new pg.Client({ connectionString });
      await probe.connect();
    },
    async startWorker(_concurrency: number, onJob: OnJob) {
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
    async enqueue(payloads: readonly Payload[]) {
      await boss!.insert(
        QUEUE,
        payloads.map((data) => ({ data })),
      );
    },
    async enqueueOne(payload: Payload) {
      await boss!.send(QUEUE, payload);
    },
    async waitCompleted(_n: number, deadline: number) {
      await pollUntil(
        async () => {
          const r = await probe!.query(
            `select count(*)::int as n from "${schema}".job where name = $1 and state < 'completed'`,
            [QUEUE],
          );
          return (r.rows[0] as { n: number }).n === 0;
        },
        5,
        deadline,
        'every job to be completed',
      );
    },
    anomalies: () => [...problems],
    async stop() {
      await boss?.stop({ graceful: true, close: true, timeout: 10_000 });
    },
    async teardown() {
      try {
        await probe?.query(`drop schema if exists "${schema}" cascade`);
      } finally {
        await probe?.end();
      }
    },
  };
}
