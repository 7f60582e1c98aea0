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
 * on the busy timeout instead of failing mid-transaction.
 */
import type Database from 'better-sqlite3';

import { WardenError } from '../../core/index.ts';
import { classifySqliteError } from './driver-errors.ts';

interface Pending {
  readonly fn: () => unknown;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

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

  constructor(db: Database.Database, file: string, group: boolean) {
    this.#db = db;
    this.#file = file;
    this.#group = group;
  }

  run<T>(fn: () => T): Promise<T> {
    if (!this.#group) {
      try {
        return Promise.resolve(this.runNow(fn));
      } catch (error) {
        return Promise.reject(error instanceof Error ? error : new Error(String(error)));
      }
    }
    return new Promise<T>((resolve, reject) => {
      this.#pending.push({ fn, resolve: resolve as (value: unknown) => void, reject });
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

  /** Waits for every queued write to commit (used by close). */
  async drain(): Promise<void> {
    while (this.#pending.length > 0 || this.#scheduled)
      await new Promise((resolve) => setImmediate(resolve));
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
      for (const p of batch) p.reject(e);
      return [];
    }
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
            if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
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
      if (this.#db.inTransaction) this.#db.exec('ROLLBACK');
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

  #classify(error: unknown, what: string): WardenError {
    if (error instanceof WardenError) return error;
    return (
      classifySqliteError(error, this.#file) ??
      new WardenError('INTERNAL', `store ${what} failed: ${String(error)}`, { cause: error })
    );
  }
}
