/**
 * {@link Store.deleteSession} for the PostgreSQL adapter: a session and everything that belongs
 * to it, in the caller's ONE transaction (the rules shared with SQLite — what may not be
 * deleted, the live-work refusal, the event — are in ../session-delete-rules.ts).
 *
 * The session row is locked `FOR UPDATE` first, so no other node can add work to it while it
 * goes: inserting a task, run or interrupt checks the session's foreign key (a key-share lock,
 * which waits for this one and then fails on the deleted row), and appending an event locks the
 * session head. Only then is live work looked for: work another node added just before is seen,
 * and refused. The `session.deleted` event's head (the system session) is locked at commit, like
 * any append's; a transaction that appends to both sessions at that moment can deadlock with
 * this one, which PostgreSQL detects and the store retries.
 *
 * Rows go child first in bounded statements (attempts and effect records with their tasks,
 * then interrupts, runs and their unused workflow definitions, the event log by seq range,
 * fair-queueing clocks, the session row): each statement stays under the statement timeout,
 * though the whole deletion is one transaction — prune a very long history first.
 */
import { errors } from '../../core/index.ts';
import {
  liveWorkError,
  NAMED_LIVE,
  sessionDeletedEvent,
  undeletableError,
} from '../session-delete-rules.ts';
import type { DeleteSessionCounts, DeleteSessionInput } from '../types.ts';
import type { PgTx } from './tx.ts';
import { deleteUnusedWorkflows } from './workflow-gc.ts';

/** Tasks, interrupts or runs per statement. */
const CHUNK = 1_000;
/** Events per statement (a seq range, on the primary key). */
const EVENT_CHUNK = 10_000;

const LIVE_PROCESS = `session_id = $1 AND state NOT IN ('terminated', 'zombie')`;
const LIVE_TASK = `session_id = $1 AND state IN ('queued', 'running')`;
const PENDING_INTERRUPT = `session_id = $1 AND status = 'pending'`;

const SQL = {
  /** → {id, key, pruned_seq, last_seq} | none */
  lockSession: 'SELECT id, key, pruned_seq, last_seq FROM sessions WHERE id = $1 FOR UPDATE',
  /** $1 session, $2 ids named per kind. */
  live: `SELECT
      ARRAY(SELECT pid FROM processes WHERE ${LIVE_PROCESS} ORDER BY created_at LIMIT $2) AS processes,
      ARRAY(SELECT id FROM tasks WHERE ${LIVE_TASK} ORDER BY n LIMIT $2) AS tasks,
      ARRAY(SELECT id FROM interrupts WHERE ${PENDING_INTERRUPT} ORDER BY created_at LIMIT $2) AS interrupts,
      (SELECT count(*) FROM processes WHERE ${LIVE_PROCESS}) AS process_count,
      (SELECT count(*) FROM tasks WHERE ${LIVE_TASK}) AS task_count,
      (SELECT count(*) FROM interrupts WHERE ${PENDING_INTERRUPT}) AS interrupt_count`,
  /** The next chunk of tasks, with their attempts and effect records. → counts */
  deleteTasks: `WITH t AS (
      DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE session_id = $1 LIMIT $2) RETURNING id
    ), a AS (
      DELETE FROM attempts WHERE task_id IN (SELECT id FROM t) RETURNING 1
    ), f AS (
      DELETE FROM effects WHERE task_id IN (SELECT id FROM t) RETURNING 1
    )
    SELECT (SELECT count(*) FROM t) AS tasks, (SELECT count(*) FROM a) AS attempts,
      (SELECT count(*) FROM f) AS effects`,
  deleteInterrupts: `DELETE FROM interrupts WHERE id IN
      (SELECT id FROM interrupts WHERE session_id = $1 LIMIT $2)`,
  /** → {n, hashes} */
  deleteProcesses: `WITH p AS (
      DELETE FROM processes WHERE pid IN (SELECT pid FROM processes WHERE session_id = $1 LIMIT $2)
      RETURNING workflow_hash
    )
    SELECT count(*) AS n, coalesce(array_agg(DISTINCT workflow_hash), '{}') AS hashes FROM p`,
  deleteEvents: 'DELETE FROM events WHERE session_id = $1 AND seq > $2 AND seq <= $3',
  deleteFairClocks: 'DELETE FROM fair_clock WHERE session_id = $1',
  deleteSession: 'DELETE FROM sessions WHERE id = $1',
} as const;

