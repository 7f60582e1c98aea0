/**
 * A small, real OpenAI-compatible HTTP server for integration tests (no SDK mocks). It listens
 * on 127.0.0.1 with an ephemeral port and serves `POST /v1/chat/completions` (streaming SSE and
 * plain JSON) and `GET /v1/models`. Each test scripts its behaviour with `setScript`: the reply
 * text, tool calls (streamed as real deltas, arguments split across chunks), how many chunks the
 * text streams in, a delay between chunks, an HTTP error for the next K requests, omitting
 * usage, or hanging forever (to test aborts). Every request is recorded.
 * `close()` destroys open sockets and pending timers, so no handles outlive the test.
 * `startRecordingServer` is the shared plumbing (also used by the Anthropic test server).
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface OpenAiTestToolCall {
  /** @default `call_test_<n>` */
  readonly id?: string;
  /** The function name as the API sees it (e.g. `http__fetch`). */
  readonly name: string;
  /** An object (sent as its JSON) or the raw argument text, which may be invalid JSON. */
  readonly arguments: string | Record<string, unknown>;
  /** How many deltas the argument text is split into. @default 3 */
  readonly chunks?: number;
}

export interface OpenAiTestScript {
  /**
   * The assistant's reply. @default 'Hello from the test server.' (none when `toolCalls` are
   * scripted)
   */
  readonly text?: string;
  /** Tool calls streamed after the text, one after another, as the OpenAI API does. */
  readonly toolCalls?: readonly OpenAiTestToolCall[];
  /** @default 'tool_calls' with tool calls, else 'stop' */
  readonly finishReason?: string;
  /** How many streamed content chunks the reply is split into (capped at its length). @default 1 */
  readonly chunks?: number;
  /** Delay before each streamed content chunk, in milliseconds. @default 0 */
  readonly chunkDelayMs?: number;
  /** Answer the next `errorCount` chat requests with this HTTP status and an OpenAI error body. */
  readonly errorStatus?: number;
  /** How many chat requests get `errorStatus` before replies succeed again. @default 1 */
  readonly errorCount?: number;
  /** Sent as `retry-after-ms` with error replies (lets SDK retries run without a backoff wait). */
  readonly retryAfterMs?: number;
  /** Leave usage out entirely, even when the client asks for it. @default false */
  readonly omitUsage?: boolean;
  /** Exact usage to report; by default it is derived from the request and reply lengths. */
  readonly usage?: { readonly prompt_tokens: number; readonly completion_tokens: number };
  /** Accept the chat request and never answer it. @default false */
  readonly hang?: boolean;
}

export interface RecordedRequest {
  readonly method: string;
  /** The request target, path and query string, e.g. `/v1/chat/completions`. */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
  /** The parsed JSON body; `undefined` for an empty body, the raw text when it is not JSON. */
  readonly body: unknown;
  readonly rawBody: string;
}

export interface OpenAiTestServer {
  /** The base URL to give a client, ending in `/v1`. */
  readonly url: string;
  /** Every request received, in arrival order. */
  readonly requests: RecordedRequest[];
  /** Replaces the script for the following requests (resets the error counter). */
  setScript(script: OpenAiTestScript): void;
  close(): Promise<void>;
}

export interface OpenAiTestServerOptions {
  readonly script?: OpenAiTestScript;
  /** Model ids listed by `GET /v1/models`. @default ['test-model'] */
  readonly models?: readonly string[];
}

export const DEFAULT_REPLY = 'Hello from the test server.';

/** Splits `text` into `n` contiguous, non-empty pieces of near-equal length (fewer if short). */
export function splitIntoChunks(text: string, n: number): string[] {
  if (text.length === 0) return [];
  const count = Math.max(1, Math.min(Math.floor(n), text.length));
  const pieces: string[] = [];
  for (let i = 0; i < count; i++) {
    pieces.push(
      text.slice(
        Math.floor((i * text.length) / count),
        Math.floor(((i + 1) * text.length) / count),
      ),
    );
  }
  return pieces;
}

/** Rough token count the server reports when no exact usage is scripted. */
export function countTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

