/**
 * Process budgets (DESIGN.md §5 "Resources"). Usage is checked *before* work (prospective) and
 * recorded after. Counters are cumulative per process. Token limits are enforced.
 *
 * Two predicates, used consistently:
 * - before issuing a step: a counter that has *reached* its limit stops the run
 *   (`iterations ≥ max_iterations` means at most `max_iterations` passes);
 * - before a model call: the call must fit (`llm_calls + 1 ≤ max`, `input_tokens + estimate ≤ max`).
 */

export const TERMINAL_REASONS = [
  'completed',
  'failed',
  'user_cancelled',
  'max_iterations_exceeded',
  'max_llm_calls_exceeded',
  'max_agent_hops_exceeded',
  'max_tool_calls_exceeded',
  'max_input_tokens_exceeded',
  'max_output_tokens_exceeded',
  'timeout_exceeded',
  'max_loop_exceeded',
  'max_visits_exceeded',
  'tool_failed_fatally',
  'llm_failed_fatally',
  'policy_violation',
  'interrupt_expired',
  'interrupt_denied',
] as const;
export type TerminalReason = (typeof TERMINAL_REASONS)[number];

export interface Quota {
  readonly max_llm_calls: number;
  readonly max_tool_calls: number;
  readonly max_agent_hops: number;
  readonly max_iterations: number;
  readonly max_input_tokens: number;
  readonly max_output_tokens: number;
  /**
   * Time the run's steps spend running (not queued, waiting for a person, or lost with a dead
   * worker); exceeding stops the running step and terminates with `timeout_exceeded`.
   */
  readonly timeout_ms: number;
  /** Run time (as `timeout_ms`) after which a `budget.soft_timeout` event warns once. */
  readonly soft_timeout_ms: number;
}

export const DEFAULT_QUOTA: Quota = Object.freeze({
  max_llm_calls: 10,
  max_tool_calls: 50,
  max_agent_hops: 21,
  max_iterations: 3,
  max_input_tokens: 200_000,
  max_output_tokens: 50_000,
  timeout_ms: 300_000,
  soft_timeout_ms: 240_000,
});

export interface Usage {
  llm_calls: number;
  tool_calls: number;
  agent_hops: number;
  iterations: number;
  input_tokens: number;
  output_tokens: number;
}

export function emptyUsage(): Usage {
  return {
    llm_calls: 0,
    tool_calls: 0,
    agent_hops: 0,
    iterations: 0,
    input_tokens: 0,
    output_tokens: 0,
  };
}

export interface UsageDelta {
  readonly llm_calls?: number;
  readonly tool_calls?: number;
  readonly input_tokens?: number;
  readonly output_tokens?: number;
}

export function addUsage(usage: Usage, delta: UsageDelta): Usage {
  return {
    ...usage,
    llm_calls: usage.llm_calls + (delta.llm_calls ?? 0),
    tool_calls: usage.tool_calls + (delta.tool_calls ?? 0),
    input_tokens: usage.input_tokens + (delta.input_tokens ?? 0),
    output_tokens: usage.output_tokens + (delta.output_tokens ?? 0),
  };
}

/** Per-field merge: an omitted or non-positive field takes the default (jeeves defect #6). */
export function mergeQuota(
  partial: Partial<Quota> | undefined,
  base: Quota = DEFAULT_QUOTA,
): Quota {
  const out: Record<string, number> = { ...base };
  for (const [key, value] of Object.entries(partial ?? {})) {
    if (
      Object.hasOwn(base, key) &&
      typeof value === 'number' &&
      Number.isFinite(value) &&
      value > 0
    )
      out[key] = value;
  }
  return out as unknown as Quota;
}

/** Checked before a step is issued: the first counter that has reached its limit, in order. */
export function stepBoundExceeded(
  quota: Quota,
  usage: Usage,
  elapsedMs: number,
): TerminalReason | null {
  if (usage.iterations >= quota.max_iterations) return 'max_iterations_exceeded';
  if (usage.llm_calls >= quota.max_llm_calls) return 'max_llm_calls_exceeded';
  if (usage.agent_hops >= quota.max_agent_hops) return 'max_agent_hops_exceeded';
  if (usage.tool_calls >= quota.max_tool_calls) return 'max_tool_calls_exceeded';
  if (usage.input_tokens >= quota.max_input_tokens) return 'max_input_tokens_exceeded';
  if (usage.output_tokens >= quota.max_output_tokens) return 'max_output_tokens_exceeded';
  if (elapsedMs >= quota.timeout_ms) return 'timeout_exceeded';
  return null;
}

/** Checked before each model call: would this call fit the budget? */
export function modelCallExceeded(
  quota: Quota,
  usage: Usage,
  estimatedInputTokens: number,
  elapsedMs: number,
): TerminalReason | null {
  if (usage.llm_calls + 1 > quota.max_llm_calls) return 'max_llm_calls_exceeded';
  if (usage.input_tokens + estimatedInputTokens > quota.max_input_tokens)
    return 'max_input_tokens_exceeded';
  if (usage.output_tokens >= quota.max_output_tokens) return 'max_output_tokens_exceeded';
  if (elapsedMs >= quota.timeout_ms) return 'timeout_exceeded';
  return null;
}

/** Checked before each tool call. */
export function toolCallExceeded(quota: Quota, usage: Usage): TerminalReason | null {
  return usage.tool_calls + 1 > quota.max_tool_calls ? 'max_tool_calls_exceeded' : null;
}

/** Checked after recording usage: has anything gone over (strictly) its limit? */
export function usageOverLimit(
  quota: Quota,
  usage: Usage,
  elapsedMs: number,
): TerminalReason | null {
  if (usage.llm_calls > quota.max_llm_calls) return 'max_llm_calls_exceeded';
  if (usage.tool_calls > quota.max_tool_calls) return 'max_tool_calls_exceeded';
  if (usage.input_tokens > quota.max_input_tokens) return 'max_input_tokens_exceeded';
  if (usage.output_tokens > quota.max_output_tokens) return 'max_output_tokens_exceeded';
  if (elapsedMs > quota.timeout_ms) return 'timeout_exceeded';
  return null;
}

/** Rough token estimate for prospective checks when the provider cannot count: 4 chars ≈ 1 token. */
export function estimateTokens(text: string): number {
  return Math.ceil(text.length / 4);
}

/** Adds a granted amount to selected limits (resolving a `resource_exhausted` interrupt). */
export function grantQuota(quota: Quota, grant: Partial<Quota>): Quota {
  const out: Record<string, number> = { ...quota };
  for (const [key, value] of Object.entries(grant)) {
    if (typeof value === 'number' && Number.isFinite(value) && value > 0 && key in out) {
      out[key] = out[key]! + value;
    }
  }
  return out as unknown as Quota;
}

/** Which limit a terminal reason refers to, so a grant can raise exactly that one. */
export function limitForReason(reason: TerminalReason): keyof Quota | null {
  switch (reason) {
    case 'max_iterations_exceeded':
      return 'max_iterations';
    case 'max_llm_calls_exceeded':
      return 'max_llm_calls';
    case 'max_agent_hops_exceeded':
      return 'max_agent_hops';
    case 'max_tool_calls_exceeded':
      return 'max_tool_calls';
    case 'max_input_tokens_exceeded':
      return 'max_input_tokens';
    case 'max_output_tokens_exceeded':
      return 'max_output_tokens';
    case 'timeout_exceeded':
      return 'timeout_ms';
    default:
      return null;
  }
}
