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

import { errors, WardenError } from '../../core/index.ts';
import type { EffectRecord, StoreOp, TaskError } from '../types.ts';
import { type Row, toJson } from '../rows.ts';

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
export function insertEffect(
  db: Database.Database,
  op: Extract<StoreOp, { op: 'effect.insert' }>,
): void {
  const row = op.row;
  const info = statements(db).insert.run({
    ...row,
    result: toJson(row.result),
    error: toJson(row.error),
  });
  if (info.changes === 1) return;
  const current = getEffect(db, row.idempotency_key);
  throw errors.conflict(
    `effect '${row.idempotency_key}' already exists (${current?.status ?? 'unknown'}); read it and decide`,
    { effect_key: row.idempotency_key, status: current?.status ?? null },
  );
}

/** The `effect.transition` op: INVALID_STATE unless the record is in the expected state. */
export function transitionEffect(
  db: Database.Database,
  op: Extract<StoreOp, { op: 'effect.transition' }>,
): void {
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
  const current = getEffect(db, op.key);
  if (!current) throw errors.notFound('effect', op.key);
  throw new WardenError(
    'INVALID_STATE',
    `effect '${op.key}' is ${current.status}${current.owner === op.from.owner ? '' : ' under another owner'}, not ${op.from.status} as expected; nothing was changed`,
    {
      details: {
        effect_key: op.key,
        status: current.status,
        owner_worker: current.owner_worker,
        expected: op.from.status,
      },
    },
  );
}

function effectFromRow(r: Row): EffectRecord {
  return {
    idempotency_key: r.idempotency_key as string,
    tool: r.tool as string,
    request_hash: r.request_hash as string,
    status: r.status as EffectRecord['status'],
    result_hash: (r.result_hash as string | null) ?? null,
    result: r.result === null || r.result === undefined ? null : JSON.parse(r.result as string),
    owner: (r.owner as string | null) ?? null,
    owner_worker: (r.owner_worker as string | null) ?? null,
    task_id: (r.task_id as string | null) ?? null,
    session_id: (r.session_id as string | null) ?? null,
    error:
      r.error === null || r.error === undefined
        ? null
        : (JSON.parse(r.error as string) as TaskError),
    created_at: r.created_at as number,
    updated_at: r.updated_at as number,
  };
}
