/**
 * A bare PostgreSQL schema for tests of the adapter's write paths: the migrations' SQL in a fresh
 * schema, a pool whose int8 reads as numbers, transactions run by hand (BEGIN, a PgTransaction,
 * the events chained by event-log.ts, COMMIT), and fixture rows inserted with plain SQL.
 */
import { randomBytes } from 'node:crypto';

import pg from 'pg';

import { type EventType, ManualClock } from '../../src/core/index.ts';
import { POSTGRES_MIGRATIONS } from '../../src/store/migrations/postgres.ts';
import { PG_TYPES } from '../../src/store/postgres/connection.ts';
import { chainEvents } from '../../src/store/postgres/event-log.ts';
import { type PgRow, PgTransaction, type PgTx } from '../../src/store/postgres/tx.ts';
import type { EventRecord, TaskRecord } from '../../src/store/types.ts';
import { PG_URL, pgQuery } from '../helpers/postgres.ts';
import { waitFor } from '../helpers/wait.ts';

export const T0 = Date.UTC(2026, 0, 1);

let n = 0;
export const uid = (prefix: string) => `${prefix}_${(n += 1)}_${randomBytes(3).toString('hex')}`;

/** A transaction left open on its own connection (for races). */
export interface OpenTx {
  readonly tx: PgTransaction;
  /** The backend's pid, to see it wait in pg_stat_activity. */
  readonly pid: number;
  /** Chains the pending events and commits. */
  commit(): Promise<EventRecord[]>;
  rollback(): Promise<void>;
}

export class HistoryDb {
  readonly schema: string;
  readonly pool: pg.Pool;
  readonly clock = new ManualClock(T0);
  readonly #open = new Set<pg.PoolClient>();
  /** Reads on the pool, outside any transaction (as the store's reads run). */
  readonly reader: Pick<PgTx, 'query'> = {
    query: async <R extends pg.QueryResultRow = PgRow>(
      text: string,
      values?: readonly unknown[],
    ) => {
      const result = await this.pool.query<R>(text, values as unknown[] | undefined);
      return { rows: result.rows, rowCount: result.rowCount ?? 0 };
    },
  };

  private constructor(schema: string) {
    this.schema = schema;
    this.pool = new pg.Pool({
      connectionString: PG_URL,
      max: 6,
      // Tests find this schema's connections in pg_stat_activity by it.
      application_name: schema,
      options: `-c search_path=${schema}`,
      types: PG_TYPES, // int8 as numbers, as the store reads them
    });
  }

  static async create(): Promise<HistoryDb> {
    const schema = `wh_${randomBytes(6).toString('hex')}`;
    await pgQuery(`CREATE SCHEMA ${schema}`);
    const db = new HistoryDb(schema);
    for (const migration of POSTGRES_MIGRATIONS) await db.pool.query(migration.sql);
    return db;
  }

