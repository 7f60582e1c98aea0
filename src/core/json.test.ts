import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { canonicalJson } from './json.ts';

/** Canonical JSON the slow, obvious way: every object's keys sorted, recursively. */
function reference(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) return 'null';
    return JSON.stringify(value ?? null);
  }
  if (Array.isArray(value)) return `[${value.map(reference).join(',')}]`;
  const record = value as Record<string, unknown>;
  return `{${Object.keys(record)
    .filter((k) => record[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${reference(record[k])}`)
    .join(',')}}`;
}

/** Objects built with their keys in sorted order (the native fast path) or in any order. */
const flatSorted = fc
  .dictionary(
    fc.string({ maxLength: 6 }),
    fc.oneof(fc.string(), fc.double(), fc.integer(), fc.boolean(), fc.constant(null)),
  )
  .map((d) =>
    Object.fromEntries(Object.entries(d).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))),
  );

describe('canonicalJson', () => {
  it('equals the sorted-keys reference for any JSON value', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        expect(canonicalJson(value)).toBe(reference(value));
      }),
      { numRuns: 500 },
    );
  });

  it('equals the reference for flat objects whose keys are already sorted (native path)', () => {
    fc.assert(
      fc.property(flatSorted, (value) => {
        expect(canonicalJson(value)).toBe(reference(value));
      }),
      { numRuns: 500 },
    );
  });

  it('sorts keys the native path must not trust: integer-like keys, -0, non-finite numbers', () => {
    expect(canonicalJson({ '9': 1, '10': 2 })).toBe('{"10":2,"9":1}');
    expect(canonicalJson({ a: -0, b: Number.NaN, c: Infinity })).toBe('{"a":0,"b":null,"c":null}');
    expect(canonicalJson({ b: 1, a: { d: 1, c: 2 } })).toBe('{"a":{"c":2,"d":1},"b":1}');
    expect(canonicalJson(Object.assign(Object.create({ inherited: 1 }) as object, { a: 1 }))).toBe(
      '{"a":1}',
    );
  });
});
