/**
 * The context an agent runs with for one step: its run, stage and envelope, the AbortSignal,
 * and the only ways it reaches the outside world — model calls (budget-checked, recorded and
 * journaled), tool calls (counted against the budget) and effects (journaled tool calls).
 *
 * Model calls go through the effect journal (queue/effects.ts) under the key
 * `<pid>:<step>:model:<n>:<request hash>` — the n-th call of the step — so a step retried
 * after a crash gets a completed call's reply back without calling the provider again and
 * without counting it again: the usage commits in the same transaction as the journal's
 * `done` (ResourceManager.recordModelCall with the journal's ops). A crash before that commit
 * leaves the call pending with no usage recorded; the attempt that takes it over calls the
 * provider again and records that call once (a provider cannot be asked whether a call
 * happened, so the crashed call's tokens are billed by the provider but not counted here).
 * A replayed call emits no `model.delta` events.
 */
import { setTimeout as sleep } from 'node:timers/promises';

import {
  canonicalJson,
  checkParams,
  DEFAULT_LIMITS,
  estimateTokens,
  isWardenError,
  sha256Hex,
  truncateText,
  utf8Bytes,
} from '../core/index.ts';
import type { Kernel, ModelCallUsage, StepContext } from '../kernel/index.ts';
import { EffectJournal, type EffectOptions } from '../queue/index.ts';
import type { AgentContext, ModelCallOptions } from './agents/agent.ts';
import type { ChatMessage, ModelReply } from './models/provider.ts';
import type { ModelRegistry } from './models/registry.ts';
import { abortError } from './models/scripted.ts';
import { agentEffectArgs, modelCallArgs, toolCallArgs } from './params.ts';

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
): Omit<AgentContext, 'tools'> {
  let callsThisStep = 0;
  const kernel = deps.kernel;
  const script = step.stage.agent?.kind === 'llm' ? step.stage.agent.script : undefined;
  // The journal of this attempt: begins are fenced by the step's lease, events go to the run;
  // an owner is known dead by the kernel's rule, as its lease reaper knows it.
  const effects = new EffectJournal(kernel.store, kernel.clock, {
    isDeadOwner: kernel.recovery.isDeadOwner,
  }).forClaim(step.claim);
  const keyPrefix = `${step.process.pid}:${step.step}`;
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
      checkParams('ctx.model', modelCallArgs, { messages, options });
      const { provider, model, spec } = deps.models.resolve(options.model ?? step.workflow.model);
      const position = callsThisStep;
      callsThisStep += 1;
      const index = (step.process.envelope.stage_calls[step.stage.name] ?? 0) + position;
      const request = {
        model: spec,
        messages,
        max_output_tokens: options.maxOutputTokens ?? null,
        temperature: options.temperature ?? null,
        script_index: script ? index : null,
        tools: options.tools?.map((t) => t.name) ?? null,
      };
      // The n-th call of the step with this request: a retried step that makes the same call
      // gets the recorded reply; a different request at that position is a different call.
      const key = `${keyPrefix}:model:${position}:${sha256Hex(canonicalJson(request)).slice(0, 16)}`;
      let usage: ModelCallUsage | undefined;
      return waitOutOtherAttempt(signal, () =>
        effects.effect(
          key,
          request,
          async () => {
            await kernel.resources.checkModelCall(
              step,
              estimateTokens(messages.map((m) => m.content).join('\n')),
            );
            const stream = new DeltaStream(kernel, step, deps.onDelta);
            const started = Date.now();
            let reply: ModelReply;
            try {
              reply = await provider.complete(
                {
                  model,
                  messages,
                  ...(options.maxOutputTokens ? { maxOutputTokens: options.maxOutputTokens } : {}),
                  ...(options.temperature === undefined
                    ? {}
                    : { temperature: options.temperature }),
                  ...(script ? { script: { responses: script, index } } : {}),
                  ...(options.tools?.length
                    ? {
                        tools: options.tools.map((t) => ({
                          name: t.name,
                          description: t.description,
                          inputSchema: t.inputSchema,
                        })),
                      }
                    : {}),
                },
                signal,
                (text) => stream.push(text),
              );
            } finally {
              await stream.close();
            }
            usage = { ...reply.usage, model: spec, duration_ms: Date.now() - started };
            return reply;
          },
          {
            tool: 'model',
            // Usage commits with the journal's `done`: recorded once, never lost or doubled.
            record: (ops, outcome) =>
              outcome.status === 'done' && usage
                ? kernel.resources.recordModelCall(step, usage, ops)
                : kernel.store.commit(ops),
          },
        ),
      );
    },
    toolCall: async (tool: string) => {
      checkParams('ctx.toolCall', toolCallArgs, { tool });
      await kernel.resources.checkToolCall(step);
      await kernel.resources.recordToolCall(step, tool);
    },
    effect: async <T>(
      key: string,
      request: unknown,
      fn: () => Promise<T> | T,
      options: EffectOptions<T> = {},
    ): Promise<T> => {
      checkParams('ctx.effect', agentEffectArgs, { key, fn, options });
      const tool = options.tool ?? 'effect';
      let executed = false;
      return waitOutOtherAttempt(signal, () =>
        effects.effect(
          `${keyPrefix}:fx:${key}`,
          request,
          async () => {
            await kernel.resources.checkToolCall(step);
            executed = true;
            return fn();
          },
          {
            tool,
            ...(options.reconcile ? { reconcile: options.reconcile } : {}),
            // Counted once per execution, with its outcome (a reconciled one ran in an earlier
            // attempt whose outcome was never recorded); a replay records nothing.
            record: (ops, outcome) =>
              executed || outcome.reconciled
                ? kernel.resources.recordToolCall(step, tool, ops)
                : kernel.store.commit(ops),
          },
        ),
      );
    },
  };
}

