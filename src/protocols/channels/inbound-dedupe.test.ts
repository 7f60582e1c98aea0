import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { INBOUND_DEDUPE_MAX, INBOUND_DEDUPE_TTL_MS, InboundDedupe } from './inbound-dedupe.ts';

describe('InboundDedupe', () => {
  it('defaults to the reference limits (20 min, 5000 entries)', () => {
    const d = new InboundDedupe<number>();
    expect([d.ttlMs, d.maxEntries]).toEqual([1_200_000, 5000]);
    expect([INBOUND_DEDUPE_TTL_MS, INBOUND_DEDUPE_MAX]).toEqual([1_200_000, 5000]);
  });

  it('forgets an entry when its TTL has passed', () => {
    const d = new InboundDedupe<string>({ ttlMs: 1000, maxEntries: 10 });
    d.set('a', 'first', 0);
    expect(d.get('a', 999)).toBe('first');
    expect(d.get('a', 1000)).toBeUndefined();
    expect(d.size).toBe(0);
  });

  it('evicts the soonest-expiring entry when full', () => {
    const d = new InboundDedupe<number>({ ttlMs: 1000, maxEntries: 3 });
    d.set('a', 1, 0);
    d.set('b', 2, 10);
    d.set('c', 3, 20);
    d.set('d', 4, 30);
    expect(['a', 'b', 'c', 'd'].map((k) => d.get(k, 30))).toEqual([undefined, 2, 3, 4]);
    // Setting a key again renews it, so it is no longer the first to go.
    d.set('b', 5, 40);
    d.set('e', 6, 50);
    expect(['b', 'c', 'd', 'e'].map((k) => d.get(k, 50))).toEqual([5, undefined, 4, 6]);
  });

  it('delete with a value only removes that value', () => {
    const d = new InboundDedupe<string>({ ttlMs: 1000, maxEntries: 3 });
    d.set('a', 'x', 0);
    d.delete('a', 'y');
    expect(d.get('a', 1)).toBe('x');
    d.delete('a', 'x');
    expect(d.get('a', 1)).toBeUndefined();
  });

  it('matches a reference model under any sequence of operations, even if the clock steps back', () => {
    type Op = { key: string; dt: number; set: boolean };
    const opArb = fc.record({
      key: fc.constantFrom('a', 'b', 'c', 'd', 'e'),
      dt: fc.integer({ min: -50, max: 400 }),
      set: fc.boolean(),
    });
    fc.assert(
      fc.property(
        fc.array(opArb, { maxLength: 60 }),
        fc.integer({ min: 1, max: 4 }),
        (ops: Op[], max) => {
          const ttl = 1000;
          const d = new InboundDedupe<number>({ ttlMs: ttl, maxEntries: max });
          // Model: key → {value, expiresAt}, expiries clamped non-decreasing, evict min expiry.
          const model = new Map<string, { value: number; exp: number }>();
          let last = 0;
          let now = 10_000;
          const prune = () => {
            for (const [k, e] of model) if (e.exp <= now) model.delete(k);
          };
          ops.forEach((op, i) => {
            now += op.dt;
            prune();
            if (op.set) {
              model.delete(op.key);
              while (model.size >= max) {
                let victim = '';
                let min = Infinity;
                for (const [k, e] of model) if (e.exp < min) [victim, min] = [k, e.exp];
                model.delete(victim);
              }
              last = Math.max(last, now + ttl);
              model.set(op.key, { value: i, exp: last });
              d.set(op.key, i, now);
            }
            expect(d.get(op.key, now)).toBe(model.get(op.key)?.value);
            expect(d.size).toBe(model.size);
            expect(d.size).toBeLessThanOrEqual(max);
          });
        },
      ),
    );
  });
});
