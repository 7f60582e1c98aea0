/**
 * OpenAiProvider against a real local OpenAI-compatible HTTP server (test/helpers), through the
 * official SDK: streaming, usage, request shape, auth, error mapping, aborts, tool calls and
 * configuration.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { estimateTokens, isWardenError, type WardenError } from '../src/core/index.ts';
import { OpenAiProvider } from '../src/runtime/models/openai.ts';
import type { ChatMessage, ModelRequest, ModelTool } from '../src/runtime/models/provider.ts';
import {
  type OpenAiTestServer,
  splitIntoChunks,
  startOpenAiTestServer,
} from './helpers/openai-test-server.ts';

const API_KEY = 'sk-warden-test-0123456789';

const request = (overrides: Partial<ModelRequest> = {}): ModelRequest => ({
  model: 'test-model',
  messages: [
    { role: 'system', content: 'You are terse.' },
    { role: 'user', content: 'Say hello.' },
  ],
  ...overrides,
});

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error('expected the promise to reject');
}

describe('OpenAiProvider against a local OpenAI-compatible server', () => {
  let server: OpenAiTestServer;
  let provider: OpenAiProvider;

  beforeEach(async () => {
    server = await startOpenAiTestServer();
    provider = new OpenAiProvider({
      baseURL: server.url,
      apiKey: API_KEY,
      defaultModel: 'default-model',
      maxRetries: 0,
    });
  });

  afterEach(async () => {
    await server.close();
  });

  it('reassembles streamed text and passes every delta to onDelta in order', async () => {
    const text = 'The quick brown fox jumps over the lazy dog, twice over.';
    server.setScript({ text, chunks: 7, chunkDelayMs: 5 });
    const deltas: string[] = [];

    const reply = await provider.complete(request(), new AbortController().signal, (d) =>
      deltas.push(d),
    );

    expect(reply.text).toBe(text);
    expect(deltas).toEqual(splitIntoChunks(text, 7));
    expect(deltas).toHaveLength(7);
    expect(deltas.join('')).toBe(text);
    expect(reply.model).toBe('test-model');
  });

  it('takes usage from the final usage chunk', async () => {
    server.setScript({ text: 'ok', usage: { prompt_tokens: 123, completion_tokens: 45 } });

    const reply = await provider.complete(request(), new AbortController().signal, () => {});

    expect(reply.usage).toEqual({ input_tokens: 123, output_tokens: 45 });
  });

  it('estimates tokens when the server omits usage', async () => {
    const text = 'An answer without any usage block at all.';
    server.setScript({ text, chunks: 3, omitUsage: true });

    const reply = await provider.complete(request(), new AbortController().signal, () => {});

    expect(reply.text).toBe(text);
    expect(reply.usage.input_tokens).toBeGreaterThan(0);
    expect(reply.usage.output_tokens).toBeGreaterThan(0);
    expect(reply.usage).toEqual({
      input_tokens: estimateTokens('You are terse.\nSay hello.'),
      output_tokens: estimateTokens(text),
    });
  });

  it('sends the model, messages, max_tokens, temperature and a streaming request', async () => {
    await provider.complete(
      request({ model: 'gpt-test-large', maxOutputTokens: 256, temperature: 0.25 }),
      new AbortController().signal,
      () => {},
    );

    expect(server.requests).toHaveLength(1);
    const recorded = server.requests[0]!;
    expect(recorded.method).toBe('POST');
    expect(recorded.url).toBe('/v1/chat/completions');
    expect(recorded.body).toEqual({
      model: 'gpt-test-large',
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'Say hello.' },
      ],
      stream: true,
      stream_options: { include_usage: true },
      max_tokens: 256,
      temperature: 0.25,
    });
  });

  it('omits max_tokens and temperature when not given, keeps temperature 0, and falls back to the default model', async () => {
    const reply = await provider.complete(
      request({ model: '' }),
      new AbortController().signal,
      () => {},
    );
    await provider.complete(request({ temperature: 0 }), new AbortController().signal, () => {});

    const first = server.requests[0]!.body as Record<string, unknown>;
    expect(first.model).toBe('default-model');
    expect(reply.model).toBe('default-model');
    expect(first).not.toHaveProperty('max_tokens');
    expect(first).not.toHaveProperty('temperature');
    const second = server.requests[1]!.body as Record<string, unknown>;
    expect(second.temperature).toBe(0);
  });

  it('sends the API key only as a Bearer Authorization header', async () => {
    await provider.complete(request(), new AbortController().signal, () => {});

    const recorded = server.requests[0]!;
    expect(recorded.headers.authorization).toBe(`Bearer ${API_KEY}`);
    expect(recorded.rawBody).not.toContain(API_KEY);
    expect(recorded.url).not.toContain(API_KEY);
    const otherHeaders = Object.entries(recorded.headers).filter(
      ([name]) => name !== 'authorization',
    );
    expect(JSON.stringify(otherHeaders)).not.toContain(API_KEY);
  });

  it('maps HTTP 500 to a retryable PROVIDER_ERROR', async () => {
    server.setScript({ errorStatus: 500 });

    const error = await rejection(
      provider.complete(request(), new AbortController().signal, () => {}),
    );

    expect(isWardenError(error, 'PROVIDER_ERROR')).toBe(true);
    expect((error as { retryable: boolean }).retryable).toBe(true);
    expect((error as { details?: Record<string, unknown> }).details).toMatchObject({
      status: 500,
      model: 'test-model',
    });
    expect(server.requests).toHaveLength(1);
  });

  it('maps HTTP 429 to a retryable PROVIDER_ERROR', async () => {
    server.setScript({ errorStatus: 429 });

    const error = await rejection(
      provider.complete(request(), new AbortController().signal, () => {}),
    );

    expect(isWardenError(error, 'PROVIDER_ERROR')).toBe(true);
    expect((error as { retryable: boolean }).retryable).toBe(true);
  });

  it('maps HTTP 400 to a non-retryable PROVIDER_ERROR', async () => {
    server.setScript({ errorStatus: 400 });

    const error = await rejection(
      provider.complete(request(), new AbortController().signal, () => {}),
    );

    expect(isWardenError(error, 'PROVIDER_ERROR')).toBe(true);
    expect((error as { retryable: boolean }).retryable).toBe(false);
    expect((error as Error).message).toContain('HTTP 400');
    expect(server.requests).toHaveLength(1);
  });

  it('maps a refused connection to a retryable PROVIDER_ERROR', async () => {
    const url = server.url;
    await server.close();

    const error = await rejection(
      provider.complete(request(), new AbortController().signal, () => {}),
    );

    expect(url).toMatch(/\/v1$/);
    expect(isWardenError(error, 'PROVIDER_ERROR')).toBe(true);
    expect((error as { retryable: boolean }).retryable).toBe(true);
    // The message names the endpoint that was tried, and what to check.
    const failure = error as WardenError;
    expect(failure.message).toContain(`endpoint ${url}`);
    expect(failure.message).toContain('check OPENAI_BASE_URL');
    expect(failure.details).toMatchObject({ url });
  });

  it('lets the SDK retry a transient 500 when retries are enabled', async () => {
    server.setScript({ text: 'recovered', errorStatus: 500, errorCount: 1, retryAfterMs: 0 });
    const retrying = new OpenAiProvider({ baseURL: server.url, apiKey: API_KEY, maxRetries: 2 });

    const reply = await retrying.complete(request(), new AbortController().signal, () => {});

    expect(reply.text).toBe('recovered');
    expect(server.requests).toHaveLength(2);
  });

  it('rejects promptly with CANCELED when aborted while the server hangs', async () => {
    server.setScript({ hang: true });
    const controller = new AbortController();
    const pending = provider.complete(request(), controller.signal, () => {});
    const settled = rejection(pending);

    await vi.waitFor(() => expect(server.requests).toHaveLength(1));
    const abortedAt = Date.now();
    controller.abort();
    const error = await settled;

    expect(Date.now() - abortedAt).toBeLessThan(1_000);
    expect(isWardenError(error, 'CANCELED')).toBe(true);
  });

  // The SDK's stream iterator ends quietly on abort; the provider must still reject.
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

    const error = await settled;

    expect(isWardenError(error, 'CANCELED')).toBe(true);
    expect(deltas).toHaveLength(2);
  });

  it('also serves non-streaming completions and the model list', async () => {
    server.setScript({ text: 'plain reply' });

    const completion = await fetch(`${server.url}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }] }),
    });
    const body = (await completion.json()) as {
      choices: { message: { content: string } }[];
      usage: { total_tokens: number };
    };
    const models = (await (await fetch(`${server.url}/models`)).json()) as {
      data: { id: string }[];
    };

    expect(completion.status).toBe(200);
    expect(body.choices[0]!.message.content).toBe('plain reply');
    expect(body.usage.total_tokens).toBeGreaterThan(0);
    expect(models.data.map((m) => m.id)).toEqual(['test-model']);
  });
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

describe('OpenAiProvider tool calls against a local server', () => {
  let server: OpenAiTestServer;
  let provider: OpenAiProvider;

  beforeEach(async () => {
    server = await startOpenAiTestServer();
    provider = new OpenAiProvider({ baseURL: server.url, apiKey: API_KEY, maxRetries: 0 });
  });

  afterEach(async () => {
    await server.close();
  });

  it('sends tools under API-safe names and maps streamed tool calls back with parsed arguments', async () => {
    server.setScript({
      text: 'Fetching.',
      toolCalls: [
        { id: 'call_a', name: 'http__fetch', arguments: { url: 'https://example.test/a' } },
        {
          id: 'call_b',
          name: 'mcp__files__read_file',
          arguments: { path: '/tmp/x', nested: { deep: [1, 2] } },
          chunks: 9,
        },
      ],
    });
    const deltas: string[] = [];

    const reply = await provider.complete(
      request({ tools: TOOLS, toolChoice: 'auto' }),
      new AbortController().signal,
      (d) => deltas.push(d),
    );

    const sent = server.requests[0]!.body as Record<string, unknown>;
    expect(sent.tools).toEqual([
      {
        type: 'function',
        function: {
          name: 'http__fetch',
          description: 'Fetch a URL.',
          parameters: TOOLS[0]!.inputSchema,
        },
      },
      {
        type: 'function',
        function: {
          name: 'mcp__files__read_file',
          description: 'Read a file.',
          parameters: TOOLS[1]!.inputSchema,
        },
      },
    ]);
    expect(sent.tool_choice).toBe('auto');
    expect(reply.text).toBe('Fetching.');
    expect(deltas.join('')).toBe('Fetching.');
    expect(reply.stop_reason).toBe('tool_calls');
    expect(reply.tool_calls).toEqual([
      { id: 'call_a', name: 'http.fetch', arguments: { url: 'https://example.test/a' } },
      {
        id: 'call_b',
        name: 'mcp.files.read_file',
        arguments: { path: '/tmp/x', nested: { deep: [1, 2] } },
      },
    ]);
  });

  it('shapes a follow-up with the assistant tool calls and tool results as the API expects', async () => {
    server.setScript({ text: 'The page says hi.' });
    const messages: ChatMessage[] = [
      { role: 'system', content: 'Use tools.' },
      { role: 'user', content: 'What does the page say?' },
      {
        role: 'assistant',
        content: '',
        tool_calls: [
          { id: 'call_a', name: 'http.fetch', arguments: { url: 'https://example.test/a' } },
          { id: 'call_b', name: 'mcp.files.read_file', arguments: { path: '/x' } },
        ],
      },
      { role: 'tool', tool_call_id: 'call_a', name: 'http.fetch', content: '{"body":"hi"}' },
      {
        role: 'tool',
        tool_call_id: 'call_b',
        name: 'mcp.files.read_file',
        content: 'no such file',
        is_error: true,
      },
    ];

    const reply = await provider.complete(
      request({ messages, tools: TOOLS }),
      new AbortController().signal,
      () => {},
    );

    expect(reply).toMatchObject({ text: 'The page says hi.', stop_reason: 'end' });
    expect(reply).not.toHaveProperty('tool_calls');
    const sent = server.requests[0]!.body as Record<string, unknown>;
    expect(sent.messages).toEqual([
      { role: 'system', content: 'Use tools.' },
      { role: 'user', content: 'What does the page say?' },
      {
        role: 'assistant',
        content: null,
        tool_calls: [
          {
            id: 'call_a',
            type: 'function',
            function: { name: 'http__fetch', arguments: '{"url":"https://example.test/a"}' },
          },
          {
            id: 'call_b',
            type: 'function',
            function: { name: 'mcp__files__read_file', arguments: '{"path":"/x"}' },
          },
        ],
      },
      { role: 'tool', tool_call_id: 'call_a', content: '{"body":"hi"}' },
      { role: 'tool', tool_call_id: 'call_b', content: '[tool error] no such file' },
    ]);
    expect(sent).not.toHaveProperty('tool_choice');
  });

  it('maps names from history even when the tool is no longer offered', async () => {
    await provider.complete(
      request({
        messages: [
          { role: 'user', content: 'go' },
          {
            role: 'assistant',
            content: 'ok',
            tool_calls: [{ id: 'c', name: 'kv.get', arguments: {} }],
          },
          { role: 'tool', tool_call_id: 'c', name: 'kv.get', content: 'null' },
        ],
      }),
      new AbortController().signal,
      () => {},
    );

    const sent = server.requests[0]!.body as {
      messages: { tool_calls?: unknown }[];
      tools?: unknown;
    };
    expect(sent.tools).toBeUndefined();
    expect(sent.messages[1]!.tool_calls).toEqual([
      { id: 'c', type: 'function', function: { name: 'kv__get', arguments: '{}' } },
    ]);
  });

  it('reports invalid or non-object argument JSON and unknown tools in arguments_error', async () => {
    server.setScript({
      toolCalls: [
        { id: 'c1', name: 'http__fetch', arguments: '{"url": "https://exa', chunks: 4 },
        { id: 'c2', name: 'http__fetch', arguments: '["not", "an", "object"]' },
        { id: 'c3', name: 'shell__exec', arguments: { cmd: 'rm -rf /' } },
        { id: 'c4', name: 'mcp__files__read_file', arguments: '' },
      ],
    });

    const reply = await provider.complete(
      request({ tools: TOOLS, toolChoice: 'required' }),
      new AbortController().signal,
      () => {},
    );

    expect((server.requests[0]!.body as Record<string, unknown>).tool_choice).toBe('required');
    const calls = reply.tool_calls!;
    expect(calls).toHaveLength(4);
    expect(calls[0]).toMatchObject({ id: 'c1', name: 'http.fetch', arguments: {} });
    expect(calls[0]!.arguments_error).toMatch(/not valid JSON/);
    expect(calls[1]).toMatchObject({ id: 'c2', name: 'http.fetch', arguments: {} });
    expect(calls[1]!.arguments_error).toMatch(/not a JSON object/);
    expect(calls[2]).toMatchObject({
      id: 'c3',
      name: 'shell__exec',
      arguments: { cmd: 'rm -rf /' },
    });
    expect(calls[2]!.arguments_error).toMatch(/'shell__exec', a tool that was not offered/);
    expect(calls[3]).toEqual({ id: 'c4', name: 'mcp.files.read_file', arguments: {} });
  });

  it('maps finish reasons: length → max_tokens, a tool-calling stop → tool_calls, others → other', async () => {
    const signal = new AbortController().signal;
    server.setScript({ text: 'cut', finishReason: 'length' });
    expect((await provider.complete(request(), signal, () => {})).stop_reason).toBe('max_tokens');
    server.setScript({ toolCalls: [{ name: 'http__fetch', arguments: {} }], finishReason: 'stop' });
    expect((await provider.complete(request({ tools: TOOLS }), signal, () => {})).stop_reason).toBe(
      'tool_calls',
    );
    server.setScript({ text: 'filtered', finishReason: 'content_filter' });
    expect((await provider.complete(request(), signal, () => {})).stop_reason).toBe('other');
    server.setScript({ text: 'fine' });
    expect((await provider.complete(request(), signal, () => {})).stop_reason).toBe('end');
  });

  it('takes usage from the usage chunk of a tool-calling reply', async () => {
    server.setScript({
      toolCalls: [{ name: 'http__fetch', arguments: { url: 'u' } }],
      usage: { prompt_tokens: 77, completion_tokens: 9 },
    });

    const reply = await provider.complete(
      request({ tools: TOOLS }),
      new AbortController().signal,
      () => {},
    );

    expect(reply.usage).toEqual({ input_tokens: 77, output_tokens: 9 });
  });

  it('rejects with CANCELED when aborted while tool-call arguments stream', async () => {
    server.setScript({
      toolCalls: [{ name: 'http__fetch', arguments: { url: 'https://example.test/' }, chunks: 8 }],
      chunkDelayMs: 100,
    });
    const controller = new AbortController();
    const settled = rejection(
      provider.complete(request({ tools: TOOLS }), controller.signal, () => {}),
    );

    await vi.waitFor(() => expect(server.requests).toHaveLength(1));
    controller.abort();

    expect(isWardenError(await settled, 'CANCELED')).toBe(true);
  });
});

describe('OpenAiProvider configuration', () => {
  it('throws CONFIG_INVALID without a base URL or an API key', () => {
    const saved = {
      OPENAI_BASE_URL: process.env.OPENAI_BASE_URL,
      OPENAI_API_KEY: process.env.OPENAI_API_KEY,
    };
    delete process.env.OPENAI_BASE_URL;
    delete process.env.OPENAI_API_KEY;
    try {
      let thrown: unknown;
      try {
        new OpenAiProvider();
      } catch (error) {
        thrown = error;
      }
      expect(isWardenError(thrown, 'CONFIG_INVALID')).toBe(true);
      expect(() => new OpenAiProvider({ maxRetries: 0 })).toThrow(/OPENAI_API_KEY/);
    } finally {
      for (const [name, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });
});
