/** The parameter schema for a Store argument, shared by every area that takes one. */
import { z } from 'zod';

import {
  clockParam,
  describeValue,
  INTERRUPT_STATUSES,
  invalidParams,
  param,
  PROCESS_STATES,
  TASK_STATES,
} from '../core/index.ts';
import type { Store } from './types.ts';

/** A Store (duck-typed, so a store from another copy of Warden passes too). */
export const storeParam = param.withMethods<Store>(
  'a Store from openSqliteStore() (open it with await openSqliteStore({ file }))',
  ['commit', 'onCommit', 'getProcess', 'readEvents'],
);

export const openSqliteStoreArgs = z.object({
  options: param.options(
    {
      file: param.nonEmpty("a database file path, or ':memory:'", 4_096),
      durability: param.oneOf(['fast', 'strict']).optional(),
      clock: clockParam.optional(),
      busyTimeoutMs: param.int(0, 3_600_000).optional(),
      mustExist: param.boolean().optional(),
      intent: param.oneOf(['read', 'write']).optional(),
    },
    "an options object { file, durability?, … } (e.g. { file: './warden.db' })",
  ),
});

export const openPostgresStoreArgs = z.object({
  options: param.options(
    {
      url: param.nonEmpty('a postgres:// URL', 4_096),
      schema: param.nonEmpty('a schema name', 63).optional(),
      poolSize: param.int(1, 1_000).optional(),
      statementTimeoutMs: param.int(0, 86_400_000).optional(),
      connectTimeoutMs: param.int(0, 600_000).optional(),
      retryMs: param.int(0, 3_600_000).optional(),
      durability: param.oneOf(['fast', 'strict']).optional(),
      clock: clockParam.optional(),
    },
    "an options object { url, schema?, … } (e.g. { url: 'postgres://localhost/warden' })",
  ),
});

const id = (what: string) => param.nonEmpty(`${what} string`, 512);
const limit = param.int(1).optional();
const statesOf = <const V extends readonly [string, ...string[]]>(values: V) =>
  z
    .array(param.oneOf(values), {
      error: `expected an array of states such as ['${values[0]}']`,
    })
    .optional();

/** Store.readEvents(query). */
export const eventQueryArgs = z.object({
  query: param.options(
    {
      sessionId: id('a session id'),
      afterSeq: param.int(0).optional(),
      processId: id('a process id').optional(),
      limit,
    },
    'an EventQuery { sessionId, afterSeq?, processId?, limit? }',
  ),
});

export const processFilterArgs = z.object({
  filter: param.options(
    { states: statesOf(PROCESS_STATES), sessionId: id('a session id').optional(), limit },
    'a filter { states?, sessionId?, limit? }',
  ),
});

export const taskFilterArgs = z.object({
  filter: param.options(
    {
      states: statesOf(TASK_STATES),
      lane: param.nonEmpty('a lane name', 64).optional(),
      processId: id('a process id').optional(),
      limit,
    },
    'a filter { states?, lane?, processId?, limit? }',
  ),
});

export const interruptFilterArgs = z.object({
  filter: param.options(
    {
      status: param.oneOf(INTERRUPT_STATUSES).optional(),
      processId: id('a process id').optional(),
      limit,
    },
    'a filter { status?, processId?, limit? }',
  ),
});

/**
 * A record id or key for a Store read, checked by hand (reads by id are on the kernel's
 * per-step path: a typeof test, no schema).
 */
export function checkReadId(where: string, name: string, value: unknown): void {
  if (typeof value === 'string' && value.length > 0 && value.length <= 4_096) return;
  throw invalidParams(where, [
    { path: name, message: `expected a non-empty ${name} string (got ${describeValue(value)})` },
  ]);
}

/** Store.deleteSession(input). */
export const deleteSessionArgs = z.object({
  input: param.options(
    {
      id: id('a session id'),
      event: param.options(
        { session_id: id('a session id'), trace_id: id('a trace id') },
        "the `session.deleted` event's target { session_id, trace_id } (the system session)",
      ),
    },
    'an input { id, event: { session_id, trace_id } }',
  ),
});