  /**
   * Ends the pool and drops the schema. Transactions a failed test left open (maybe waiting on a
   * lock) are ended first by terminating their backends, so the pool can close.
   */
  async drop(): Promise<void> {
    if (this.#open.size > 0) {
      await pgQuery(
        'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1',
        [this.schema],
      );
      for (const client of this.#open) client.release(new Error('the test ended'));
      this.#open.clear();
    }
    await this.pool.end();
    await pgQuery(`DROP SCHEMA IF EXISTS ${this.schema} CASCADE`);
  }

  async query<R extends pg.QueryResultRow = Record<string, unknown>>(
    text: string,
    values?: unknown[],
  ): Promise<R[]> {
    return (await this.pool.query<R>(text, values)).rows;
  }

  async open(): Promise<OpenTx> {
    const client = await this.pool.connect();
    // A checked-out client has no error listener; drop() may terminate its backend.
    client.on('error', () => undefined);
    this.#open.add(client);
    const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!
      .pid;
    await client.query('BEGIN');
    const tx = new PgTransaction(client);
    let done = false;
    const end = async (sql: 'COMMIT' | 'ROLLBACK') => {
      if (done) return;
      done = true;
      try {
        await client.query(sql);
      } finally {
        this.#open.delete(client);
        client.release();
      }
    };
    return {
      tx,
      pid,
      commit: async () => {
        try {
          const events = await chainEvents(tx, tx.pending, this.clock);
          await end('COMMIT');
          return events;
        } catch (error) {
          await end('ROLLBACK');
          throw error;
        }
      },
      rollback: () => end('ROLLBACK'),
    };
  }

  /** Runs `fn` in one transaction: committed when it returns, rolled back when it throws. */
  async tx<T>(fn: (tx: PgTransaction) => Promise<T>): Promise<{ value: T; events: EventRecord[] }> {
    const open = await this.open();
    let value: T;
    try {
      value = await fn(open.tx);
    } catch (error) {
      await open.rollback();
      throw error;
    }
    return { value, events: await open.commit() };
  }

  /** Resolves once backend `pid` waits for a lock (a heavyweight lock: row, advisory, …). */
  async blocked(pid: number): Promise<void> {
    await waitFor(
      async () =>
        (
          await this.query<{ w: string | null }>(
            'SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1',
            [pid],
          )
        )[0]?.w === 'Lock',
      10_000,
      `backend ${pid} waiting for a lock`,
    );
  }

  // ------------------------------------------------------------------ fixtures

  async session(key = uid('key')): Promise<string> {
    const id = uid('s');
    await this.query(
      `INSERT INTO sessions (id, key, settings, created_at, updated_at, last_seq, last_hash)
       VALUES ($1, $2, '{}', $3, $3, 0, 'genesis')`,
      [id, key, T0],
    );
    return id;
  }

  /** Appends `count` events to a session with `ts`, in one transaction. */
  async events(
    sessionId: string,
    count: number,
    ts: number,
    extra: { process_id?: string } = {},
  ): Promise<EventRecord[]> {
    this.clock.set(ts);
    const { events } = await this.tx((tx) => {
      for (let i = 0; i < count; i++)
        tx.append({
          session_id: sessionId,
          type: 'fixture' as EventType,
          trace_id: 'tr',
          data: { i },
          ...extra,
        });
      return Promise.resolve();
    });
    return events;
  }

  async task(
    sessionId: string,
    over: {
      state: TaskRecord['state'];
      updated_at?: number;
      process_id?: string | null;
      lane?: string;
    },
  ): Promise<string> {
    const id = uid('t');
    await this.query(
      `INSERT INTO tasks (id, kind, name, lane, session_id, process_id, payload, state, priority,
         sort_key, available_at, attempts, max_attempts, trace_id, options, created_at, updated_at)
       VALUES ($1, 'job', 'j', $2, $3, $4, 'null', $5, 2, $6, $6, 1, 3, 'tr', '{}', $6, $7)`,
      [
        id,
        over.lane ?? 'default',
        sessionId,
        over.process_id ?? null,
        over.state,
        T0,
        over.updated_at ?? T0,
      ],
    );
    return id;
  }

  async attempt(taskId: string, attempt = 1): Promise<void> {
    await this.query(
      `INSERT INTO attempts (task_id, attempt, lease_token, worker_id, started_at, ended_at, outcome)
       VALUES ($1, $2, 'lt', 'w', $3, $3, 'succeeded')`,
      [taskId, attempt, T0],
    );
  }

  async workflow(hash: string): Promise<void> {
    await this.query(
      `INSERT INTO workflows (hash, definition, created_at) VALUES ($1, '{"name":"w"}', $2)
       ON CONFLICT DO NOTHING`,
      [hash, T0],
    );
  }

  async process(
    sessionId: string,
    over: { state: string; completed_at?: number | null; workflow_hash?: string },
  ): Promise<string> {
    const pid = uid('p');
    const hash = over.workflow_hash ?? 'wf_default';
    await this.workflow(hash);
    await this.query(
      `INSERT INTO processes (pid, session_id, user_id, workflow_name, workflow_hash, state, priority,
         quota, usage, envelope, current_stage, trace_id, version, created_at, updated_at, completed_at)
       VALUES ($1, $2, 'u', 'w', $3, $4, 'normal', '{}', '{}', '{}', 'start', 'tr', 1, $5, $5, $6)`,
      [pid, sessionId, hash, over.state, T0, over.completed_at ?? null],
    );
    return pid;
  }

  async interrupt(sessionId: string, processId: string | null, status: string): Promise<string> {
    const id = uid('i');
    await this.query(
      `INSERT INTO interrupts (id, session_id, process_id, kind, prompt, data, status, trace_id, created_at)
       VALUES ($1, $2, $3, 'approval', 'ok?', '{}', $4, 'tr', $5)`,
      [id, sessionId, processId, status, T0],
    );
    return id;
  }

  async effect(
    key: string,
    over: { status: string; updated_at?: number; task_id?: string | null },
  ): Promise<void> {
    await this.query(
      `INSERT INTO effects (idempotency_key, tool, request_hash, status, owner, owner_worker, task_id,
         created_at, updated_at)
       VALUES ($1, 'http.get', 'req', $2, 'lt_a', 'worker-a', $3, $4, $5)`,
      [key, over.status, over.task_id ?? null, T0, over.updated_at ?? T0],
    );
  }

  async count(table: string, where = 'true', values: unknown[] = []): Promise<number> {
    return (
      await this.query<{ n: number }>(`SELECT count(*) AS n FROM ${table} WHERE ${where}`, values)
    )[0]!.n;
  }
}
