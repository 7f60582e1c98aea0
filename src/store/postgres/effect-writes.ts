/**
 * The effect journal's SQL for the PostgreSQL adapter (the state machine is in queue/effects.ts,
 * the errors in ../effect-rules.ts). Both writes run inside a {@link Store.commit} transaction,
 * so they compose with a lease fence, their event and other updates:
 *
 * - insert: `INSERT … ON CONFLICT DO NOTHING`; no row inserted = the key exists (CONFLICT). A
 *   concurrent insert of the same key by another node makes this statement wait for that
 *   transaction: if it commits, nothing is inserted here and the commit aborts with CONFLICT
 *   (never a unique violation); if it rolls back, this insert goes ahead.
 * - transition: `UPDATE … WHERE key AND status = expected AND owner IS NOT DISTINCT FROM
 *   expected`; no row changed = someone else moved the record first (INVALID_STATE). Under READ
 *   COMMITTED a row changed by a concurrent transaction is re-checked against the WHERE after
 *   that transaction commits, so two nodes racing the same transition never both apply it, and a
 *   `done` is never overwritten.
 */
import {
  effectExistsError,
  effectFromRow,
  type EffectInsert,
  effectMovedError,
  type EffectTransition,
} from '../effect-rules.ts';
import { toJson } from '../rows.ts';
import type { EffectRecord } from '../types.ts';
import type { PgTx } from './tx.ts';

/** The read side of a connection or transaction: just `query`. */
type Queryable = Pick<PgTx, 'query'>;

const SQL = {
  byKey: 'SELECT * FROM effects WHERE idempotency_key = $1',
  insert: `INSERT INTO effects (idempotency_key, tool, request_hash, status, result_hash, result, owner,
      owner_worker, task_id, session_id, error, created_at, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
    ON CONFLICT (idempotency_key) DO NOTHING`,
  transition: `UPDATE effects SET status = $1, owner = $2, owner_worker = $3, task_id = $4,
      session_id = $5, result_hash = $6, result = $7, error = $8, updated_at = $9
    WHERE idempotency_key = $10 AND status = $11 AND owner IS NOT DISTINCT FROM $12::text`,
} as const;

/** The effect record of `key`, or undefined. */
export async function getEffect(q: Queryable, key: string): Promise<EffectRecord | undefined> {
  const { rows } = await q.query(SQL.byKey, [key]);
  return rows[0] === undefined ? undefined : effectFromRow(rows[0]);
}

/** The `effect.insert` op: CONFLICT when the key exists (the caller reads it and decides). */
export async function insertEffect(tx: PgTx, op: EffectInsert): Promise<void> {
  const r = op.row;
  const { rowCount } = await tx.query(SQL.insert, [
    r.idempotency_key,
    r.tool,
    r.request_hash,
    r.status,
    r.result_hash,
    toJson(r.result),
    r.owner,
    r.owner_worker,
    r.task_id,
    r.session_id,
    toJson(r.error),
    r.created_at,
    r.updated_at,
  ]);
  if (rowCount === 1) return;
  // A new statement: under READ COMMITTED it sees the row the other transaction committed.
  throw effectExistsError(r.idempotency_key, await getEffect(tx, r.idempotency_key));
}

/** The `effect.transition` op: INVALID_STATE unless the record is in the expected state. */
export async function transitionEffect(tx: PgTx, op: EffectTransition): Promise<void> {
  const to = op.to;
  const { rowCount } = await tx.query(SQL.transition, [
    to.status,
    to.owner,
    to.owner_worker,
    to.task_id,
    to.session_id,
    to.result_hash,
    toJson(to.result),
    toJson(to.error),
    op.now,
    op.key,
    op.from.status,
    op.from.owner,
  ]);
  if (rowCount === 1) return;
  throw effectMovedError(op, await getEffect(tx, op.key));
}
