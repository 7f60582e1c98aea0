/**
 * Model providers behind one interface (DESIGN.md §7). No provider SDK type leaks outside its
 * adapter. Providers stream: `onDelta` receives text as it arrives.
 */
import type { ScriptedResponse } from '../../core/index.ts';

export interface ChatMessage {
  readonly role: 'system' | 'user' | 'assistant';
  readonly content: string;
}

export interface ModelRequest {
  /** The provider's model name (the part after `provider:`). */
  readonly model: string;
  readonly messages: readonly ChatMessage[];
  readonly maxOutputTokens?: number;
  readonly temperature?: number;
  /** For the scripted provider: the responses to replay and which one this call gets. */
  readonly script?: { readonly responses: readonly ScriptedResponse[]; readonly index: number };
}

export interface ModelReply {
  readonly text: string;
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
