import { describe, expect, it } from 'vitest';

import { mcpResultToOutput } from './mcp-output.ts';

describe('mcpResultToOutput', () => {
  it('joins text blocks and summarises what a model cannot read', () => {
    const out = mcpResultToOutput({
      content: [
        { type: 'text', text: 'first' },
        { type: 'image', data: 'AAAA', mimeType: 'image/png' },
        { type: 'audio', data: 'AAA=', mimeType: 'audio/wav' },
        { type: 'resource_link', uri: 'file:///a.txt', name: 'a' },
        { type: 'resource', resource: { uri: 'file:///b.txt', text: 'inline text' } },
        {
          type: 'resource',
          resource: { uri: 'file:///c.bin', blob: 'AAAAAA==', mimeType: 'application/zip' },
        },
        { type: 'something-new' },
      ],
    });
    expect(out).toEqual({
      content: [
        'first',
        '[image image/png, 3 bytes, not shown]',
        '[audio audio/wav, 2 bytes, not shown]',
        '[resource file:///a.txt (a)]',
        'inline text',
        '[resource file:///c.bin: application/zip, 4 bytes, not shown]',
        '[something-new content, not shown]',
      ].join('\n'),
    });
  });

  it('prefers structured content, and keeps is_error', () => {
    expect(
      mcpResultToOutput({
        content: [{ type: 'text', text: '{"n":1}' }],
        structuredContent: { n: 1 },
        isError: true,
      }),
    ).toEqual({ content: { n: 1 }, is_error: true });
    expect(mcpResultToOutput({ content: [] })).toEqual({ content: '' });
  });

  it('bounds the output: text is cut with a marker, oversized JSON falls back to text', () => {
    const text = 'y'.repeat(2000);
    expect(mcpResultToOutput({ content: [{ type: 'text', text }] }, 1000)).toEqual({
      content: `${'y'.repeat(1000 - ' … (truncated, 2000 bytes)'.length - 2)} … (truncated, 2000 bytes)`,
    });
    const out = mcpResultToOutput(
      { content: [{ type: 'text', text: 'summary' }], structuredContent: { big: text } },
      1000,
    );
    expect(out).toEqual({ content: 'summary' });
  });

  it('reads a legacy toolResult', () => {
    expect(mcpResultToOutput({ toolResult: { ok: true } })).toEqual({ content: { ok: true } });
    expect(mcpResultToOutput({ toolResult: 'z'.repeat(600) }, 300)).toEqual({
      content: expect.stringMatching(/^"z+ … \(truncated, 602 bytes\)$/) as unknown,
    });
  });
});
