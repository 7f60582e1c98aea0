/**
 * A fresh schema migrated for the PostgreSQL queue-path tests (task-writes, task-settle,
 * schedule-writes), a pool on it, and transactions to call the write paths in. Each test file
 * gets its own schema: call {@link setupSchema} / {@link dropSchema} in beforeAll / afterAll.
 */
import { randomBytes } from 'node:crypto';

import pg from 'pg';

import { isWardenError, type WardenError } from '../../src/core/index.ts';
import { POSTGRES_MIGRATIONS } from '../../src/store/migrations/postgres.ts';
import { PG_TYPES } from '../../src/store/postgres/connection.ts';
import { insertTasks } from '../../src/store/postgres/task-writes.ts';
import { PgTransaction } from '../../src/store/postgres/tx.ts';
import type { ClaimRequest, NewEvent, TaskRecord } from '../../src/store/types.ts';
import { waitFor } from '../helpers/wait.ts';
import { sessionRow, T0, taskRow } from '../store-contract/contract.ts';

// Not test/helpers/postgres.ts: these tests need no store, only the schema and a pool.
const PG_URL = process.env.WARDEN_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const schema = `wt_tasks_${randomBytes(6).toString('hex')}`;
export const pool = new pg.Pool({
  connectionString: PG_URL,
  max: 8,
  options: `-c search_path=${schema}`,
  // bigint columns as numbers: the adapter's own type parsers.
  types: PG_TYPES,
});

export async function setupSchema(): Promise<void> {
  await pool.query(`CREATE SCHEMA ${schema}`);
  for (const m of POSTGRES_MIGRATIONS) await pool.query(m.sql);
}

export async function dropSchema(): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`);
  await pool.end();
}

/** An open transaction on its own connection: commit or roll it back. */
export interface OpenTx {
  readonly tx: PgTransaction;
  readonly pid: number;
  commit(): Promise<void>;
  rollback(): Promise<void>;
}

export async function begin(): Promise<OpenTx> {
  const client = await pool.connect();
  const pid = (await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid;
  await client.query('BEGIN');
  const tx = new PgTransaction(client);
  return {
    tx,
    pid,
    async commit() {
      await client.query('COMMIT');
      client.release();
    },
    async rollback() {
      await client.query('ROLLBACK');
      client.release();
    },
  };
}

/** Runs `fn` in one transaction; answers its value and the events it appended. */
export async function inTx<T>(
  fn: (tx: PgTransaction) => Promise<T>,
): Promise<{ value: T; events: NewEvent[] }> {
  const open = await begin();
  try {
    const value = await fn(open.tx);
    await open.commit();
    return { value, events: open.tx.pending };
  } catch (error) {
    await open.rollback();
    throw error;
  }
}

/** Waits until connection `pid` is blocked on a lock (a row, advisory or transaction lock). */
export async function waitingOnLock(pid: number): Promise<void> {
  await waitFor(
    async () =>
      (
        await pool.query<{ w: string | null }>(
          'SELECT wait_event_type AS w FROM pg_stat_activity WHERE pid = $1',
          [pid],
        )
      ).rows[0]?.w === 'Lock',
    10_000,
    `connection ${pid} waiting on a lock`,
  );
}

export async function rejection(promise: Promise<unknown>): Promise<WardenError> {
  try {
    await promise;
  } catch (error) {
    if (isWardenError(error)) return error;
    throw error;
  }
  throw new Error('expected a rejection');
}

export async function newSession(): Promise<string> {
  const s = sessionRow();
  await pool.query(
    `INSERT INTO sessions (id, key, settings, created_at, updated_at, last_seq, last_hash)
     VALUES ($1, $2, $3, $4, $5, $6, $7)`,
    [s.id, s.key, JSON.stringify(s.settings), s.created_at, s.updated_at, 0, s.last_hash],
  );
  return s.id;
}

export const lane = () => `lane-${randomBytes(4).toString('hex')}`;
export const claimOf = (over: Partial<ClaimRequest>): ClaimRequest => ({
  lanes: ['default'],
  workerId: 'w-1',
  limit: 10,
  leaseMs: 30_000,
  now: T0,
  ...over,
});
export const taskState = async (id: string) =>
  (await pool.query<Record<string, unknown>>('SELECT * FROM tasks WHERE id = $1', [id])).rows[0];
export const running = async (name: string) =>
  (
    await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM tasks WHERE lane = $1 AND state = 'running'`,
      [name],
    )
  ).rows[0]!.n;

export async function queued(
  sessionId: string,
  n: number,
  over: Partial<TaskRecord> = {},
): Promise<TaskRecord[]> {
  const rows = Array.from({ length: n }, () => taskRow(sessionId, over));
  await inTx((tx) => insertTasks(tx, rows));
  return rows;
}
