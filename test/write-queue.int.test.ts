/**
 * Group commit (strict durability) when SQLite rolls back the WHOLE transaction from inside one
 * write (RAISE(ROLLBACK) here; SQLITE_FULL or an I/O error in life): that write fails alone, the
 * writes grouped with it are run again in a fresh transaction, every promise settles, and
 * nothing throws out of the flush.
 */
import { join } from 'node:path';

import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';

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
