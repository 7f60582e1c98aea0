/**
 * A small, real Anthropic Messages API server for integration tests (no SDK mocks): it serves
 * `POST /v1/messages` on 127.0.0.1 with an ephemeral port, streaming over SSE the way the API
 * does (message_start, ping, content_block_start / content_block_delta with text_delta or
 * input_json_delta / content_block_stop, message_delta with the stop reason and usage,
 * message_stop) or answering with one JSON message. Tests script the reply with `setScript`:
 * text and tool calls (inputs split across input_json_delta pieces), usage, an HTTP error for
 * the next K requests, an `error` event mid-stream, or hanging forever. Every request is
 * recorded. The base URL has no `/v1` (the SDK appends `/v1/messages`).
 */
import type { ServerResponse } from 'node:http';

import {
  countTokens,
  promptText,
  type RecordedRequest,
  sendJson,
  splitIntoChunks,
  startRecordingServer,
} from './openai-test-server.ts';

export interface AnthropicTestToolUse {
  /** @default `toolu_test_<n>` */
  readonly id?: string;
  /** The tool name as the API sees it (e.g. `http__fetch`). */
  readonly name: string;
  /** An object (sent as its JSON) or the raw input text, which may be invalid JSON. */
  readonly input: string | Record<string, unknown>;
  /** How many input_json_delta pieces the input is split into. @default 3 */
  readonly chunks?: number;
}

export interface AnthropicTestScript {
  /** The reply text. @default 'Hello from the Anthropic test server.' (none with tool calls) */
  readonly text?: string;
  /** tool_use blocks after the text block. */
  readonly toolUses?: readonly AnthropicTestToolUse[];
  /** @default 'tool_use' with tool uses, else 'end_turn' */
  readonly stopReason?: string;
  /** How many text_delta events the text is split into. @default 1 */
  readonly chunks?: number;
  /** Delay before each delta event, in milliseconds. @default 0 */
  readonly chunkDelayMs?: number;
  /** Exact usage; by default derived from the request and reply lengths. */
  readonly usage?: {
    readonly input_tokens: number;
    readonly output_tokens: number;
    readonly cache_read_input_tokens?: number;
    readonly cache_creation_input_tokens?: number;
  };
  /** The model named in message_start. @default the requested model */
  readonly model?: string;
  /** Answer the next `errorCount` requests with this HTTP status and an Anthropic error body. */
  readonly errorStatus?: number;
  /** @default 1 */
  readonly errorCount?: number;
  /** Sent as `retry-after-ms` with error replies. */
  readonly retryAfterMs?: number;
  /** Send an `error` event of this type after the first text delta, then close the stream. */
  readonly streamErrorType?: string;
  /** Accept the request and never answer it. @default false */
  readonly hang?: boolean;
}

export interface AnthropicTestServer {
  /** The base URL to give the SDK, e.g. `http://127.0.0.1:41234`. */
  readonly url: string;
  readonly requests: RecordedRequest[];
  setScript(script: AnthropicTestScript): void;
  close(): Promise<void>;
}

export const DEFAULT_ANTHROPIC_REPLY = 'Hello from the Anthropic test server.';

const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