interface LockedSession {
  readonly id: string;
  readonly key: string;
  readonly pruned_seq: number;
  readonly last_seq: number;
}

/**
 * Deletes the session; MUST run inside the caller's transaction, which it adds the
 * `session.deleted` event to. NOT_FOUND when the session does not exist; INVALID_STATE (nothing
 * deleted) for the `system` session, the event's own target, or a session with live work.
 */
export async function deleteSession(
  tx: PgTx,
  input: DeleteSessionInput,
): Promise<DeleteSessionCounts> {
  const session = await lockSession(tx, input.id);
  if (!session) throw errors.notFound('session', input.id);
  const undeletable = undeletableError(session, input);
  if (undeletable) throw undeletable;
  await refuseLive(tx, session);

  let tasks = 0;
  let attempts = 0;
  let effects = 0;
  for (let deleted = CHUNK; deleted === CHUNK;) {
    const r = (
      await tx.query<{ tasks: number; attempts: number; effects: number }>(SQL.deleteTasks, [
        session.id,
        CHUNK,
      ])
    ).rows[0]!;
    deleted = Number(r.tasks);
    tasks += deleted;
    attempts += Number(r.attempts);
    effects += Number(r.effects);
  }

  let interrupts = 0;
  for (let deleted = CHUNK; deleted === CHUNK;) {
    deleted = (await tx.query(SQL.deleteInterrupts, [session.id, CHUNK])).rowCount;
    interrupts += deleted;
  }

  let processes = 0;
  for (let deleted = CHUNK; deleted === CHUNK;) {
    const r = (
      await tx.query<{ n: number; hashes: string[] }>(SQL.deleteProcesses, [session.id, CHUNK])
    ).rows[0]!;
    deleted = Number(r.n);
    processes += deleted;
    await deleteUnusedWorkflows(tx, r.hashes);
  }

  let events = 0;
  for (let after = session.pruned_seq; after < session.last_seq; after += EVENT_CHUNK) {
    const through = Math.min(after + EVENT_CHUNK, session.last_seq);
    events += (await tx.query(SQL.deleteEvents, [session.id, after, through])).rowCount;
  }

  await tx.query(SQL.deleteFairClocks, [session.id]);
  await tx.query(SQL.deleteSession, [session.id]);
  const counts: DeleteSessionCounts = { events, processes, tasks, attempts, interrupts, effects };
  tx.append(sessionDeletedEvent(input, session, counts));
  return counts;
}

/** Locks the session to delete. → the session, or undefined when it does not exist */
async function lockSession(tx: PgTx, id: string): Promise<LockedSession | undefined> {
  const row = (
    await tx.query<{ id: string; key: string; pruned_seq: number; last_seq: number }>(
      SQL.lockSession,
      [id],
    )
  ).rows[0];
  if (!row) return undefined;
  return {
    id: row.id,
    key: row.key,
    pruned_seq: Number(row.pruned_seq),
    last_seq: Number(row.last_seq),
  };
}

/** INVALID_STATE naming the session's live work, if it has any. */
async function refuseLive(tx: PgTx, session: LockedSession): Promise<void> {
  const r = (
    await tx.query<{
      processes: string[];
      tasks: string[];
      interrupts: string[];
      process_count: number;
      task_count: number;
      interrupt_count: number;
    }>(SQL.live, [session.id, NAMED_LIVE])
  ).rows[0]!;
  const refusal = liveWorkError(session, {
    ids: { processes: r.processes, tasks: r.tasks, interrupts: r.interrupts },
    counts: {
      processes: Number(r.process_count),
      tasks: Number(r.task_count),
      interrupts: Number(r.interrupt_count),
    },
  });
  if (refusal) throw refusal;
}