/** How many times a step waits for another attempt's pending effect before failing. */
const IN_PROGRESS_WAITS = 3;

/**
 * A journaled call that finds its key pending under an earlier attempt (EFFECT_IN_PROGRESS:
 * that attempt lost its lease but may still finish) waits the advised time and tries again, a
 * few times, instead of failing the step: a failed step would spend one of the stage's retry
 * attempts on every try. The wait holds the step's lease (renewed by the heartbeat thread)
 * and ends early on abort (cancel, stage timeout, lease loss).
 */
async function waitOutOtherAttempt<T>(signal: AbortSignal, call: () => Promise<T>): Promise<T> {
  for (let waits = 0; ; waits++) {
    try {
      return await call();
    } catch (error) {
      if (!isWardenError(error, 'EFFECT_IN_PROGRESS') || waits >= IN_PROGRESS_WAITS) throw error;
      try {
        await sleep(error.retryAfterMs ?? 1_000, undefined, { signal });
      } catch {
        throw abortError(signal);
      }
    }
  }
}

/** Coalesces streamed text into `model.delta` events (every 250 ms or 1 KiB) and live callbacks. */
class DeltaStream {
  readonly #kernel: Kernel;
  readonly #step: StepContext;
  readonly #onDelta: AgentContextDeps['onDelta'];
  #buffer = '';
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();
  /** Bytes of this call's text recorded as events so far (bounded by streamedTextBytes). */
  #recorded = 0;
  #truncated = false;

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
    if (this.#truncated) return; // live display goes on; the log has said it stopped recording
    const limit = DEFAULT_LIMITS.streamedTextBytes;
    const bytes = utf8Bytes(text);
    if (this.#recorded + bytes > limit) {
      this.#buffer += truncateText(text, limit - this.#recorded);
      this.#recorded = limit;
      this.#truncated = true;
      this.#flush();
      // Nothing is dropped silently: one last event says the rest of the text is not recorded.
      this.#emit({ text: '', truncated: true, limit_bytes: limit });
      return;
    }
    this.#recorded += bytes;
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
    this.#emit({ text });
  }

  #emit(data: Record<string, unknown>): void {
    // Best effort by design and said so: a delta that loses its lease is dropped with the step.
    this.#chain = this.#chain
      .then(() => this.#kernel.orchestrator.emitStepEvent(this.#step, 'model.delta', data))
      .catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#flush();
    await this.#chain;
  }
}
