import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isWardenError } from './errors.ts';
import {
  assertWithin,
  boundedMessage,
  DEFAULT_LIMITS,
  jsonBytes,
  resolveLimit,
  truncateText,
  utf8Bytes,
} from './limits.ts';

const encoder = new TextEncoder();

describe('utf8Bytes', () => {
  it('matches the UTF-8 encoder for any string', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(utf8Bytes(text)).toBe(encoder.encode(text).length);
      }),
    );
    expect(utf8Bytes('\ud800')).toBe(3); // a lone surrogate is replaced by U+FFFD
    expect(utf8Bytes('é😀')).toBe(6);
  });
});

describe('jsonBytes', () => {
  it('measures the JSON text; undefined counts as null', () => {
    expect(jsonBytes({ a: 'é' })).toBe(encoder.encode('{"a":"é"}').length);
    expect(jsonBytes(undefined)).toBe(4);
  });

  it('refuses values that are not JSON with INVALID_PARAMS naming them', () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    let caught: unknown;
    try {
      jsonBytes(cyclic, 'the result of job x');
    } catch (error) {
      caught = error;
    }
    expect(isWardenError(caught, 'INVALID_PARAMS')).toBe(true);
    expect((caught as Error).message).toContain('the result of job x');
    expect(() => jsonBytes(10n)).toThrow(/not serialisable/);
  });
});

describe('assertWithin', () => {
  it('passes at the limit and refuses one byte over with PAYLOAD_TOO_LARGE and details', () => {
    const value = 'x'.repeat(98); // 100 bytes of JSON with the quotes
    expect(assertWithin('the value', value, 100)).toBe(100);
    let caught: unknown;
    try {
      assertWithin('the output of stage s', value, 99);
    } catch (error) {
      caught = error;
    }
    expect(isWardenError(caught, 'PAYLOAD_TOO_LARGE')).toBe(true);
    const error = caught as { retryable: boolean; details: unknown; message: string };
    expect(error.retryable).toBe(false);
    expect(error.details).toEqual({ what: 'the output of stage s', bytes: 100, max_bytes: 99 });
    expect(error.message).toBe(
      'the output of stage s is 100 bytes of JSON; the limit is 99: store large data elsewhere (a file or an object store) and pass a reference',
    );
  });
});

describe('truncateText', () => {
  it('leaves text that fits unchanged', () => {
    expect(truncateText('short', 256)).toBe('short');
  });

  it('cuts to the limit with a marker naming the original size, never inside a character', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 0, maxLength: 400 }),
        fc.integer({ min: 64, max: 512 }),
        (text, max) => {
          const out = truncateText(text, max);
          const total = utf8Bytes(text);
          if (total <= max) {
            expect(out).toBe(text);
            return;
          }
          expect(utf8Bytes(out)).toBeLessThanOrEqual(max);
          expect(out.endsWith(` … (truncated, ${total} bytes)`)).toBe(true);
          const kept = out.slice(0, out.length - ` … (truncated, ${total} bytes)`.length);
          expect(text.startsWith(kept)).toBe(true);
          expect(encoder.encode(out).length).toBe(utf8Bytes(out)); // no split surrogate pair
        },
      ),
    );
  });

  it('bounds error messages at 4 KiB by default', () => {
    const long = 'é'.repeat(10_000);
    const out = boundedMessage(long);
    expect(utf8Bytes(out)).toBeLessThanOrEqual(DEFAULT_LIMITS.errorMessageBytes);
    expect(out).toMatch(/… \(truncated, 20000 bytes\)$/);
  });
});

describe('resolveLimit', () => {
  it('defaults, accepts integers of at least 256 and names a bad option', () => {
    expect(resolveLimit('maxResultBytes', undefined, 5_000)).toBe(5_000);
    expect(resolveLimit('maxResultBytes', 256, 5_000)).toBe(256);
    for (const bad of [0, -1, 255, 1.5, Number.NaN]) {
      expect(() => resolveLimit('maxResultBytes', bad, 5_000)).toThrow(
        /^maxResultBytes must be an integer number of bytes of at least 256/,
      );
    }
  });
});
