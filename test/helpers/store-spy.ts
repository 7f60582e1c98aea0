/**
 * Store wrappers for tests: replace some methods of a real store (to force an interleaving, or
 * to fake the change signal) and count calls to the methods that write.
 *
 * The wrapper is a Proxy whose methods are bound to the real store (SqliteStore keeps its state
 * in #private fields, which a Proxy receiver cannot reach). Anything that keys state by the
 * store object (reclaim hooks) sees the wrapper as its own store.
 */
import type { Store } from '../../src/store/index.ts';

export type StoreOverrides = { [K in keyof Store]?: Store[K] };

/** The real `store` with some methods replaced. Overrides may call the real methods on `store`. */
export function wrapStore(store: Store, overrides: StoreOverrides): Store {
  return new Proxy(store, {
    get(target, prop, _receiver) {
      if (Object.prototype.hasOwnProperty.call(overrides, prop))
        return overrides[prop as keyof Store];
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function'
        ? (value as (...args: unknown[]) => unknown).bind(target)
        : value;
    },
  });
}

/** Store methods that take the write lock (a transaction that may write). */
export const WRITE_METHODS = [
  'commit',
  'claimTasks',
  'heartbeat',
  'heartbeatTasks',
  'submitTasks',
  'settleTasks',
  'settleAndClaim',
  'fireSchedule',
  'deferSchedule',
  'prune',
  'deleteSession',
] as const satisfies ReadonlyArray<keyof Store>;

export interface WriteCounter {
  readonly store: Store;
  /** Calls to each write method so far. */
  readonly calls: Record<string, number>;
  total(): number;
}

/**
 * Counts calls to the write methods of `store` (independent of the store's own
 * `writeTransactions`, so it also works on versions that lack it).
 */
export function countWrites(store: Store): WriteCounter {
  const calls: Record<string, number> = {};
  const overrides: StoreOverrides = {};
  for (const name of WRITE_METHODS) {
    const real = (store[name] as (...args: unknown[]) => unknown).bind(store);
    (overrides as Record<string, unknown>)[name] = (...args: unknown[]) => {
      calls[name] = (calls[name] ?? 0) + 1;
      return real(...args);
    };
  }
  return {
    store: wrapStore(store, overrides),
    calls,
    total: () => Object.values(calls).reduce((a, b) => a + b, 0),
  };
}
