import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { backoffCeilingMs, type BackoffPolicy } from './backoff.ts';
import {
  decideFailure,
  errorFingerprint,
  type FailureDecision,
  type FailureInput,
} from './failure-policy.ts';

const BACKOFF: BackoffPolicy = { base_ms: 100, max_ms: 1_000, jitter: 'full' };
const ALMOST_ONE = 1 - Number.EPSILON;

function input(over: Partial<FailureInput> = {}): FailureInput {
  return {
    attempt: 1,
    maxAttempts: 5,
    retryable: true,
    fingerprint: 'JOB_FAILED:boom',
    previous: null,
    poisonThreshold: 3,
    backoff: BACKOFF,
    countsTowardPoison: true,
    ...over,
  };
}

const fingerprintArb = fc.constantFrom('A:x', 'A:y', 'B:x', 'LEASE_EXPIRED');
const previousArb = fc.option(
  fc.record({ fingerprint: fingerprintArb, count: fc.integer({ min: 1, max: 20 }) }),
  { nil: null },
);
const inputArb: fc.Arbitrary<FailureInput> = fc
  .record({
    maxAttempts: fc.integer({ min: 1, max: 20 }),
    attemptOffset: fc.integer({ min: 0, max: 25 }),
    retryable: fc.boolean(),
    retryAfterMs: fc.option(fc.integer({ min: -5, max: 5_000 }), { nil: undefined }),
    fingerprint: fingerprintArb,
    previous: previousArb,
    poisonThreshold: fc.integer({ min: 0, max: 6 }),
    base: fc.integer({ min: 0, max: 2_000 }),
    extra: fc.integer({ min: 0, max: 100_000 }),
    countsTowardPoison: fc.boolean(),
  })
  .map((r) => ({
    attempt: 1 + r.attemptOffset,
    maxAttempts: r.maxAttempts,
    retryable: r.retryable,
    retryAfterMs: r.retryAfterMs,
    fingerprint: r.fingerprint,
    previous: r.previous,
    poisonThreshold: r.poisonThreshold,
    backoff: { base_ms: r.base, max_ms: r.base + r.extra, jitter: 'full' as const },
    countsTowardPoison: r.countsTowardPoison,
  }));
const randomArb = fc.double({ min: 0, max: ALMOST_ONE, noNaN: true });

