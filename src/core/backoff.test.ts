import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  backoffCeilingMs,
  backoffDelayMs,
  type BackoffPolicy,
  DEFAULT_BACKOFF,
} from './backoff.ts';

const ALMOST_ONE = 1 - Number.EPSILON;

describe('backoffCeilingMs', () => {
  it('doubles from the base and caps at max', () => {
    const policy: BackoffPolicy = { base_ms: 100, max_ms: 1_000, jitter: 'full' };
    expect([1, 2, 3, 4, 5, 6, 50].map((a) => backoffCeilingMs(policy, a))).toEqual([
      100, 200, 400, 800, 1_000, 1_000, 1_000,
    ]);
  });

  it('uses the documented defaults', () => {
    expect(DEFAULT_BACKOFF).toEqual({ base_ms: 1_000, max_ms: 300_000, jitter: 'full' });
    expect(backoffCeilingMs(DEFAULT_BACKOFF, 1)).toBe(1_000);
    expect(backoffCeilingMs(DEFAULT_BACKOFF, 9)).toBe(256_000);
    expect(backoffCeilingMs(DEFAULT_BACKOFF, 10)).toBe(300_000);
  });

  it('stays finite and capped for huge attempt numbers', () => {
    expect(backoffCeilingMs(DEFAULT_BACKOFF, 10_000)).toBe(300_000);
    expect(
      backoffCeilingMs({ base_ms: 1, max_ms: Number.MAX_SAFE_INTEGER, jitter: 'none' }, 1e9),
    ).toBe(2 ** 52);
  });

  it('property: ceiling = min(max, base · 2^(attempt-1)) and never decreases with attempt', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10_000 }),
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 1, max: 60 }),
        (base, max, attempt) => {
          const policy: BackoffPolicy = { base_ms: base, max_ms: max, jitter: 'full' };
          const ceiling = backoffCeilingMs(policy, attempt);
          expect(ceiling).toBe(Math.min(max, base * 2 ** (attempt - 1)));
          expect(ceiling).toBeLessThanOrEqual(max);
          expect(backoffCeilingMs(policy, attempt + 1)).toBeGreaterThanOrEqual(ceiling);
        },
      ),
    );
  });
});

describe('backoffDelayMs', () => {
  const policy: BackoffPolicy = { base_ms: 100, max_ms: 1_000, jitter: 'full' };

  it('full jitter with random 0 gives 0', () => {
    expect(backoffDelayMs(policy, 1, () => 0)).toBe(0);
    expect(backoffDelayMs(policy, 8, () => 0)).toBe(0);
  });

  it('full jitter with random just below 1 gives the ceiling', () => {
    expect(backoffDelayMs(policy, 1, () => ALMOST_ONE)).toBe(100);
    expect(backoffDelayMs(policy, 3, () => 0.9999)).toBe(400);
    expect(backoffDelayMs(policy, 8, () => ALMOST_ONE)).toBe(1_000);
  });

  it('full jitter scales the random draw over [0, ceiling]', () => {
    expect(backoffDelayMs(policy, 2, () => 0.5)).toBe(Math.floor(0.5 * 201));
  });

  it('no jitter returns the ceiling and does not draw', () => {
    let draws = 0;
    const random = (): number => {
      draws += 1;
      return 0;
    };
    expect(backoffDelayMs({ ...policy, jitter: 'none' }, 3, random)).toBe(400);
    expect(draws).toBe(0);
  });

  it('defaults to Math.random and stays in range', () => {
    for (let i = 0; i < 50; i++) {
      const delay = backoffDelayMs(policy, 4);
      expect(delay).toBeGreaterThanOrEqual(0);
      expect(delay).toBeLessThanOrEqual(800);
    }
  });

  it('property: the delay is an integer within [0, ceiling]', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 100_000 }),
        fc.integer({ min: 1, max: 10_000_000 }),
        fc.integer({ min: 1, max: 80 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.constantFrom<BackoffPolicy['jitter']>('full', 'none'),
        (base, max, attempt, draw, jitter) => {
          const p: BackoffPolicy = { base_ms: base, max_ms: max, jitter };
          const ceiling = backoffCeilingMs(p, attempt);
          const delay = backoffDelayMs(p, attempt, () => draw);
          expect(Number.isInteger(delay)).toBe(true);
          expect(delay).toBeGreaterThanOrEqual(0);
          expect(delay).toBeLessThanOrEqual(ceiling);
          if (jitter === 'none') expect(delay).toBe(ceiling);
        },
      ),
      { numRuns: 500 },
    );
  });
});
