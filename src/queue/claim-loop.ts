/**
 * The claim loop every worker runs (job workers and workflow-step workers alike).
 *
 *   claim (a write: BEGIN IMMEDIATE) while there is room and work → hand the claims over →
 *   when a claim comes back empty: sleep until woken.
 *
 * "Idle means idle" (DESIGN.md §6): while nothing is due the loop makes NO write transaction.
 * It wakes on
 *   - a change to the database, from this process or another ({@link Store.watchChanges}),
 *   - {@link ClaimLoop.poke} (a handler finished, so there is room again),
 *   - the time the next delayed task of a lane with room comes due,
 * and after any wake it first READS whether a claim would get anything (`nextDue`, which also
 * counts the lanes' free slots across processes) before it takes the write lock again.
 *
 * No wake-up is lost: a wake that arrives while a claim is in flight bumps a generation
 * counter, and the loop looks again instead of going to sleep.
 */
import { type Clock, coerceError, type TaskKind, type WardenError } from '../core/index.ts';
import type { ClaimedTask, Store } from '../store/index.ts';

export interface LaneRoom {
  readonly lane: string;
  /** How many more tasks this worker would take from the lane now. */
  readonly room: number;
}

export interface ClaimLoopOptions {
  readonly store: Store;
  readonly clock: Clock;
  readonly workerId: string;
  readonly leaseMs: number;
  readonly kinds: readonly TaskKind[];
  /** Most tasks one claim takes. */
  readonly claimBatch: number;
  /** The lanes and this worker's room in each, asked before every claim. */
  readonly room: () => readonly LaneRoom[];
  /** Takes ownership of claimed tasks (their leases are live). */
  readonly onClaimed: (claims: readonly ClaimedTask[]) => void;
  readonly onError?: (error: WardenError) => void;
}

/** Pause after a failed claim (busy database, disk error), doubling up to the maximum. */
const ERROR_PAUSE_MS = { min: 50, max: 2_000 } as const;

export class ClaimLoop {
  readonly #options: ClaimLoopOptions;
  #generation = 0;
  #dueHint = false;
  #wake: (() => void) | null = null;
  #running = false;
  #loop: Promise<void> | null = null;
  #unwatch: (() => void) | null = null;
  /** Claim transactions run (empty ones too), for tests and metrics. */
  claims = 0;
  #claiming = false;

  constructor(options: ClaimLoopOptions) {
    this.#options = options;
  }

  /** A claim of this loop is in flight (its room was counted but its claims not handed over). */
  get claiming(): boolean {
    return this.#claiming;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#unwatch = this.#options.store.watchChanges(() => this.poke());
    this.#loop = this.#run();
  }

  /**
   * Something may have changed: look again (never lost, even mid-claim). `due`: the caller
   * knows work was just queued in one of our lanes (a commit in this process), so the next
   * round claims at once instead of reading first.
   */
  poke(due = false): void {
    if (due) this.#dueHint = true;
    this.#generation += 1;
    this.#wake?.();
  }

  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#unwatch?.();
    this.#unwatch = null;
    this.poke();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const { store, clock, kinds } = this.#options;
    let readFirst = true; // after a wake, read before taking the write lock
    let errorPause = 0;
    let emptyDue = 0; // claims that came back empty although a read said work was due
    while (this.#running) {
      const generation = this.#generation;
      const open = this.#options.room().filter((r) => r.room > 0);
      const lanes = open.map((r) => r.lane);
      let claimed = 0;
      let failed = false;
      if (open.length > 0) {
        let due = true;
        if (this.#dueHint) {
          this.#dueHint = false;
          readFirst = false;
        }
        if (readFirst) {
          const next = await this.#nextDue(lanes);
          if (next === undefined) failed = true;
          due = next !== undefined && next !== null && next <= clock.now();
        }
        if (due) {
          for (const { lane, room } of open) {
            try {
              this.claims += 1;
              this.#claiming = true;
              const claims = await store.claimTasks({
                lanes: [lane],
                kinds,
                workerId: this.#options.workerId,
                limit: Math.min(room, this.#options.claimBatch),
                leaseMs: this.#options.leaseMs,
                now: clock.now(),
              });
              claimed += claims.length;
              if (claims.length > 0) this.#options.onClaimed(claims);
            } catch (error) {
              failed = true;
              this.#options.onError?.(coerceError(error));
            } finally {
              this.#claiming = false;
            }
          }
        }
      }
      // Let timers, I/O and handler continuations run between rounds: never spin on microtasks.
      await new Promise((resolve) => setImmediate(resolve));
      if (failed) {
        errorPause = Math.min(ERROR_PAUSE_MS.max, Math.max(ERROR_PAUSE_MS.min, errorPause * 2));
        await this.#sleep(generation, clock.now() + errorPause);
        readFirst = true;
        continue;
      }
      errorPause = 0;
      if (claimed > 0) {
        readFirst = false;
        emptyDue = 0;
        continue;
      }
      if (this.#generation !== generation) {
        readFirst = true;
        continue;
      }
      const next = lanes.length > 0 ? await this.#nextDue(lanes) : null;
      if (next === undefined) {
        // The read failed: never sleep without a timer on it; look again after a pause.
        await this.#sleep(generation, clock.now() + ERROR_PAUSE_MS.max);
        readFirst = true;
        continue;
      }
      if (next !== null && next <= clock.now() && this.#generation === generation) {
        // Due right now (it became due, or another worker's claim raced ours): claim again —
        // but never spin: after two empty claims in a row, wait for a change or a moment.
        if (++emptyDue <= 2) {
          readFirst = false;
          continue;
        }
        await this.#sleep(generation, clock.now() + 50);
        readFirst = true;
        continue;
      }
      emptyDue = 0;
      await this.#sleep(generation, next);
      readFirst = true;
    }
  }

  /** When work is next due in `lanes` (null: none queued); undefined when the read failed. */
  async #nextDue(lanes: readonly string[]): Promise<number | null | undefined> {
    try {
      return await this.#options.store.nextDue(lanes, this.#options.kinds);
    } catch (error) {
      this.#options.onError?.(coerceError(error));
      return undefined;
    }
  }

  /** Sleeps until poked (or already poked since `generation`) or until `until`. */
  #sleep(generation: number, until: number | null): Promise<void> {
    if (!this.#running || this.#generation !== generation) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const finish = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      this.#wake = finish;
      if (until !== null)
        timer = setTimeout(finish, Math.max(1, until - this.#options.clock.now()));
    });
  }
}
