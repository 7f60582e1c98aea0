import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isWardenError } from '../../core/index.ts';
import { MIN_SPLIT_CHARS, splitText } from './text-split.ts';

const isHigh = (c: number) => c >= 0xd800 && c <= 0xdbff;

describe('splitText', () => {
  it('keeps a text that fits as one part', () => {
    expect(splitText('', 16)).toEqual(['']);
    expect(splitText('exactly sixteen!', 16)).toEqual(['exactly sixteen!']);
  });

  it('prefers a line break in the second half, then a space, then a hard cut', () => {
    expect(splitText('first line here\nsecond line here', 20)).toEqual([
      'first line here\n',
      'second line here',
    ]);
    expect(splitText('ab\ncdefgh ijklmnop qrstuv', 20)).toEqual(['ab\ncdefgh ijklmnop ', 'qrstuv']);
    expect(splitText('a'.repeat(40), 16)).toEqual(['a'.repeat(16), 'a'.repeat(16), 'a'.repeat(8)]);
  });

  it('never cuts a surrogate pair', () => {
    const text = `${'a'.repeat(15)}😀${'b'.repeat(10)}`;
    const parts = splitText(text, 16);
    expect(parts).toEqual(['a'.repeat(15), `😀${'b'.repeat(10)}`]);
  });

  it('refuses a maxChars below the minimum', () => {
    let error: unknown;
    try {
      splitText('x', MIN_SPLIT_CHARS - 1);
    } catch (e) {
      error = e;
    }
    expect(isWardenError(error, 'INVALID_PARAMS')).toBe(true);
  });

  it('parts join back to the text, fit the limit, and are never empty', () => {
    const unit = fc.oneof(
      fc.constantFrom(' ', '\n', '\t', '😀', 'é'),
      fc.string({ minLength: 1, maxLength: 12 }),
    );
    fc.assert(
      fc.property(
        fc.array(unit, { maxLength: 200 }),
        fc.integer({ min: 16, max: 300 }),
        (units, max) => {
          const text = units.join('');
          const parts = splitText(text, max);
          expect(parts.join('')).toBe(text);
          for (const p of parts) {
            expect(p.length).toBeLessThanOrEqual(max);
            if (text !== '') expect(p.length).toBeGreaterThan(0);
          }
          for (const p of parts.slice(0, -1)) {
            // A part may end in a high surrogate only if the input had a lone one there.
            const last = p.charCodeAt(p.length - 1);
            if (isHigh(last)) expect(/[\uDC00-\uDFFF]/.test(text)).toBe(true);
          }
          if (text.length <= max) expect(parts).toEqual([text]);
        },
      ),
    );
  });
});
