/**
 * Retention for the SQLite adapter: what {@link Store.prune} deletes, in one bounded batch, and
 * the REPLAY_GAP rule for reads from a cursor older than the pruned prefix of a session's log.
 *
 * One `prune` call runs inside ONE write transaction (the caller's) and deletes at most `limit`
 * rows of each kind, oldest first, in this order:
 *   1. dead tasks last changed before `deadBefore`, with their attempts;
 *   2. finished tasks (succeeded, failed, canceled) of no process, before `finishedBefore`, with
 *      their attempts — their idempotency keys live on the row and are released with it;
 *   3. terminated/zombie processes completed before `finishedBefore` that hold no queued,
 *      running or dead task and no pending interrupt, with all their tasks, attempts and
 *      settled interrupts;
 *   4. finished effects (done, failed) last updated before `finishedBefore` whose task no longer
 *      exists (a record of a kept task — a dead one can be redriven — must still answer `done`);
 *   5. per session, the contiguous prefix of its log with `ts` before `eventsBefore`; the
 *      session row keeps the anchor: `pruned_seq` (last pruned seq) and `pruned_hash` (its
 *      hash), so the remaining chain still verifies and a stale cursor is detected.
 * The candidate queries of {@link RetentionSql.hasPrunable} are the same as the deletes', so
 * "prunable" means a prune deletes at least one row, and an idle system never writes.
 *
 * Dead tasks are found per lane on the small `task_dead (lane, updated_at)` partial index: lanes
 * are walked with one index seek each (a skip scan). Finished tasks have no index of their own
 * (maintaining one cost every settle a third of the queue's throughput, measured): they are
 * found by walking tasks in key order — creation order — from the oldest, stopping at the first
 * task created after the cut-off, so a sweep reads only tasks older than the cut-off.
 */
import type Database from 'better-sqlite3';

import {
  assertNoGap,
  eventPageLimit,
  needsGapCheck,
  prunedEvent,
  pruneResult,
} from '../retention-rules.ts';
import type { Row } from '../rows.ts';
import type { EventQuery, EventRecord, NewEvent, PruneInput, PruneResult } from '../types.ts';
import { expandSegment } from './event-log.ts';
import { SQL as STORE_SQL } from './statements.ts';

const FINISHED_STATES = new Set(['succeeded', 'failed', 'canceled']);

/** An effect record's task is gone (or it never had one): only then may the record go. */
const EFFECT_TASK_GONE =
  '(task_id IS NULL OR NOT EXISTS (SELECT 1 FROM task_data t WHERE t.id = effects.task_id))';

