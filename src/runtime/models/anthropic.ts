/**
 * Anthropic's Messages API through the official `@anthropic-ai/sdk`, streaming over SSE. System
 * messages become the `system` parameter, tool results become `tool_result` blocks of a user
 * turn (consecutive results share one turn, as the API wants), and `tool_use` blocks come back
 * as tool calls under Warden's names (tool-names.ts). Usage is the `message_start` input count
 * (cache reads and writes included) and the last `message_delta` output count.
 */
import type Anthropic from '@anthropic-ai/sdk';

import { checkParams, estimateTokens, WardenError } from '../../core/index.ts';
import { anthropicArgs } from '../params.ts';
import {
  type ChatMessage,
  type ModelProvider,
  type ModelReply,
  type ModelRequest,
  parseToolArguments,
  settleStopReason,
  type StopReason,
  type ToolCallRequest,
} from './provider.ts';
import { abortError } from './scripted.ts';
import { requestToolNames, ToolNameMap } from './tool-names.ts';

type ApiParams = Anthropic.MessageCreateParamsStreaming;
type ApiMessage = Anthropic.MessageParam;
type ApiBlock = Anthropic.ContentBlockParam;

export interface AnthropicProviderOptions {
  /** @default process.env.ANTHROPIC_BASE_URL (the SDK's default is https://api.anthropic.com) */
  readonly baseURL?: string;
  /** @default process.env.ANTHROPIC_API_KEY */
  readonly apiKey?: string;
  /** Model used when a spec names none. @default process.env.ANTHROPIC_MODEL ?? 'claude-sonnet-5-5' */
  readonly defaultModel?: string;
  /** `max_tokens` when a call gives no maxOutputTokens (the API requires one). @default 1024 */
  readonly defaultMaxTokens?: number;
  /** @default 2 */
  readonly maxRetries?: number;
}

export const DEFAULT_ANTHROPIC_MODEL = 'claude-sonnet-5-5';
export const DEFAULT_ANTHROPIC_MAX_TOKENS = 1024;

/** API error types worth another try: the server, not the request, was the problem. */
const RETRYABLE_TYPES = new Set(['overloaded_error', 'api_error', 'rate_limit_error']);

/** A content block being assembled from stream events. */
type PartialBlock =
  { kind: 'text' } | { kind: 'tool'; id: string; name: string; json: string; input: unknown };

export class AnthropicProvider implements ModelProvider {
  readonly name = 'anthropic';
  #client: Anthropic | null = null;
  readonly #clientOptions: { baseURL: string | undefined; apiKey: string; maxRetries: number };
  readonly #defaultModel: string;
  readonly #defaultMaxTokens: number;