describe('decideFailure', () => {
  it('a non-retryable failure ends the task failed at once, whatever is left', () => {
    expect(decideFailure(input({ retryable: false, attempt: 1, maxAttempts: 10 }))).toEqual({
      state: 'failed',
      outcome: 'non_retryable',
      delayMs: 0,
      consecutive: { fingerprint: 'JOB_FAILED:boom', count: 1 },
    });
    // Non-retryable wins over poison and over exhaustion (rule 1 comes first).
    const previous = { fingerprint: 'JOB_FAILED:boom', count: 5 };
    expect(decideFailure(input({ retryable: false, previous, attempt: 5 })).state).toBe('failed');
  });

  it('the same fingerprint poison_threshold times in a row dead-letters early as poison', () => {
    const first = decideFailure(input({ attempt: 1, maxAttempts: 10 }), () => 0);
    expect(first).toMatchObject({ state: 'queued', outcome: 'retry' });
    expect(first.consecutive).toEqual({ fingerprint: 'JOB_FAILED:boom', count: 1 });
    const second = decideFailure(
      input({ attempt: 2, maxAttempts: 10, previous: first.consecutive }),
      () => 0,
    );
    expect(second).toMatchObject({ state: 'queued', outcome: 'retry' });
    expect(second.consecutive).toEqual({ fingerprint: 'JOB_FAILED:boom', count: 2 });
    const third = decideFailure(
      input({ attempt: 3, maxAttempts: 10, previous: second.consecutive }),
      () => 0,
    );
    expect(third).toEqual({
      state: 'dead',
      outcome: 'poison',
      delayMs: 0,
      consecutive: { fingerprint: 'JOB_FAILED:boom', count: 3 },
    });
  });

  it('a different fingerprint restarts the count', () => {
    const decision = decideFailure(
      input({
        attempt: 3,
        maxAttempts: 10,
        fingerprint: 'JOB_FAILED:other',
        previous: { fingerprint: 'JOB_FAILED:boom', count: 2 },
      }),
      () => 0,
    );
    expect(decision.state).toBe('queued');
    expect(decision.consecutive).toEqual({ fingerprint: 'JOB_FAILED:other', count: 1 });
  });

  it('poison_threshold 0 disables poison detection', () => {
    const decision = decideFailure(
      input({
        attempt: 7,
        maxAttempts: 10,
        poisonThreshold: 0,
        previous: { fingerprint: 'JOB_FAILED:boom', count: 50 },
      }),
      () => 0,
    );
    expect(decision).toMatchObject({ state: 'queued', outcome: 'retry' });
    expect(decision.consecutive).toEqual({ fingerprint: 'JOB_FAILED:boom', count: 51 });
  });

  it('lease expiries count as attempts but never toward poison, and keep the streak', () => {
    const previous = { fingerprint: 'JOB_FAILED:boom', count: 2 };
    const expiry = decideFailure(
      input({
        attempt: 3,
        maxAttempts: 10,
        fingerprint: 'LEASE_EXPIRED',
        previous,
        poisonThreshold: 1,
        countsTowardPoison: false,
      }),
      () => 0,
    );
    expect(expiry).toMatchObject({ state: 'queued', outcome: 'retry' });
    expect(expiry.consecutive).toEqual(previous);
    const last = decideFailure(
      input({
        attempt: 10,
        maxAttempts: 10,
        fingerprint: 'LEASE_EXPIRED',
        poisonThreshold: 1,
        countsTowardPoison: false,
      }),
    );
    expect(last).toEqual({
      state: 'dead',
      outcome: 'attempts_exhausted',
      delayMs: 0,
      consecutive: null,
    });
  });

  it('out of attempts goes dead as attempts_exhausted', () => {
    expect(decideFailure(input({ attempt: 5, maxAttempts: 5, fingerprint: 'X:1' }))).toMatchObject({
      state: 'dead',
      outcome: 'attempts_exhausted',
      delayMs: 0,
    });
    expect(decideFailure(input({ attempt: 1, maxAttempts: 1 })).state).toBe('dead');
  });

  it('retries after capped exponential backoff with full jitter', () => {
    const top = [1, 2, 3, 4, 5, 6].map(
      (attempt) => decideFailure(input({ attempt, maxAttempts: 10 }), () => ALMOST_ONE).delayMs,
    );
    expect(top).toEqual([100, 200, 400, 800, 1_000, 1_000]);
    const bottom = [1, 4, 9].map(
      (attempt) => decideFailure(input({ attempt, maxAttempts: 10 }), () => 0).delayMs,
    );
    expect(bottom).toEqual([0, 0, 0]);
    expect(decideFailure(input({ attempt: 2, maxAttempts: 10 }), () => 0.5).delayMs).toBe(100);
  });

  it('a handler-requested delay replaces backoff, capped at the policy maximum', () => {
    expect(decideFailure(input({ retryAfterMs: 250 }), () => ALMOST_ONE).delayMs).toBe(250);
    expect(decideFailure(input({ retryAfterMs: 0 }), () => ALMOST_ONE).delayMs).toBe(0);
    expect(decideFailure(input({ retryAfterMs: 60_000 }), () => 0).delayMs).toBe(1_000);
    // A negative request is ignored: the backoff policy applies.
    expect(decideFailure(input({ retryAfterMs: -1 }), () => ALMOST_ONE).delayMs).toBe(100);
  });

  it('property: the rules apply in order (non-retryable, poison, exhausted, retry)', () => {
    fc.assert(
      fc.property(inputArb, randomArb, (inp, r) => {
        const d = decideFailure(inp, () => r);
        const expectedConsecutive = inp.countsTowardPoison
          ? {
              fingerprint: inp.fingerprint,
              count: inp.previous?.fingerprint === inp.fingerprint ? inp.previous.count + 1 : 1,
            }
          : (inp.previous ?? null);
        expect(d.consecutive).toEqual(expectedConsecutive);
        const poisoned =
          inp.countsTowardPoison &&
          inp.poisonThreshold > 0 &&
          d.consecutive !== null &&
          d.consecutive.count >= inp.poisonThreshold;
        if (!inp.retryable) {
          expect(d).toMatchObject({ state: 'failed', outcome: 'non_retryable', delayMs: 0 });
        } else if (poisoned) {
          expect(d).toMatchObject({ state: 'dead', outcome: 'poison', delayMs: 0 });
        } else if (inp.attempt >= inp.maxAttempts) {
          expect(d).toMatchObject({ state: 'dead', outcome: 'attempts_exhausted', delayMs: 0 });
        } else {
          expect(d).toMatchObject({ state: 'queued', outcome: 'retry' });
          if (inp.retryAfterMs !== undefined && inp.retryAfterMs >= 0) {
            expect(d.delayMs).toBe(Math.min(inp.retryAfterMs, inp.backoff.max_ms));
          } else {
            const ceiling = backoffCeilingMs(inp.backoff, inp.attempt);
            expect(d.delayMs).toBe(Math.floor(r * (ceiling + 1)));
            expect(d.delayMs).toBeGreaterThanOrEqual(0);
            expect(d.delayMs).toBeLessThanOrEqual(ceiling);
          }
        }
        expect(Number.isInteger(d.delayMs)).toBe(true);
        expect(d.delayMs).toBeLessThanOrEqual(inp.backoff.max_ms);
        // A pure function of its input and the random draw.
        expect(decideFailure(inp, () => r)).toEqual(d);
      }),
      { numRuns: 500 },
    );
  });

  it('property: a lease expiry never dead-letters as poison', () => {
    fc.assert(
      fc.property(inputArb, randomArb, (inp, r) => {
        const d = decideFailure({ ...inp, countsTowardPoison: false }, () => r);
        expect(d.outcome).not.toBe('poison');
        expect(d.consecutive).toEqual(inp.previous ?? null);
      }),
    );
  });

  /** Folds decisions over a whole life of a task, as the worker and the reaper do. */
  function life(
    failures: ReadonlyArray<{ fingerprint: string; expiry: boolean }>,
    maxAttempts: number,
    poisonThreshold: number,
  ): { decisions: FailureDecision[]; attempts: number } {
    const decisions: FailureDecision[] = [];
    let previous: FailureDecision['consecutive'] = null;
    for (let i = 0; i < failures.length; i++) {
      const f = failures[i]!;
      const d = decideFailure(
        {
          attempt: i + 1,
          maxAttempts,
          retryable: true,
          fingerprint: f.fingerprint,
          previous,
          poisonThreshold,
          backoff: BACKOFF,
          countsTowardPoison: !f.expiry,
        },
        () => 0.5,
      );
      decisions.push(d);
      previous = d.consecutive;
      if (d.state !== 'queued') break;
    }
    return { decisions, attempts: decisions.length };
  }

  it('property: a crash loop always ends dead within max_attempts, poison only after a streak', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ fingerprint: fc.constantFrom('A:x', 'A:y'), expiry: fc.boolean() }), {
          minLength: 25,
          maxLength: 25,
        }),
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 0, max: 5 }),
        (failures, maxAttempts, threshold) => {
          const { decisions, attempts } = life(failures, maxAttempts, threshold);
          const last = decisions.at(-1)!;
          expect(last.state).toBe('dead');
          expect(attempts).toBeLessThanOrEqual(maxAttempts);
          if (last.outcome === 'attempts_exhausted') expect(attempts).toBe(maxAttempts);
          if (last.outcome === 'poison') {
            expect(threshold).toBeGreaterThan(0);
            // The last `threshold` counted failures (expiries skipped) share one fingerprint.
            const counted = failures.slice(0, attempts).filter((f) => !f.expiry);
            expect(failures[attempts - 1]!.expiry).toBe(false);
            const streak = counted.slice(-threshold);
            expect(streak).toHaveLength(threshold);
            expect(new Set(streak.map((f) => f.fingerprint)).size).toBe(1);
          }
          for (const d of decisions.slice(0, -1)) expect(d.state).toBe('queued');
        },
      ),
      { numRuns: 300 },
    );
  });

  it('property: the same failure every time dies as poison at exactly the threshold', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 10 }),
        fc.integer({ min: 0, max: 10 }),
        (threshold, slack) => {
          const maxAttempts = threshold + slack + 1;
          const failures = Array.from({ length: maxAttempts }, () => ({
            fingerprint: 'A:x',
            expiry: false,
          }));
          const { decisions, attempts } = life(failures, maxAttempts, threshold);
          expect(attempts).toBe(threshold);
          expect(decisions.at(-1)).toMatchObject({ state: 'dead', outcome: 'poison' });
        },
      ),
    );
  });
});

