import { describe, expect, it } from 'vitest';

import { isWardenError } from '../../core/index.ts';
import { scriptedResponseSchema } from '../../core/workflow/schema.ts';
import type { ModelRequest } from './provider.ts';
import { ScriptedProvider } from './scripted.ts';

const provider = new ScriptedProvider();
const signal = new AbortController().signal;

function request(responses: unknown[], index: number): ModelRequest {
  return {
    model: '',
    messages: [{ role: 'user', content: 'Look it up.' }],
    script: { responses: responses.map((r) => scriptedResponseSchema.parse(r)), index },
  };
}

describe('ScriptedProvider tool calls', () => {
  const script = [
    {
      text: 'Let me fetch that.',
      tool_calls: [
        { name: 'http.fetch', arguments: { url: 'https://example.test/' } },
        { name: 'kv.get', id: 'mine', arguments: { key: 'k' } },
      ],
    },
    { tool_calls: [{ name: 'fs.list' }] },
    { text: 'Done.' },
  ];

  it('returns scripted tool calls with deterministic ids and stops for them', async () => {
    const deltas: string[] = [];
    const first = await provider.complete(request(script, 0), signal, (d) => deltas.push(d));
    const again = await provider.complete(request(script, 0), signal, () => {});

    expect(first.stop_reason).toBe('tool_calls');
    expect(first.text).toBe('Let me fetch that.');
    expect(deltas.join('')).toBe('Let me fetch that.');
    expect(first.tool_calls).toEqual([
      { id: 'call_0_0', name: 'http.fetch', arguments: { url: 'https://example.test/' } },
      { id: 'mine', name: 'kv.get', arguments: { key: 'k' } },
    ]);
    expect(again).toEqual(first);
  });

  it('gives a tool-call-only reply empty text, {} arguments and ids from the call index', async () => {
    const deltas: string[] = [];
    const reply = await provider.complete(request(script, 1), signal, (d) => deltas.push(d));

    expect(reply.text).toBe('');
    expect(deltas).toEqual([]);
    expect(reply.tool_calls).toEqual([{ id: 'call_1_0', name: 'fs.list', arguments: {} }]);
    expect(reply.usage.output_tokens).toBeGreaterThan(0);
  });

  it("ends with stop_reason 'end' and no tool_calls when the response has none", async () => {
    const reply = await provider.complete(request(script, 2), signal, () => {});

    expect(reply).toMatchObject({ text: 'Done.', stop_reason: 'end' });
    expect(reply).not.toHaveProperty('tool_calls');
    // Past the end the last response repeats; ids would follow the call index.
    const later = await provider.complete(request(script.slice(0, 2), 5), signal, () => {});
    expect(later.tool_calls?.[0]?.id).toBe('call_5_0');
  });

  it('hands out copies of the scripted arguments', async () => {
    const req = request(script, 0);
    const reply = await provider.complete(req, signal, () => {});
    reply.tool_calls![0]!.arguments.url = 'changed';

    const next = await provider.complete(req, signal, () => {});
    expect(next.tool_calls![0]!.arguments).toEqual({ url: 'https://example.test/' });
  });

  it('rejects malformed scripted tool calls when the workflow is parsed', () => {
    expect(scriptedResponseSchema.safeParse({ tool_calls: [{ arguments: {} }] }).success).toBe(
      false,
    );
    expect(
      scriptedResponseSchema.safeParse({ tool_calls: [{ name: 'x', arguments: [1] }] }).success,
    ).toBe(false);
    expect(
      scriptedResponseSchema.safeParse({ tool_calls: [{ name: 'x', extra: 1 }] }).success,
    ).toBe(false);
  });

  it('still fails a call scripted with an error', async () => {
    await expect(
      provider.complete(request([{ error: 'boom' }], 0), signal, () => {}),
    ).rejects.toSatisfy((e: unknown) => isWardenError(e, 'PROVIDER_ERROR'));
  });
});