const SQL = {
  /** The next lane after ? (in index order) holding a task in state ?. → {lane} | undefined */
  /** The next lane after ? (in index order) holding a dead task. → {lane} | undefined */
  nextDeadLane: `SELECT lane FROM task_state INDEXED BY task_dead WHERE state = 'dead' AND lane > ?
      ORDER BY lane LIMIT 1`,
  /** Every task, oldest first (see #finishedTaskIds). → iterated */
  tasksOldestFirst: `SELECT d.id, d.created_at, d.process_id, s.state, s.updated_at
    FROM task_data d JOIN task_state s ON s.n = d.n ORDER BY d.n`,
  /** Dead tasks (any process) of one lane, oldest first. → {id}[] */
  deadTasks: `SELECT d.id FROM task_state s INDEXED BY task_dead JOIN task_data d ON d.n = s.n
    WHERE s.state = 'dead' AND s.lane = @lane AND s.updated_at < @before ORDER BY s.updated_at LIMIT @limit`,
  /** ? = JSON array of task ids. → changes */
  deleteAttemptsOfTasks: 'DELETE FROM attempts WHERE task_id IN (SELECT value FROM json_each(?))',
  deleteTaskStates: `DELETE FROM task_state WHERE n IN
      (SELECT n FROM task_data WHERE id IN (SELECT value FROM json_each(?)))`,
  deleteTasks: 'DELETE FROM task_data WHERE id IN (SELECT value FROM json_each(?))',
  /**
   * Ended processes with nothing left to run or answer, oldest first. → {pid}[]
   * INDEXED BY: without statistics the planner prefers processes_state and sorts every ended
   * process; the partial index walks only those past the cut-off, already in order.
   */
  finishedProcesses: `SELECT pid FROM process_rows p INDEXED BY processes_finished
    WHERE state IN ('terminated', 'zombie') AND completed_at < ?
      AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.process_id = p.pid AND t.state IN ('queued', 'running', 'dead'))
      AND NOT EXISTS (SELECT 1 FROM interrupts i WHERE i.process_id = p.pid AND i.status = 'pending')
    ORDER BY completed_at LIMIT ?`,
  /** ? = JSON array of pids. → changes */
  deleteAttemptsOfProcesses: `DELETE FROM attempts WHERE task_id IN
      (SELECT id FROM tasks WHERE process_id IN (SELECT value FROM json_each(?)))`,
  deleteTaskStatesOfProcesses: `DELETE FROM task_state WHERE n IN
      (SELECT n FROM task_data WHERE process_id IN (SELECT value FROM json_each(?)))`,
  deleteTasksOfProcesses:
    'DELETE FROM task_data WHERE process_id IN (SELECT value FROM json_each(?))',
  deleteInterruptsOfProcesses: `DELETE FROM interrupts WHERE process_id IN (SELECT value FROM json_each(?))
      AND status <> 'pending'`,
  /** The workflows of these pids (before they go). → {hash}[] */
  workflowsOfProcesses: `SELECT DISTINCT workflow_hash AS hash FROM process_rows
    WHERE pid IN (SELECT value FROM json_each(?))`,
  deleteProcesses: 'DELETE FROM process_rows WHERE pid IN (SELECT value FROM json_each(?))',
  /** Workflow definitions (? = JSON array of hashes) no run uses any more. */
  deleteUnusedWorkflows: `DELETE FROM workflows WHERE hash IN (SELECT value FROM json_each(?))
    AND NOT EXISTS (SELECT 1 FROM process_rows p WHERE p.workflow_hash = workflows.hash)`,
  /**
   * On the effects_finished partial index, with one primary-key probe of tasks per candidate
   * (EXPLAIN QUERY PLAN: SEARCH effects USING INDEX effects_finished, SEARCH t USING PRIMARY
   * KEY). A record whose task still exists is kept whatever its age: a dead task (kept for the
   * dead horizon) can be redriven, and its effects must still answer `done` then. Such records
   * are walked past on every sweep; there are only as many as retention keeps tasks.
   * → {x} | undefined
   */
  anyFinishedEffect: `SELECT 1 AS x FROM effects WHERE status <> 'pending' AND updated_at < ?
      AND ${EFFECT_TASK_GONE} LIMIT 1`,
  deleteFinishedEffects: `DELETE FROM effects WHERE idempotency_key IN (SELECT idempotency_key FROM effects
      WHERE status <> 'pending' AND updated_at < ? AND ${EFFECT_TASK_GONE} ORDER BY updated_at LIMIT ?)`,
  /**
   * Sessions whose oldest kept event is older than ?. → {id, pruned_seq}[]
   * One primary-key probe of event_segments per session: its oldest kept segment.
   */
  sessionsWithOldEvents: `SELECT s.id, s.pruned_seq FROM sessions s
      WHERE (SELECT e.ts FROM event_segments e WHERE e.session_id = s.id AND e.last_seq > s.pruned_seq
        ORDER BY e.last_seq LIMIT 1) < ? LIMIT ?`,
  /** The oldest kept segments of a session. → SegmentRow[] */
  eventPrefix: `SELECT * FROM event_segments WHERE session_id = ? AND last_seq > ? ORDER BY last_seq LIMIT ?`,
  /** Keeps a segment's newer events only (see #cutPrefix). */
  trimSegment: `UPDATE event_segments SET body = ?, first_seq = ?, ts = ?, prev_hash = ?
      WHERE session_id = ? AND last_seq = ?`,
  deleteEventRange:
    'DELETE FROM event_segments WHERE session_id = ? AND last_seq > ? AND last_seq <= ?',
  setAnchor: 'UPDATE sessions SET pruned_seq = ?, pruned_hash = ? WHERE id = ?',
  /** → {pruned_seq} | undefined */
  prunedSeq: 'SELECT pruned_seq FROM sessions WHERE id = ?',
} as const;

type Statements = { -readonly [K in keyof typeof SQL]: Database.Statement };

