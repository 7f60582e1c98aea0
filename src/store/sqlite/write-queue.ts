/**
 * Write transactions for the SQLite adapter, with group commit.
 *
 * - `immediate` mode (durability `fast`): each write runs at once in its own BEGIN IMMEDIATE
 *   transaction.
 * - `group` mode (durability `strict`, synchronous=FULL): writes that arrive in the same
 *   event-loop turn share ONE transaction and therefore one fsync. Each write runs inside its own
 *   SAVEPOINT, so a write that fails (a compare-and-set miss, a stale lease) is rolled back alone
 *   and the others still commit. Every caller is answered only after the shared COMMIT returned:
 *   nobody is told "done" before their write is durable.
 *
 * Both modes take the write lock up front (BEGIN IMMEDIATE), so writers in other processes wait
 * for it instead of failing mid-transaction. SQLite waits for a lock synchronously — the event
 * loop stands still meanwhile — so the connection's own busy timeout is a short slice, and a
 * write that still finds the database locked is retried asynchronously (a short random pause,
 * growing up to 50 ms) until `busyTimeoutMs` has passed, then fails with STORE_BUSY. Only the
 * lock acquisition fails this way, before the write ran, so a retry never repeats anything.
 */
import type Database from 'better-sqlite3';

import { WardenError } from '../../core/index.ts';
import { classifySqliteError } from './driver-errors.ts';

interface Pending {
  readonly fn: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
  /** When the lock was first found busy for this write (0: not yet). */
  busySince: number;
}

const isBusy = (error: unknown) => error instanceof WardenError && error.code === 'STORE_BUSY';

/** A pause before trying the lock again: random, growing with the tries, at most 50 ms. */
const busyPauseMs = (tries: number) =>
  1 + Math.floor(Math.random() * Math.min(50, 2 ** Math.min(tries, 6)));

/** The most writes one group transaction takes; the rest go in the next one. */
const MAX_GROUP = 2_048;

export class WriteQueue {
  readonly #db: Database.Database;
  readonly #file: string;
  readonly #group: boolean;
  #pending: Pending[] = [];
  #scheduled = false;
  /** Committed write transactions (a group counts once). */
  commits = 0;

  readonly #busyTimeoutMs: number;
  #busyTries = 0;
  /** Immediate-mode writes waiting for a busy lock (drain waits for them too). */
  #retrying = 0;

  constructor(db: Database.Database, file: string, group: boolean, busyTimeoutMs = 5_000) {
    this.#db = db;
    this.#file = file;
    this.#group = group;
    this.#busyTimeoutMs = busyTimeoutMs;
  }

  run<T>(fn: () => T): Promise<T> {
    if (!this.#group) {
      try {
        return Promise.resolve(this.runNow(fn));
      } catch (error) {
        if (isBusy(error)) return this.#retryWhenFree(fn, error);
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    }
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({
        fn,
        resolve: resolve as (value: unknown) => void,
        reject,
        busySince: 0,
      });
      if (!this.#scheduled) {
        this.#scheduled = true;
        setImmediate(() => this.#flush());
      }
    });
  }

  /** One write in its own BEGIN IMMEDIATE transaction, synchronously. */
  runNow<T>(fn: () => T): T {
    try {
      const result = this.#db.transaction(fn).immediate();
      this.commits += 1;
      return result;
    } catch (error) {
      throw this.#classify(error, 'write');
    }
  }