/** The text of a JSON request body's messages (string contents and text blocks), for usage. */
export function promptText(body: Record<string, unknown>): string {
  const parts: string[] = [];
  const add = (content: unknown): void => {
    if (typeof content === 'string') parts.push(content);
    else if (Array.isArray(content))
      for (const block of content as { text?: unknown; content?: unknown }[]) {
        if (typeof block.text === 'string') parts.push(block.text);
        else add(block.content);
      }
  };
  add(body.system);
  for (const m of Array.isArray(body.messages) ? (body.messages as unknown[]) : [])
    add((m as { content?: unknown }).content);
  return parts.join('\n');
}

export interface RecordingServer {
  /** `http://127.0.0.1:<port>` */
  readonly origin: string;
  readonly requests: RecordedRequest[];
  /** A delay whose timer `close()` clears. */
  sleep(ms: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * Listens on an ephemeral 127.0.0.1 port, records every request (JSON bodies parsed), and hands
 * it to `handle`; `onFailure` answers a request whose handler threw before it replied.
 */
export async function startRecordingServer(
  handle: (req: RecordedRequest, res: ServerResponse) => Promise<void>,
  onFailure: (res: ServerResponse, error: unknown) => void,
): Promise<RecordingServer> {
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let closed: Promise<void> | undefined;

  const receive = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const parts: Buffer[] = [];
    for await (const part of req) parts.push(part as Buffer);
    const rawBody = Buffer.concat(parts).toString('utf8');
    let body: unknown;
    if (rawBody) {
      try {
        body = JSON.parse(rawBody) as unknown;
      } catch {
        body = rawBody;
      }
    }
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body,
      rawBody,
    };
    requests.push(recorded);
    await handle(recorded, res);
  };

  const server = createServer((req, res) => {
    receive(req, res).catch((error: unknown) => {
      if (!res.headersSent && !res.destroyed) onFailure(res, error);
      else res.destroy();
    });
  });
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;

  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    sleep: (ms) =>
      new Promise((resolve) => {
        const timer = setTimeout(() => {
          timers.delete(timer);
          resolve();
        }, ms);
        timers.add(timer);
      }),
    close(): Promise<void> {
      closed ??= new Promise<void>((resolve, reject) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.close((error) => (error ? reject(error) : resolve()));
        for (const socket of sockets) socket.destroy();
        sockets.clear();
      });
      return closed;
    },
  };
}

export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  const payload = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(payload),
    ...headers,
  });
  res.end(payload);
}

