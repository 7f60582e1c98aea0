/**
 * Retention rules shared by the adapters, so {@link Store.prune} and {@link Store.readEvents}
 * answer the same on SQLite and PostgreSQL: the page limit of an event read, the REPLAY_GAP rule
 * for a cursor older than a session's pruned prefix, and what one prune batch reports (its
 * result, `more`, and its `retention.pruned` event).
 */
import { errors } from '../core/index.ts';
import { rowLimit } from './row-limit.ts';
import type { EventQuery, EventRecord, NewEvent, PruneInput, PruneResult } from './types.ts';

/** The most events one `readEvents` call returns, whatever the caller asks for. */
export const MAX_EVENT_PAGE = 10_000;

/** The number of events a read returns at most (INVALID_PARAMS for a bad `limit`). */
export function eventPageLimit(query: EventQuery): number {
  return rowLimit('readEvents limit', query.limit, 1_000, MAX_EVENT_PAGE);
}

/**
 * Whether a page must be checked against the session's anchor: only a cursor read whose page
 * does not start right after the cursor can have missed pruned events, so a read that continues
 * a contiguous log costs nothing extra.
 */
export function needsGapCheck(query: EventQuery, page: readonly EventRecord[]): boolean {
  return query.afterSeq !== undefined && page[0]?.seq !== query.afterSeq + 1;
}

/** REPLAY_GAP when events after the cursor were pruned (`prunedSeq`: the session's anchor). */
export function assertNoGap(query: EventQuery, prunedSeq: number | undefined): void {
  const after = query.afterSeq ?? 0;
  if (prunedSeq !== undefined && prunedSeq > after)
    throw errors.replayGap(query.sessionId, after, prunedSeq);
}

/** What one batch deleted, per kind (a {@link PruneResult} without `more`). */
export type PruneCounts = Omit<PruneResult, 'more'>;

/**
 * The batch's result: `more` when any kind hit the limit, so the caller calls again.
 * `finished`: the finished tasks of no process it deleted (`tasks` also counts those of pruned
 * processes); `eventsMore`: the event pass used its whole budget or met `limit` candidate
 * sessions.
 */
export function pruneResult(
  counts: PruneCounts,
  limit: number,
  finished: number,
  eventsMore: boolean,
): PruneResult {
  return {
    ...counts,
    more:
      counts.dead_tasks === limit ||
      finished === limit ||
      counts.processes === limit ||
      counts.effects === limit ||
      eventsMore,
  };
}

/** The `retention.pruned` event of a batch, or null when it deleted nothing. */
export function prunedEvent(input: PruneInput, result: PruneResult): NewEvent | null {
  const deleted =
    result.tasks + result.dead_tasks + result.processes + result.effects + result.events;
  if (deleted === 0) return null;
  const { more: _more, ...counts } = result;
  const { policy } = input;
  return {
    session_id: input.event.session_id,
    type: 'retention.pruned',
    trace_id: input.event.trace_id,
    data: {
      ...counts,
      finished_before: policy.finishedBefore,
      dead_before: policy.deadBefore,
      events_before: policy.eventsBefore,
    },
  };
}
