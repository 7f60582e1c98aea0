/**
 * The effect journal's rules shared by the adapters (the state machine is in queue/effects.ts):
 * how a row reads back, and the errors of its two compare-and-set writes, so SQLite and
 * PostgreSQL refuse with the same code, message and details.
 */
import { errors, WardenError } from '../core/index.ts';
import type { Row } from './rows.ts';
import type { EffectRecord, StoreOp, TaskError } from './types.ts';

export type EffectInsert = Extract<StoreOp, { op: 'effect.insert' }>;
export type EffectTransition = Extract<StoreOp, { op: 'effect.transition' }>;

export function effectFromRow(r: Row): EffectRecord {
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

/** `effect.insert` found the key taken (`current`: the record now, if it could be read). */
export function effectExistsError(key: string, current: EffectRecord | undefined): WardenError {
  return errors.conflict(
    `effect '${key}' already exists (${current?.status ?? 'unknown'}); read it and decide`,
    { effect_key: key, status: current?.status ?? null },
  );
}

/**
 * `effect.transition` changed no row: NOT_FOUND when the record is gone, else INVALID_STATE
 * naming what it is now.
 */
export function effectMovedError(
  op: EffectTransition,
  current: EffectRecord | undefined,
): WardenError {
  if (!current) return errors.notFound('effect', op.key);
  return new WardenError(
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
