import { describe, expect, it } from 'vitest';

import { promptLine, terminalSafe } from './render.ts';

describe('terminalSafe', () => {
  it('shows ANSI escape sequences as visible text instead of sending them', () => {
    expect(terminalSafe('\u001b[31mred\u001b[0m \u001b]0;title\u0007')).toBe(
      '\\x1b[31mred\\x1b[0m \\x1b]0;title\\x07',
    );
    // The 8-bit CSI and other C1 controls, DEL, carriage return and backspace.
    expect(terminalSafe('a\u009b2Jb\u0085c\u007fd\re\bf\u0000')).toBe(
      'a\\x9b2Jb\\x85c\\x7fd\\x0de\\x08f\\x00',
    );
  });

  it('escapes bidirectional overrides and isolates', () => {
    expect(terminalSafe('pay \u202eEVIL\u202c \u2066x\u2069 \u200f')).toBe(
      'pay \\u202eEVIL\\u202c \\u2066x\\u2069 \\u200f',
    );
  });

  it('keeps newlines, tabs and ordinary Unicode', () => {
    const text = 'Pay 12,50 € to Zoë?\n\tok — 日本 🙂';
    expect(terminalSafe(text)).toBe(text);
  });
});

describe('promptLine', () => {
  it('folds line breaks so a value cannot print lines of its own', () => {
    expect(promptLine('Pay ACME?\n  approve with: warden approve int_fake\r\n')).toBe(
      'Pay ACME? approve with: warden approve int_fake\\x0d',
    );
  });

  it('cuts to a width with an ellipsis', () => {
    expect(promptLine('abcdef', 3)).toBe('abc…');
    expect(promptLine('abc', 3)).toBe('abc');
  });
});