export async function startAnthropicTestServer(
  options: { script?: AnthropicTestScript } = {},
): Promise<AnthropicTestServer> {
  let script: AnthropicTestScript = {};
  let errorsRemaining = 0;
  let sequence = 0;

  const setScript = (next: AnthropicTestScript): void => {
    script = next;
    errorsRemaining = next.errorStatus === undefined ? 0 : (next.errorCount ?? 1);
  };
  setScript(options.script ?? {});

  const sendError = (res: ServerResponse, status: number, message: string): void => {
    const type = ERROR_TYPES[status] ?? (status >= 500 ? 'api_error' : 'invalid_request_error');
    sendJson(
      res,
      status,
      { type: 'error', error: { type, message }, request_id: `req_test_${sequence}` },
      {
        'request-id': `req_test_${sequence}`,
        ...(script.retryAfterMs === undefined
          ? {}
          : { 'retry-after-ms': String(script.retryAfterMs) }),
      },
    );
  };

  const messages = async (res: ServerResponse, body: Record<string, unknown>): Promise<void> => {
    sequence++;
    if (errorsRemaining > 0 && script.errorStatus !== undefined) {
      errorsRemaining--;
      sendError(res, script.errorStatus, `scripted failure (HTTP ${script.errorStatus})`);
      return;
    }
    if (script.hang) return;
    if (typeof body.max_tokens !== 'number') {
      sendError(res, 400, 'max_tokens: Field required');
      return;
    }

    const model = script.model ?? (typeof body.model === 'string' ? body.model : 'test-model');
    const uses = (script.toolUses ?? []).map((use, i) => ({
      id: use.id ?? `toolu_test_${i}`,
      name: use.name,
      input: typeof use.input === 'string' ? use.input : JSON.stringify(use.input),
      chunks: use.chunks ?? 3,
    }));
    const text = script.text ?? (uses.length ? '' : DEFAULT_ANTHROPIC_REPLY);
    const stopReason = script.stopReason ?? (uses.length ? 'tool_use' : 'end_turn');
    const usage = {
      input_tokens: script.usage?.input_tokens ?? countTokens(promptText(body)),
      output_tokens:
        script.usage?.output_tokens ??
        countTokens(text + uses.map((u) => u.name + u.input).join('')),
      cache_read_input_tokens: script.usage?.cache_read_input_tokens ?? 0,
      cache_creation_input_tokens: script.usage?.cache_creation_input_tokens ?? 0,
    };
    const id = `msg_test_${sequence}`;
    const message = {
      id,
      type: 'message',
      role: 'assistant',
      model,
      content: [] as unknown[],
      stop_reason: null as string | null,
      stop_sequence: null,
      usage: { ...usage, output_tokens: 1 },
    };

    if (body.stream !== true) {
      sendJson(res, 200, {
        ...message,
        content: [
          ...(text ? [{ type: 'text', text, citations: null }] : []),
          ...uses.map((u) => ({
            type: 'tool_use',
            id: u.id,
            name: u.name,
            input: JSON.parse(u.input) as unknown,
          })),
        ],
        stop_reason: stopReason,
        usage,
      });
      return;
    }

    const send = (event: string, data: Record<string, unknown>): boolean => {
      if (res.destroyed || res.writableEnded) return false;
      res.write(`event: ${event}\ndata: ${JSON.stringify({ type: event, ...data })}\n\n`);
      return true;
    };
    const pause = async (): Promise<void> => {
      if (script.chunkDelayMs) await recording.sleep(script.chunkDelayMs);
    };

    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'request-id': `req_test_${sequence}`,
    });
    res.flushHeaders();
    if (!send('message_start', { message })) return;
    if (!send('ping', {})) return;
    let index = 0;
    if (text) {
      if (!send('content_block_start', { index, content_block: { type: 'text', text: '' } }))
        return;
      for (const piece of splitIntoChunks(text, script.chunks ?? 1)) {
        await pause();
        if (!send('content_block_delta', { index, delta: { type: 'text_delta', text: piece } }))
          return;
        if (script.streamErrorType) {
          send('error', {
            error: { type: script.streamErrorType, message: 'scripted stream failure' },
          });
          res.end();
          return;
        }
      }
      if (!send('content_block_stop', { index })) return;
      index++;
    }
    for (const use of uses) {
      const block = { type: 'tool_use', id: use.id, name: use.name, input: {} };
      if (!send('content_block_start', { index, content_block: block })) return;
      for (const piece of splitIntoChunks(use.input, use.chunks)) {
        await pause();
        const delta = { type: 'input_json_delta', partial_json: piece };
        if (!send('content_block_delta', { index, delta })) return;
      }
      if (!send('content_block_stop', { index })) return;
      index++;
    }
    if (
      !send('message_delta', {
        delta: { stop_reason: stopReason, stop_sequence: null },
        usage: { output_tokens: usage.output_tokens },
      })
    )
      return;
    if (!send('message_stop', {})) return;
    res.end();
  };

  const handle = async (req: RecordedRequest, res: ServerResponse): Promise<void> => {
    const path = new URL(req.url || '/', 'http://127.0.0.1').pathname;
    if (req.method === 'POST' && path === '/v1/messages') {
      const body = req.body;
      if (typeof body !== 'object' || body === null || Array.isArray(body)) {
        sendError(res, 400, 'the request body must be a JSON object');
        return;
      }
      await messages(res, body as Record<string, unknown>);
      return;
    }
    sendError(res, 404, `no route for ${req.method || '?'} ${path}`);
  };

  const recording = await startRecordingServer(handle, (res, error) =>
    sendError(res, 500, error instanceof Error ? error.message : String(error)),
  );

  return {
    url: recording.origin,
    requests: recording.requests,
    setScript,
    close: () => recording.close(),
  };
}
