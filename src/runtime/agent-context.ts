/**
 * The context an agent runs with for one step: its run, stage and envelope, the AbortSignal,
 * and the only ways it reaches the outside world — model calls (budget-checked and recorded)
 * and tool calls (counted against the budget).
 */
import { estimateTokens } from '../core/index.ts';
import type { Kernel, StepContext } from '../kernel/index.ts';
import type { AgentContext, ModelCallOptions } from './agents/agent.ts';
import type { ChatMessage, ModelReply } from './models/provider.ts';
import type { ModelRegistry } from './models/registry.ts';

export interface AgentContextDeps {
  readonly kernel: Kernel;
  readonly models: ModelRegistry;
  /** Streamed model text, for live display. */
  readonly onDelta?:
    ((event: { pid: string; stage: string; step: number; text: string }) => void) | undefined;
}

const DELTA_FLUSH_MS = 250;
const DELTA_FLUSH_CHARS = 1_024;

export function createAgentContext(
  deps: AgentContextDeps,
  step: StepContext,
  signal: AbortSignal,
): AgentContext {
  let callsThisStep = 0;
  const kernel = deps.kernel;
  const script = step.stage.agent?.kind === 'llm' ? step.stage.agent.script : undefined;
  return {
    pid: step.process.pid,
    stage: step.stage,
    step: step.step,
    attempt: step.claim.attempt,
    envelope: step.process.envelope,
    signal,
    model: async (
      messages: readonly ChatMessage[],
      options: ModelCallOptions = {},
    ): Promise<ModelReply> => {
      const { provider, model, spec } = deps.models.resolve(options.model ?? step.workflow.model);
      await kernel.resources.checkModelCall(
        step,
        estimateTokens(messages.map((m) => m.content).join('\n')),
      );
      const index = (step.process.envelope.stage_calls[step.stage.name] ?? 0) + callsThisStep;
      callsThisStep += 1;
      const stream = new DeltaStream(kernel, step, deps.onDelta);
      const started = Date.now();
      let reply: ModelReply;
      try {
        reply = await provider.complete(
          {
            model,
            messages,
            ...(options.maxOutputTokens ? { maxOutputTokens: options.maxOutputTokens } : {}),
            ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
            ...(script ? { script: { responses: script, index } } : {}),
          },
          signal,
          (text) => stream.push(text),
        );
      } finally {
        await stream.close();
      }
      await kernel.resources.recordModelCall(step, {
        ...reply.usage,
        model: spec,
        duration_ms: Date.now() - started,
      });
      return reply;
    },
    toolCall: async (tool: string) => {
      await kernel.resources.checkToolCall(step);
      await kernel.resources.recordToolCall(step, tool);
    },
  };
}

/** Coalesces streamed text into `model.delta` events (every 250 ms or 1 KiB) and live callbacks. */
class DeltaStream {
  readonly #kernel: Kernel;
  readonly #step: StepContext;
  readonly #onDelta: AgentContextDeps['onDelta'];
  #buffer = '';
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(kernel: Kernel, step: StepContext, onDelta: AgentContextDeps['onDelta']) {
    this.#kernel = kernel;
    this.#step = step;
    this.#onDelta = onDelta;
  }

  push(text: string): void {
    this.#onDelta?.({
      pid: this.#step.process.pid,
      stage: this.#step.stage.name,
      step: this.#step.step,
      text,
    });
    this.#buffer += text;
    if (this.#buffer.length >= DELTA_FLUSH_CHARS) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), DELTA_FLUSH_MS);
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#buffer === '') return;
    const text = this.#buffer;
    this.#buffer = '';
    // Best effort by design and said so: a delta that loses its lease is dropped with the step.
    this.#chain = this.#chain
      .then(() => this.#kernel.orchestrator.emitStepEvent(this.#step, 'model.delta', { text }))
      .catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#flush();
    await this.#chain;
  }
}
