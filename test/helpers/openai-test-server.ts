/**
 * A small, real OpenAI-compatible HTTP server for integration tests (no SDK mocks). It listens
 * on 127.0.0.1 with an ephemeral port and serves `POST /v1/chat/completions` (streaming SSE and
 * plain JSON) and `GET /v1/models`. Each test scripts its behaviour with `setScript`: the reply
 * text, how many chunks it streams in, a delay between chunks, an HTTP error for the next K
 * requests, omitting usage, or hanging forever (to test aborts). Every request is recorded.
 * `close()` destroys open sockets and pending timers, so no handles outlive the test.
 */
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface OpenAiTestScript {
  /** The assistant's reply. @default 'Hello from the test server.' */
  readonly text?: string;
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
function countTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

export async function startOpenAiTestServer(
  options: OpenAiTestServerOptions = {},
): Promise<OpenAiTestServer> {
  const models = options.models ?? ['test-model'];
  const requests: RecordedRequest[] = [];
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();
  let script: OpenAiTestScript = {};
  let errorsRemaining = 0;
  let sequence = 0;
  let closed: Promise<void> | undefined;

  const setScript = (next: OpenAiTestScript): void => {
    script = next;
    errorsRemaining = next.errorStatus === undefined ? 0 : (next.errorCount ?? 1);
  };
  setScript(options.script ?? {});

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(() => {
        timers.delete(timer);
        resolve();
      }, ms);
      timers.add(timer);
    });

  const sendJson = (
    res: ServerResponse,
    status: number,
    body: unknown,
    headers: Record<string, string> = {},
  ): void => {
    const payload = JSON.stringify(body);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(payload),
      ...headers,
    });
    res.end(payload);
  };

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
    const messages = Array.isArray(body.messages) ? (body.messages as unknown[]) : [];
    const prompt = messages
      .map((m) => {
        const content = (m as { content?: unknown }).content;
        return typeof content === 'string' ? content : '';
      })
      .join('\n');
    const text = script.text ?? DEFAULT_REPLY;
    const promptTokens = script.usage?.prompt_tokens ?? countTokens(prompt);
    const completionTokens = script.usage?.completion_tokens ?? countTokens(text);
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
            message: { role: 'assistant', content: text, refusal: null },
            logprobs: null,
            finish_reason: 'stop',
          },
        ],
        ...(script.omitUsage ? {} : { usage }),
      });
      return;
    }

    const streamOptions = body.stream_options as { include_usage?: unknown } | undefined;
    const includeUsage = streamOptions?.include_usage === true && !script.omitUsage;
    const base = { id, object: 'chat.completion.chunk', created, model };
    const chunk = (delta: Record<string, unknown>, finishReason: string | null) => ({
      ...base,
      choices: [{ index: 0, delta, logprobs: null, finish_reason: finishReason }],
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
    if (!send(chunk({ role: 'assistant', content: '' }, null))) return;
    for (const piece of splitIntoChunks(text, script.chunks ?? 1)) {
      if (script.chunkDelayMs) await sleep(script.chunkDelayMs);
      if (!send(chunk({ content: piece }, null))) return;
    }
    if (!send(chunk({}, 'stop'))) return;
    if (includeUsage && !send({ ...base, choices: [], usage })) return;
    if (!send('[DONE]')) return;
    res.end();
  };

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
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
    requests.push({
      method: req.method ?? '',
      url: req.url ?? '',
      headers: req.headers,
      body,
      rawBody,
    });

    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    if (req.method === 'GET' && path === '/v1/models') {
      sendJson(res, 200, {
        object: 'list',
        data: models.map((id) => ({ id, object: 'model', created: 0, owned_by: 'warden-test' })),
      });
      return;
    }
    if (req.method === 'POST' && path === '/v1/chat/completions') {
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        sendError(res, 400, 'the request body must be a JSON object');
        return;
      }
      await chatCompletion(res, body as Record<string, unknown>);
      return;
    }
    sendError(res, 404, `no route for ${req.method ?? '?'} ${path}`);
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent && !res.destroyed) {
        sendError(res, 500, error instanceof Error ? error.message : String(error));
      } else {
        res.destroy();
      }
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
    url: `http://127.0.0.1:${port}/v1`,
    requests,
    setScript,
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
