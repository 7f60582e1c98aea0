import { describe, expect, it } from 'vitest';

import { invalidParamsOf } from '../../../test/helpers/jeeves-fixtures.ts';
import { DEFAULT_QUOTA, emptyUsage, grantQuota } from '../quota.ts';
import {
  emptyJeevesUsage,
  JEEVES_DEFAULT_QUOTA,
  type JeevesQuota,
  type JeevesUsage,
  jeevesUsageOf,
  quotaExceeded,
  recordUsage,
  resolveResourceQuota,
  RESOURCE_QUOTA_FIELDS,
  resourceQuotaOf,
  resourceUsageWire,
  usageDeltaOf,
  wardenQuotaOf,
} from './quota.ts';

// §4.4's DefaultQuota, written out from the spec.
const SPEC_DEFAULTS: JeevesQuota = {
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
  max_inference_input_chars: 100000,
};

describe('resolveResourceQuota', () => {
  it('lists the 14 proto fields and §4.4’s defaults', () => {
    expect(RESOURCE_QUOTA_FIELDS).toHaveLength(14);
    expect(JEEVES_DEFAULT_QUOTA).toEqual(SPEC_DEFAULTS);
    expect(resolveResourceQuota(undefined)).toEqual(SPEC_DEFAULTS);
    expect(resolveResourceQuota(null)).toEqual(SPEC_DEFAULTS);
  });

  it('defect 6: a partly filled quota takes the default for every unset (0) field', () => {
    // What the Python client sends: five fields; proto3 decodes the other nine as 0.
    const wire = Object.fromEntries(RESOURCE_QUOTA_FIELDS.map((f) => [f, 0]));
    const quota = resolveResourceQuota({
      ...wire,
      max_llm_calls: 4,
      max_tool_calls: 8,
      max_agent_hops: 6,
      max_iterations: 2,
      timeout_seconds: 60,
    });
    expect(quota).toEqual({
      ...SPEC_DEFAULTS,
      max_llm_calls: 4,
      max_tool_calls: 8,
      max_agent_hops: 6,
      max_iterations: 2,
      timeout_seconds: 60,
    });
    expect(quota.max_inference_requests).toBe(100);
    expect(quota.soft_timeout_seconds).toBe(240);
    expect(
      quotaExceeded(quota, recordUsage(emptyJeevesUsage(), { inference_requests: 1 }), 0),
    ).toBeNull();
  });

  it('refuses explicit negative or fractional limits, naming each field', () => {
    const error = invalidParamsOf(() =>
      resolveResourceQuota({ max_llm_calls: -1, max_inference_requests: 2.5, max_iterations: 4 }),
    );
    expect(error.message).toContain(
      'quota: max_llm_calls: expected a positive integer limit, or 0 for the default 10 (got -1)',
    );
    expect(error.message).toContain('max_inference_requests: expected a positive integer limit');
    expect(error.message).not.toContain('max_iterations');
  });
});

describe('Warden quota mapping', () => {
  it('takes calls, hops, iterations and timeouts from jeeves, token budgets from Warden', () => {
    const jeeves = resolveResourceQuota({
      max_llm_calls: 7,
      timeout_seconds: 30,
      soft_timeout_seconds: 20,
    });
    expect(wardenQuotaOf(jeeves)).toEqual({
      ...DEFAULT_QUOTA,
      max_llm_calls: 7,
      max_tool_calls: 50,
      max_agent_hops: 21,
      max_iterations: 3,
      timeout_ms: 30_000,
      soft_timeout_ms: 20_000,
    });
    expect(wardenQuotaOf(jeeves).max_input_tokens).toBe(DEFAULT_QUOTA.max_input_tokens);
  });

  it('shows Warden’s current limits (after a grant) with jeeves’ own fields', () => {
    const jeeves = resolveResourceQuota({ max_inference_requests: 5 });
    const granted = grantQuota(wardenQuotaOf(jeeves), { max_llm_calls: 3, timeout_ms: 500 });
    expect(resourceQuotaOf(granted, jeeves)).toEqual({
      ...SPEC_DEFAULTS,
      max_inference_requests: 5,
      max_llm_calls: 13,
      timeout_seconds: 301,
    });
    expect(resourceQuotaOf({ ...DEFAULT_QUOTA, max_llm_calls: 2 ** 40 }).max_llm_calls).toBe(
      2 ** 31 - 1,
    );
  });
});

