import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { TimeBudget } from './time-budget.ts';

describe('TimeBudget', () => {
  it('reserves all or nothing and gives back what was not used', () => {
    const b = new TimeBudget(10_000);
    expect(b.reserve(6_000)).toBe(true);
    expect(b.reserve(5_000)).toBe(false); // 4 s left: nothing changes
    expect(b.remainingMs).toBe(4_000);
    b.settle(6_000, 1_000); // used 1 s of its 6
    expect(b.spentMs).toBe(1_000);
    expect(b.remainingMs).toBe(9_000);
    expect(b.reserve(9_000)).toBe(true);
    expect(b.reserve(1)).toBe(false);
  });

  it('starts from what earlier processes spent, and never counts more than a reservation', () => {
    const b = new TimeBudget(5_000, 4_500);
    expect(b.reserve(1_000)).toBe(false);
    expect(b.reserve(500)).toBe(true);
    b.settle(500, 60_000);
    expect(b.spentMs).toBe(5_000);
    expect(b.remainingMs).toBe(0);
    expect(b.reserve(0)).toBe(false);
  });

  it('never spends more than its total, whatever the order of reservations and settlements', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.array(
          fc.tuple(fc.integer({ min: 0, max: 50_000 }), fc.integer({ min: 0, max: 80_000 })),
        ),
        (total, calls) => {
          const b = new TimeBudget(total);
          const open: Array<[number, number]> = [];
          for (const [want, used] of calls) {
            if (b.reserve(want)) open.push([want, used]);
            else if (open.length > 0) {
              const [r, u] = open.shift()!;
              b.settle(r, u);
            }
            expect(b.spentMs + b.remainingMs).toBeLessThanOrEqual(total);
          }
          for (const [r, u] of open) b.settle(r, u);
          expect(b.spentMs).toBeLessThanOrEqual(total);
          expect(b.remainingMs).toBe(total - b.spentMs);
        },
      ),
    );
  });
});
