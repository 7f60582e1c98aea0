/**
 * Read snapshots for the PostgreSQL adapter ({@link Store.openSnapshot}): one pooled connection
 * held for the snapshot's life, in a `REPEATABLE READ READ ONLY` transaction whose first
 * statement (run at open) fixes what every later read sees — commits by this or any node after
 * that are invisible to it. Readers never block writers in PostgreSQL, but an open snapshot
 * holds back vacuum (old row versions stay) and keeps a connection from the pool: close it
 * promptly. Reads on one snapshot run one after another on its connection.
 */
import type { Pool, PoolClient } from 'pg';

import { WardenError } from '../../core/index.ts';
import { sessionFromRow } from '../rows.ts';
import type { EventQuery, EventRecord, SessionRecord, StoreSnapshot } from '../types.ts';
import { pgWardenError } from './connection.ts';
import { readEvents } from './retention.ts';
import type { PgRow, PgTx } from './tx.ts';

export class PostgresSnapshot implements StoreSnapshot {
  readonly #client: PoolClient;
  readonly #where: string;
  /** The connection broke while idle (an error event): it goes back to the pool destroyed. */
  #broken: Error | null = null;
  #closed = false;
  readonly #onError = (error: Error): void => {
    this.#broken = error;
  };
  readonly #reader: Pick<PgTx, 'query'> = {
    query: async <R extends PgRow = PgRow>(text: string, values?: readonly unknown[]) => {
      const result = await this.#client.query<R>(text, values as unknown[] | undefined);
      return { rows: result.rows, rowCount: result.rowCount ?? 0 };
    },
  };

  /**
   * Takes a connection from `pool` and starts the snapshot on it. `where`: the store's display
   * URL, for errors (STORE_UNAVAILABLE when the server cannot be reached).
   */
  static async open(pool: Pool, where: string): Promise<PostgresSnapshot> {
    let client: PoolClient;
    try {
      client = await pool.connect();
    } catch (error) {
      throw pgWardenError(error, where);
    }
    const snapshot = new PostgresSnapshot(client, where);
    try {
      // The first statement after BEGIN takes the snapshot; run it now, not at the first read.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1');
      return snapshot;
    } catch (error) {
      snapshot.#release(error as Error);
      throw pgWardenError(error, where);
    }
  }

  private constructor(client: PoolClient, where: string) {
    this.#client = client;
    this.#where = where;
    // A checked-out pg client has no error listener: without one, a connection that breaks
    // while the snapshot is idle would be an uncaught 'error' event.
    client.on('error', this.#onError);
  }

  listSessions(): Promise<SessionRecord[]> {
    return this.#read(async () =>
      (await this.#reader.query('SELECT * FROM sessions ORDER BY created_at, id')).rows.map(
        sessionFromRow,
      ),
    );
  }

  getSession(id: string): Promise<SessionRecord | undefined> {
    return this.#read(async () => {
      const row = (await this.#reader.query('SELECT * FROM sessions WHERE id = $1', [id])).rows[0];
      return row === undefined ? undefined : sessionFromRow(row);
    });
  }

  /** Same rules as {@link Store.readEvents}, including REPLAY_GAP (as of the snapshot). */
  readEvents(query: EventQuery): Promise<EventRecord[]> {
    return this.#read(() => readEvents(this.#reader, query));
  }

  /** Ends the snapshot and returns its connection to the pool; idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#broken) {
      this.#release(this.#broken);
      return;
    }
    try {
      await this.#client.query('COMMIT');
      this.#release();
    } catch (error) {
      // The connection is in an unknown state: destroy it rather than hand it to another user.
      this.#release(error as Error);
    }
  }

  async #read<T>(fn: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new WardenError('INTERNAL', 'the read snapshot is closed');
    try {
      return await fn();
    } catch (error) {
      if (error instanceof WardenError) throw error;
      // A failed statement also ends the snapshot's transaction: later reads fail the same way.
      throw pgWardenError(this.#broken ?? error, this.#where);
    }
  }

  #release(error?: Error): void {
    this.#client.removeListener('error', this.#onError);
    this.#client.release(error);
  }
}
