/**
 * The common shape of every system under test, and the helpers the adapters share.
 *
 * One adapter instance serves one measured run (or one latency test): `setup()` creates a fresh
 * database / schema / key prefix, `teardown()` removes it. The harness never reaches into a
 * system except through this interface, so every system is driven the same way.
 */
import { rmSync } from 'node:fs';
import { join } from 'node:path';

import Database from 'better-sqlite3';

import type { ServerName } from './cpu.ts';

/** The one payload shape every system carries. `i` identifies the task for the delivery check. */
export interface Payload {
  readonly i: number;
  readonly pad: string;
}

export const PAD = 'x'.repeat(64);

export function makePayload(i: number): Payload {
  return { i, pad: PAD };
}

/** Called by the adapter's handler, once per delivery, with the payload as the system delivered it. */
export type OnJob = (payload: Payload) => void;

export interface AdapterInfo {
  /** Row label, e.g. `Warden (fast)`. */
  readonly name: string;
  /** e.g. `SQLite (WAL)`, `Redis 7`, `PostgreSQL 15`. */
  readonly backend: string;
  /**
   * The server process this system relies on (its CPU is counted with the client's, and a
   * PostgreSQL server gets a CHECKPOINT before each run), or null for an in-process store.
   */
  readonly server: ServerName | null;
  /**
   * How the system makes a completion durable beyond the storage settings, if at all (e.g.
   * Warden strict's group commit). The settings themselves are read back, never written here.
   */
  readonly durabilityNote?: string;
  /**
   * Claimed-but-unstarted depth: how many tasks the worker may hold (leased / locked / fetched)
   * beyond the C it is running, and why. A deep local queue can move more tasks per database
   * round trip, so the table states it for every system.
   */
  readonly prefetch: string;
  /** The knobs used (batching, polling, concurrency mapping): printed under the table. */
  readonly settings: string;
  /** How many payloads one `enqueue()` call gets (the system's idiomatic batch). */
  readonly enqueueBatch: number;
}

/** SQLite durability settings as read back from a connection (see {@link readPragmas}). */
export interface SqlitePragmas {
  readonly journal_mode: string;
  readonly synchronous: string;
  /** Where the values come from (the system's own connection, or why not). */
  readonly source: string;
}

export interface QueueAdapter extends AdapterInfo {
  /**
   * Fresh database / schema / key prefix for this run, and a producer that can enqueue before
   * any worker exists (the pre-filled mode enqueues first). Not timed.
   */
  setup(): Promise<void>;
  /** Starts consuming with `concurrency` handlers at most in flight; resolves once it is ready. */
  startWorker(concurrency: number, onJob: OnJob): Promise<void>;
  /** SQLite systems: journal_mode and synchronous read back after setup. */
  readPragmas?(): SqlitePragmas;
  /** Enqueues a batch (≤ enqueueBatch) in the system's idiomatic fast way. */
  enqueue(payloads: readonly Payload[]): Promise<void>;
  /** Enqueues one task with the system's single-task API (used by the latency test). */
  enqueueOne(payload: Payload): Promise<void>;
  /**
   * Resolves once the system itself has recorded at least `n` completions (the acknowledgement
   * is durable in the system's own terms, not just "the handler returned").
   */
  waitCompleted(n: number, deadline: number): Promise<void>;
  /** Problems the system reported while running (worker errors, lost leases, …). */
  anomalies(): string[];
  stop(): Promise<void>;
  teardown(): Promise<void>;
}

export interface AdapterContext {
  /** Unique per run: used for file names, schemas and key prefixes. */
  readonly runId: string;
  /** Directory for SQLite files (bench/.tmp). */
  readonly tmpDir: string;
  readonly redisUrl: string;
  /** Connection string of the PostgreSQL database set aside for this system. */
  readonly pgUrl: (database: string) => string;
  /** Poll interval used by systems that can only poll (plainjob, liteque). */
  readonly pollMs: number;
  /** The concurrency every system gets (also passed to startWorker). */
  readonly concurrency: number;
}

export type AdapterFactory = (ctx: AdapterContext) => QueueAdapter;

const SYNCHRONOUS = ['OFF', 'NORMAL', 'FULL', 'EXTRA'];

/** journal_mode and synchronous of an open better-sqlite3 connection. */
export function readPragmas(db: Database.Database, source: string): SqlitePragmas {
  const sync = Number(db.pragma('synchronous', { simple: true }));
  return {
    journal_mode: String(db.pragma('journal_mode', { simple: true })),
    synchronous: SYNCHRONOUS[sync] ?? String(sync),
    source,
  };
}

/**
 * journal_mode of a database file, from a second, read-only connection: it is stored in the
 * file (WAL), unlike synchronous, which belongs to each connection.
 */
export function journalModeOfFile(file: string): string {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    return String(db.pragma('journal_mode', { simple: true }));
  } finally {
    db.close();
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls `check` every `everyMs` until it answers true; rejects at `deadline` (performance.now()). */
export async function pollUntil(
  check: () => boolean | Promise<boolean>,
  everyMs: number,
  deadline: number,
  what: string,
): Promise<void> {
  for (;;) {
    if (await check()) return;
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(everyMs);
  }
}

export function sqliteFile(ctx: AdapterContext, system: string): string {
  return join(ctx.tmpDir, `${system}-${ctx.runId}.db`);
}

/** Deletes a run's SQLite database with its WAL, shared-memory and wake-up (Warden) files. */
export function removeSqlite(file: string): void {
  for (const suffix of ['', '-wal', '-shm', '-journal', '-wake'])
    rmSync(`${file}${suffix}`, { force: true });
}

/** A logger that drops everything (several peers log every job by default). */
export const silent = {
  error: () => {},
  warn: () => {},
  info: () => {},
  debug: () => {},
  log: () => {},
};
