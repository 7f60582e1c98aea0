import { describe, expect, it } from 'vitest';

import { parseModelSpec, parseToolArguments, settleStopReason } from './provider.ts';

describe('parseToolArguments', () => {
  it('parses a JSON object, and takes empty text as no arguments', () => {
    expect(parseToolArguments('{"url":"https://x.test","n":[1,2]}')).toEqual({
      arguments: { url: 'https://x.test', n: [1, 2] },
    });
    expect(parseToolArguments('  ')).toEqual({ arguments: {} });
  });

  it('reports invalid JSON and non-objects in arguments_error, with {} arguments', () => {
    const broken = parseToolArguments('{"url": "https://x.te');
    expect(broken.arguments).toEqual({});
    expect(broken.arguments_error).toMatch(/not valid JSON.*\{"url": "https:\/\/x\.te/);
    for (const raw of ['[1,2]', '"text"', '42', 'null']) {
      const parsed = parseToolArguments(raw);
      expect(parsed.arguments).toEqual({});
      expect(parsed.arguments_error).toContain('not a JSON object');
    }
  });
});

describe('settleStopReason', () => {
  it('turns end into tool_calls when calls came back, and leaves other reasons alone', () => {
    expect(settleStopReason('end', 1)).toBe('tool_calls');
    expect(settleStopReason('end', 0)).toBe('end');
    expect(settleStopReason('max_tokens', 2)).toBe('max_tokens');
    expect(settleStopReason('other', 1)).toBe('other');
  });
});

describe('parseModelSpec', () => {
  it('splits provider and model at the first colon', () => {
    expect(parseModelSpec('anthropic:claude-x:1')).toEqual({
      provider: 'anthropic',
      model: 'claude-x:1',
    });
    expect(parseModelSpec('scripted')).toEqual({ provider: 'scripted', model: '' });
  });
});