describe('errorFingerprint', () => {
  it('is the code and the message with numbers and ids masked', () => {
    expect(errorFingerprint('TIMEOUT', 'timed out after 1500 ms')).toBe(
      'TIMEOUT:timed out after # ms',
    );
    expect(errorFingerprint('JOB_FAILED', 'row 7 of 12 failed (code 42)')).toBe(
      'JOB_FAILED:row # of # failed (code #)',
    );
    expect(
      errorFingerprint('JOB_FAILED', 'request 3b241101-e2bb-4255-8caf-4136c566a962 was rejected'),
    ).toBe('JOB_FAILED:request <uuid> was rejected');
    expect(errorFingerprint('JOB_FAILED', 'object 9f86d081884c7d659a2feaa0c55ad015 missing')).toBe(
      'JOB_FAILED:object <hex> missing',
    );
    expect(errorFingerprint('JOB_FAILED', '')).toBe('JOB_FAILED:');
  });

  it('treats different codes and different words as different failures', () => {
    expect(errorFingerprint('A', 'boom')).not.toBe(errorFingerprint('B', 'boom'));
    expect(errorFingerprint('A', 'boom')).not.toBe(errorFingerprint('A', 'bang'));
  });

  it('keeps at most 200 characters of the masked message', () => {
    const fp = errorFingerprint('JOB_FAILED', 'x'.repeat(1_000));
    expect(fp).toBe(`JOB_FAILED:${'x'.repeat(200)}`);
    // Masking happens before truncation: 500 digits are one '#'.
    expect(errorFingerprint('JOB_FAILED', `${'9'.repeat(500)} left`)).toBe('JOB_FAILED:<hex> left');
  });

  const digit = fc.integer({ min: 0, max: 9 });

  it('property: stable, code-prefixed, digit-free and bounded', () => {
    fc.assert(
      fc.property(
        fc.stringMatching(/^[A-Z_]{1,20}$/),
        fc.string({ maxLength: 400 }),
        (code, message) => {
          const fp = errorFingerprint(code, message);
          expect(errorFingerprint(code, message)).toBe(fp);
          expect(fp.startsWith(`${code}:`)).toBe(true);
          const masked = fp.slice(code.length + 1);
          expect(masked).not.toMatch(/\d/);
          expect(masked.length).toBeLessThanOrEqual(200);
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: replacing any digits with other digits does not change the fingerprint', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300 }), fc.array(digit, { minLength: 1 }), (m, ds) => {
        let i = 0;
        const other = m.replace(/\d/g, () => String(ds[i++ % ds.length]));
        expect(errorFingerprint('JOB_FAILED', other)).toBe(errorFingerprint('JOB_FAILED', m));
      }),
      { numRuns: 500 },
    );
  });

  it('property: numbers of any size up to 15 digits are masked alike', () => {
    // Text without hex letters, so no number can become part of a long hex id.
    const text = fc.stringMatching(/^[g-zG-Z .:,()=-]{1,12}$/);
    fc.assert(
      fc.property(
        fc.array(
          fc.tuple(
            text,
            fc.integer({ min: 0, max: 999_999_999_999_999 }),
            fc.integer({ min: 0, max: 999_999_999_999_999 }),
          ),
          { maxLength: 8 },
        ),
        fc.stringMatching(/^[g-zG-Z .:,()=-]{0,12}$/),
        (parts, tail) => {
          const a = parts.map(([t, n]) => `${t}${n}`).join('') + tail;
          const b = parts.map(([t, , n]) => `${t}${n}`).join('') + tail;
          expect(errorFingerprint('JOB_FAILED', a)).toBe(errorFingerprint('JOB_FAILED', b));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('property: uuids are masked whatever their value', () => {
    fc.assert(
      fc.property(fc.uuid(), fc.uuid(), (u1, u2) => {
        expect(errorFingerprint('E', `lock ${u1} held`)).toBe(
          errorFingerprint('E', `lock ${u2} held`),
        );
        expect(errorFingerprint('E', `lock ${u1} held`)).toBe('E:lock <uuid> held');
      }),
    );
  });

  it('property: messages that differ in their words (not numbers) stay distinct', () => {
    const words = fc.stringMatching(/^[g-z ]{1,60}$/);
    fc.assert(
      fc.property(words, words, (a, b) => {
        fc.pre(a !== b);
        expect(errorFingerprint('JOB_FAILED', `${a} 17`)).not.toBe(
          errorFingerprint('JOB_FAILED', `${b} 17`),
        );
      }),
    );
  });
});

describe('errorFingerprint with short hex ids', () => {
  it('masks short hex ids so the same failure about different records fingerprints alike', () => {
    expect(errorFingerprint('JOB_FAILED', 'row 3f2a9c1b7d4e is locked')).toBe(
      errorFingerprint('JOB_FAILED', 'row a9e8d7c6b5f4 is locked'),
    );
    expect(errorFingerprint('JOB_FAILED', 'deadline exceeded')).toBe(
      'JOB_FAILED:deadline exceeded',
    );
  });
});
