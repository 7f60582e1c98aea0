/**
 * Follows the event log of the runs a command drives, whichever process executes their steps:
 * with several `warden run` processes on one database, another process's worker may run some of
 * this run's steps, and the terminal must still show every one of them, in order, once. Reads
 * are pulled after a change (this process's commits or another's), never polled.
 */
import type { EventRecord, Store } from '../store/index.ts';

const PAGE = 500;

export interface FollowedRun {
  readonly pid: string;
  readonly sessionId: string;
  /** Show events after this session seq (0: the run's whole history). */
  readonly afterSeq: number;
}

export class RunFollower {
  readonly #store: Store;
  readonly #cursors = new Map<string, { sessionId: string; seq: number }>();
  readonly #onEvent: (event: EventRecord) => void;
  #pulling: Promise<void> | null = null;
  #again = false;

  constructor(store: Store, runs: readonly FollowedRun[], onEvent: (event: EventRecord) => void) {
    this.#store = store;
    this.#onEvent = onEvent;
    for (const run of runs)
      this.#cursors.set(run.pid, { sessionId: run.sessionId, seq: run.afterSeq });
  }

  /**
   * Reads and hands on every event committed since the last pull. Calls made while a pull runs
   * are folded into one more pull after it, so events are never handed on twice or out of order.
   */
  pull(): Promise<void> {
    if (this.#pulling) {
      this.#again = true;
      return this.#pulling;
    }
    this.#pulling = (async () => {
      try {
        do {
          this.#again = false;
          for (const [pid, cursor] of this.#cursors) await this.#drain(pid, cursor);
        } while (this.#again);
      } finally {
        this.#pulling = null;
      }
    })();
    return this.#pulling;
  }

  async #drain(pid: string, cursor: { sessionId: string; seq: number }): Promise<void> {
    for (;;) {
      const events = await this.#store.readEvents({
        sessionId: cursor.sessionId,
        // From the start: whatever retention kept (a cursor of 0 below a pruned prefix is a gap).
        ...(cursor.seq > 0 ? { afterSeq: cursor.seq } : {}),
        processId: pid,
        limit: PAGE,
      });
      for (const event of events) {
        cursor.seq = event.seq;
        this.#onEvent(event);
      }
      if (events.length < PAGE) return;
    }
  }
}
