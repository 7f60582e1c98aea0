/**
 * Unit tests of the in-process message bus (fan-out, bounded buffers with counted drops,
 * send/query) and the per-key rate limiter (sliding windows and burst, on a ManualClock).
 */
import { describe, expect, it } from 'vitest';

import { isWardenError, ManualClock, WardenError } from '../src/core/index.ts';
import { Bus, type BusMessage, RateLimiter, type RateLimits } from '../src/kernel/index.ts';
import { rejection } from './helpers/wait.ts';

function thrown(fn: () => unknown): WardenError {
  try {
    fn();
  } catch (error) {
    if (isWardenError(error)) return error;
    throw error;
  }
  throw new Error('expected the call to throw');
}

/** Lets queued microtasks (bus drains) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

describe('Bus', () => {
  it('publish fans out to every subscriber of the type, and to catch-all subscribers', async () => {
    const bus = new Bus();
    const a1: unknown[] = [];
    const a2: unknown[] = [];
    const b: unknown[] = [];
    const all: string[] = [];
    bus.subscribe(['a'], (m) => void a1.push(m.payload));
    bus.subscribe(['a', 'c'], (m) => void a2.push(m.payload));
    bus.subscribe(['b'], (m) => void b.push(m.payload));
    bus.subscribe(null, (m) => void all.push(m.type));

    bus.publish('a', 1);
    bus.publish('b', 2);
    bus.publish('a', 3);
    bus.publish('z', 4);
    await settle();

    expect(a1).toEqual([1, 3]);
    expect(a2).toEqual([1, 3]);
    expect(b).toEqual([2]);
    expect(all).toEqual(['a', 'b', 'a', 'z']);
    expect(bus.stats()).toEqual({ subscribers: 4, handlers: 0, dropped: 0 });
  });

  it('delivers in order to a slow subscriber, and a failing subscriber breaks no one', async () => {
    const bus = new Bus();
    const slow: number[] = [];
    const fine: number[] = [];
    bus.subscribe(['n'], async (m) => {
      await new Promise((resolve) => setTimeout(resolve, 1));
      slow.push(m.payload as number);
    });
    bus.subscribe(['n'], () => {
      throw new Error('subscriber bug');
    });
    bus.subscribe(['n'], async () => Promise.reject(new Error('async subscriber bug')));
    bus.subscribe(['n'], (m) => void fine.push(m.payload as number));

    for (let i = 0; i < 5; i++) bus.publish('n', i);
    const deadline = Date.now() + 5_000;
    while (slow.length < 5 && Date.now() < deadline)
      await new Promise((resolve) => setTimeout(resolve, 5));
    await settle();

    expect(slow).toEqual([0, 1, 2, 3, 4]);
    expect(fine).toEqual([0, 1, 2, 3, 4]);
    expect(bus.stats().dropped).toBe(0);
  });

  it('a full buffer drops for that subscriber only, counts the drops and reports missed on the next delivery', async () => {
    const bus = new Bus();
    let release!: () => void;
    const gate = new Promise<void>((resolve) => (release = resolve));
    const slow: Array<{ payload: unknown; missed: number }> = [];
    const fast: unknown[] = [];
    const sub = bus.subscribe(
      ['m'],
      async (message: BusMessage, missed: number) => {
        slow.push({ payload: message.payload, missed });
        await gate;
      },
      2,
    );
    bus.subscribe(['m'], (m) => void fast.push(m.payload));

    // m1 is being delivered (and blocks); m2 and m3 fill the buffer of 2; m4 and m5 are dropped.
    for (let i = 1; i <= 5; i++) bus.publish('m', `m${i}`);
    await settle();
    expect(slow).toEqual([{ payload: 'm1', missed: 0 }]);
    expect(sub.dropped).toBe(2);
    expect(bus.stats().dropped).toBe(2);
    // The other subscriber (default buffer) got everything.
    expect(fast).toEqual(['m1', 'm2', 'm3', 'm4', 'm5']);

    release();
    await settle();
    expect(slow).toEqual([
      { payload: 'm1', missed: 0 },
      { payload: 'm2', missed: 2 },
      { payload: 'm3', missed: 0 },
    ]);

    bus.publish('m', 'm6');
    await settle();
    expect(slow.at(-1)).toEqual({ payload: 'm6', missed: 0 });
    expect(sub.dropped).toBe(2);
  });

  it('unsubscribe stops delivery', async () => {
    const bus = new Bus();
    const got: unknown[] = [];
    const sub = bus.subscribe(['x'], (m) => void got.push(m.payload));
    bus.publish('x', 1);
    await settle();
    sub.unsubscribe();
    bus.publish('x', 2);
    await settle();
    expect(got).toEqual([1]);
    expect(bus.stats().subscribers).toBe(0);
  });

  it('send goes to the one handler; without a handler it is NOT_FOUND', async () => {
    const bus = new Bus();
    const error = await rejection(bus.send('nobody.home', { x: 1 }));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.details).toEqual({ type: 'nobody.home' });

    const got: unknown[] = [];
    bus.handle('cmd', (payload) => void got.push(payload));
    await bus.send('cmd', { x: 2 });
    expect(got).toEqual([{ x: 2 }]);
    expect(thrown(() => bus.handle('cmd', () => undefined)).code).toBe('CONFLICT');
  });

  it('query answers with the handler result, propagates its error, and times out with TIMEOUT', async () => {
    const bus = new Bus();
    bus.handle('double', (n) => (n as number) * 2);
    bus.handle('async.double', async (n) => Promise.resolve((n as number) * 2));
    bus.handle('broken', () => {
      throw new WardenError('INVALID_PARAMS', 'bad payload');
    });
    bus.handle('silent', () => new Promise(() => undefined));

    expect(await bus.query<number>('double', 21)).toBe(42);
    expect(await bus.query<number>('async.double', 4)).toBe(8);
    expect((await rejection(bus.query('broken', null))).code).toBe('INVALID_PARAMS');
    const timeout = await rejection(bus.query('silent', null, 20));
    expect(timeout.code).toBe('TIMEOUT');
    expect(timeout.retryable).toBe(true);
    expect((await rejection(bus.query('missing', null, 20))).code).toBe('NOT_FOUND');
  });

  it('unregistering a handler frees its type', async () => {
    const bus = new Bus();
    const off = bus.handle('q', () => 1);
    expect(bus.stats().handlers).toBe(1);
    off();
    expect(bus.stats().handlers).toBe(0);
    expect((await rejection(bus.query('q', null))).code).toBe('NOT_FOUND');
    bus.handle('q', () => 2);
    expect(await bus.query('q', null)).toBe(2);
  });

  it('a stale handler disposer does not remove a newer handler for the same type', async () => {
    const bus = new Bus();
    const off = bus.handle('q', () => 1);
    off();
    bus.handle('q', () => 2);
    off();
    expect(await bus.query('q', null)).toBe(2);
  });
});

describe('RateLimiter', () => {
  const limits = (overrides: Partial<RateLimits> = {}): RateLimits => ({
    per_minute: 3,
    per_hour: 1_000,
    per_day: 10_000,
    burst: 100,
    ...overrides,
  });

  it('refuses past the per-minute limit with a positive retry_after_ms, without recording the refusal', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, limits());
    expect(limiter.check('k')).toMatchObject({ allowed: true, remaining: 2 });
    expect(limiter.check('k')).toMatchObject({ allowed: true, remaining: 1 });
    expect(limiter.check('k')).toMatchObject({ allowed: true, remaining: 0 });

    const refused = limiter.check('k');
    expect(refused.allowed).toBe(false);
    expect(refused.limit_type).toBe('minute');
    expect(refused.retry_after_ms).toBeGreaterThan(0);
    expect(refused.retry_after_ms).toBeLessThanOrEqual(60_000);
    expect(limiter.usage()).toEqual({ k: 3 });
    // Other keys are independent.
    expect(limiter.check('other').allowed).toBe(true);
    // check(record = false) only peeks.
    expect(limiter.check('fresh', false)).toMatchObject({ allowed: true, remaining: 3 });
    expect(limiter.check('fresh', false)).toMatchObject({ allowed: true, remaining: 3 });
  });

  it('the window slides: retry_after_ms is exactly when the request is allowed again', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, limits());
    clock.advance(3_000); // mid-bucket: buckets are 6 s wide
    for (let i = 0; i < 3; i++) expect(limiter.check('k').allowed).toBe(true);
    const refused = limiter.check('k');
    expect(refused.allowed).toBe(false);
    expect(refused.retry_after_ms).toBe(57_000);

    clock.advance(refused.retry_after_ms - 1);
    expect(limiter.check('k').allowed).toBe(false);
    clock.advance(1);
    expect(limiter.check('k')).toMatchObject({ allowed: true, remaining: 2 });
  });

  it('a minute later the whole window is free again', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, limits());
    for (let i = 0; i < 3; i++) limiter.take('k');
    expect(limiter.check('k').allowed).toBe(false);
    clock.advance(60_000);
    for (let i = 0; i < 3; i++) expect(limiter.check('k').allowed).toBe(true);
    expect(limiter.check('k').allowed).toBe(false);
  });

  it('limits bursts with a token bucket refilled at per_minute / 60 per second', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, limits({ per_minute: 600, burst: 2 }));
    expect(limiter.check('k').allowed).toBe(true);
    expect(limiter.check('k').allowed).toBe(true);
    const refused = limiter.check('k');
    expect(refused).toMatchObject({ allowed: false, limit_type: 'burst' });
    // 600 per minute refills one token every 100 ms.
    expect(refused.retry_after_ms).toBe(100);

    clock.advance(99);
    expect(limiter.check('k').allowed).toBe(false);
    clock.advance(1);
    expect(limiter.check('k').allowed).toBe(true);
    expect(limiter.check('k').allowed).toBe(false);
    // The bucket never holds more than `burst` tokens.
    clock.advance(10_000);
    expect(limiter.check('k').allowed).toBe(true);
    expect(limiter.check('k').allowed).toBe(true);
    expect(limiter.check('k').allowed).toBe(false);
  });

  it('per-key overrides take precedence over the defaults', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, limits({ per_minute: 100 }));
    limiter.setLimits('vip', limits({ per_minute: 1 }));
    expect(limiter.check('vip').allowed).toBe(true);
    expect(limiter.check('vip').allowed).toBe(false);
    expect(limiter.check('normal').allowed).toBe(true);
    expect(limiter.check('normal').allowed).toBe(true);
  });

  it('the hour window applies after the minute window slides', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, limits({ per_minute: 2, per_hour: 3 }));
    limiter.take('k');
    limiter.take('k');
    clock.advance(60_000);
    limiter.take('k');
    const refused = limiter.check('k');
    expect(refused).toMatchObject({ allowed: false, limit_type: 'hour' });
    expect(refused.retry_after_ms).toBeGreaterThan(0);
    expect(refused.retry_after_ms).toBeLessThanOrEqual(3_600_000);
  });

  it('take throws RATE_LIMITED with retryAfterMs when refused', () => {
    const clock = new ManualClock();
    const limiter = new RateLimiter(clock, limits({ per_minute: 1 }));
    limiter.take('user:local:run.start');
    const error = thrown(() => limiter.take('user:local:run.start'));
    expect(error).toBeInstanceOf(WardenError);
    expect(error.code).toBe('RATE_LIMITED');
    expect(error.retryable).toBe(true);
    expect(error.retryAfterMs).toBe(60_000);
    expect(error.details).toMatchObject({ key: 'user:local:run.start', limit_type: 'minute' });
    expect(error.toJSON().retry_after_ms).toBe(60_000);
  });
});
