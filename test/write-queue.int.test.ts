/**
 * Group commit (strict durability) when SQLite rolls back the WHOLE transaction from inside one
 * write (RAISE(ROLLBACK) here; SQLITE_FULL or an I/O error in life): that write fails alone, the
 * writes grouped with it are run again in a fresh transaction, every promise settles, and
 * nothing throws out of the flush.
 */
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

import { GENESIS_HASH, isWardenError } from '../src/core/index.ts';
import { openSqliteStore } from '../src/store/index.ts';
import { WriteQueue } from '../src/store/sqlite/write-queue.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

describe('group commit', () => {
  afterAll(removeTempDirs);

  it('a write that makes SQLite roll back the whole transaction fails alone', async () => {
    const file = join(tempDir(), 'wq.db');
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.exec(`CREATE TABLE t (v TEXT NOT NULL);
      CREATE TRIGGER boom BEFORE INSERT ON t WHEN NEW.v = 'boom'
      BEGIN SELECT RAISE(ROLLBACK, 'injected whole-transaction rollback'); END;`);
    const uncaught: unknown[] = [];
    const onUncaught = (error: unknown) => uncaught.push(error);
    process.on('uncaughtException', onUncaught);
    try {
      const queue = new WriteQueue(db, file, true);
      const insert = (v: string) => () => db.prepare('INSERT INTO t (v) VALUES (?)').run(v).changes;
      const results = await Promise.allSettled([
        queue.run(insert('a')),
        queue.run(insert('b')),
        queue.run(insert('boom')),
        queue.run(insert('c')),
        queue.run(() => {
          throw new Error('an ordinary failure rolls back its savepoint only');
        }),
        queue.run(insert('d')),
      ]);
      expect(results.map((r) => r.status)).toEqual([
        'fulfilled',
        'fulfilled',
        'rejected',
        'fulfilled',
        'rejected',
        'fulfilled',
      ]);
      expect(String((results[2] as PromiseRejectedResult).reason)).toMatch(/injected/);
      const rows = db.prepare('SELECT v FROM t ORDER BY rowid').pluck().all();
      expect(rows).toEqual(['a', 'b', 'c', 'd']);
      expect(db.inTransaction).toBe(false);
      // The queue keeps working afterwards.
      await queue.run(insert('e'));
      expect(db.prepare('SELECT count(*) FROM t').pluck().get()).toBe(5);
      await new Promise((resolve) => setImmediate(resolve));
      expect(uncaught).toEqual([]);
    } finally {
      process.off('uncaughtException', onUncaught);
      db.close();
    }
  });
});

describe('a busy database does not block the event loop', () => {
  afterAll(removeTempDirs);

  /** Largest gap between ticks of a 5 ms interval while `work` runs. */
  async function maxStall<T>(work: () => Promise<T>): Promise<{ value: T; gapMs: number }> {
    let last = performance.now();
    let gapMs = 0;
    const tick = setInterval(() => {
      const now = performance.now();
      gapMs = Math.max(gapMs, now - last);
      last = now;
    }, 5);
    try {
      const value = await work();
      return { value, gapMs };
    } finally {
      clearInterval(tick);
    }
  }

  it('a write waits for another connection’s lock asynchronously, then commits', async () => {
    const file = join(tempDir(), 'busy.db');
    const store = await openSqliteStore({ file });
    const other = new Database(file);
    try {
      other.exec('BEGIN IMMEDIATE'); // another writer holds the lock for a second
      setTimeout(() => other.exec('COMMIT'), 1_000);
      const started = performance.now();
      const { gapMs } = await maxStall(() =>
        store.commit([
          {
            op: 'session.insert',
            row: {
              id: 's_busy',
              key: 'busy',
              settings: {},
              created_at: 1,
              updated_at: 1,
              last_seq: 0,
              last_hash: GENESIS_HASH,
            },
          },
        ]),
      );
      expect(performance.now() - started).toBeGreaterThanOrEqual(900);
      expect(await store.getSessionByKey('busy')).toBeDefined();
      // Synchronous lock waits are short slices: the event loop kept running.
      expect(gapMs).toBeLessThan(500);
    } finally {
      other.close();
      await store.close();
    }
  });

  it('past busyTimeoutMs the write fails with STORE_BUSY and changes nothing', async () => {
    const file = join(tempDir(), 'busy.db');
    const store = await openSqliteStore({ file, busyTimeoutMs: 300, durability: 'strict' });
    const other = new Database(file);
    try {
      other.exec('BEGIN IMMEDIATE');
      const { value: error, gapMs } = await maxStall(() =>
        store
          .commit([
            {
              op: 'session.insert',
              row: {
                id: 's_late',
                key: 'late',
                settings: {},
                created_at: 1,
                updated_at: 1,
                last_seq: 0,
                last_hash: GENESIS_HASH,
              },
            },
          ])
          .then(
            () => null,
            (e: unknown) => e,
          ),
      );
      expect(isWardenError(error, 'STORE_BUSY')).toBe(true);
      expect(gapMs).toBeLessThan(200);
      other.exec('COMMIT');
      expect(await store.getSessionByKey('late')).toBeUndefined();
    } finally {
      other.close();
      await store.close();
    }
  });
});
