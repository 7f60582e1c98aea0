import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import {
  addUsage,
  DEFAULT_QUOTA,
  emptyUsage,
  estimateTokens,
  grantQuota,
  limitForReason,
  mergeQuota,
  modelCallExceeded,
  type Quota,
  stepBoundExceeded,
  TERMINAL_REASONS,
  toolCallExceeded,
  type Usage,
  usageOverLimit,
} from './quota.ts';

const QUOTA_KEYS = Object.keys(DEFAULT_QUOTA) as (keyof Quota)[];

const SMALL: Quota = {
  max_llm_calls: 5,
  max_tool_calls: 7,
  max_agent_hops: 9,
  max_iterations: 3,
  max_input_tokens: 1_000,
  max_output_tokens: 500,
  timeout_ms: 60_000,
  soft_timeout_ms: 50_000,
};

function usage(partial: Partial<Usage> = {}): Usage {
  return { ...emptyUsage(), ...partial };
}

describe('mergeQuota', () => {
  it('returns the defaults for undefined or empty input', () => {
    expect(mergeQuota(undefined)).toEqual(DEFAULT_QUOTA);
    expect(mergeQuota({})).toEqual(DEFAULT_QUOTA);
    expect(mergeQuota({})).not.toBe(DEFAULT_QUOTA);
  });

  it('merges per field: a positive value wins, omitted/0/negative/non-finite fields take the default', () => {
    const merged = mergeQuota({
      max_llm_calls: 4,
      max_tool_calls: 0,
      max_agent_hops: -3,
      max_iterations: Number.NaN,
      max_input_tokens: Number.POSITIVE_INFINITY,
      timeout_ms: 1_500,
    });
    expect(merged).toEqual({
      ...DEFAULT_QUOTA,
      max_llm_calls: 4,
      timeout_ms: 1_500,
    });
  });

  it('ignores explicitly undefined fields (a partial bounds object)', () => {
    const merged = mergeQuota({ max_llm_calls: undefined, max_iterations: 7 });
    expect(merged).toEqual({ ...DEFAULT_QUOTA, max_iterations: 7 });
  });

  it('uses the given base instead of the defaults', () => {
    expect(mergeQuota({ max_tool_calls: 0, max_iterations: 11 }, SMALL)).toEqual({
      ...SMALL,
      max_iterations: 11,
    });
  });

  it('property: every field is the partial’s value when positive and finite, else the base’s', () => {
    const fieldArb = fc.option(
      fc.oneof(
        fc.integer({ min: -5, max: 1_000 }),
        fc.constantFrom(0, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.5),
      ),
      { nil: undefined },
    );
    const partialArb = fc.record(
      Object.fromEntries(QUOTA_KEYS.map((k) => [k, fieldArb])) as Record<
        keyof Quota,
        fc.Arbitrary<number | undefined>
      >,
      { requiredKeys: [] },
    );
    fc.assert(
      fc.property(partialArb, (partial) => {
        const merged = mergeQuota(partial, SMALL);
        for (const key of QUOTA_KEYS) {
          const v = partial[key];
          const expected = v !== undefined && Number.isFinite(v) && v > 0 ? v : SMALL[key];
          expect(merged[key], key).toBe(expected);
        }
        expect(Object.keys(merged).sort()).toEqual([...QUOTA_KEYS].sort());
      }),
    );
  });
});

