/**
 * The queue's hot write paths for the SQLite adapter, run inside a write transaction: claim
 * (atomic, with a fresh lease token per task), batched settle and heartbeat, submit with
 * idempotency and lane depth checks.
 */
import type Database from 'better-sqlite3';

import type { ClaimedTask, ClaimRequest } from '../types.ts';
import type { EventBatch, EventLog } from './event-log.ts';
import { type Row, taskFromRow } from './rows.ts';
import type { StatementName } from './statements.ts';

type Statements = { readonly [K in StatementName]: Database.Statement };

export function newLeaseToken(): string {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return `lt_${Buffer.from(bytes).toString('base64url')}`;
}

/** Claims up to `limit` due tasks across `lanes` (in order), each with a fresh lease token. */
export function claimTasks(
  stmt: Statements,
  log: EventLog,
  batch: EventBatch,
  request: ClaimRequest,
): ClaimedTask[] {
  if (request.kinds?.length === 0) return [];
  const claimed: ClaimedTask[] = [];
  const kinds = request.kinds ? JSON.stringify(request.kinds) : null;
  const expires = request.now + request.leaseMs;
  for (const lane of request.lanes) {
    const room = request.limit - claimed.length;
    if (room <= 0) break;
    const ids = (
      kinds
        ? stmt.taskDueOfKinds.all(lane, request.now, kinds, room)
        : stmt.taskDue.all(lane, request.now, room)
    ) as Array<{ id: string }>;
    for (const { id } of ids) {
      const token = newLeaseToken();
      const row = stmt.taskClaim.get({
        id,
        owner: request.workerId,
        token,
        expires,
        now: request.now,
      }) as Row | undefined;
      if (!row) continue;
      const task = taskFromRow(row);
      stmt.attemptInsert.run(task.id, task.attempts, token, request.workerId, request.now);
      log.append(batch, {
        session_id: task.session_id,
        type: 'task.claimed',
        trace_id: task.trace_id,
        process_id: task.process_id,
        task_id: task.id,
        attempt: task.attempts,
        data: { lane: task.lane, worker_id: request.workerId, lease_expires_at: expires },
      });
      claimed.push({ task, attempt: task.attempts, leaseToken: token });
    }
  }
  return claimed;
}
