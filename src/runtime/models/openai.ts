/**
 * OpenAI-compatible chat completions through the official `openai` SDK, streaming, with usage
 * from the final chunk (`stream_options.include_usage`); when a server omits usage, tokens are
 * estimated. Works with OpenAI, Ollama, vLLM, llama.cpp server, LM Studio and OpenRouter.
 * Tools are sent as `function` tools under API-safe names (tool-names.ts); streamed tool-call
 * argument pieces are joined by their index and parsed once the stream ends.
 */
import type OpenAI from 'openai';

import { checkParams, estimateTokens, WardenError } from '../../core/index.ts';
import { openAiArgs } from '../params.ts';
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

type ChatParams = OpenAI.Chat.Completions.ChatCompletionCreateParamsStreaming;
type ApiMessage = OpenAI.Chat.Completions.ChatCompletionMessageParam;

export interface OpenAiProviderOptions {
  /** @default process.env.OPENAI_BASE_URL */
  readonly baseURL?: string;
  /** @default process.env.OPENAI_API_KEY */
  readonly apiKey?: string;
  /** Model used when a spec names none. @default process.env.OPENAI_MODEL ?? 'gpt-4o-mini' */
  readonly defaultModel?: string;
  /** @default 2 */
  readonly maxRetries?: number;
}

/** A tool call being assembled from stream deltas. */
interface PartialCall {
  id: string;
  name: string;
  args: string;
}

export class OpenAiProvider implements ModelProvider {
  readonly name = 'openai';
  #client: OpenAI | null = null;
  readonly #clientOptions: { baseURL: string | undefined; apiKey: string; maxRetries: number };
  readonly #defaultModel: string;

  constructor(options: OpenAiProviderOptions = {}) {
    checkParams('new OpenAiProvider', openAiArgs, { options });
    const baseURL = options.baseURL ?? process.env.OPENAI_BASE_URL;
    const apiKey = options.apiKey ?? process.env.OPENAI_API_KEY;
    if (!baseURL && !apiKey) {
      throw new WardenError(
        'CONFIG_INVALID',
        'the openai provider needs OPENAI_API_KEY (for api.openai.com) or OPENAI_BASE_URL (for a local OpenAI-compatible server); set one and retry',
      );
    }
    // Local servers usually need no key, but the SDK insists on a non-empty one.
    this.#clientOptions = {
      baseURL,
      apiKey: apiKey ?? 'unused',
      maxRetries: options.maxRetries ?? 2,
    };
    this.#defaultModel = options.defaultModel ?? process.env.OPENAI_MODEL ?? 'gpt-4o-mini';
  }

  /**
   * The SDK, loaded on first use: it costs ~15 MB and ~0.2 s to import, which a daemon or CLI
   * that never calls an OpenAI model should not pay.
   */
  async #sdk(): Promise<OpenAI> {
    if (this.#client) return this.#client;
    const { default: OpenAISdk } = await import('openai');
    this.#client = new OpenAISdk(this.#clientOptions);
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
    let usage: { input_tokens: number; output_tokens: number } | undefined;
    let finish: string | null = null;
    const calls = new Map<number, PartialCall>();
    try {
      const client = await this.#sdk();
      const stream = await client.chat.completions.create(toParams(request, model, names), {
        signal,
      });
      for await (const chunk of stream) {
        const choice = chunk.choices[0];
        const delta = choice?.delta;
        if (delta?.content) {
          text += delta.content;
          onDelta(delta.content);
        }
        for (const [position, piece] of (delta?.tool_calls ?? []).entries()) {
          // Some servers send whole calls without an index; their position stands in for it.
          const index = typeof piece.index === 'number' ? piece.index : position;
          const call = calls.get(index) ?? { id: '', name: '', args: '' };
          if (piece.id) call.id = piece.id;
          // A name arrives whole (servers that repeat it in later pieces repeat all of it).
          if (piece.function?.name) call.name = piece.function.name;
          if (piece.function?.arguments) call.args += piece.function.arguments;
          calls.set(index, call);
        }
        if (choice?.finish_reason) finish = choice.finish_reason;
        if (chunk.usage)
          usage = {
            input_tokens: chunk.usage.prompt_tokens,
            output_tokens: chunk.usage.completion_tokens,
          };
      }
      // The SDK ends an aborted stream quietly; a cut-off reply must not pass as complete.
      if (signal.aborted) throw abortError(signal);
    } catch (error) {
      if (signal.aborted) throw abortError(signal);
      const status = (error as { status?: number }).status;
      const retryable = status === undefined || status === 429 || status >= 500;
      // Name the endpoint: "Connection error." alone does not say which server was tried.
      const url =
        this.#client?.baseURL ?? this.#clientOptions.baseURL ?? 'https://api.openai.com/v1';
      throw new WardenError(
        'PROVIDER_ERROR',
        `openai-compatible endpoint ${url} failed${status ? ` (HTTP ${status})` : ''} for model '${model}': ${(error as Error).message}${status === undefined ? ' (is the server running? check OPENAI_BASE_URL)' : ''}`,
        {
          cause: error,
          retryable,
          details: { model, url, ...(status ? { status } : {}) },
        },
      );
    }
    const toolCalls = [...calls.entries()]
      .sort(([a], [b]) => a - b)
      .map(([index, call]) => toToolCall(call, index, names));
    const prompt = request.messages.map((m) => m.content).join('\n');
    const output = toolCalls.length ? `${text}${JSON.stringify(toolCalls)}` : text;
    return {
      text,
      ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
      stop_reason: settleStopReason(stopReason(finish), toolCalls.length),
      usage: usage ?? {
        input_tokens: estimateTokens(prompt),
        output_tokens: estimateTokens(output),
      },
      model,
    };
  }
}