export async function startOpenAiTestServer(
  options: OpenAiTestServerOptions = {},
): Promise<OpenAiTestServer> {
  const models = options.models ?? ['test-model'];
  let script: OpenAiTestScript = {};
  let errorsRemaining = 0;
  let sequence = 0;

  const setScript = (next: OpenAiTestScript): void => {
    script = next;
    errorsRemaining = next.errorStatus === undefined ? 0 : (next.errorCount ?? 1);
  };
  setScript(options.script ?? {});

  const sendError = (res: ServerResponse, status: number, message: string): void => {
    const type =
      status === 429
        ? 'rate_limit_exceeded'
        : status >= 500
          ? 'server_error'
          : 'invalid_request_error';
    sendJson(
      res,
      status,
      { error: { message, type, param: null, code: null } },
      script.retryAfterMs === undefined ? {} : { 'retry-after-ms': String(script.retryAfterMs) },
    );
  };

  const chatCompletion = async (
    res: ServerResponse,
    body: Record<string, unknown>,
  ): Promise<void> => {
    if (errorsRemaining > 0 && script.errorStatus !== undefined) {
      errorsRemaining--;
      sendError(res, script.errorStatus, `scripted failure (HTTP ${script.errorStatus})`);
      return;
    }
    if (script.hang) return; // Keep the request open until the client gives up or we close.

    const model = typeof body.model === 'string' ? body.model : (models[0] ?? 'test-model');
    const prompt = promptText(body);
    const scriptedCalls = script.toolCalls ?? [];
    const text = script.text ?? (scriptedCalls.length ? '' : DEFAULT_REPLY);
    const toolCalls = scriptedCalls.map((call, i) => ({
      id: call.id ?? `call_test_${i}`,
      name: call.name,
      arguments:
        typeof call.arguments === 'string' ? call.arguments : JSON.stringify(call.arguments),
      chunks: call.chunks ?? 3,
    }));
    const finishReason = script.finishReason ?? (toolCalls.length ? 'tool_calls' : 'stop');
    const promptTokens = script.usage?.prompt_tokens ?? countTokens(prompt);
    const completionTokens =
      script.usage?.completion_tokens ??
      countTokens(text + toolCalls.map((c) => c.name + c.arguments).join(''));
    const usage = {
      prompt_tokens: promptTokens,
      completion_tokens: completionTokens,
      total_tokens: promptTokens + completionTokens,
    };
    const id = `chatcmpl-test-${++sequence}`;
    const created = Math.floor(Date.now() / 1000);

    if (body.stream !== true) {
      sendJson(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model,
        choices: [
          {
            index: 0,
            message: {
              role: 'assistant',
              content: text || (toolCalls.length ? null : text),
              refusal: null,
              ...(toolCalls.length
                ? {
                    tool_calls: toolCalls.map((c) => ({
                      id: c.id,
                      type: 'function',
                      function: { name: c.name, arguments: c.arguments },
                    })),
                  }
                : {}),
            },
            logprobs: null,
            finish_reason: finishReason,
          },
        ],
        ...(script.omitUsage ? {} : { usage }),
      });
      return;
    }

    const streamOptions = body.stream_options as { include_usage?: unknown } | undefined;
    const includeUsage = streamOptions?.include_usage === true && !script.omitUsage;
    const base = { id, object: 'chat.completion.chunk', created, model };
    const chunk = (delta: Record<string, unknown>, reason: string | null) => ({
      ...base,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: reason }],
      ...(includeUsage ? { usage: null } : {}),
    });
    const send = (data: unknown): boolean => {
      if (res.destroyed || res.writableEnded) return false;
      res.write(`data: ${typeof data === 'string' ? data : JSON.stringify(data)}\n\n`);
      return true;
    };

    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
    });
    res.flushHeaders();
    if (!send(chunk({ role: 'assistant', content: text ? '' : null }, null))) return;
    for (const piece of splitIntoChunks(text, script.chunks ?? 1)) {
      if (script.chunkDelayMs) await recording.sleep(script.chunkDelayMs);
      if (!send(chunk({ content: piece }, null))) return;
    }
    for (const [index, call] of toolCalls.entries()) {
      // The first delta names the call; the arguments follow in pieces, by index only.
      const opening = {
        index,
        id: call.id,
        type: 'function',
        function: { name: call.name, arguments: '' },
      };
      if (!send(chunk({ tool_calls: [opening] }, null))) return;
      for (const piece of splitIntoChunks(call.arguments, call.chunks)) {
        if (script.chunkDelayMs) await recording.sleep(script.chunkDelayMs);
        if (!send(chunk({ tool_calls: [{ index, function: { arguments: piece } }] }, null))) return;
      }
    }
    if (!send(chunk({}, finishReason))) return;
    if (includeUsage && !send({ ...base, choices: [], usage })) return;
    if (!send('[DONE]')) return;
    res.end();
  };

  const handle = async (req: RecordedRequest, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url || '/', 'http://127.0.0.1').pathname;
    if (req.method === 'GET' && path === '/v1/models') {
      sendJson(res, 200, {
        object: 'list',
        data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'warden-test' })),
      });
      return;
    }
    if (req.method === 'POST' && path === '/v1/chat/completions') {
      const body = req.body;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        sendError(res, 400, 'the request body must be a JSON object');
        return;
      }
      await chatCompletion(res, body as Record<string, unknown>);
      return;
    }
    sendError(res, 404, `no route for ${req.method || '?'} ${path}`);
  };

  const recording = await startRecordingServer(handle, (res, error) =>
    sendError(res, 500, error instanceof Error ? error.message : String(error)),
  );

  return {
    url: `${recording.origin}/v1`,
    requests: recording.requests,
    setScript,
    close: () => recording.close(),
  };
}
