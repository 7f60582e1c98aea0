/**
 * Agents execute one stage of a run. They never route, never terminate a run and never touch
 * the store: the kernel decides (DESIGN.md §2.6). Every model call goes through `ctx.model`,
 * which checks and records the budget and is journaled; side effects go through `ctx.effect`.
 */
import { type AgentSpec, checkParams, type Envelope, type StageSpec } from '../../core/index.ts';
import type { StepResult } from '../../kernel/index.ts';
import type { EffectOptions } from '../../queue/index.ts';
import type { ChatMessage, ModelReply } from '../models/provider.ts';
import { registerAgentArgs } from '../params.ts';
import type { StepTools } from '../tools/step-tools.ts';
import type { ToolSpec } from '../tools/types.ts';

export interface ModelCallOptions {
  /** Model spec; defaults to the stage's, then the workflow's, then WARDEN_MODEL, then `scripted`. */
  readonly model?: string;
  readonly maxOutputTokens?: number;
  readonly temperature?: number;
  /** Tools the model may ask for (it answers with `tool_calls`); see {@link AgentContext.tools}. */
  readonly tools?: readonly ToolSpec[];
}

export interface AgentContext {
  readonly pid: string;
  readonly stage: StageSpec;
  readonly step: number;
  readonly attempt: number;
  readonly envelope: Readonly<Envelope>;
  /** Aborted on cancel, stage timeout or lease loss. Pass it to anything that waits. */
  readonly signal: AbortSignal;
  /** Calls a model within the run's budget (QUOTA_EXCEEDED when it would not fit). */
  model(messages: readonly ChatMessage[], options?: ModelCallOptions): Promise<ModelReply>;
  /**
   * Tools, through the one tool path: policy decision, guards, approval, effect journal,
   * timeout, redaction, events and audit. Without a tool path every call is denied.
   */
  readonly tools: StepTools;
  /** Counts a tool call against the budget (QUOTA_EXCEEDED when over). */
  toolCall(tool: string): Promise<void>;
  /**
   * Runs a side effect (a tool call) at most once per `key` in this step, through the effect
   * journal (queue/effects.ts): a retried step gets the recorded result back instead of running
   * `fn` again. Keys are scoped to the run and step (`<pid>:<step>:fx:<key>`), so use a key
   * that names the call within the step, stable across retries (not the attempt). Fenced by the
   * step's lease. The call counts once against `max_tool_calls` (checked before `fn` runs,
   * recorded with its outcome; a replay counts nothing) — do not also call `toolCall()` for it.
   * `options.tool` names it in the journal; `options.reconcile` answers whether an effect left
   * pending by a crashed attempt happened. While an earlier attempt that lost its lease but may
   * still be alive holds the key, it waits the advised time (a few times) and then throws
   * EFFECT_IN_PROGRESS (retryable); IDEMPOTENCY_CONFLICT when the key was used with a different
   * request; LEASE_LOST once the step's lease is gone.
   */
  effect<T>(
    key: string,
    request: unknown,
    fn: () => Promise<T> | T,
    options?: EffectOptions<T>,
  ): Promise<T>;
}

export interface Agent<Config = unknown> {
  run(ctx: AgentContext, config: Config): Promise<StepResult>;
}

/** TypeScript agents registered by name, for `agent: {kind: typescript, name: …}`. */
export class AgentRegistry {
  readonly #agents = new Map<string, Agent<Record<string, unknown>>>();

  /** Adds or replaces the agent called `name` (a function, or an object with `run`). */
  register(
    name: string,
    agent: Agent<Record<string, unknown>> | Agent<Record<string, unknown>>['run'],
  ): this {
    checkParams('AgentRegistry.register', registerAgentArgs, { name, agent });
    this.#agents.set(name, typeof agent === 'function' ? { run: agent } : agent);
    return this;
  }

  get(name: string): Agent<Record<string, unknown>> | undefined {
    return this.#agents.get(name);
  }

  names(): ReadonlySet<string> {
    return new Set(this.#agents.keys());
  }
}

export type { AgentSpec };
