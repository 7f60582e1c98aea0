/**
 * Waiting for a condition on the database without polling: `check` runs, then again each time
 * the database may have changed (a commit by this process or any other, `Store.watchChanges`),
 * until it answers, the deadline passes or `signal` aborts. A change that lands while `check`
 * reads is not lost: the next round starts at once instead of sleeping.
 */
import type { Store } from './types.ts';

export interface WaitForChangeOptions {
  /** When to give up, on the `now` clock. */
  readonly deadline: number;
  readonly now: () => number;
  readonly signal?: AbortSignal;
}

const MAX_TIMER_MS = 2_147_483_647;

/** `check`'s first non-undefined answer, or undefined at the deadline or on abort. */
export async function waitForChange<T>(
  store: Store,
  check: () => Promise<T | undefined>,
  options: WaitForChangeOptions,
): Promise<T | undefined> {
  let changed = true;
  let wake: (() => void) | null = null;
  const off = store.watchChanges(() => {
    changed = true;
    wake?.();
  });
  try {
    for (;;) {
      changed = false;
      const answer = await check();
      if (answer !== undefined) return answer;
      const left = options.deadline - options.now();
      if (left <= 0 || options.signal?.aborted) return undefined;
      if (changed) continue; // it changed while we read
      await new Promise<void>((resolve) => {
        // setTimeout takes at most 2^31-1 ms (a longer delay fires at once): wake and look again.
        const timer = setTimeout(done, Math.min(left, MAX_TIMER_MS));
        options.signal?.addEventListener('abort', done, { once: true });
        function done() {
          clearTimeout(timer);
          options.signal?.removeEventListener('abort', done);
          resolve();
        }
        wake = done;
      });
      wake = null;
    }
  } finally {
    off();
  }
}
