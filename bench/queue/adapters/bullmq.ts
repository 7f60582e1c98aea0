/**
 * BullMQ on the local Redis. Each run uses its own key prefix (deleted afterwards) in Redis
 * database 7, so runs never see each other's keys and nothing else in Redis is touched.
 */
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';

import {
  type AdapterContext,
  type OnJob,
  type Payload,
  pollUntil,
  type QueueAdapter,
} from '../types.ts';

const DB = 7;

export function bullmq(ctx: AdapterContext): QueueAdapter {
  const url = new URL(ctx.redisUrl);
  const connection = {
    host: url.hostname,
    port: Number(url.port || 6379),
    db: DB,
    maxRetriesPerRequest: null,
  };
  const prefix = `bench-${ctx.runId}`;
  let queue: Queue | undefined;
  let worker: Worker | undefined;
  let completed = 0;
  const problems: string[] = [];
  return {
    name: 'BullMQ',
    backend: 'Redis (local)',
    server: 'redis',
    // The worker fetches only while fewer than C jobs are in progress (Worker.mainLoop).
    prefetch: '0 (fetches a job only for a free slot of C)',
    settings:
      'addBulk (1,000 per call); one Worker, concurrency = C; removeOnComplete {count: 1000}; defaults otherwise (blocking fetch, no polling)',
    enqueueBatch: 1_000,
    async setup() {
      queue = new Queue('bench', { connection, prefix });
      await queue.waitUntilReady();
    },
    async startWorker(concurrency: number, onJob: OnJob) {
      worker = new Worker(
        'bench',
        async (job) => {
          onJob(job.data as Payload);
          return null;
        },
        { connection, prefix, concurrency, removeOnComplete: { count: 1_000 }, autorun: false },
      );
      worker.on('completed', () => {
        completed += 1;
      });
      worker.on('failed', (_job, error) => problems.push(`failed: ${error.message}`));
      worker.on('error', (error) => problems.push(`error: ${error.message}`));
      void worker.run().catch((error: Error) => problems.push(`run: ${error.message}`));
      await worker.waitUntilReady();
    },
    async enqueue(payloads: readonly Payload[]) {
      await queue!.addBulk(payloads.map((data) => ({ name: 'noop', data })));
    },
    async enqueueOne(payload: Payload) {
      await queue!.add('noop', payload);
    },
    async waitCompleted(n: number, deadline: number) {
      await pollUntil(() => completed >= n, 1, deadline, `${n} completions`);
    },
    anomalies: () => [...problems],
    async stop() {
      await worker?.close();
    },
    async teardown() {
      try {
        await queue?.obliterate({ force: true });
      } finally {
        await queue?.close();
        const redis = new Redis({ ...connection, lazyConnect: true });
        try {
          await redis.connect();
          let cursor = '0';
          do {
            const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
            if (keys.length) await redis.del(...keys);
            cursor = next;
          } while (cursor !== '0');
        } finally {
          redis.disconnect();
        }
      }
    },
  };
}
