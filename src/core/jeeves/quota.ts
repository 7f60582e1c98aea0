/**
 * `ResourceQuota` / `ResourceUsage` (reference/jeeves-engine-api.md §2, §4.4) and Warden's
 * {@link Quota}.
 *
 * A ResourceQuota is merged field by field onto jeeves' `DefaultQuota`: 0 (proto3's "unset")
 * takes the default, so a client that fills five fields no longer gets zero inference limits
 * (defect 6); an explicit negative limit is an error. The budgets both sides know (LLM calls,
 * tool calls, hops, iterations, timeouts) become Warden's {@link Quota}, which the kernel
 * enforces. The others stay in the {@link JeevesQuota}: token, context and rate-limit fields
 * (Go never enforced them; Warden enforces its own cumulative token budgets from its defaults,
 * because jeeves' 4096/2048/16384 are per-call context bounds, not run budgets) and the
 * inference limits, which only {@link quotaExceeded} checks.
 */
import { describeValue, invalidParams, type ParamIssue } from '../params.ts';
import { DEFAULT_QUOTA, type Quota, type Usage, type UsageDelta } from '../quota.ts';

/** The 14 ResourceQuota fields, in field-number order. */
export const RESOURCE_QUOTA_FIELDS = [
  'max_input_tokens',
  'max_output_tokens',
  'max_context_tokens',
  'max_llm_calls',
  'max_tool_calls',
  'max_agent_hops',
  'max_iterations',
  'timeout_seconds',
  'soft_timeout_seconds',
  'rate_limit_rpm',
  'rate_limit_rph',
  'rate_limit_burst',
  'max_inference_requests',
  'max_inference_input_chars',
] as const;
export type ResourceQuotaField = (typeof RESOURCE_QUOTA_FIELDS)[number];

/** A resolved ResourceQuota: every field set (rate limits may be 0, meaning none). */
export type JeevesQuota = Readonly<Record<ResourceQuotaField, number>>;

/** Go's `DefaultQuota` (§4.4). */
export const JEEVES_DEFAULT_QUOTA: JeevesQuota = Object.freeze({
  max_input_tokens: 4096,
  max_output_tokens: 2048,
  max_context_tokens: 16384,
  max_llm_calls: 10,
  max_tool_calls: 50,
  max_agent_hops: 21,
  max_iterations: 3,
  timeout_seconds: 300,
  soft_timeout_seconds: 240,
  rate_limit_rpm: 0,
  rate_limit_rph: 0,
  rate_limit_burst: 0,
  max_inference_requests: 100,
  max_inference_input_chars: 100_000,
});

/** A ResourceQuota as decoded from the wire (0, null or absent = unset). */
export type ResourceQuotaInput = Partial<Record<ResourceQuotaField, number | null>>;

const INT32_MAX = 2 ** 31 - 1;

/**
 * The quota a CreateProcess request asks for: each unset (0) field takes the default; an
 * absent message is the default quota.
 *
 * @throws WardenError INVALID_PARAMS naming every negative or non-integer field.
 */
export function resolveResourceQuota(
  input: ResourceQuotaInput | null | undefined,
  where = 'quota',
): JeevesQuota {
  const issues: ParamIssue[] = [];
  const out: Record<string, number> = { ...JEEVES_DEFAULT_QUOTA };
  for (const field of RESOURCE_QUOTA_FIELDS) {
    const value = input?.[field];
    if (value === undefined || value === null || value === 0) continue;
    if (!Number.isSafeInteger(value) || value < 0) {
      issues.push({
        path: field,
        message: `expected a positive integer limit, or 0 for the default ${JEEVES_DEFAULT_QUOTA[field]} (got ${describeValue(value)})`,
      });
    } else out[field] = value;
  }
  if (issues.length > 0) throw invalidParams(where, issues);
  return Object.freeze(out as JeevesQuota);
}

/**
 * The Warden quota the kernel enforces for a jeeves quota: calls, hops, iterations and
 * timeouts from `quota`; token budgets from `base` (see the module comment).
 */
export function wardenQuotaOf(quota: JeevesQuota, base: Quota = DEFAULT_QUOTA): Quota {
  return {
    ...base,
    max_llm_calls: quota.max_llm_calls,
    max_tool_calls: quota.max_tool_calls,
    max_agent_hops: quota.max_agent_hops,
    max_iterations: quota.max_iterations,
    timeout_ms: quota.timeout_seconds * 1000,
    soft_timeout_ms: quota.soft_timeout_seconds * 1000,
  };
}

/**
 * The ResourceQuota to show for a process: Warden's limits where it has them (they may have
 * grown by a grant), `jeeves` for the rest. Values are clamped to int32.
 */
export function resourceQuotaOf(
  warden: Quota,
  jeeves: JeevesQuota = JEEVES_DEFAULT_QUOTA,
): JeevesQuota {
  const merged: Record<ResourceQuotaField, number> = {
    ...jeeves,
    max_llm_calls: warden.max_llm_calls,
    max_tool_calls: warden.max_tool_calls,
    max_agent_hops: warden.max_agent_hops,
    max_iterations: warden.max_iterations,
    timeout_seconds: Math.ceil(warden.timeout_ms / 1000),
    soft_timeout_seconds: Math.ceil(warden.soft_timeout_ms / 1000),
  };
  for (const field of RESOURCE_QUOTA_FIELDS) merged[field] = Math.min(merged[field], INT32_MAX);
  return Object.freeze(merged);
}