function prepare(db: Database.Database): Statements {
  const out = {} as Statements;
  for (const [name, sql] of Object.entries(SQL)) out[name as keyof typeof SQL] = db.prepare(sql);
  return out;
}

/**
 * Event reads with the retention rule, on any connection (the store's, or a snapshot's):
 * a cursor below the session's `pruned_seq` is REPLAY_GAP (retention-rules.ts).
 */
export class EventReader {
  readonly #stmt: {
    [K in 'eventsAfter' | 'eventsOfProcessAfter' | 'prunedSeq']: Database.Statement;
  };

  constructor(db: Database.Database) {
    this.#stmt = {
      eventsAfter: db.prepare(STORE_SQL.eventsAfter),
      eventsOfProcessAfter: db.prepare(STORE_SQL.eventsOfProcessAfter),
      prunedSeq: db.prepare(SQL.prunedSeq),
    };
  }

  read(query: EventQuery): EventRecord[] {
    const limit = eventPageLimit(query);
    const after = query.afterSeq ?? 0;
    const segments = (
      query.processId
        ? this.#stmt.eventsOfProcessAfter.iterate(query.sessionId, query.processId, after)
        : this.#stmt.eventsAfter.iterate(query.sessionId, after)
    ) as IterableIterator<Row>;
    const events: EventRecord[] = [];
    for (const segment of segments) {
      expandSegment(segment, after, events);
      if (events.length >= limit) break; // leaving the loop ends the statement
    }
    if (events.length > limit) events.length = limit;
    if (needsGapCheck(query, events)) {
      const anchor = this.#stmt.prunedSeq.get(query.sessionId) as
        { pruned_seq: number } | undefined;
      assertNoGap(query, anchor?.pruned_seq);
    }
    return events;
  }
}

export class RetentionSql {
  readonly #stmt: Statements;

  constructor(db: Database.Database) {
    this.#stmt = prepare(db);
  }

  /** Whether {@link prune} would delete anything; reads only. */
  hasPrunable(policy: PruneInput['policy']): boolean {
    const s = this.#stmt;
    return (
      this.#deadTaskIds(policy.deadBefore, 1).length > 0 ||
      this.#finishedTaskIds(policy.finishedBefore, 1).length > 0 ||
      s.finishedProcesses.all(policy.finishedBefore, 1).length > 0 ||
      s.anyFinishedEffect.get(policy.finishedBefore) !== undefined ||
      s.sessionsWithOldEvents.all(policy.eventsBefore, 1).length > 0
    );
  }

  /**
   * Deletes one batch; MUST run inside a write transaction. `append` adds the
   * `retention.pruned` event to the same transaction (called only when something was deleted).
   */
  prune(input: PruneInput, append: (event: NewEvent) => void): PruneResult {
    const s = this.#stmt;
    const { policy, limit } = input;

    const dead = this.#deadTaskIds(policy.deadBefore, limit);
    const finished = this.#finishedTaskIds(policy.finishedBefore, limit);
    const taskIds = JSON.stringify([...dead, ...finished]);
    let attempts = s.deleteAttemptsOfTasks.run(taskIds).changes;
    s.deleteTaskStates.run(taskIds);
    s.deleteTasks.run(taskIds);

    const pids = (
      s.finishedProcesses.all(policy.finishedBefore, limit) as Array<{ pid: string }>
    ).map((r) => r.pid);
    const pidJson = JSON.stringify(pids);
    attempts += s.deleteAttemptsOfProcesses.run(pidJson).changes;
    s.deleteTaskStatesOfProcesses.run(pidJson);
    const processTasks = s.deleteTasksOfProcesses.run(pidJson).changes;
    const interrupts = s.deleteInterruptsOfProcesses.run(pidJson).changes;
    const workflows = (s.workflowsOfProcesses.all(pidJson) as Array<{ hash: string }>).map(
      (r) => r.hash,
    );
    s.deleteProcesses.run(pidJson);
    if (workflows.length > 0) s.deleteUnusedWorkflows.run(JSON.stringify(workflows));

    const effects = s.deleteFinishedEffects.run(policy.finishedBefore, limit).changes;
    const events = this.#pruneEvents(policy.eventsBefore, limit);

    const result = pruneResult(
      {
        tasks: finished.length + processTasks,
        dead_tasks: dead.length,
        attempts,
        processes: pids.length,
        interrupts,
        effects,
        events: events.events,
        sessions: events.sessions,
      },
      limit,
      finished.length,
      events.more,
    );
    const event = prunedEvent(input, result);
    if (event) append(event);
    return result;
  }

