/**
 * {@link Store.deleteSession} rules shared by the adapters, so both refuse and report alike:
 * which sessions may never be deleted, the refusal naming live work, and the `session.deleted`
 * event. "Live work" is a process that is not terminated or zombie, a queued or running task, or
 * a pending interrupt — deleting those would pull rows from under a worker or a person.
 */
import { errors, SYSTEM_SESSION_KEY, type WardenError } from '../core/index.ts';
import type { DeleteSessionCounts, DeleteSessionInput, NewEvent } from './types.ts';

/** Ids of live work named in a refusal, per kind. */
export const NAMED_LIVE = 20;

export interface SessionIdentity {
  readonly id: string;
  readonly key: string;
}

/** Live work of a session: up to {@link NAMED_LIVE} ids of each kind, and the full counts. */
export interface LiveWork {
  readonly ids: {
    readonly processes: readonly string[];
    readonly tasks: readonly string[];
    readonly interrupts: readonly string[];
  };
  readonly counts: {
    readonly processes: number;
    readonly tasks: number;
    readonly interrupts: number;
  };
}

/**
 * INVALID_STATE for the `system` session (kernel-wide events) and for the deletion event's own
 * target; null when the session may go.
 */
export function undeletableError(
  session: SessionIdentity,
  input: DeleteSessionInput,
): WardenError | null {
  if (session.key !== SYSTEM_SESSION_KEY && input.event.session_id !== session.id) return null;
  return errors.invalidState(
    `session '${session.key}' cannot be deleted: it records kernel-wide events (and the deletion itself)`,
    { session_id: session.id, key: session.key },
  );
}

/** INVALID_STATE naming the session's live work, or null when it has none. */
export function liveWorkError(session: SessionIdentity, live: LiveWork): WardenError | null {
  const { ids, counts } = live;
  if (counts.processes + counts.tasks + counts.interrupts === 0) return null;
  const parts = [
    counts.processes && `${counts.processes} unfinished run(s) (${ids.processes.join(', ')})`,
    counts.tasks && `${counts.tasks} queued or running task(s) (${ids.tasks.join(', ')})`,
    counts.interrupts && `${counts.interrupts} pending interrupt(s) (${ids.interrupts.join(', ')})`,
  ].filter(Boolean);
  return errors.invalidState(
    `session '${session.key}' has live work: ${parts.join('; ')}; cancel or finish it first`,
    { session_id: session.id, key: session.key, live: ids, live_counts: counts },
  );
}

/** The `session.deleted` event `{id, key, counts}`, to `input.event.session_id`. */
export function sessionDeletedEvent(
  input: DeleteSessionInput,
  session: SessionIdentity,
  counts: DeleteSessionCounts,
): NewEvent {
  return {
    session_id: input.event.session_id,
    type: 'session.deleted',
    trace_id: input.event.trace_id,
    data: { id: session.id, key: session.key, counts },
  };
}
