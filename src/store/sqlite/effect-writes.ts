/**
 * The effect journal's SQL for the SQLite adapter (the state machine is in queue/effects.ts).
 * Two writes, both run inside a {@link Store.commit} transaction so they compose with a lease
 * fence, their event and other updates:
 *
 * - insert: `INSERT … ON CONFLICT DO NOTHING`; no row inserted = the key exists (CONFLICT).
 * - transition: `UPDATE … WHERE key AND status = expected AND owner IS expected`; no row
 *   changed = someone else moved the record first (INVALID_STATE). Nothing is ever
 *   overwritten without naming the state and owner it expects, so a `done` stays done.
 *
 * Both are plain compare-and-set statements, so a PostgreSQL adapter says the same with
 * `ON CONFLICT DO NOTHING` and `IS NOT DISTINCT FROM`. Statements are prepared once per
 * database connection.
 */
import type Database from 'better-sqlite3';

import {
  effectExistsError,
  effectFromRow,
  type EffectInsert,
  effectMovedError,
  type EffectTransition,
} from '../effect-rules.ts';
import { type Row, toJson } from '../rows.ts';
import type { EffectRecord } from '../types.ts';

const SQL = {
  /** → EffectRow | undefined */
  byKey: 'SELECT * FROM effects WHERE idempotency_key = ?',
  /** → changes: 1 inserted, 0 the key exists */
  insert: `INSERT INTO effects (idempotency_key, tool, request_hash, status, result_hash, result, owner,
      owner_worker, task_id, session_id, error, created_at, updated_at)
    VALUES (@idempotency_key, @tool, @request_hash, @status, @result_hash, @result, @owner, @owner_worker,
      @task_id, @session_id, @error, @created_at, @updated_at)
    ON CONFLICT (idempotency_key) DO NOTHING`,
  /** Compare-and-set on status and owner. → changes: 1 applied, 0 the record moved on */
  transition: `UPDATE effects SET status = @status, owner = @owner, owner_worker = @owner_worker,
      task_id = @task_id, session_id = @session_id, result_hash = @result_hash, result = @result,
      error = @error, updated_at = @now
    WHERE idempotency_key = @key AND status = @from_status AND owner IS @from_owner`,
} as const;

type Statements = { readonly [K in keyof typeof SQL]: Database.Statement };

const prepared = new WeakMap<Database.Database, Statements>();

function statements(db: Database.Database): Statements {
  let s = prepared.get(db);
  if (!s) {
    s = {
      byKey: db.prepare(SQL.byKey),
      insert: db.prepare(SQL.insert),
      transition: db.prepare(SQL.transition),
    };
    prepared.set(db, s);
  }
  return s;
}

/** Prepares the statements now (at open), so the first effect pays nothing extra. */
export function prepareEffectStatements(db: Database.Database): void {
  statements(db);
}

export function getEffect(db: Database.Database, key: string): EffectRecord | undefined {
  const row = statements(db).byKey.get(key) as Row | undefined;
  return row === undefined ? undefined : effectFromRow(row);
}

/** The `effect.insert` op: CONFLICT when the key exists (the caller reads it and decides). */
export function insertEffect(db: Database.Database, op: EffectInsert): void {
  const row = op.row;
  const info = statements(db).insert.run({
    ...row,
    result: toJson(row.result),
    error: toJson(row.error),
  });
  if (info.changes === 1) return;
  throw effectExistsError(row.idempotency_key, getEffect(db, row.idempotency_key));
}

/** The `effect.transition` op: INVALID_STATE unless the record is in the expected state. */
export function transitionEffect(db: Database.Database, op: EffectTransition): void {
  const to = op.to;
  const info = statements(db).transition.run({
    ...to,
    result: toJson(to.result),
    error: toJson(to.error),
    key: op.key,
    from_status: op.from.status,
    from_owner: op.from.owner,
    now: op.now,
  });
  if (info.changes === 1) return;
  throw effectMovedError(op, getEffect(db, op.key));
}
