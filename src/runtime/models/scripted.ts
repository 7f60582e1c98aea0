/**
 * The deterministic provider (the default): replays responses from the workflow's `script`,
 * one per model call of the stage (the last one repeats once the script runs out). Without a
 * script it echoes the prompt. Replies stream word by word, optionally with a delay, and count
 * tokens as `ceil(chars / 4)` unless the script gives exact usage. A response with `tool_calls`
 * returns them (ids `call_<call index>_<position>` unless scripted) and stops for them; its
 * text is '' unless the script gives some.
 */
import { estimateTokens, WardenError } from '../../core/index.ts';
import type { ModelProvider, ModelReply, ModelRequest, ToolCallRequest } from './provider.ts';

export class ScriptedProvider implements ModelProvider {
  readonly name = 'scripted';

  async complete(
    request: ModelRequest,
    signal: AbortSignal,
    onDelta: (text: string) => void,
  ): Promise<ModelReply> {
    const responses = request.script?.responses ?? [];
    const response = responses.length
      ? responses[Math.min(request.script!.index, responses.length - 1)]!
      : undefined;
    if (response?.error)
      throw new WardenError('PROVIDER_ERROR', `scripted provider error: ${response.error}`);
    const prompt = request.messages.map((m) => m.content).join('\n');
    const callIndex = request.script?.index ?? 0;
    const toolCalls = (response?.tool_calls ?? []).map((call, position): ToolCallRequest => ({
      id: call.id ?? `call_${callIndex}_${position}`,
      name: call.name,
      // A copy: the script belongs to the (frozen) workflow, the reply to the caller.
      arguments: structuredClone<Record<string, unknown>>(call.arguments ?? {}),
    }));
    const text =
      response?.text ??
      (response?.json !== undefined
        ? JSON.stringify(response.json)
        : toolCalls.length
          ? ''
          : `[scripted] ${prompt.slice(0, 120).replace(/\s+/g, ' ')}`);
    const delay = response?.chunk_delay_ms ?? 0;
    for (const chunk of text.match(/\S+\s*|\s+/g) ?? []) {
      if (signal.aborted) throw abortError(signal);
      if (delay > 0) await sleep(delay, signal);
      onDelta(chunk);
    }
    const output = toolCalls.length ? `${text}${JSON.stringify(toolCalls)}` : text;
    return {
      text,
      ...(toolCalls.length ? { tool_calls: toolCalls } : {}),
      stop_reason: toolCalls.length ? 'tool_calls' : 'end',
      usage: response?.usage ?? {
        input_tokens: estimateTokens(prompt),
        output_tokens: estimateTokens(output),
      },
      model: request.model || 'scripted',
    };
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

export function abortError(signal: AbortSignal): WardenError {
  const reason: unknown = signal.reason;
  if (reason instanceof WardenError) return reason;
  return new WardenError('CANCELED', 'the call was aborted', { cause: reason });
}
