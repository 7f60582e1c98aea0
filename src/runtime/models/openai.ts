/**
 * OpenAI-compatible chat completions through the official `openai` SDK, streaming, with usage
 * from the final chunk (`stream_options.include_usage`); when a server omits usage, tokens are
 * estimated. Works with OpenAI, Ollama, vLLM, llama.cpp server, LM Studio and OpenRouter.
 */
import type OpenAI from 'openai';

import { checkParams, estimateTokens, WardenError } from '../../core/index.ts';
import { openAiArgs } from '../params.ts';
import type { ModelProvider, ModelReply, ModelRequest } from './provider.ts';
import { abortError } from './scripted.ts';

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
    let text = '';
    let usage: { input_tokens: number; output_tokens: number } | undefined;
    try {
      const client = await this.#sdk();
      const stream = await client.chat.completions.create(
        {
          model,
          messages: request.messages.map((m) => ({ role: m.role, content: m.content })),
          stream: true,
          stream_options: { include_usage: true },
          ...(request.maxOutputTokens ? { max_tokens: request.maxOutputTokens } : {}),
          ...(request.temperature === undefined ? {} : { temperature: request.temperature }),
        },
        { signal },
      );
      for await (const chunk of stream) {
        const delta = chunk.choices[0]?.delta?.content;
        if (delta) {
          text += delta;
          onDelta(delta);
        }
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
    const prompt = request.messages.map((m) => m.content).join('\n');
    return {
      text,
      usage: usage ?? { input_tokens: estimateTokens(prompt), output_tokens: estimateTokens(text) },
      model,
    };
  }
}
