/**
 * Wake-ups for long-polling claimers (remote workers waiting in `RemoteWork.claim`), without
 * polling the database (DESIGN.md §2.9, §6 "Idle means idle").
 *
 * One subscription to the store serves every waiter, and exists only while someone waits:
 *   - `store.onCommit`: a due job queued in a waiter's lane, committed by this process, is handed
 *     to ONE waiter per queued task (the longest waiting), as a hint to claim at once without
 *     reading first — so one submit does not send every waiter to the write lock;
 *   - `store.watchChanges`: the database may have changed (this process or another): every
 *     waiter looks again, with a read.
 * A waiter also wakes at its own deadline, on its abort signal, at the due time of the next
 * delayed task (armed by the caller, see {@link LongPollHub.sleep}), and when the hub closes.
 *
 * No wake-up is lost: each wake bumps the waiter's generation, and a waiter that saw its
 * generation move while it was reading or claiming looks again instead of sleeping.
 */
import type { Clock } from '../core/index.ts';
import type { EventRecord, Store } from '../store/index.ts';

export interface Waiter {
  readonly lanes: ReadonlySet<string>;
  /** Bumped by every wake. */
  generation: number;
  /** Work was just queued in one of its lanes in this process: claim without reading first. */
  hint: boolean;
  /** Its time is up (deadline, abort, hub closed): one last look, then return. */
  done: boolean;
  wake: (() => void) | null;
}

export class LongPollHub {
  readonly #store: Store;
  readonly #clock: Clock;
  /** In arrival order: the longest waiting gets the next hint. */
  readonly #waiters = new Set<Waiter>();
  #unsubscribe: (() => void) | null = null;

  constructor(store: Store, clock: Clock) {
    this.#store = store;
    this.#clock = clock;
  }

  /** Registers a waiter BEFORE its first read, so no change after that read is missed. */
  add(lanes: readonly string[]): Waiter {
    const waiter: Waiter = {
      lanes: new Set(lanes),
      generation: 0,
      hint: false,
      done: false,
      wake: null,
    };
    this.#waiters.add(waiter);
    if (this.#waiters.size === 1) this.#subscribe();
    return waiter;
  }

  remove(waiter: Waiter): void {
    waiter.wake = null;
    if (this.#waiters.delete(waiter) && this.#waiters.size === 0) {
      this.#unsubscribe?.();
      this.#unsubscribe = null;
    }
  }

  /** Wakes a waiter (never lost: a waiter not asleep sees its generation moved). */
  poke(waiter: Waiter, hint = false): void {
    if (hint) waiter.hint = true;
    waiter.generation += 1;
    waiter.wake?.();
  }

  /** Ends every wait (they return what they have). */
  finishAll(): void {
    for (const waiter of this.#waiters) {
      waiter.done = true;
      this.poke(waiter);
    }
  }

  /**
   * Sleeps until the waiter is woken (or already was since `generation`), or until `until`
   * on the queue's clock (the next delayed task's due time; null: no timer).
   */
  sleep(waiter: Waiter, generation: number, until: number | null): Promise<void> {
    if (waiter.done || waiter.generation !== generation) return Promise.resolve();
    return new Promise<void>((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      waiter.wake = () => {
        clearTimeout(timer);
        waiter.wake = null;
        resolve();
      };
      if (until !== null) timer = setTimeout(waiter.wake, Math.max(1, until - this.#clock.now()));
    });
  }

  #subscribe(): void {
    const offCommit = this.#store.onCommit((events) => this.#onCommit(events));
    const offWatch = this.#store.watchChanges(() => {
      for (const waiter of this.#waiters) this.poke(waiter);
    });
    this.#unsubscribe = () => {
      offCommit();
      offWatch();
    };
  }

  #onCommit(events: readonly EventRecord[]): void {
    for (const e of events) {
      if (e.type !== 'task.queued') continue;
      const data = e.data as { lane?: unknown; kind?: unknown; available_at?: unknown } | null;
      const lane = data?.lane;
      // Only a job that is due now is worth a claim without a read (workflow steps and delayed
      // jobs still wake every waiter through watchChanges, for a read).
      if (typeof lane !== 'string' || data?.kind !== 'job') continue;
      if (typeof data.available_at === 'number' && data.available_at > this.#clock.now()) continue;
      for (const waiter of this.#waiters) {
        if (waiter.hint || waiter.done || !waiter.lanes.has(lane)) continue;
        this.poke(waiter, true);
        break;
      }
    }
  }
}