  /** Immediate mode: the lock was busy; try again after short pauses, without blocking. */
  async #retryWhenFree<T>(fn: () => T, first: unknown): Promise<T> {
    this.#retrying += 1;
    try {
      const since = performance.now();
      let last = first;
      for (let tries = 1; performance.now() - since < this.#busyTimeoutMs; tries++) {
        await new Promise((resolve) => setTimeout(resolve, busyPauseMs(tries)));
        try {
          return this.runNow(fn);
        } catch (error) {
          if (!isBusy(error)) throw error;
          last = error;
        }
      }
      throw last;
    } finally {
      this.#retrying -= 1;
    }
  }

  /** Waits for every queued write to commit (used by close). */
  async drain(): Promise<void> {
    while (this.#pending.length > 0 || this.#scheduled || this.#retrying > 0)
      await new Promise((resolve) => setTimeout(resolve, this.#retrying > 0 ? 1 : 0));
  }

  #flush(): void {
    let batch = this.#pending.splice(0, MAX_GROUP);
    if (this.#pending.length > 0) setImmediate(() => this.#flush());
    else this.#scheduled = false;
    // A write whose failure made SQLite roll back the WHOLE transaction (not just its
    // savepoint: SQLITE_FULL, SQLITE_IOERR, an interrupt, a RAISE(ROLLBACK)) fails alone; the
    // writes before it were rolled back with it and run again in a fresh transaction. Each round
    // removes one write, so this ends.
    while (batch.length > 0) batch = this.#runGroup(batch);
  }

  /** Runs `batch` in one transaction; returns the writes that must run again. */
  #runGroup(batch: Pending[]): Pending[] {
    const outcomes: Array<{ ok: true; value: unknown } | { ok: false; error: unknown }> = [];
    try {
      this.#db.exec('BEGIN IMMEDIATE');
    } catch (error) {
      const e = this.#classify(error, 'write');
      if (isBusy(e)) return this.#waitForLock(batch, e);
      for (const p of batch) p.reject(e);
      return [];
    }
    this.#busyTries = 0;
    for (let i = 0; i < batch.length; i++) {
      const p = batch[i]!;
      try {
        this.#db.exec('SAVEPOINT warden_write');
        const value = p.fn();
        this.#db.exec('RELEASE warden_write');
        outcomes.push({ ok: true, value });
      } catch (error) {
        if (this.#db.inTransaction) {
          try {
            this.#db.exec('ROLLBACK TO warden_write');
            this.#db.exec('RELEASE warden_write');
            outcomes.push({ ok: false, error: this.#classify(error, 'write') });
            continue;
          } catch {
            // the savepoint is gone although a transaction is open: end this group
            this.#rollback();
          }
        }
        p.reject(this.#classify(error, 'write'));
        return [...batch.slice(0, i), ...batch.slice(i + 1)];
      }
    }
    try {
      this.#db.exec('COMMIT');
      this.commits += 1;
    } catch (error) {
      this.#rollback();
      const e = this.#classify(error, 'commit');
      for (const p of batch) p.reject(e);
      return [];
    }
    batch.forEach((p, i) => {
      const outcome = outcomes[i]!;
      if (outcome.ok) p.resolve(outcome.value);
      else p.reject(outcome.error);
    });
    return [];
  }

  /**
   * Group mode: the lock was busy. The batch goes back to the front of the queue and the next
   * flush comes after a short pause; writes busy for longer than busyTimeoutMs fail.
   */
  #waitForLock(batch: Pending[], error: WardenError): Pending[] {
    const now = performance.now();
    const waiting: Pending[] = [];
    for (const p of batch) {
      if (p.busySince === 0) p.busySince = now;
      if (now - p.busySince >= this.#busyTimeoutMs) p.reject(error);
      else waiting.push(p);
    }
    if (waiting.length === 0) return [];
    this.#pending.unshift(...waiting);
    if (!this.#scheduled) {
      this.#scheduled = true;
      setTimeout(() => this.#flush(), busyPauseMs(++this.#busyTries));
    }
    return [];
  }

  /** Rolls back whatever is open; a failing ROLLBACK must not escape the flush. */
  #rollback(): void {
    try {
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
    } catch {
      // SQLite already ended the transaction (or the connection is gone): nothing is open
    }
  }

  #classify(error: unknown, what: string): WardenError {
    if (error instanceof WardenError) return error;
    return (
      classifySqliteError(error, this.#file) ??
      new WardenError('INTERNAL', `store ${what} failed: ${String(error)}`, { cause: error })
    );
  }
}
