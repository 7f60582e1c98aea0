/**
 * Warden: JobQueue.submitMany (one transaction per batch) from the producer; in each node a
 * JobQueue and a JobWorker on the PostgreSQL store, woken by LISTEN/NOTIFY.
 *
 * The PostgreSQL adapter is loaded at run time and only used when the store module exports
 * `openPostgresStore`, so this harness runs (and reports Warden as not available) on a tree
 * that does not have it yet. `BENCH_WARDEN_SRC=<dir>` measures the `src/` of another checkout
 * (e.g. a `git archive` of another commit); the default is this repository's `src/`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

import type { Clock } from '../../../src/core/index.ts';
import type { JobQueue, JobWorker } from '../../../src/queue/index.ts';
import type { Store } from '../../../src/store/index.ts';
import { repoDir } from '../../shared/machine.ts';
import {
  countRows,
  type Payload,
  type PgContext,
  type PgSystem,
  probeClient,
  type Producer,
  type WorkerNode,
} from '../system.ts';

type QueueModule = typeof import('../../../src/queue/index.ts');

/** The adapter's options as the issue specifies them; only the first four are used here. */
interface PostgresStoreOptions {
  readonly url: string;
  readonly schema?: string;
  readonly poolSize?: number;
  readonly statementTimeoutMs?: number;
  readonly clock?: Clock;
}
type OpenPostgresStore = (options: PostgresStoreOptions) => Promise<Store & { clock?: Clock }>;

interface Loaded {
  readonly openPostgresStore: OpenPostgresStore;
  readonly queue: QueueModule;
}

/** Tasks each node claims ahead of its handlers: graphile-worker's localQueue.size by default. */
const PREFETCH = Number(process.env.BENCH_WARDEN_PREFETCH ?? 256);

/** The `src/` directory measured. */
export const wardenSrc = resolve(process.env.BENCH_WARDEN_SRC ?? join(repoDir, 'src'));

/** Where the measured source came from, for the report. */
export function wardenSource(): string | null {
  if (!process.env.BENCH_WARDEN_SRC) return null;
  const stamp = join(wardenSrc, '..', 'COMMIT');
  const commit = existsSync(stamp) ? readFileSync(stamp, 'utf8').trim() : 'unknown commit';
  return `${wardenSrc} (${commit})`;
}

let loading: Promise<Loaded | string> | undefined;
function load(): Promise<Loaded | string> {
  loading ??= (async () => {
    const store = (await import(pathToFileURL(join(wardenSrc, 'store/index.ts')).href)) as Record<
      string,
      unknown
    >;
    if (typeof store.openPostgresStore !== 'function')
      return `${wardenSrc}/store/index.ts does not export openPostgresStore (the PostgreSQL adapter is not in this tree yet)`;
    const queue = (await import(
      pathToFileURL(join(wardenSrc, 'queue/index.ts')).href
    )) as QueueModule;
    return { openPostgresStore: store.openPostgresStore as OpenPostgresStore, queue };
  })();
  return loading;
}

async function loaded(): Promise<Loaded> {
  const l = await load();
  if (typeof l === 'string') throw new Error(l);
  return l;
}

/** One node's store and queue; the store's database-corrected clock when it offers one. */
async function open(ctx: PgContext) {
  const { openPostgresStore, queue: q } = await loaded();
  const store = await openPostgresStore({
    url: ctx.url,
    schema: ctx.schema,
    poolSize: ctx.poolSize,
  });
  const queue = new q.JobQueue({
    store,
    ...(store.clock ? { clock: store.clock } : {}),
    // No lane-wide cap: each node runs `concurrency` handlers, as each peer's node does.
    lanes: { default: {} },
  });
  await queue.ready();
  return { store, queue, q };
}

export const warden: PgSystem = {
  info: (ctx) => ({
    name: 'Warden',
    prefetch: `≤ ${PREFETCH} (JobWorker prefetch)`,
    settings: `submitMany (${ctx.batchSize} per transaction); per node: openPostgresStore poolSize ${ctx.poolSize} (durability default: synchronous_commit on), JobQueue with no lane-wide cap, JobWorker concurrency ${ctx.concurrency}, prefetch ${PREFETCH} (as graphile-worker's localQueue.size), defaults otherwise (claimBatch 256, leaseMs 15 s); LISTEN/NOTIFY wake-up`,
  }),
  async unavailable() {
    const l = await load().catch((error: unknown) => `cannot load Warden: ${String(error)}`);
    return typeof l === 'string' ? l : null;
  },
  producer(ctx: PgContext): Producer {
    let store: Store | undefined;
    let queue: JobQueue | undefined;
    let probe: Awaited<ReturnType<typeof probeClient>> | undefined;
    return {
      async setup() {
        ({ store, queue } = await open(ctx));
        probe = await probeClient(ctx.url, 'bench-pg');
      },
      async enqueue(payloads) {
        await queue!.submitMany(payloads.map((payload) => ({ name: 'noop', payload })));
      },
      async enqueueOne(payload) {
        await queue!.submit('noop', payload);
      },
      unfinished: () =>
        countRows(
          probe!,
          `select count(*)::int as n from "${ctx.schema}".tasks where state in ('queued', 'running')`,
        ),
      async close() {
        await store?.close();
        await probe?.end();
      },
    };
  },
  worker(ctx: PgContext): WorkerNode {
    let store: Store | undefined;
    let worker: JobWorker | undefined;
    const problems: string[] = [];
    let queue: JobQueue | undefined;
    let q: QueueModule | undefined;
    return {
      async connect() {
        ({ store, queue, q } = await open(ctx));
      },
      async start(onJob) {
        worker = new q!.JobWorker({
          queue: queue!,
          concurrency: ctx.concurrency,
          prefetch: PREFETCH,
          onError: (error) => problems.push(`worker onError: [${error.code}] ${error.message}`),
        });
        worker.handle<Payload, null>('noop', (job) => {
          onJob(job.payload);
          return null;
        });
        await worker.start();
      },
      anomalies() {
        const out = [...problems];
        const s = worker?.stats;
        if (s && (s.leaseLost || s.retried || s.failed || s.dead || s.reclaimed || s.canceled))
          out.push(`worker stats: ${JSON.stringify(s)}`);
        return out;
      },
      async stop() {
        await worker?.stop();
        await store?.close();
      },
    };
  },
};