/** ResourceUsage's counters (elapsed time is computed on read, never stored: defect 12). */
export interface JeevesUsage {
  readonly llm_calls: number;
  readonly tool_calls: number;
  readonly agent_hops: number;
  readonly iterations: number;
  readonly tokens_in: number;
  readonly tokens_out: number;
  readonly inference_requests: number;
  readonly inference_input_chars: number;
}

export function emptyJeevesUsage(): JeevesUsage {
  return {
    llm_calls: 0,
    tool_calls: 0,
    agent_hops: 0,
    iterations: 0,
    tokens_in: 0,
    tokens_out: 0,
    inference_requests: 0,
    inference_input_chars: 0,
  };
}

/** A run's Warden usage with the inference counters only jeeves keeps. */
export function jeevesUsageOf(
  usage: Readonly<Usage>,
  inference: Pick<JeevesUsage, 'inference_requests' | 'inference_input_chars'> = {
    inference_requests: 0,
    inference_input_chars: 0,
  },
): JeevesUsage {
  return {
    llm_calls: usage.llm_calls,
    tool_calls: usage.tool_calls,
    agent_hops: usage.agent_hops,
    iterations: usage.iterations,
    tokens_in: usage.input_tokens,
    tokens_out: usage.output_tokens,
    inference_requests: inference.inference_requests,
    inference_input_chars: inference.inference_input_chars,
  };
}

/** The counters of a RecordUsageRequest (absent = 0). */
export type RecordUsageInput = Partial<
  Record<Exclude<keyof JeevesUsage, 'iterations'>, number | null>
>;

const RECORDED = [
  'llm_calls',
  'tool_calls',
  'agent_hops',
  'tokens_in',
  'tokens_out',
  'inference_requests',
  'inference_input_chars',
] as const satisfies readonly (keyof RecordUsageInput)[];

/**
 * Adds a RecordUsage request to `usage`. Every counter adds the value sent, inference requests
 * included (Go added exactly 1 whatever was sent: defect 13).
 *
 * @throws WardenError INVALID_PARAMS for a negative or non-integer counter (usage never shrinks).
 */
export function recordUsage(
  usage: JeevesUsage,
  delta: RecordUsageInput,
  where = 'RecordUsage',
): JeevesUsage {
  const issues: ParamIssue[] = [];
  const out: Record<keyof JeevesUsage, number> = { ...usage };
  for (const field of RECORDED) {
    const value = delta[field] ?? 0;
    if (!Number.isSafeInteger(value) || value < 0) {
      issues.push({
        path: field,
        message: `expected an integer ≥ 0 (got ${describeValue(value)})`,
      });
    } else out[field] += value;
  }
  if (issues.length > 0) throw invalidParams(where, issues);
  return out;
}

/** The part of a RecordUsage request Warden's own usage record counts. */
export function usageDeltaOf(delta: RecordUsageInput): UsageDelta {
  return {
    llm_calls: delta.llm_calls ?? 0,
    tool_calls: delta.tool_calls ?? 0,
    input_tokens: delta.tokens_in ?? 0,
    output_tokens: delta.tokens_out ?? 0,
  };
}

export const QUOTA_EXCEEDED_REASONS = [
  'max_llm_calls_exceeded',
  'max_tool_calls_exceeded',
  'max_agent_hops_exceeded',
  'max_iterations_exceeded',
  'max_inference_requests_exceeded',
  'max_inference_input_chars_exceeded',
  'timeout_exceeded',
] as const;
export type QuotaExceededReason = (typeof QUOTA_EXCEEDED_REASONS)[number];

/**
 * §4.4's exceed rule for CheckQuota and the ScheduleProcess pre-flight: the first counter
 * strictly over its limit, in this order, or null. Token and rate-limit fields are not checked
 * here (see the module comment); the soft timeout only warns.
 */
export function quotaExceeded(
  quota: JeevesQuota,
  usage: JeevesUsage,
  elapsedSeconds: number,
): QuotaExceededReason | null {
  if (usage.llm_calls > quota.max_llm_calls) return 'max_llm_calls_exceeded';
  if (usage.tool_calls > quota.max_tool_calls) return 'max_tool_calls_exceeded';
  if (usage.agent_hops > quota.max_agent_hops) return 'max_agent_hops_exceeded';
  if (usage.iterations > quota.max_iterations) return 'max_iterations_exceeded';
  if (usage.inference_requests > quota.max_inference_requests)
    return 'max_inference_requests_exceeded';
  if (usage.inference_input_chars > quota.max_inference_input_chars)
    return 'max_inference_input_chars_exceeded';
  if (elapsedSeconds > quota.timeout_seconds) return 'timeout_exceeded';
  return null;
}

/** A ResourceUsage message: the counters (int32-clamped) and the elapsed seconds (double). */
export function resourceUsageWire(
  usage: JeevesUsage,
  elapsedSeconds: number,
): JeevesUsage & { readonly elapsed_seconds: number } {
  const clamp = (n: number) => Math.min(Math.max(n, 0), INT32_MAX);
  return {
    llm_calls: clamp(usage.llm_calls),
    tool_calls: clamp(usage.tool_calls),
    agent_hops: clamp(usage.agent_hops),
    iterations: clamp(usage.iterations),
    tokens_in: clamp(usage.tokens_in),
    tokens_out: clamp(usage.tokens_out),
    elapsed_seconds: elapsedSeconds,
    inference_requests: clamp(usage.inference_requests),
    inference_input_chars: clamp(usage.inference_input_chars),
  };
}
