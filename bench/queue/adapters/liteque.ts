/**
 * liteque (drizzle over better-sqlite3), one SQLite file per run. liteque has no batch enqueue:
 * `enqueue()` is called once per task (each its own autocommit transaction). Its Runner dequeues
 * one job per transaction up to `concurrency` in flight, and polls (`pollIntervalMs`) when it
 * finds nothing. Completed jobs are deleted.
 *
 * Compatibility: liteque 0.8 passes an async function to better-sqlite3's `transaction()`.
 * better-sqlite3 ≥ 11.10 rejects that ("TypeError: Transaction function cannot return a
 * promise", reported upstream as karakeep-app/karakeep#1594, where the app pins 11.3), and
 * 11.9.1, the last version that accepts it, crashes under Node 24 (a native assertion in
 * Statement::~Statement during GC). So the connection liteque gets here is better-sqlite3 13
 * whose `transaction()` behaves as ≤ 11.9 did: BEGIN, call the function, COMMIT when it returns
 * (for an async function, at its first await). liteque's claim stays exactly-once through its
 * compare-and-set on `allocationId`, as it is on the versions it supports.
 */
import type Database from 'better-sqlite3';
import { buildDBClient, Runner, SqliteQueue } from 'liteque';

import {
  type AdapterContext,
  type OnJob,
  type Payload,
  pollUntil,
  type QueueAdapter,
  readPragmas,
  removeSqlite,
  sqliteFile,
} from '../types.ts';

type Db = ReturnType<typeof buildDBClient>;

/** better-sqlite3 ≤ 11.9's transaction(): a returned promise is not awaited, nor refused. */
function legacyTransaction(db: Database.Database) {
  return (fn: (...args: unknown[]) => unknown) => {
    const wrap = (begin: string) =>
      function (this: unknown, ...args: unknown[]) {
        const nested = db.inTransaction;
        db.exec(nested ? 'SAVEPOINT liteque_compat' : begin);
        try {
          const result = fn.apply(this, args);
          db.exec(nested ? 'RELEASE liteque_compat' : 'COMMIT');
          return result;
        } catch (error) {
          if (db.inTransaction) {
            if (nested) db.exec('ROLLBACK TO liteque_compat; RELEASE liteque_compat');
            else db.exec('ROLLBACK');
          }
          throw error;
        }
      };
    const tx = wrap('BEGIN') as ReturnType<typeof wrap> & Record<string, unknown>;
    tx.deferred = tx;
    tx.immediate = wrap('BEGIN IMMEDIATE');
    tx.exclusive = wrap('BEGIN EXCLUSIVE');
    tx.default = tx;
    return tx;
  };
}

function sqliteClient(db: Db): Database.Database {
  const session = (db as unknown as { session?: { client?: Database.Database } }).session;
  if (!session?.client) throw new Error('cannot reach the better-sqlite3 client of liteque');
  return session.client;
}

export function liteque(ctx: AdapterContext): QueueAdapter {
  const file = sqliteFile(ctx, 'liteque');
  let db: Db | undefined;
  let queue: SqliteQueue<Payload> | undefined;
  let runner: Runner<Payload> | undefined;
  let running: Promise<void> | undefined;
  const problems: string[] = [];
  return {
    name: 'liteque',
    backend: 'SQLite (WAL), in-process',
    server: null,
    prefetch: '0 (the Runner dequeues one job per free slot of C)',
    settings: `enqueue() per task (no batch API); Runner concurrency = C, pollIntervalMs ${ctx.pollMs}, timeoutSecs 60, numRetries 0; better-sqlite3 13 with ≤ 11.9 transaction() semantics (see adapter)`,
    enqueueBatch: 1_000,
    async setup() {
      db = buildDBClient(file, { runMigrations: true });
      const client = sqliteClient(db);
      (client as unknown as { transaction: unknown }).transaction = legacyTransaction(client);
      queue = new SqliteQueue<Payload>('bench', db, {
        defaultJobArgs: { numRetries: 0 },
        keepFailedJobs: true,
      });
    },
    readPragmas: () => readPragmas(sqliteClient(db!), 'read back from the connection liteque uses'),
    async startWorker(concurrency: number, onJob: OnJob) {
      runner = new Runner<Payload>(
        queue!,
        {
          run: async (job) => {
            onJob(job.data);
          },
          onError: async (job) => {
            problems.push(`job ${job.id} failed: ${job.error?.message}`);
          },
        },
        { concurrency, pollIntervalMs: ctx.pollMs, timeoutSecs: 60 },
      );
      running = runner.run().catch((error: unknown) => {
        problems.push(`runner crashed: ${String(error)}`);
      });
    },
    async enqueue(payloads: readonly Payload[]) {
      for (const payload of payloads) await queue!.enqueue(payload);
    },
    async enqueueOne(payload: Payload) {
      await queue!.enqueue(payload);
    },
    async waitCompleted(_n: number, deadline: number) {
      // A completed job is deleted (finalize runs right after the handler and onComplete).
      await pollUntil(
        async () => {
          const s = await queue!.stats();
          return s.pending + s.pending_retry + s.running === 0;
        },
        2,
        deadline,
        'the queue to empty',
      );
    },
    anomalies: () => [...problems],
    async stop() {
      runner?.stop();
      await Promise.race([running, new Promise((r) => setTimeout(r, 5_000))]);
    },
    async teardown() {
      if (db) sqliteClient(db).close();
      removeSqlite(file);
    },
  };
}
