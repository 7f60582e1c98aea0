/** The built-in agent kinds: `noop` (evidence stub) and `llm` (a prompt to a model). */
import { type LlmAgentSpec, renderTemplate, WardenError } from '../../core/index.ts';
import type { StepResult } from '../../kernel/index.ts';
import type { ChatMessage } from '../models/provider.ts';
import type { ToolCallResult } from '../tools/step-tools.ts';
import type { AgentContext } from './agent.ts';

export async function runNoop(
  ctx: AgentContext,
  config: { output?: Record<string, unknown> | undefined; delay?: number | undefined },
): Promise<StepResult> {
  if (config.delay) {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, config.delay);
      ctx.signal.addEventListener(
        'abort',
        () => {
          clearTimeout(timer);
          reject(new WardenError('CANCELED', 'noop agent aborted', { cause: ctx.signal.reason }));
        },
        { once: true },
      );
    });
  }
  return { output: config.output ?? { ok: true, stage: ctx.stage.name, step: ctx.step } };
}

export async function runLlm(
  ctx: AgentContext,
  spec: LlmAgentSpec,
  workflowModel: string | undefined,
): Promise<StepResult> {
  const messages: ChatMessage[] = [];
  if (spec.system)
    messages.push({ role: 'system', content: renderTemplate(spec.system, ctx.envelope) });
  let prompt = renderTemplate(spec.prompt, ctx.envelope);
  if (spec.output === 'json') prompt += '\n\nAnswer with a single JSON object and nothing else.';
  messages.push({ role: 'user', content: prompt });
  const tools = spec.tools?.length ? await ctx.tools.specs(spec.tools) : [];
  const options = {
    ...((spec.model ?? workflowModel) ? { model: spec.model ?? workflowModel } : {}),
    ...(spec.max_output_tokens ? { maxOutputTokens: spec.max_output_tokens } : {}),
    ...(spec.temperature === undefined ? {} : { temperature: spec.temperature }),
    ...(tools.length ? { tools } : {}),
  };
  // The ReAct loop: the model answers or asks for tools; every tool call goes through the tool
  // path, and its answer (or refusal) goes back to the model, until it answers without tools.
  let modelCalls = 0;
  const calls: Array<{ tool: string; ok: boolean; code?: string }> = [];
  for (let round = 0; ; round++) {
    const reply = await ctx.model(messages, options);
    modelCalls += 1;
    const requested = reply.tool_calls ?? [];
    if (requested.length === 0) {
      const output =
        spec.output === 'text'
          ? { text: reply.text, model: reply.model }
          : parseJsonObject(reply.text);
      return { output: calls.length ? { ...output, tool_calls: calls } : output, modelCalls };
    }
    const maxRounds = spec.max_tool_rounds ?? DEFAULT_MAX_TOOL_ROUNDS;
    if (round >= maxRounds) {
      throw new WardenError(
        'TOOL_ERROR',
        `the model still asked for tools after max_tool_rounds (${maxRounds}) rounds; raise max_tool_rounds or change the prompt`,
        { retryable: false, details: { max_tool_rounds: maxRounds } },
      );
    }
    messages.push({ role: 'assistant', content: reply.text, tool_calls: requested });
    for (const call of requested) {
      const result: ToolCallResult = call.arguments_error
        ? {
            ok: false,
            code: 'INVALID_PARAMS',
            output: {
              code: 'INVALID_PARAMS',
              message: `the arguments of ${call.name} are not a JSON object: ${call.arguments_error}`,
            },
          }
        : await ctx.tools.call(call.name, call.arguments, { key: `round-${round}/${call.id}` });
      calls.push({ tool: call.name, ok: result.ok, ...(result.code ? { code: result.code } : {}) });
      messages.push({
        role: 'tool',
        tool_call_id: call.id,
        name: call.name,
        content: toolAnswer(result.output),
        ...(result.ok ? {} : { is_error: true }),
      });
    }
  }
}

/** Model → tools → model rounds an `llm` stage may take unless it says otherwise. */
const DEFAULT_MAX_TOOL_ROUNDS = 8;

/** Bytes of a tool's answer a model gets back; the rest is cut with a marker. */
const TOOL_ANSWER_CHARS = 32_768;

function toolAnswer(output: unknown): string {
  const text = typeof output === 'string' ? output : (JSON.stringify(output) ?? 'null');
  return text.length > TOOL_ANSWER_CHARS
    ? `${text.slice(0, TOOL_ANSWER_CHARS)}… [cut: ${text.length - TOOL_ANSWER_CHARS} more characters]`
    : text;
}

/** Parses a model's JSON answer, tolerating a fenced code block around it. */
export function parseJsonObject(text: string): Record<string, unknown> {
  const fenced = /```(?:json)?\s*([\s\S]*?)```/.exec(text);
  const candidate = (fenced ? fenced[1]! : text).trim();
  try {
    const value: unknown = JSON.parse(candidate);
    if (value !== null && typeof value === 'object' && !Array.isArray(value))
      return value as Record<string, unknown>;
  } catch {
    // fall through to the error below
  }
  throw new WardenError(
    'PROVIDER_ERROR',
    `the model was asked for a JSON object but answered: ${text.slice(0, 200)}`,
    {
      retryable: true,
    },
  );
}
