/**
 * {@link Store.deleteSession} for the SQLite adapter: a session and everything that belongs to
 * it, in the caller's ONE write transaction.
 *
 * Refused (INVALID_STATE, nothing deleted) while the session has live work: a process that is
 * not terminated or zombie, a queued or running task, or a pending interrupt — deleting those
 * would pull rows from under a worker or a person. The `system` session holds kernel-wide
 * events and is never deleted.
 *
 * Rows go child first (attempts and effect records with their task, then tasks, interrupts,
 * processes, the event log, fair-queueing clocks, the session row), each kind in statements of
 * at most {@link CHUNK} rows, so no statement builds an unbounded id list. It is still one
 * transaction: a session with a very long history holds the write lock while it goes.
 */
import type Database from 'better-sqlite3';

import { errors } from '../../core/index.ts';
import {
  liveWorkError,
  NAMED_LIVE,
  sessionDeletedEvent,
  undeletableError,
} from '../session-delete-rules.ts';
import type { DeleteSessionCounts, DeleteSessionInput, NewEvent } from '../types.ts';

/** Rows per statement. */
const CHUNK = 500;

const SQL = {
  /** → {id, key} | undefined */
  session: 'SELECT id, key FROM sessions WHERE id = ?',
  /** Live work (see the header); @limit ids each. → {pid}[] / {id}[] */
  liveProcesses: `SELECT pid FROM process_rows WHERE session_id = @id
      AND state NOT IN ('terminated', 'zombie') ORDER BY created_at LIMIT @limit`,
  liveProcessCount: `SELECT count(*) AS n FROM process_rows WHERE session_id = ?
      AND state NOT IN ('terminated', 'zombie')`,
  liveTasks: `SELECT d.id FROM task_data d JOIN task_state s ON s.n = d.n WHERE d.session_id = @id
      AND s.state IN ('queued', 'running') ORDER BY d.n LIMIT @limit`,
  liveTaskCount: `SELECT count(*) AS n FROM task_data d JOIN task_state s ON s.n = d.n
      WHERE d.session_id = ? AND s.state IN ('queued', 'running')`,
  pendingInterrupts: `SELECT id FROM interrupts WHERE session_id = @id AND status = 'pending'
      ORDER BY created_at LIMIT @limit`,
  pendingInterruptCount: `SELECT count(*) AS n FROM interrupts WHERE session_id = ? AND status = 'pending'`,

  /** The next chunk of the session's tasks. → {n, id}[] */
  taskChunk: 'SELECT n, id FROM task_data WHERE session_id = ? LIMIT ?',
  /** ? = JSON array of task ids / of n. → changes */
  deleteAttempts: 'DELETE FROM attempts WHERE task_id IN (SELECT value FROM json_each(?))',
  deleteEffects: 'DELETE FROM effects WHERE task_id IN (SELECT value FROM json_each(?))',
  deleteTaskStates: 'DELETE FROM task_state WHERE n IN (SELECT value FROM json_each(?))',
  deleteTaskData: 'DELETE FROM task_data WHERE n IN (SELECT value FROM json_each(?))',
  deleteInterrupts: `DELETE FROM interrupts WHERE rowid IN
      (SELECT rowid FROM interrupts WHERE session_id = ? LIMIT ?)`,
  /** The next chunk of the session's processes. → {pid, workflow_hash}[] */
  processChunk: 'SELECT pid, workflow_hash FROM process_rows WHERE session_id = ? LIMIT ?',
  deleteProcesses: 'DELETE FROM process_rows WHERE pid IN (SELECT value FROM json_each(?))',
  /** Workflow definitions (? = JSON array of hashes) no run uses any more. */
  deleteUnusedWorkflows: `DELETE FROM workflows WHERE hash IN (SELECT value FROM json_each(?))
    AND NOT EXISTS (SELECT 1 FROM process_rows p WHERE p.workflow_hash = workflows.hash)`,
  /** The next chunk of the session's log. → {first_seq, last_seq}[] */
  segmentChunk: `SELECT first_seq, last_seq FROM event_segments WHERE session_id = ?
      ORDER BY last_seq LIMIT ?`,
  deleteSegmentsThrough: 'DELETE FROM event_segments WHERE session_id = ? AND last_seq <= ?',
  deleteFairClocks: 'DELETE FROM fair_clock WHERE session_id = ?',
  deleteSession: 'DELETE FROM sessions WHERE id = ?',
} as const;

