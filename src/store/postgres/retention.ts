/**
 * Retention for the PostgreSQL adapter: what {@link Store.prune} deletes in one bounded batch,
 * and event reads with the REPLAY_GAP rule (the rules shared with SQLite are in
 * ../retention-rules.ts). One `prune` runs inside the caller's ONE transaction and deletes at
 * most `limit` rows of each kind, oldest first, in the order the SQLite adapter does:
 *   1. dead tasks last changed before `deadBefore`, with their attempts;
 *   2. finished tasks (succeeded, failed, canceled) of no process before `finishedBefore`, with
 *      their attempts (their idempotency keys live on the row and go with it);
 *   3. terminated/zombie processes completed before `finishedBefore` holding no queued, running
 *      or dead task and no pending interrupt, with their finished tasks, attempts and settled
 *      interrupts, and workflow definitions no run uses any more (workflow-gc.ts);
 *   4. finished effects (done, failed) last updated before `finishedBefore` whose task is gone;
 *   5. per session, the contiguous prefix of its log with `ts` before `eventsBefore`; the
 *      session row keeps the anchor (`pruned_seq`, `pruned_hash`).
 *
 * Several nodes may prune at once, and other nodes keep writing meanwhile, so unlike SQLite (one
 * writer at a time) nothing here trusts a read made before its write:
 * - candidates are picked and deleted in ONE statement, `FOR UPDATE SKIP LOCKED`: a row another
 *   transaction is changing is skipped (taken by the next sweep), and a row locked here is
 *   re-checked against the condition (READ COMMITTED re-evaluates a changed row), so a dead task
 *   redriven or an effect retried meanwhile is never deleted;
 * - before cutting a session's prefix, the session heads are locked `FOR NO KEY UPDATE` in id
 *   order — the lock every event append takes at commit (event-log.ts) — together with the
 *   head the `retention.pruned` event will go to, so no append interleaves with the cut, and
 *   `pruned_seq` is re-read under the lock (another node may have pruned since).
 */
import {
  assertNoGap,
  eventPageLimit,
  needsGapCheck,
  prunedEvent,
  pruneResult,
} from '../retention-rules.ts';
import type {
  EventQuery,
  EventRecord,
  PruneInput,
  PruneResult,
  RetentionPolicy,
} from '../types.ts';
import { eventFromRow } from './event-log.ts';
import type { PgTx } from './tx.ts';
import { deleteUnusedWorkflows } from './workflow-gc.ts';

type Queryable = Pick<PgTx, 'query'>;

const FINISHED = `('succeeded', 'failed', 'canceled')`;

/** Candidate conditions, the same for {@link hasPrunable} and {@link prune}; `b`: the cut-off. */
const WHERE = {
  /** On the tasks_dead partial index (the dead-letter queue is small). */
  dead: (b: string) => `state = 'dead' AND updated_at < ${b}`,
  /** On tasks_finished, oldest first. */
  finished: (b: string) => `state IN ${FINISHED} AND updated_at < ${b} AND process_id IS NULL`,
  /** On processes_finished. */
  process: (b: string) => `state IN ('terminated', 'zombie') AND completed_at < ${b}
    AND NOT EXISTS (SELECT 1 FROM tasks t WHERE t.process_id = p.pid AND t.state IN ('queued', 'running', 'dead'))
    AND NOT EXISTS (SELECT 1 FROM interrupts i WHERE i.process_id = p.pid AND i.status = 'pending')`,
  /**
   * On effects_finished. A record whose task still exists is kept whatever its age: a dead task
   * can be redriven, and its effects must still answer `done`.
   */
  effect: (b: string) => `status <> 'pending' AND updated_at < ${b}
    AND (task_id IS NULL OR NOT EXISTS (SELECT 1 FROM tasks t WHERE t.id = e.task_id))`,
  /** The session's oldest kept event is older (one primary-key probe per session). */
  session: (b: string) => `(SELECT ev.ts FROM events ev WHERE ev.session_id = s.id
    AND ev.seq > s.pruned_seq ORDER BY ev.seq LIMIT 1) < ${b}`,
} as const;

