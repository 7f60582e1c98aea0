/**
 * AnthropicProvider against a real local Messages API server (test/helpers), through the
 * official SDK: streaming text, usage, request shape (system, max_tokens, tools, tool results),
 * tool calls, error mapping and retryability, aborts and configuration.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { isWardenError, WardenError } from '../src/core/index.ts';
import { AnthropicProvider } from '../src/runtime/models/anthropic.ts';
import type { ChatMessage, ModelRequest, ModelTool } from '../src/runtime/models/provider.ts';
import { ModelRegistry } from '../src/runtime/models/registry.ts';
import {
  type AnthropicTestServer,
  startAnthropicTestServer,
} from './helpers/anthropic-test-server.ts';
import { splitIntoChunks } from './helpers/openai-test-server.ts';

const API_KEY = 'sk-ant-warden-test-0123456789';

const request = (overrides: Partial<ModelRequest> = {}): ModelRequest => ({
  model: 'claude-test',
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Say hello.' },
  ],
  ...overrides,
});

const TOOLS: readonly ModelTool[] = [
  {
    name: 'http.fetch',
    description: 'Fetch a URL.',
    inputSchema: {
      type: 'object',
      properties: { url: { type: 'string' } },
      required: ['url'],
    },
  },
  {
    name: 'mcp.files.read_file',
    description: 'Read a file.',
    inputSchema: { type: 'object', properties: { path: { type: 'string' } } },
  },
];

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

describe('AnthropicProvider against a local Messages API server', () => {
  let server: AnthropicTestServer;
  let provider: AnthropicProvider;

  beforeEach(async () => {
    server = await startAnthropicTestServer();
    provider = new AnthropicProvider({
      baseURL: server.url,
      apiKey: API_KEY,
      defaultModel: 'claude-default',
      maxRetries: 0,
    });
  });

  afterEach(async () => {
    await server.close();
  });

  it('streams text deltas in order and reassembles the reply', async () => {
    const text = 'The quick brown fox jumps over the lazy dog, twice over.';
    server.setScript({ text, chunks: 7, chunkDelayMs: 5 });
    const deltas: string[] = [];

    const reply = await provider.complete(request(), new AbortController().signal, (d) =>
      deltas.push(d),
    );

    expect(reply.text).toBe(text);
    expect(deltas).toEqual(splitIntoChunks(text, 7));
    expect(reply.stop_reason).toBe('end');
    expect(reply).not.toHaveProperty('tool_calls');
    expect(reply.model).toBe('claude-test');
  });

  it('sends system as the system parameter, a default max_tokens and a streaming request', async () => {
    await provider.complete(
      request({ model: '', temperature: 0.5 }),
      new AbortController().signal,
      () => {},
    );
    await provider.complete(
      request({ maxOutputTokens: 300 }),
      new AbortController().signal,
      () => {},
    );

    const first = server.requests[0]!;
    expect(first.method).toBe('POST');
    expect(first.url).toBe('/v1/messages');
    expect(first.body).toEqual({
      model: 'claude-default',
      max_tokens: 1024,
      system: 'You are terse.',
      messages: [{ role: 'user', content: 'Say hello.' }],
      stream: true,
    });
    expect((server.requests[1]!.body as Record<string, unknown>).max_tokens).toBe(300);
  });

  it('takes usage from message_start (cache included) and message_delta', async () => {
    server.setScript({
      text: 'ok',
      usage: {
        input_tokens: 100,
        output_tokens: 12,
        cache_read_input_tokens: 30,
        cache_creation_input_tokens: 5,
      },
    });

    const reply = await provider.complete(request(), new AbortController().signal, () => {});

    expect(reply.usage).toEqual({ input_tokens: 135, output_tokens: 12 });
  });

  it('uses the model message_start names', async () => {
    server.setScript({ text: 'ok', model: 'claude-test-20261201' });

    const reply = await provider.complete(request(), new AbortController().signal, () => {});

    expect(reply.model).toBe('claude-test-20261201');
  });

  it('sends the key only in a header', async () => {
    await provider.complete(request(), new AbortController().signal, () => {});

    const recorded = server.requests[0]!;
    const headers = JSON.stringify(recorded.headers);
    expect(headers).toContain(API_KEY);
    expect(recorded.rawBody).not.toContain(API_KEY);
    expect(recorded.url).not.toContain(API_KEY);
  });

  it('sends tools under API-safe names and maps tool_use blocks back with parsed input', async () => {
    server.setScript({
      text: 'Let me look.',
      toolUses: [
        { id: 'toolu_1', name: 'http__fetch', input: { url: 'https://example.test/a' } },
        {
          id: 'toolu_2',
          name: 'mcp__files__read_file',
          input: { path: '/tmp/x', nested: { deep: [1, 2] } },
          chunks: 11,
        },
      ],
      usage: { input_tokens: 50, output_tokens: 20 },
    });
    const deltas: string[] = [];

    const reply = await provider.complete(
      request({ tools: TOOLS, toolChoice: 'required' }),
      new AbortController().signal,
      (d) => deltas.push(d),
    );

    const sent = server.requests[0]!.body as Record<string, unknown>;
    expect(sent.tools).toEqual([
      { name: 'http__fetch', description: 'Fetch a URL.', input_schema: TOOLS[0]!.inputSchema },
      {
        name: 'mcp__files__read_file',
        description: 'Read a file.',
        input_schema: TOOLS[1]!.inputSchema,
      },
    ]);
    expect(sent.tool_choice).toEqual({ type: 'any' });
    expect(deltas.join('')).toBe('Let me look.');
    expect(reply).toMatchObject({
      text: 'Let me look.',
      stop_reason: 'tool_calls',
      usage: { input_tokens: 50, output_tokens: 20 },
    });
    expect(reply.tool_calls).toEqual([
      { id: 'toolu_1', name: 'http.fetch', arguments: { url: 'https://example.test/a' } },
      {
        id: 'toolu_2',
        name: 'mcp.files.read_file',
        arguments: { path: '/tmp/x', nested: { deep: [1, 2] } },
      },
    ]);
  });

  it('maps tool choices auto and none', async () => {
    const signal = new AbortController().signal;
    await provider.complete(request({ tools: TOOLS, toolChoice: 'auto' }), signal, () => {});
    await provider.complete(request({ tools: TOOLS, toolChoice: 'none' }), signal, () => {});
    await provider.complete(request({ toolChoice: 'none' }), signal, () => {});

    const bodies = server.requests.map((r) => r.body as Record<string, unknown>);
    expect(bodies[0]!.tool_choice).toEqual({ type: 'auto' });
    expect(bodies[1]!.tool_choice).toEqual({ type: 'none' });
    // Without tools there is nothing to choose from: neither is sent.
    expect(bodies[2]).not.toHaveProperty('tools');
    expect(bodies[2]).not.toHaveProperty('tool_choice');
  });

  it('shapes a follow-up: tool_use blocks, grouped tool_result blocks, then the user text', async () => {
    server.setScript({ text: 'The page says hi.' });
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Use tools.' },
      { role: 'user', content: 'What does the page say?' },
      {
        role: 'assistant',
        content: 'Looking.',
        tool_calls: [
          { id: 'toolu_1', name: 'http.fetch', arguments: { url: 'https://example.test/a' } },
          { id: 'toolu_2', name: 'mcp.files.read_file', arguments: { path: '/x' } },
        ],
      },
      { role: 'tool', tool_call_id: 'toolu_1', name: 'http.fetch', content: '{"body":"hi"}' },
      {
        role: 'tool',
        tool_call_id: 'toolu_2',
        name: 'mcp.files.read_file',
        content: 'no such file',
        is_error: true,
      },
      { role: 'user', content: 'Be brief.' },
      { role: 'assistant', content: 'Sure.' },
      { role: 'user', content: 'Go on.' },
    ];

    const reply = await provider.complete(
      request({ messages, tools: TOOLS }),
      new AbortController().signal,
      () => {},
    );

    expect(reply).toMatchObject({ text: 'The page says hi.', stop_reason: 'end' });
    const sent = server.requests[0]!.body as Record<string, unknown>;
    expect(sent.system).toBe('Use tools.');
    expect(sent.messages).toEqual([
      { role: 'user', content: 'What does the page say?' },
      {
        role: 'assistant',
        content: [
          { type: 'text', text: 'Looking.' },
          {
            type: 'tool_use',
            id: 'toolu_1',
            name: 'http__fetch',
            input: { url: 'https://example.test/a' },
          },
          { type: 'tool_use', id: 'toolu_2', name: 'mcp__files__read_file', input: { path: '/x' } },
        ],
      },
      {
        role: 'user',
        content: [
          { type: 'tool_result', tool_use_id: 'toolu_1', content: '{"body":"hi"}' },
          { type: 'tool_result', tool_use_id: 'toolu_2', content: 'no such file', is_error: true },
          { type: 'text', text: 'Be brief.' },
        ],
      },
      { role: 'assistant', content: 'Sure.' },
      { role: 'user', content: 'Go on.' },
    ]);
  });

  it('reports invalid or non-object input JSON and unknown tools in arguments_error', async () => {
    server.setScript({
      toolUses: [
        { id: 't1', name: 'http__fetch', input: '{"url": "https://exa', chunks: 4 },
        { id: 't2', name: 'http__fetch', input: '[1, 2]' },
        { id: 't3', name: 'shell__exec', input: { cmd: 'ls' } },
        { id: 't4', name: 'mcp__files__read_file', input: '' },
      ],
    });

    const reply = await provider.complete(
      request({ tools: TOOLS }),
      new AbortController().signal,
      () => {},
    );

    const calls = reply.tool_calls!;
    expect(calls).toHaveLength(4);
    expect(calls[0]).toMatchObject({ id: 't1', name: 'http.fetch', arguments: {} });
    expect(calls[0]!.arguments_error).toMatch(/not valid JSON/);
    expect(calls[1]).toMatchObject({ id: 't2', name: 'http.fetch', arguments: {} });
    expect(calls[1]!.arguments_error).toMatch(/not a JSON object/);
    expect(calls[2]).toMatchObject({ id: 't3', name: 'shell__exec', arguments: { cmd: 'ls' } });
    expect(calls[2]!.arguments_error).toMatch(/'shell__exec', a tool that was not offered/);
    // No input deltas at all: the start block's `{}` stands.
    expect(calls[3]).toEqual({ id: 't4', name: 'mcp.files.read_file', arguments: {} });
  });

  it('maps stop reasons: max_tokens, refusal → other, tool_use', async () => {
    const signal = new AbortController().signal;
    server.setScript({ text: 'cut', stopReason: 'max_tokens' });
    expect((await provider.complete(request(), signal, () => {})).stop_reason).toBe('max_tokens');
    server.setScript({ text: 'no', stopReason: 'refusal' });
    expect((await provider.complete(request(), signal, () => {})).stop_reason).toBe('other');
    server.setScript({ text: 'x', stopReason: 'stop_sequence' });
    expect((await provider.complete(request(), signal, () => {})).stop_reason).toBe('end');
  });

  it.each([
    [429, true],
    [500, true],
    [529, true],
    [400, false],
    [401, false],
  ])('maps HTTP %i to a PROVIDER_ERROR with retryable %s', async (status, retryable) => {
    server.setScript({ errorStatus: status });

    const error = await rejection(
      provider.complete(request(), new AbortController().signal, () => {}),
    );

    expect(isWardenError(error, 'PROVIDER_ERROR')).toBe(true);
    const failure = error as WardenError;
    expect(failure.retryable).toBe(retryable);
    expect(failure.message).toContain(`HTTP ${status}`);
    expect(failure.message).toContain(`anthropic endpoint ${server.url}`);
    expect(failure.details).toMatchObject({ status, model: 'claude-test', url: server.url });
    expect(server.requests).toHaveLength(1);
  });

  it('maps an error event mid-stream by its type', async () => {
    server.setScript({ text: 'partial answer', chunks: 3, streamErrorType: 'overloaded_error' });
    const overloaded = await rejection(
      provider.complete(request(), new AbortController().signal, () => {}),
    );
    server.setScript({
      text: 'partial answer',
      chunks: 3,
      streamErrorType: 'invalid_request_error',
    });
    const invalid = await rejection(
      provider.complete(request(), new AbortController().signal, () => {}),
    );

    expect(isWardenError(overloaded, 'PROVIDER_ERROR')).toBe(true);
    expect((overloaded as WardenError).retryable).toBe(true);
    expect((overloaded as WardenError).details).toMatchObject({ type: 'overloaded_error' });
    expect(isWardenError(invalid, 'PROVIDER_ERROR')).toBe(true);
    expect((invalid as WardenError).retryable).toBe(false);
  });

  it('maps a refused connection to a retryable PROVIDER_ERROR naming the endpoint', async () => {
    const url = server.url;
    await server.close();

    const error = await rejection(
      provider.complete(request(), new AbortController().signal, () => {}),
    );

    expect(isWardenError(error, 'PROVIDER_ERROR')).toBe(true);
    const failure = error as WardenError;
    expect(failure.retryable).toBe(true);
    expect(failure.message).toContain(`endpoint ${url}`);
    expect(failure.message).toContain('check ANTHROPIC_BASE_URL');
  });

  it('lets the SDK retry a transient 529 when retries are enabled', async () => {
    server.setScript({ text: 'recovered', errorStatus: 529, errorCount: 1, retryAfterMs: 0 });
    const retrying = new AnthropicProvider({ baseURL: server.url, apiKey: API_KEY, maxRetries: 2 });

    const reply = await retrying.complete(request(), new AbortController().signal, () => {});

    expect(reply.text).toBe('recovered');
    expect(server.requests).toHaveLength(2);
  });

  it('rejects promptly with CANCELED when aborted while the server hangs', async () => {
    server.setScript({ hang: true });
    const controller = new AbortController();
    const settled = rejection(provider.complete(request(), controller.signal, () => {}));

    await vi.waitFor(() => expect(server.requests).toHaveLength(1));
    controller.abort();

    expect(isWardenError(await settled, 'CANCELED')).toBe(true);
  });

  it('rejects with CANCELED when aborted mid-stream, after some deltas arrived', async () => {
    server.setScript({ text: 'one two three four five six', chunks: 6, chunkDelayMs: 200 });
    const controller = new AbortController();
    const deltas: string[] = [];
    const settled = rejection(
      provider.complete(request(), controller.signal, (d) => {
        deltas.push(d);
        if (deltas.length === 2) controller.abort();
      }),
    );

    expect(isWardenError(await settled, 'CANCELED')).toBe(true);
    expect(deltas).toHaveLength(2);
  });

  it('passes a WardenError abort reason through unchanged', async () => {
    server.setScript({ hang: true });
    const controller = new AbortController();
    const settled = rejection(provider.complete(request(), controller.signal, () => {}));
    await vi.waitFor(() => expect(server.requests).toHaveLength(1));
    const reason = new WardenError('LEASE_LOST', 'the step moved on');
    controller.abort(reason);

    expect(await settled).toBe(reason);
  });
});

describe('AnthropicProvider configuration', () => {
  const names = ['ANTHROPIC_BASE_URL', 'ANTHROPIC_API_KEY', 'ANTHROPIC_MODEL'] as const;
  let saved: Record<string, string | undefined>;

  beforeEach(() => {
    saved = Object.fromEntries(names.map((n) => [n, process.env[n]]));
    for (const n of names) delete process.env[n];
  });

  afterEach(() => {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  });

  it('throws CONFIG_INVALID without a base URL or an API key', () => {
    let thrown: unknown;
    try {
      new AnthropicProvider();
    } catch (error) {
      thrown = error;
    }
    expect(isWardenError(thrown, 'CONFIG_INVALID')).toBe(true);
    expect((thrown as Error).message).toMatch(/ANTHROPIC_API_KEY/);
  });

  it('rejects bad options with INVALID_PARAMS', () => {
    expect(() => new AnthropicProvider({ apiKey: 'k', defaultMaxTokens: 0 })).toThrow(
      /defaultMaxTokens/,
    );
    expect(
      () => new AnthropicProvider({ apiKey: 'k', bogus: 1 } as unknown as { apiKey: string }),
    ).toThrow(/bogus/);
  });

  it('reads ANTHROPIC_BASE_URL, ANTHROPIC_API_KEY and ANTHROPIC_MODEL, and registers as anthropic', async () => {
    const server = await startAnthropicTestServer({ script: { text: 'from env' } });
    try {
      process.env.ANTHROPIC_BASE_URL = server.url;
      process.env.ANTHROPIC_API_KEY = API_KEY;
      process.env.ANTHROPIC_MODEL = 'claude-from-env';
      const { provider, model } = new ModelRegistry().resolve('anthropic');

      const reply = await provider.complete(
        { model, messages: [{ role: 'user', content: 'hi' }] },
        new AbortController().signal,
        () => {},
      );

      expect(provider.name).toBe('anthropic');
      expect(reply.text).toBe('from env');
      expect((server.requests[0]!.body as Record<string, unknown>).model).toBe('claude-from-env');
      expect(JSON.stringify(server.requests[0]!.headers)).toContain(API_KEY);
    } finally {
      await server.close();
    }
  });
});