function toParams(request: ModelRequest, model: string, names: ToolNameMap): ChatParams {
  const tools = request.tools ?? [];
  return {
    model,
    messages: request.messages.map((m) => toApiMessage(m, names)),
    stream: true,
    stream_options: { include_usage: true },
    ...(request.maxOutputTokens ? { max_tokens: request.maxOutputTokens } : {}),
    ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
    ...(tools.length
      ? {
          tools: tools.map((t) => ({
            type: 'function' as const,
            function: {
              name: names.toApi(t.name),
              description: t.description,
              parameters: t.inputSchema,
            },
          })),
          ...(request.toolChoice ? { tool_choice: request.toolChoice } : {}),
        }
      : {}),
  };
}

function toApiMessage(message: ChatMessage, names: ToolNameMap): ApiMessage {
  switch (message.role) {
    case 'system':
    case 'user':
      return { role: message.role, content: message.content };
    case 'assistant':
      if (!message.tool_calls?.length) return { role: 'assistant', content: message.content };
      return {
        role: 'assistant',
        // The API's own replies carry null content beside tool calls; some servers reject ''.
        content: message.content === '' ? null : message.content,
        tool_calls: message.tool_calls.map((call) => ({
          id: call.id,
          type: 'function' as const,
          function: { name: names.toApi(call.name), arguments: JSON.stringify(call.arguments) },
        })),
      };
    case 'tool':
      // Chat completions has no error flag on tool messages: say it in the content.
      return {
        role: 'tool',
        tool_call_id: message.tool_call_id,
        content: message.is_error ? `[tool error] ${message.content}` : message.content,
      };
  }
}

function toToolCall(call: PartialCall, index: number, names: ToolNameMap): ToolCallRequest {
  const parsed = parseToolArguments(call.args);
  const name = names.fromApi(call.name);
  const id = call.id || `call_${index}`;
  if (name === undefined) {
    return {
      id,
      name: call.name,
      arguments: parsed.arguments,
      arguments_error: `the model called '${call.name}', a tool that was not offered${parsed.arguments_error ? `; ${parsed.arguments_error}` : ''}`,
    };
  }
  return { id, name, ...parsed };
}

function stopReason(finish: string | null): StopReason {
  switch (finish) {
    case 'stop':
    case null:
      return 'end';
    case 'tool_calls':
    case 'function_call':
      return 'tool_calls';
    case 'length':
      return 'max_tokens';
    default:
      return 'other';
  }
}