  constructor(options: AnthropicProviderOptions = {}) {
    checkParams('new AnthropicProvider', anthropicArgs, { options });
    const baseURL = options.baseURL ?? (process.env.ANTHROPIC_BASE_URL || undefined);
    const apiKey = options.apiKey ?? (process.env.ANTHROPIC_API_KEY || undefined);
    if (!baseURL && !apiKey) {
      throw new WardenError(
        'CONFIG_INVALID',
        'the anthropic provider needs ANTHROPIC_API_KEY (for api.anthropic.com) or ANTHROPIC_BASE_URL (for a compatible proxy or local server); set one and retry',
      );
    }
    // Always pass a key: without one the SDK goes looking for credential files and profiles.
    this.#clientOptions = {
      baseURL,
      apiKey: apiKey ?? 'unused',
      maxRetries: options.maxRetries ?? 2,
    };
    this.#defaultModel =
      options.defaultModel ?? (process.env.ANTHROPIC_MODEL || DEFAULT_ANTHROPIC_MODEL);
    this.#defaultMaxTokens = options.defaultMaxTokens ?? DEFAULT_ANTHROPIC_MAX_TOKENS;
  }

  /** The SDK, loaded on first use, like the OpenAI one (a daemon that never calls it pays nothing). */
  async #sdk(): Promise<Anthropic> {
    if (this.#client) return this.#client;
    const { default: AnthropicSdk } = await import('@anthropic-ai/sdk');
    this.#client = new AnthropicSdk(this.#clientOptions);
    return this.#client;
  }

  async complete(
    request: ModelRequest,
    signal: AbortSignal,
    onDelta: (text: string) => void,
  ): Promise<ModelReply> {
    const model = request.model || this.#defaultModel;
    const names = new ToolNameMap(requestToolNames(request));
    let text = '';
    let replyModel = model;
    let inputTokens: number | undefined;
    let outputTokens: number | undefined;
    let stop: Anthropic.StopReason | null = null;
    const blocks = new Map<number, PartialBlock>();
    try {
      const client = await this.#sdk();
      const stream = await client.messages.create(
        toParams(request, model, names, this.#defaultMaxTokens),
        { signal },
      );
      for await (const event of stream) {
        switch (event.type) {
          case 'message_start': {
            const usage = event.message.usage;
            inputTokens =
              usage.input_tokens +
              (usage.cache_creation_input_tokens ?? 0) +
              (usage.cache_read_input_tokens ?? 0);
            outputTokens = usage.output_tokens;
            if (event.message.model) replyModel = event.message.model;
            break;
          }
          case 'content_block_start': {
            const block = event.content_block;
            if (block.type === 'text') {
              blocks.set(event.index, { kind: 'text' });
              if (block.text) {
                text += block.text;
                onDelta(block.text);
              }
            } else if (block.type === 'tool_use') {
              blocks.set(event.index, {
                kind: 'tool',
                id: block.id,
                name: block.name,
                json: '',
                input: block.input,
              });
            }
            break;
          }
          case 'content_block_delta': {
            const delta = event.delta;
            if (delta.type === 'text_delta' && delta.text) {
              text += delta.text;
              onDelta(delta.text);
            } else if (delta.type === 'input_json_delta') {
              const block = blocks.get(event.index);
              if (block?.kind === 'tool') block.json += delta.partial_json;
            }
            break;
          }
          case 'message_delta':
            if (event.delta.stop_reason) stop = event.delta.stop_reason;
            // Both counts are cumulative; input is repeated only by some servers.
            outputTokens = event.usage.output_tokens;
            if (typeof event.usage.input_tokens === 'number' && inputTokens === undefined)
              inputTokens = event.usage.input_tokens;
            break;
          default:
            break;
        }
      }
      // Like the OpenAI SDK, an aborted stream may end quietly; it must not pass as complete.
      if (signal.aborted) throw abortError(signal);
    } catch (error) {
      if (signal.aborted) throw abortError(signal);
      throw this.#providerError(error, model);
    }
    const toolCalls: ToolCallRequest[] = [];
    for (const [, block] of [...blocks.entries()].sort(([a], [b]) => a - b)) {
      if (block.kind === 'tool') toolCalls.push(toToolCall(block, names));
    }
    const prompt = request.messages.map((m) => m.content).join('\n');
    const output = toolCalls.length ? `${text}${JSON.stringify(toolCalls)}` : text;
    return {
      text,
      ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
      stop_reason: settleStopReason(stopReason(stop), toolCalls.length),
      usage: {
        input_tokens: inputTokens ?? estimateTokens(prompt),
        output_tokens: outputTokens ?? estimateTokens(output),
      },
      model: replyModel,
    };
  }

  #providerError(error: unknown, model: string): WardenError {
    const status = (error as { status?: number }).status;
    const type = (error as { type?: unknown }).type;
    // No status: a refused connection, or an `error` event inside a 200 stream (its type says).
    const retryable =
      status === undefined
        ? typeof type !== 'string' || RETRYABLE_TYPES.has(type)
        : status === 429 || status >= 500;
    const url = this.#client?.baseURL ?? this.#clientOptions.baseURL ?? 'https://api.anthropic.com';
    const connection = status === undefined && typeof type !== 'string';
    return new WardenError(
      'PROVIDER_ERROR',
      `anthropic endpoint ${url} failed${status ? ` (HTTP ${status})` : ''} for model '${model}': ${(error as Error).message}${connection ? ' (is the server reachable? check ANTHROPIC_BASE_URL)' : ''}`,
      {
        cause: error,
        retryable,
        details: {
          model,
          url,
          ...(status ? { status } : {}),
          ...(typeof type === 'string' ? { type } : {}),
        },
      },
    );
  }
}