describe('stepBoundExceeded', () => {
  it('returns null when every counter is below its limit', () => {
    expect(stepBoundExceeded(SMALL, emptyUsage(), 0)).toBeNull();
    expect(
      stepBoundExceeded(
        SMALL,
        usage({
          iterations: 2,
          llm_calls: 4,
          agent_hops: 8,
          input_tokens: 999,
          output_tokens: 499,
        }),
        59_999,
      ),
    ).toBeNull();
  });

  it('stops at ≥ (a counter that has reached its limit), not only above it', () => {
    expect(stepBoundExceeded(SMALL, usage({ iterations: 3 }), 0)).toBe('max_iterations_exceeded');
    expect(stepBoundExceeded(SMALL, usage({ llm_calls: 5 }), 0)).toBe('max_llm_calls_exceeded');
    expect(stepBoundExceeded(SMALL, usage({ agent_hops: 9 }), 0)).toBe('max_agent_hops_exceeded');
    expect(stepBoundExceeded(SMALL, usage({ input_tokens: 1_000 }), 0)).toBe(
      'max_input_tokens_exceeded',
    );
    expect(stepBoundExceeded(SMALL, usage({ output_tokens: 500 }), 0)).toBe(
      'max_output_tokens_exceeded',
    );
    expect(stepBoundExceeded(SMALL, emptyUsage(), 60_000)).toBe('timeout_exceeded');
    // One below each limit is still fine.
    expect(stepBoundExceeded(SMALL, usage({ iterations: 2 }), 0)).toBeNull();
    expect(stepBoundExceeded(SMALL, emptyUsage(), 59_999)).toBeNull();
  });

  it('tool calls above the limit stop the run', () => {
    expect(stepBoundExceeded(SMALL, usage({ tool_calls: 8 }), 0)).toBe('max_tool_calls_exceeded');
    expect(stepBoundExceeded(SMALL, usage({ tool_calls: 6 }), 0)).toBeNull();
  });

  it('tool calls that have reached the limit stop the run (≥, as documented)', () => {
    expect(stepBoundExceeded(SMALL, usage({ tool_calls: 7 }), 0)).toBe('max_tool_calls_exceeded');
  });

  it('reports the first exceeded counter in the documented order', () => {
    const all = usage({
      iterations: 3,
      llm_calls: 5,
      agent_hops: 9,
      tool_calls: 8,
      input_tokens: 1_000,
      output_tokens: 500,
    });
    const order: [keyof Usage | 'elapsed', string][] = [
      ['iterations', 'max_iterations_exceeded'],
      ['llm_calls', 'max_llm_calls_exceeded'],
      ['agent_hops', 'max_agent_hops_exceeded'],
      ['tool_calls', 'max_tool_calls_exceeded'],
      ['input_tokens', 'max_input_tokens_exceeded'],
      ['output_tokens', 'max_output_tokens_exceeded'],
      ['elapsed', 'timeout_exceeded'],
    ];
    // Clearing counters one at a time, front to back, moves the answer down the list.
    const current: Usage = { ...all };
    for (const [counter, reason] of order) {
      expect(stepBoundExceeded(SMALL, current, 60_000)).toBe(reason);
      if (counter !== 'elapsed') current[counter] = 0;
    }
    expect(stepBoundExceeded(SMALL, current, 0)).toBeNull();
  });
});

describe('modelCallExceeded', () => {
  it('allows a call that fits exactly', () => {
    expect(modelCallExceeded(SMALL, usage({ llm_calls: 4, input_tokens: 900 }), 100, 0)).toBeNull();
  });

  it('refuses a call when llm_calls + 1 > max_llm_calls', () => {
    expect(modelCallExceeded(SMALL, usage({ llm_calls: 5 }), 0, 0)).toBe('max_llm_calls_exceeded');
    expect(modelCallExceeded(SMALL, usage({ llm_calls: 4 }), 0, 0)).toBeNull();
  });

  it('refuses a call when input tokens + estimate > max_input_tokens', () => {
    expect(modelCallExceeded(SMALL, usage({ input_tokens: 900 }), 101, 0)).toBe(
      'max_input_tokens_exceeded',
    );
    expect(modelCallExceeded(SMALL, usage({ input_tokens: 0 }), 1_001, 0)).toBe(
      'max_input_tokens_exceeded',
    );
    expect(modelCallExceeded(SMALL, usage({ input_tokens: 900 }), 100, 0)).toBeNull();
  });

  it('refuses when output tokens or time are used up, and checks calls first', () => {
    expect(modelCallExceeded(SMALL, usage({ output_tokens: 500 }), 0, 0)).toBe(
      'max_output_tokens_exceeded',
    );
    expect(modelCallExceeded(SMALL, emptyUsage(), 0, 60_000)).toBe('timeout_exceeded');
    expect(modelCallExceeded(SMALL, usage({ llm_calls: 5, input_tokens: 1_000 }), 10, 60_000)).toBe(
      'max_llm_calls_exceeded',
    );
    expect(modelCallExceeded(SMALL, usage({ input_tokens: 1_000 }), 10, 60_000)).toBe(
      'max_input_tokens_exceeded',
    );
  });

  it('property: agrees with the prospective arithmetic', () => {
    fc.assert(
      fc.property(fc.nat(10), fc.nat(2_000), fc.nat(2_000), (llmCalls, inputTokens, estimate) => {
        const got = modelCallExceeded(
          SMALL,
          usage({ llm_calls: llmCalls, input_tokens: inputTokens }),
          estimate,
          0,
        );
        const expected =
          llmCalls + 1 > SMALL.max_llm_calls
            ? 'max_llm_calls_exceeded'
            : inputTokens + estimate > SMALL.max_input_tokens
              ? 'max_input_tokens_exceeded'
              : null;
        expect(got).toBe(expected);
      }),
    );
  });
});

