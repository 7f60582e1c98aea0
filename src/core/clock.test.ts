import { afterEach, describe, expect, it, vi } from 'vitest';

import { systemClock } from './clock.ts';

describe('systemClock', () => {
  afterEach(() => vi.restoreAllMocks());

  it('never runs backwards when the wall clock steps back', () => {
    const base = systemClock.now() + 10_000;
    const wall = [base, base + 5, base - 3_000, base - 1, base + 7];
    vi.spyOn(Date, 'now').mockImplementation(() => wall.shift() ?? base + 7);
    const seen = [1, 2, 3, 4, 5].map(() => systemClock.now());
    expect(seen).toEqual([base, base + 5, base + 5, base + 5, base + 7]);
  });
});