function toParams(
  request: ModelRequest,
  model: string,
  names: ToolNameMap,
  defaultMaxTokens: number,
): ApiParams {
  const system = request.messages
    .filter((m) => m.role === 'system')
    .map((m) => m.content)
    .join('\n\n');
  const tools = request.tools ?? [];
  // Temperature is not sent: this SDK's Messages API no longer takes sampling parameters.
  return {
    model,
    max_tokens: request.maxOutputTokens ?? defaultMaxTokens,
    ...(system ? { system } : {}),
    messages: toApiMessages(request.messages, names),
    stream: true,
    ...(tools.length
      ? {
          tools: tools.map((t) => ({
            name: names.toApi(t.name),
            description: t.description,
            input_schema: { type: 'object' as const, ...t.inputSchema },
          })),
          ...(request.toolChoice ? { tool_choice: toolChoice(request.toolChoice) } : {}),
        }
      : {}),
  };
}

function toolChoice(choice: NonNullable<ModelRequest['toolChoice']>): Anthropic.ToolChoice {
  switch (choice) {
    case 'auto':
      return { type: 'auto' };
    case 'required':
      return { type: 'any' };
    case 'none':
      return { type: 'none' };
  }
}

/**
 * Warden's messages as Messages API turns: tool results, and a user message right after them,
 * join one user turn whose tool_result blocks come first (the API requires them first).
 */
export function toApiMessages(messages: readonly ChatMessage[], names: ToolNameMap): ApiMessage[] {
  const out: ApiMessage[] = [];
  let results: ApiBlock[] | undefined;
  for (const message of messages) {
    switch (message.role) {
      case 'system':
        break;
      case 'tool': {
        const block: ApiBlock = {
          type: 'tool_result',
          tool_use_id: message.tool_call_id,
          content: message.content,
          ...(message.is_error ? { is_error: true } : {}),
        };
        if (results) results.push(block);
        else {
          results = [block];
          out.push({ role: 'user', content: results });
        }
        break;
      }
      case 'user':
        // The API rejects empty text blocks; an empty follow-up adds nothing anyway.
        if (results) {
          if (message.content) results.push({ type: 'text', text: message.content });
        } else out.push({ role: 'user', content: message.content });
        results = undefined;
        break;
      case 'assistant': {
        results = undefined;
        if (!message.tool_calls?.length) {
          out.push({ role: 'assistant', content: message.content });
          break;
        }
        const content: ApiBlock[] = message.content
          ? [{ type: 'text', text: message.content }]
          : [];
        for (const call of message.tool_calls) {
          content.push({
            type: 'tool_use',
            id: call.id,
            name: names.toApi(call.name),
            input: call.arguments,
          });
        }
        out.push({ role: 'assistant', content });
        break;
      }
    }
  }
  return out;
}

function toToolCall(
  block: Extract<PartialBlock, { kind: 'tool' }>,
  names: ToolNameMap,
): ToolCallRequest {
  // Input arrives as input_json_delta pieces; a server that sends it whole in the start block
  // (and no deltas) is taken at its word.
  const parsed =
    block.json !== ''
      ? parseToolArguments(block.json)
      : isObject(block.input)
        ? { arguments: block.input }
        : parseToolArguments(JSON.stringify(block.input ?? {}));
  const name = names.fromApi(block.name);
  if (name === undefined) {
    return {
      id: block.id,
      name: block.name,
      arguments: parsed.arguments,
      arguments_error: `the model called '${block.name}', a tool that was not offered${parsed.arguments_error ? `; ${parsed.arguments_error}` : ''}`,
    };
  }
  return { id: block.id, name, ...parsed };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function stopReason(stop: Anthropic.StopReason | null): StopReason {
  switch (stop) {
    case 'end_turn':
    case 'stop_sequence':
    case null:
      return 'end';
    case 'tool_use':
      return 'tool_calls';
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'max_tokens';
    default:
      return 'other';
  }
}
