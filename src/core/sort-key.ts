/**
 * Scheduling order for queued work (DESIGN.md §5): priority first, FIFO within a priority, and
 * ageing so nothing starves. All three come from one sort key stored with the task:
 *
 *   sort_key = available_at + rank(priority) · aging_ms
 *
 * Claims take the smallest due sort_key. Two tasks of the same priority keep FIFO order; a
 * higher-priority task jumps ahead of lower ones by up to `rank difference · aging_ms`, and a
 * low-priority task that has waited that long is served before newer high-priority work. The key
 * is computed once at enqueue, so claims stay an index range scan.
 */
import { type Priority, priorityRank } from './process-state.ts';

/** @default 10_000 ms: an idle task waits at most 40 s behind fresher realtime work. */
export const DEFAULT_AGING_MS = 10_000;

export function sortKey(
  availableAt: number,
  priority: Priority | number,
  agingMs = DEFAULT_AGING_MS,
): number {
  const rank = typeof priority === 'number' ? priority : priorityRank(priority);
  return availableAt + rank * agingMs;
}
