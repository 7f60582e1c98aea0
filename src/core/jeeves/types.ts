/** Types of the jeeves translation layer: the validated pipeline config (§3.1). */
import type { JsonValue } from '../json.ts';

/** Route targets that are not agents: `end`, and the two interrupts (defect 11). */
export const INTERRUPT_TARGETS = ['clarification', 'confirmation'] as const;
export type InterruptTarget = (typeof INTERRUPT_TARGETS)[number];

export interface JeevesRoutingRule {
  /** A top-level key of the agent's output object. */
  readonly condition: string;
  /** Any JSON value; an absent value is `null`, as Go decodes it. */
  readonly value: JsonValue;
  readonly target: string;
}

export interface JeevesEdgeLimit {
  readonly from: string;
  readonly to: string;
  /** ≤ 0 means unlimited. */
  readonly max_count: number;
}

/**
 * A validated agent. Go's zero values stand for unset scalars (`''`, `0`, `false`); the
 * fields Go re-serialises as `null` when unset are null here too (see agentConfigJson).
 */
export interface JeevesAgentConfig {
  readonly name: string;
  readonly stage_order: number;
  readonly requires: readonly string[];
  readonly after: readonly string[];
  /** Defaulted to `all`; any other string is passed through as Go does. */
  readonly join_strategy: string;
  readonly has_llm: boolean;
  readonly has_tools: boolean;
  readonly has_policies: boolean;
  readonly tool_access: string;
  readonly allowed_tools: Readonly<Record<string, boolean>> | null;
  readonly model_role: string;
  readonly prompt_key: string;
  readonly temperature: number | null;
  readonly max_tokens: number | null;
  /** Defaulted to `name`. */
  readonly output_key: string;
  readonly required_output_fields: readonly string[] | null;
  readonly routing_rules: readonly JeevesRoutingRule[] | null;
  /** `''` when unset (the route then ends the run). */
  readonly default_next: string;
  readonly error_next: string;
  readonly timeout_seconds: number;
  readonly max_retries: number;
}

export interface JeevesPipelineConfig {
  readonly name: string;
  /** Sorted by `stage_order`, ties in the order given (defect 20). */
  readonly agents: readonly JeevesAgentConfig[];
  readonly default_run_mode: string;
  readonly max_iterations: number;
  readonly max_llm_calls: number;
  readonly max_agent_hops: number;
  readonly default_timeout_seconds: number;
  /** One per edge (a later entry for the same edge replaces an earlier one, as in Go's map). */
  readonly edge_limits: readonly JeevesEdgeLimit[];
  readonly clarification_resume_stage: string;
  readonly confirmation_resume_stage: string;
  readonly agent_review_resume_stage: string;
}
