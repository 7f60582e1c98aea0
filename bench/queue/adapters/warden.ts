/**
 * Warden, imported from the repository's source (Node runs the .ts files directly).
 * One SQLite file per run; `durability` picks synchronous=NORMAL (`fast`) or FULL with group
 * commit (`strict`).
 */
import { verifyLedger } from '../../../src/kernel/index.ts';
import { JobQueue, JobWorker } from '../../../src/queue/index.ts';
import { openSqliteStore } from '../../../src/store/index.ts';
import {
  type AdapterContext,
  journalModeOfFile,
  type OnJob,
  type Payload,
  pollUntil,
  type QueueAdapter,
  removeSqlite,
  sqliteFile,
} from '../types.ts';

type Store = Awaited<ReturnType<typeof openSqliteStore>>;

/** JobWorker's defaults (src/queue/job-worker.ts), stated in the report. */
const CLAIM_BATCH = 256;

export function warden(durability: 'fast' | 'strict') {
  return (ctx: AdapterContext): QueueAdapter => {
    const file = sqliteFile(ctx, `warden-${durability}`);
    let store: Store | undefined;
    let queue: JobQueue | undefined;
    let worker: JobWorker | undefined;
    const problems: string[] = [];
    return {
      name: `Warden (${durability})`,
      backend: 'SQLite (WAL), in-process',
      server: null,
      ...(durability === 'strict'
        ? { durabilityNote: 'group commit: writes of one event-loop turn share one fsync' }
        : {}),
      // JobWorker's `prefetch` option: with no lane-wide cap it defaults to the worker's own
      // concurrency, so up to C claimed tasks wait (leased) behind the C running ones.
      prefetch: `≤ C = ${ctx.concurrency} (JobWorker prefetch, default = concurrency)`,
      settings: `submitMany (one transaction per 1,000); JobWorker concurrency = C (no lane-wide cap); defaults otherwise (claimBatch ${CLAIM_BATCH}, prefetch = C, leaseMs 15 s, heartbeat thread); wake-up on commit (no polling); finished work settled and freed slots claimed in one commit; ledger verified after every run`,
      enqueueBatch: 1_000,
      async setup() {
        store = await openSqliteStore({ file, durability });
        // C handlers in flight in this worker; no lane-wide cap (that is for several processes).
        queue = new JobQueue({ store, lanes: { default: {} } });
        await queue.ready();
      },
      readPragmas() {
        return {
          journal_mode: journalModeOfFile(file),
          // synchronous belongs to the store's own connection, which Warden does not expose:
          // openSqliteStore sets it from `durability` (src/store/sqlite/sqlite-store.ts).
          synchronous: durability === 'strict' ? 'FULL' : 'NORMAL',
          source:
            'journal_mode read back from the file; synchronous as openSqliteStore sets it for this durability (its connection is private)',
        };
      },
      async startWorker(concurrency: number, onJob: OnJob) {
        worker = new JobWorker({
          queue: queue!,
          concurrency,
          onError: (error) => problems.push(`worker onError: [${error.code}] ${error.message}`),
        });
        worker.handle<Payload, null>('noop', (job) => {
          onJob(job.payload);
          return null;
        });
        await worker.start();
      },
      async enqueue(payloads: readonly Payload[]) {
        await queue!.submitMany(payloads.map((payload) => ({ name: 'noop', payload })));
      },
      async enqueueOne(payload: Payload) {
        await queue!.submit('noop', payload);
      },
      async waitCompleted(n: number, deadline: number) {
        await pollUntil(() => (worker?.stats.succeeded ?? 0) >= n, 1, deadline, `${n} completions`);
      },
      anomalies() {
        const out = [...problems];
        const s = worker?.stats;
        if (s && (s.leaseLost || s.retried || s.failed || s.dead || s.reclaimed || s.canceled)) {
          out.push(`worker stats: ${JSON.stringify(s)}`);
        }
        return out;
      },
      async stop() {
        await worker?.stop();
        // Every transition of every task is in the hash-chained log: check it after each run
        // (outside the clock). A broken chain fails the run as an anomaly.
        if (store) {
          const ledger = await verifyLedger(store);
          if (!ledger.ok)
            throw new Error(
              `ledger verify failed: ${JSON.stringify(ledger.sessions.filter((s) => !s.ok))}`,
            );
        }
      },
      async teardown() {
        await store?.close();
        removeSqlite(file);
      },
    };
  };
}
