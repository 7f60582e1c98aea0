/** The built-in agent kinds: `noop` (evidence stub) and `llm` (a prompt to a model). */
import { type LlmAgentSpec, renderTemplate, WardenError } from '../../core/index.ts';
import type { StepResult } from '../../kernel/index.ts';
import type { ChatMessage } from '../models/provider.ts';
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
  const reply = await ctx.model(messages, {
    ...((spec.model ?? workflowModel) ? { model: spec.model ?? workflowModel } : {}),
    ...(spec.max_output_tokens ? { maxOutputTokens: spec.max_output_tokens } : {}),
    ...(spec.temperature === undefined ? {} : { temperature: spec.temperature }),
  });
  if (spec.output === 'text')
    return { output: { text: reply.text, model: reply.model }, modelCalls: 1 };
  return { output: parseJsonObject(reply.text), modelCalls: 1 };
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