const SQL = {
  /** $1 deadBefore, $2 finishedBefore, $3 eventsBefore. → {any} */
  hasPrunable: `SELECT EXISTS (SELECT 1 FROM tasks WHERE ${WHERE.dead('$1')})
      OR EXISTS (SELECT 1 FROM tasks WHERE ${WHERE.finished('$2')})
      OR EXISTS (SELECT 1 FROM processes p WHERE ${WHERE.process('$2')})
      OR EXISTS (SELECT 1 FROM effects e WHERE ${WHERE.effect('$2')})
      OR EXISTS (SELECT 1 FROM sessions s WHERE ${WHERE.session('$3')}) AS prunable`,
  /** $1 deadBefore, $2 finishedBefore, $3 limit. → {dead, finished, attempts} */
  deleteTasks: `WITH dead AS (
      DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE ${WHERE.dead('$1')}
        ORDER BY updated_at LIMIT $3 FOR UPDATE SKIP LOCKED)
      RETURNING id
    ), finished AS (
      DELETE FROM tasks WHERE id IN (SELECT id FROM tasks WHERE ${WHERE.finished('$2')}
        ORDER BY updated_at LIMIT $3 FOR UPDATE SKIP LOCKED)
      RETURNING id
    ), attempts AS (
      DELETE FROM attempts WHERE task_id IN (SELECT id FROM dead UNION ALL SELECT id FROM finished)
      RETURNING 1
    )
    SELECT (SELECT count(*) FROM dead) AS dead, (SELECT count(*) FROM finished) AS finished,
      (SELECT count(*) FROM attempts) AS attempts`,
  /** $1 finishedBefore, $2 limit. → {pid, workflow_hash}[] (locked) */
  finishedProcesses: `SELECT pid, workflow_hash FROM processes p WHERE ${WHERE.process('$1')}
    ORDER BY completed_at LIMIT $2 FOR UPDATE SKIP LOCKED`,
  /**
   * $1 = pids. → {tasks, attempts, interrupts, processes}. Only finished tasks and settled
   * interrupts go: live work that appeared meanwhile is never deleted.
   */
  deleteProcesses: `WITH t AS (
      DELETE FROM tasks WHERE process_id = ANY($1::text[]) AND state IN ${FINISHED} RETURNING id
    ), a AS (
      DELETE FROM attempts WHERE task_id IN (SELECT id FROM t) RETURNING 1
    ), i AS (
      DELETE FROM interrupts WHERE process_id = ANY($1::text[]) AND status <> 'pending' RETURNING 1
    ), p AS (
      DELETE FROM processes WHERE pid = ANY($1::text[]) RETURNING 1
    )
    SELECT (SELECT count(*) FROM t) AS tasks, (SELECT count(*) FROM a) AS attempts,
      (SELECT count(*) FROM i) AS interrupts, (SELECT count(*) FROM p) AS processes`,
  /** $1 finishedBefore, $2 limit. → rowCount */
  deleteEffects: `DELETE FROM effects WHERE idempotency_key IN (SELECT idempotency_key FROM effects e
      WHERE ${WHERE.effect('$1')} ORDER BY updated_at LIMIT $2 FOR UPDATE SKIP LOCKED)`,
  /** $1 eventsBefore, $2 limit. → {id}[] */
  oldSessions: `SELECT s.id FROM sessions s WHERE ${WHERE.session('$1')} LIMIT $2`,
  /** $1 = ids. → {id, pruned_seq}[] in id order, locked */
  lockHeads: `SELECT id, pruned_seq FROM sessions WHERE id = ANY($1::text[]) ORDER BY id
    FOR NO KEY UPDATE`,
  /** The oldest kept events of a session. → {seq, ts, hash}[] */
  prefix: `SELECT seq, ts, hash FROM events WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
  /** $1 ids, $2 old anchors, $3 new anchors, $4 new anchor hashes. */
  cut: `WITH cut AS (
      SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[]) AS c(id, after, through, hash)
    ), gone AS (
      DELETE FROM events e USING cut
      WHERE e.session_id = cut.id AND e.seq > cut.after AND e.seq <= cut.through
    )
    UPDATE sessions s SET pruned_seq = cut.through, pruned_hash = cut.hash FROM cut
    WHERE s.id = cut.id`,
  eventsAfter: `SELECT * FROM events WHERE session_id = $1 AND seq > $2 ORDER BY seq LIMIT $3`,
  eventsOfProcessAfter: `SELECT * FROM events WHERE session_id = $1 AND process_id = $2 AND seq > $3
    ORDER BY seq LIMIT $4`,
  prunedSeq: 'SELECT pruned_seq FROM sessions WHERE id = $1',
} as const;

/**
 * A session's events after `query.afterSeq` (optionally one process's), oldest first, at most
 * `query.limit` (default 1,000; 10,000 at most). REPLAY_GAP when the cursor is older than the
 * session's pruned prefix; INVALID_PARAMS for a bad limit.
 */
export async function readEvents(q: Queryable, query: EventQuery): Promise<EventRecord[]> {
  const limit = eventPageLimit(query);
  const after = query.afterSeq ?? 0;
  const { rows } = query.processId
    ? await q.query(SQL.eventsOfProcessAfter, [query.sessionId, query.processId, after, limit])
    : await q.query(SQL.eventsAfter, [query.sessionId, after, limit]);
  const events = rows.map(eventFromRow);
  if (needsGapCheck(query, events)) {
    // After the page: an anchor that moved past the cursor meanwhile is seen here.
    const anchor = (await q.query<{ pruned_seq: number }>(SQL.prunedSeq, [query.sessionId]))
      .rows[0];
    assertNoGap(query, anchor === undefined ? undefined : Number(anchor.pruned_seq));
  }
  return events;
}

/** Whether {@link prune} with this policy would delete anything; one read, no locks. */
export async function hasPrunable(q: Queryable, policy: RetentionPolicy): Promise<boolean> {
  const { rows } = await q.query<{ prunable: boolean }>(SQL.hasPrunable, [
    policy.deadBefore,
    policy.finishedBefore,
    policy.eventsBefore,
  ]);
  return rows[0]?.prunable === true;
}

/**
 * Deletes one batch; MUST run inside the caller's transaction, which it adds the
 * `retention.pruned` event to when anything was deleted. `input.limit` must be checked by the
 * caller (rowLimit) before the transaction.
 */
export async function prune(tx: PgTx, input: PruneInput): Promise<PruneResult> {
  const { policy, limit } = input;
  const tasks = (
    await tx.query<{ dead: number; finished: number; attempts: number }>(SQL.deleteTasks, [
      policy.deadBefore,
      policy.finishedBefore,
      limit,
    ])
  ).rows[0]!;

  const processes = (
    await tx.query<{ pid: string; workflow_hash: string }>(SQL.finishedProcesses, [
      policy.finishedBefore,
      limit,
    ])
  ).rows;
  let ofProcesses = { tasks: 0, attempts: 0, interrupts: 0, processes: 0 };
  if (processes.length > 0) {
    const counts = (
      await tx.query<typeof ofProcesses>(SQL.deleteProcesses, [processes.map((p) => p.pid)])
    ).rows[0]!;
    ofProcesses = {
      tasks: Number(counts.tasks),
      attempts: Number(counts.attempts),
      interrupts: Number(counts.interrupts),
      processes: Number(counts.processes),
    };
    await deleteUnusedWorkflows(
      tx,
      processes.map((p) => p.workflow_hash),
    );
  }

  const effects = (await tx.query(SQL.deleteEffects, [policy.finishedBefore, limit])).rowCount;
  const events = await pruneEvents(tx, policy.eventsBefore, limit, input.event.session_id);

  const finished = Number(tasks.finished);
  const result = pruneResult(
    {
      tasks: finished + ofProcesses.tasks,
      dead_tasks: Number(tasks.dead),
      attempts: Number(tasks.attempts) + ofProcesses.attempts,
      processes: ofProcesses.processes,
      interrupts: ofProcesses.interrupts,
      effects,
      events: events.events,
      sessions: events.sessions,
    },
    limit,
    finished,
    events.more,
  );
  const event = prunedEvent(input, result);
  if (event) tx.append(event);
  return result;
}

/**
 * Cuts each old session's prefix, up to `limit` events in all, and moves its anchor. `target`:
 * the session the `retention.pruned` event goes to, whose head is locked with the others (in id
 * order, as every append locks heads) rather than later at commit.
 */
async function pruneEvents(
  tx: PgTx,
  before: number,
  limit: number,
  target: string,
): Promise<{ events: number; sessions: number; more: boolean }> {
  const candidates = (await tx.query<{ id: string }>(SQL.oldSessions, [before, limit])).rows;
  if (candidates.length === 0) return { events: 0, sessions: 0, more: false };
  const wanted = new Set(candidates.map((c) => c.id));
  const heads = (
    await tx.query<{ id: string; pruned_seq: number }>(SQL.lockHeads, [[...wanted, target]])
  ).rows;
  let budget = limit;
  const cut = {
    ids: [] as string[],
    after: [] as number[],
    through: [] as number[],
    hash: [] as string[],
  };
  for (const head of heads) {
    if (budget === 0) break;
    if (!wanted.has(head.id)) continue;
    const after = Number(head.pruned_seq);
    const prefix = (
      await tx.query<{ seq: number; ts: number; hash: string }>(SQL.prefix, [
        head.id,
        after,
        budget,
      ])
    ).rows;
    let keep = 0;
    while (keep < prefix.length && Number(prefix[keep]!.ts) < before) keep += 1;
    if (keep === 0) continue; // another node pruned it meanwhile, or it got no older
    const last = prefix[keep - 1]!;
    budget -= keep;
    cut.ids.push(head.id);
    cut.after.push(after);
    cut.through.push(Number(last.seq));
    cut.hash.push(last.hash);
  }
  if (cut.ids.length > 0) await tx.query(SQL.cut, [cut.ids, cut.after, cut.through, cut.hash]);
  return {
    events: limit - budget,
    sessions: cut.ids.length,
    more: budget <= 0 || candidates.length === limit,
  };
}