type Statements = { -readonly [K in keyof typeof SQL]: Database.Statement };

export class SessionDeleteSql {
  readonly #stmt: Statements;

  constructor(db: Database.Database) {
    const out = {} as Statements;
    for (const [name, sql] of Object.entries(SQL)) out[name as keyof typeof SQL] = db.prepare(sql);
    this.#stmt = out;
  }

  /**
   * Deletes the session; MUST run inside a write transaction. `append` adds the
   * `session.deleted` event to the same transaction.
   */
  delete(input: DeleteSessionInput, append: (event: NewEvent) => void): DeleteSessionCounts {
    const s = this.#stmt;
    const session = s.session.get(input.id) as { id: string; key: string } | undefined;
    if (!session) throw errors.notFound('session', input.id);
    const undeletable = undeletableError(session, input);
    if (undeletable) throw undeletable;
    this.#refuseLive(session);

    let tasks = 0;
    let attempts = 0;
    let effects = 0;
    for (;;) {
      const chunk = s.taskChunk.all(session.id, CHUNK) as Array<{ n: number; id: string }>;
      if (chunk.length === 0) break;
      const ids = JSON.stringify(chunk.map((t) => t.id));
      const ns = JSON.stringify(chunk.map((t) => t.n));
      attempts += s.deleteAttempts.run(ids).changes;
      effects += s.deleteEffects.run(ids).changes;
      s.deleteTaskStates.run(ns);
      tasks += s.deleteTaskData.run(ns).changes;
    }

    let interrupts = 0;
    for (let deleted = CHUNK; deleted === CHUNK;) {
      deleted = s.deleteInterrupts.run(session.id, CHUNK).changes;
      interrupts += deleted;
    }

    let processes = 0;
    for (;;) {
      const chunk = s.processChunk.all(session.id, CHUNK) as Array<{
        pid: string;
        workflow_hash: string;
      }>;
      if (chunk.length === 0) break;
      processes += s.deleteProcesses.run(JSON.stringify(chunk.map((p) => p.pid))).changes;
      s.deleteUnusedWorkflows.run(JSON.stringify([...new Set(chunk.map((p) => p.workflow_hash))]));
    }

    let events = 0;
    for (;;) {
      const chunk = s.segmentChunk.all(session.id, CHUNK) as Array<{
        first_seq: number;
        last_seq: number;
      }>;
      if (chunk.length === 0) break;
      for (const segment of chunk) events += segment.last_seq - segment.first_seq + 1;
      s.deleteSegmentsThrough.run(session.id, chunk.at(-1)!.last_seq);
    }

    s.deleteFairClocks.run(session.id);
    s.deleteSession.run(session.id);
    const counts: DeleteSessionCounts = { events, processes, tasks, attempts, interrupts, effects };
    append(sessionDeletedEvent(input, session, counts));
    return counts;
  }

  /** INVALID_STATE naming the session's live work, if it has any. */
  #refuseLive(session: { id: string; key: string }): void {
    const s = this.#stmt;
    const args = { id: session.id, limit: NAMED_LIVE };
    const count = (stmt: Database.Statement) => (stmt.get(session.id) as { n: number }).n;
    const ids = {
      processes: (s.liveProcesses.all(args) as Array<{ pid: string }>).map((r) => r.pid),
      tasks: (s.liveTasks.all(args) as Array<{ id: string }>).map((r) => r.id),
      interrupts: (s.pendingInterrupts.all(args) as Array<{ id: string }>).map((r) => r.id),
    };
    if (ids.processes.length + ids.tasks.length + ids.interrupts.length === 0) return;
    const counts = {
      processes: count(s.liveProcessCount),
      tasks: count(s.liveTaskCount),
      interrupts: count(s.pendingInterruptCount),
    };
    const refusal = liveWorkError(session, { ids, counts });
    if (refusal) throw refusal;
  }
}
