/**
 * Read snapshots for the SQLite adapter ({@link Store.openSnapshot}).
 *
 * A database file: a separate read-only connection to the same file runs `BEGIN` (deferred) and
 * one read, which pins the WAL snapshot: until `close()` every read on it sees the database as
 * of that instant, whatever this or any other process commits meanwhile (WAL readers never
 * block writers, and writers never block them). Reads are answered asynchronously, yielding to
 * the event loop before each one, so a long walk over the log (ledger verify) does not block the
 * process. While a snapshot is open, checkpoints cannot move past it (the WAL grows instead):
 * close it promptly.
 *
 * `:memory:` has no second connection, so the snapshot is a copy of the whole database taken by
 * `serialize()` on the main connection, in one synchronous call (no commit can interleave) —
 * the memory cost is the database's size, acceptable for the test and throw-away stores that
 * live in memory.
 */
import Database from 'better-sqlite3';

import { coerceError, WardenError } from '../../core/index.ts';
import { type Row, sessionFromRow } from '../rows.ts';
import type { EventQuery, EventRecord, SessionRecord, StoreSnapshot } from '../types.ts';
import { classifySqliteError } from './driver-errors.ts';
import { EventReader } from './retention.ts';
import { SQL } from './statements.ts';

export class SqliteSnapshot implements StoreSnapshot {
  readonly #db: Database.Database;
  readonly #file: string;
  readonly #sessionList: Database.Statement;
  readonly #sessionById: Database.Statement;
  readonly #events: EventReader;
  #closed = false;

  /**
   * Opens a snapshot of `file` (through a new read-only connection), or of the serialized
   * database `image` (for `:memory:`).
   */
  static open(source: { file: string; busyTimeoutMs: number } | { image: Buffer }): SqliteSnapshot {
    const file = 'file' in source ? source.file : ':memory:';
    let db: Database.Database | undefined;
    try {
      db =
        'file' in source
          ? new Database(source.file, {
              readonly: true,
              fileMustExist: true,
              timeout: source.busyTimeoutMs,
            })
          : new Database(source.image);
      const snapshot = new SqliteSnapshot(db, file);
      db.exec('BEGIN');
      // The first read starts the read transaction and fixes what every later read sees.
      db.prepare('SELECT count(*) FROM sessions').get();
      return snapshot;
    } catch (error) {
      db?.close();
      throw (
        classifySqliteError(error, file) ??
        new WardenError('INTERNAL', `cannot open a read snapshot of ${file}: ${String(error)}`, {
          cause: error,
        })
      );
    }
  }

  private constructor(db: Database.Database, file: string) {
    this.#db = db;
    this.#file = file;
    this.#sessionList = db.prepare(SQL.sessionList);
    this.#sessionById = db.prepare(SQL.sessionById);
    this.#events = new EventReader(db);
  }

  listSessions(): Promise<SessionRecord[]> {
    return this.#read(() => (this.#sessionList.all() as Row[]).map(sessionFromRow));
  }

  getSession(id: string): Promise<SessionRecord | undefined> {
    return this.#read(() => {
      const row = this.#sessionById.get(id) as Row | undefined;
      return row === undefined ? undefined : sessionFromRow(row);
    });
  }

  readEvents(query: EventQuery): Promise<EventRecord[]> {
    return this.#read(() => this.#events.read(query));
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#closed = true;
    try {
      if (this.#db.inTransaction) this.#db.exec('COMMIT');
    } finally {
      this.#db.close();
    }
    return Promise.resolve();
  }

  /** Yields to the event loop, then runs one synchronous read inside the snapshot. */
  async #read<T>(fn: () => T): Promise<T> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (this.#closed) throw new WardenError('INTERNAL', 'the read snapshot is closed');
    try {
      return fn();
    } catch (error) {
      if (error instanceof WardenError) throw error;
      throw classifySqliteError(error, this.#file) ?? coerceError(error);
    }
  }
}