  /** Deletes each old session's prefix, up to `limit` events in all, and moves its anchor. */
  #pruneEvents(before: number, limit: number): { events: number; sessions: number; more: boolean } {
    const s = this.#stmt;
    const sessions = s.sessionsWithOldEvents.all(before, limit) as Array<{
      id: string;
      pruned_seq: number;
    }>;
    let budget = limit;
    let deleted = 0;
    let touched = 0;
    for (const session of sessions) {
      if (budget === 0) break;
      const cut = this.#cutPrefix(session.id, session.pruned_seq, before, budget);
      if (!cut) continue;
      budget -= cut.events;
      deleted += cut.events;
      const last = cut.last;
      s.setAnchor.run(last.seq, last.hash, session.id);
      touched += 1;
    }
    return {
      events: deleted,
      sessions: touched,
      more: budget <= 0 || sessions.length === limit,
    };
  }

  /**
   * Deletes a session's oldest events older than `before`, at most `budget`, in whole segments
   * where it can; a segment the cut ends inside is rewritten to keep its newer events (its
   * first seq and prev_hash move to the cut), so the limit is exact. → the new anchor
   */
  #cutPrefix(
    sessionId: string,
    prunedSeq: number,
    before: number,
    budget: number,
  ): { events: number; last: { seq: number; hash: string } } | null {
    const s = this.#stmt;
    const segments = s.eventPrefix.all(sessionId, prunedSeq, budget) as Row[];
    let events = 0;
    let last: { seq: number; hash: string } | null = null;
    let through = prunedSeq; // whole segments up to here go
    for (const segment of segments) {
      const all = expandSegment(segment);
      let keep = 0;
      while (keep < all.length && all[keep]!.ts < before && events + keep < budget) keep += 1;
      if (keep === 0) break;
      events += keep;
      last = { seq: all[keep - 1]!.seq, hash: all[keep - 1]!.hash };
      if (keep === all.length) {
        through = segment.last_seq as number;
        continue;
      }
      // Cut inside this segment: keep its tail, chained to the new anchor.
      const items = (JSON.parse(segment.body as string) as unknown[]).slice(keep);
      s.trimSegment.run(
        JSON.stringify(items),
        all[keep]!.seq,
        all[keep]!.ts,
        last.hash,
        sessionId,
        segment.last_seq,
      );
      break;
    }
    if (!last) return null;
    if (through > prunedSeq) s.deleteEventRange.run(sessionId, prunedSeq, through);
    return { events, last };
  }

  #deadTaskIds(before: number, limit: number): string[] {
    const ids: string[] = [];
    for (const lane of this.#deadLanes()) {
      if (ids.length >= limit) break;
      for (const r of this.#stmt.deadTasks.all({
        lane,
        before,
        limit: limit - ids.length,
      }) as Array<{
        id: string;
      }>)
        ids.push(r.id);
    }
    return ids;
  }

  /** Finished tasks of no process before the cut-off, oldest first (see the header). */
  #finishedTaskIds(before: number, limit: number): string[] {
    const ids: string[] = [];
    if (limit <= 0) return ids;
    for (const row of this.#stmt.tasksOldestFirst.iterate() as IterableIterator<{
      id: string;
      created_at: number;
      process_id: string | null;
      state: string;
      updated_at: number;
    }>) {
      if (row.created_at >= before) break; // every later task is newer: leaving ends the scan
      if (FINISHED_STATES.has(row.state) && row.updated_at < before && row.process_id === null) {
        ids.push(row.id);
        if (ids.length >= limit) break;
      }
    }
    return ids;
  }

  /** Lanes holding a dead task, one index seek each. */
  *#deadLanes(): Generator<string> {
    let lane = '';
    for (;;) {
      const row = this.#stmt.nextDeadLane.get(lane) as { lane: string } | undefined;
      if (!row) return;
      lane = row.lane;
      yield lane;
    }
  }
}
