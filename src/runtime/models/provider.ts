/**
 * Model providers behind one interface (DESIGN.md §7). No provider SDK type leaks outside its
 * adapter. Providers stream: `onDelta` receives text as it arrives. Tool calling is provider
 * neutral: tools carry Warden's dotted names (`http.fetch`); each adapter maps them to names its
 * API accepts and back (tool-names.ts).
 */
import type { ScriptedResponse } from '../../core/index.ts';

/**
 * One message of a conversation. Every variant has `content` (a string), so callers can size a
 * prompt without looking at the role.
 */
export type ChatMessage =
  | { readonly role: 'system' | 'user'; readonly content: string }
  | {
      readonly role: 'assistant';
      /** The reply's text; '' when the model only called tools. */
      readonly content: string;
      readonly tool_calls?: readonly ToolCallRequest[];
    }
  | {
      readonly role: 'tool';
      /** The `id` of the ToolCallRequest this answers. */
      readonly tool_call_id: string;
      /** The Warden tool name of that call. */
      readonly name: string;
      /** The tool's answer: JSON or text. */
      readonly content: string;
      /** The tool ran but reports a failure (or was refused). */
      readonly is_error?: boolean;
    };

/** A tool call the model asked for, with Warden's tool name. */
export interface ToolCallRequest {
  readonly id: string;
  readonly name: string;
  /** The parsed arguments; `{}` when they could not be parsed (see `arguments_error`). */
  readonly arguments: Record<string, unknown>;
  /**
   * Set when the model sent arguments that are not a JSON object, or named a tool that was not
   * offered; the caller should answer the call with an error rather than run it.
   */
  readonly arguments_error?: string;
}

/** A tool offered to the model. */
export interface ModelTool {
  /** Warden's tool name (dots allowed); adapters map it to the API's name rules. */
  readonly name: string;
  readonly description: string;
  /** JSON Schema of the arguments (an object schema). */
  readonly inputSchema: Record<string, unknown>;
}

export type ToolChoice = 'auto' | 'none' | 'required';

export interface ModelRequest {
  /** The provider's model name (the part after `provider:`). */
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly maxOutputTokens?: number;
  readonly temperature?: number;
  readonly tools?: readonly ModelTool[];
  /** Whether the model may (`auto`), must (`required`) or must not (`none`) call a tool. */
  readonly toolChoice?: ToolChoice;
  /** For the scripted provider: the responses to replay and which one this call gets. */
  readonly script?: { readonly responses: readonly ScriptedResponse[]; readonly index: number };
}

/**
 * Why the model stopped: it finished (`end`), wants tool results (`tool_calls`), ran out of
 * output tokens (`max_tokens`), or anything else (a refusal, a content filter, a pause).
 */
export type StopReason = 'end' | 'tool_calls' | 'max_tokens' | 'other';

export interface ModelReply {
  readonly text: string;
  /** Present (non-empty) when the model asked for tool calls. */
  readonly tool_calls?: readonly ToolCallRequest[];
  readonly stop_reason: StopReason;
  readonly usage: { readonly input_tokens: number; readonly output_tokens: number };
  readonly model: string;
}

export interface ModelProvider {
  readonly name: string;
  complete(
    request: ModelRequest,
    signal: AbortSignal,
    onDelta: (text: string) => void,
  ): Promise<ModelReply>;
}

/** A model spec is `provider` or `provider:model`, e.g. `scripted`, `openai:gpt-4o-mini`. */
export function parseModelSpec(spec: string): { provider: string; model: string } {
  const colon = spec.indexOf(':');
  return colon === -1
    ? { provider: spec, model: '' }
    : { provider: spec.slice(0, colon), model: spec.slice(colon + 1) };
}

/**
 * Parses a tool call's raw argument text. An empty text is `{}` (some servers send nothing for a
 * call without arguments); anything that is not a JSON object yields `arguments_error`.
 */
export function parseToolArguments(raw: string): {
  arguments: Record<string, unknown>;
  arguments_error?: string;
} {
  if (raw.trim() === '') return { arguments: {} };
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (error) {
    return {
      arguments: {},
      arguments_error: `the arguments are not valid JSON (${(error as Error).message}): ${preview(raw)}`,
    };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return {
      arguments: {},
      arguments_error: `the arguments are not a JSON object: ${preview(raw)}`,
    };
  }
  return { arguments: value as Record<string, unknown> };
}

/**
 * A reply with tool calls stops for them, whatever the server said, unless it ran out of
 * tokens: some OpenAI-compatible servers finish a tool-calling reply with `stop`.
 */
export function settleStopReason(reason: StopReason, toolCalls: number): StopReason {
  return toolCalls > 0 && reason === 'end' ? 'tool_calls' : reason;
}

function preview(text: string): string {
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}