describe('other budget helpers', () => {
  it('toolCallExceeded checks tool_calls + 1 > max', () => {
    expect(toolCallExceeded(SMALL, usage({ tool_calls: 6 }))).toBeNull();
    expect(toolCallExceeded(SMALL, usage({ tool_calls: 7 }))).toBe('max_tool_calls_exceeded');
  });

  it('usageOverLimit is strict (>)', () => {
    expect(
      usageOverLimit(
        SMALL,
        usage({ llm_calls: 5, tool_calls: 7, input_tokens: 1_000, output_tokens: 500 }),
        60_000,
      ),
    ).toBeNull();
    expect(usageOverLimit(SMALL, usage({ llm_calls: 6 }), 0)).toBe('max_llm_calls_exceeded');
    expect(usageOverLimit(SMALL, usage({ output_tokens: 501 }), 0)).toBe(
      'max_output_tokens_exceeded',
    );
    expect(usageOverLimit(SMALL, emptyUsage(), 60_001)).toBe('timeout_exceeded');
  });

  it('addUsage adds the delta and leaves hops and iterations alone', () => {
    const before = usage({ llm_calls: 1, agent_hops: 4, iterations: 2 });
    const after = addUsage(before, { llm_calls: 2, input_tokens: 10, output_tokens: 3 });
    expect(after).toEqual({
      llm_calls: 3,
      tool_calls: 0,
      agent_hops: 4,
      iterations: 2,
      input_tokens: 10,
      output_tokens: 3,
    });
    expect(before.llm_calls).toBe(1);
  });

  it('emptyUsage returns a fresh zeroed object each time', () => {
    const a = emptyUsage();
    a.llm_calls = 9;
    expect(emptyUsage()).toEqual({
      llm_calls: 0,
      tool_calls: 0,
      agent_hops: 0,
      iterations: 0,
      input_tokens: 0,
      output_tokens: 0,
    });
  });

  it('grantQuota adds positive grants to known limits only', () => {
    const granted = grantQuota(SMALL, { max_llm_calls: 3, max_tool_calls: 0, timeout_ms: -5 });
    expect(granted).toEqual({ ...SMALL, max_llm_calls: 8 });
    const unknown = grantQuota(SMALL, { bogus: 5 } as unknown as Partial<Quota>);
    expect(unknown).toEqual(SMALL);
  });

  it('limitForReason maps every budget reason to its limit and the rest to null', () => {
    const mapped = Object.fromEntries(TERMINAL_REASONS.map((r) => [r, limitForReason(r)]));
    expect(mapped).toMatchObject({
      max_iterations_exceeded: 'max_iterations',
      max_llm_calls_exceeded: 'max_llm_calls',
      max_agent_hops_exceeded: 'max_agent_hops',
      max_tool_calls_exceeded: 'max_tool_calls',
      max_input_tokens_exceeded: 'max_input_tokens',
      max_output_tokens_exceeded: 'max_output_tokens',
      timeout_exceeded: 'timeout_ms',
      completed: null,
      max_loop_exceeded: null,
      max_visits_exceeded: null,
      interrupt_expired: null,
    });
    for (const reason of TERMINAL_REASONS) {
      const limit = limitForReason(reason);
      if (limit !== null) expect(QUOTA_KEYS).toContain(limit);
    }
  });

  it('estimateTokens rounds up at 4 characters per token', () => {
    expect(estimateTokens('')).toBe(0);
    expect(estimateTokens('abc')).toBe(1);
    expect(estimateTokens('abcd')).toBe(1);
    expect(estimateTokens('abcde')).toBe(2);
  });
});
