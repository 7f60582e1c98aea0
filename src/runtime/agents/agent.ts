/**
 * Agents execute one stage of a run. They never route, never terminate a run and never touch
 * the store: the kernel decides (DESIGN.md §2.6). Every model call goes through `ctx.model`,
 * which checks and records the budget.
 */
import type { AgentSpec, Envelope, StageSpec } from '../../core/index.ts';
import type { StepResult } from '../../kernel/index.ts';
import type { ChatMessage, ModelReply } from '../models/provider.ts';

export interface ModelCallOptions {
  /** Model spec; defaults to the stage's, then the workflow's, then WARDEN_MODEL, then `scripted`. */
  readonly model?: string;
  readonly maxOutputTokens?: number;
  readonly temperature?: number;
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
  /** Counts a tool call against the budget (QUOTA_EXCEEDED when over). */
  toolCall(tool: string): Promise<void>;
}

export interface Agent<Config = unknown> {
  run(ctx: AgentContext, config: Config): Promise<StepResult>;
}

/** TypeScript agents registered by name, for `agent: {kind: typescript, name: …}`. */
export class AgentRegistry {
  readonly #agents = new Map<string, Agent<Record<string, unknown>>>();

  register(
    name: string,
    agent: Agent<Record<string, unknown>> | Agent<Record<string, unknown>>['run'],
  ): this {
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
