/**
 * A store whose calls of one method are counted (every other method passes through, bound to
 * the real store so its private fields work): for tests that assert how often a path reads or
 * writes, such as "one commit per step" or "an unchanged session is not read".
 */
import type { Store } from '../../src/store/index.ts';

export function countingStore<K extends keyof Store>(
  store: Store,
  method: K,
): { store: Store; calls: () => number; reset: () => void } {
  let calls = 0;
  const counted = new Proxy(store, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key);
      if (typeof value !== 'function') return value;
      const bound = (value as (...a: unknown[]) => unknown).bind(target);
      if (key !== method) return bound;
      return (...args: unknown[]) => {
        calls++;
        return bound(...args);
      };
    },
  });
  return { store: counted, calls: () => calls, reset: () => (calls = 0) };
}