describe('usage accounting', () => {
  it('defect 13: adds the inference requests sent, not 1', () => {
    let usage = recordUsage(emptyJeevesUsage(), {
      inference_requests: 5,
      inference_input_chars: 900,
    });
    usage = recordUsage(usage, { inference_requests: 0, inference_input_chars: 100 });
    expect(usage.inference_requests).toBe(5);
    expect(usage.inference_input_chars).toBe(1000);
    const quota = resolveResourceQuota({ max_inference_requests: 4 });
    expect(quotaExceeded(quota, usage, 0)).toBe('max_inference_requests_exceeded');
  });

  it('adds every counter and refuses negative ones', () => {
    const usage = recordUsage(emptyJeevesUsage(), {
      llm_calls: 1,
      tool_calls: 2,
      agent_hops: 3,
      tokens_in: 40,
      tokens_out: 50,
      inference_requests: null,
    });
    expect(usage).toEqual({
      ...emptyJeevesUsage(),
      llm_calls: 1,
      tool_calls: 2,
      agent_hops: 3,
      tokens_in: 40,
      tokens_out: 50,
    });
    const error = invalidParamsOf(() => recordUsage(usage, { tokens_in: -5 }));
    expect(error.message).toContain('RecordUsage: tokens_in: expected an integer ≥ 0 (got -5)');
  });

  it('converts between Warden usage and ResourceUsage', () => {
    const warden = {
      ...emptyUsage(),
      llm_calls: 2,
      input_tokens: 10,
      output_tokens: 3,
      iterations: 1,
    };
    const jeeves = jeevesUsageOf(warden, { inference_requests: 4, inference_input_chars: 8 });
    expect(jeeves).toEqual({
      llm_calls: 2,
      tool_calls: 0,
      agent_hops: 0,
      iterations: 1,
      tokens_in: 10,
      tokens_out: 3,
      inference_requests: 4,
      inference_input_chars: 8,
    });
    expect(
      usageDeltaOf({ llm_calls: 1, tokens_in: 5, tokens_out: 6, inference_requests: 9 }),
    ).toEqual({
      llm_calls: 1,
      tool_calls: 0,
      input_tokens: 5,
      output_tokens: 6,
    });
    expect(resourceUsageWire({ ...jeeves, tokens_in: 2 ** 33 }, 1.5)).toMatchObject({
      tokens_in: 2 ** 31 - 1,
      elapsed_seconds: 1.5,
    });
  });
});

describe('quotaExceeded (§4.4)', () => {
  const quota = resolveResourceQuota({
    max_llm_calls: 2,
    max_tool_calls: 2,
    max_agent_hops: 2,
    max_iterations: 2,
    max_inference_requests: 2,
    max_inference_input_chars: 2,
    timeout_seconds: 10,
  });
  const at = (patch: Partial<JeevesUsage>): JeevesUsage => ({ ...emptyJeevesUsage(), ...patch });

  it('is strict: a counter at its limit is within bounds', () => {
    expect(
      quotaExceeded(
        quota,
        at({
          llm_calls: 2,
          tool_calls: 2,
          agent_hops: 2,
          iterations: 2,
          inference_requests: 2,
          inference_input_chars: 2,
        }),
        10,
      ),
    ).toBeNull();
  });

  it('reports the first counter over its limit, in §4.4’s order', () => {
    const over = at({
      llm_calls: 3,
      tool_calls: 3,
      agent_hops: 3,
      iterations: 3,
      inference_requests: 3,
      inference_input_chars: 3,
    });
    expect(quotaExceeded(quota, over, 11)).toBe('max_llm_calls_exceeded');
    expect(quotaExceeded(quota, { ...over, llm_calls: 0 }, 11)).toBe('max_tool_calls_exceeded');
    expect(quotaExceeded(quota, at({ agent_hops: 3, iterations: 3 }), 0)).toBe(
      'max_agent_hops_exceeded',
    );
    expect(quotaExceeded(quota, at({ iterations: 3 }), 0)).toBe('max_iterations_exceeded');
    expect(quotaExceeded(quota, at({ inference_input_chars: 3 }), 0)).toBe(
      'max_inference_input_chars_exceeded',
    );
    expect(quotaExceeded(quota, at({}), 10.5)).toBe('timeout_exceeded');
  });

  it('never checks tokens (Warden’s own token budgets apply instead)', () => {
    expect(quotaExceeded(quota, at({ tokens_in: 10 ** 9, tokens_out: 10 ** 9 }), 0)).toBeNull();
  });
});
