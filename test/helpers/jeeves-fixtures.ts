/** Shared by the jeeves translation layer's unit tests (src/core/jeeves/*.test.ts). */
import { expect } from 'vitest';

import { isWardenError, type WardenError } from '../../src/core/errors.ts';

/** The INVALID_PARAMS `fn` throws; fails the test if it throws anything else or nothing. */
export function invalidParamsOf(fn: () => unknown): WardenError {
  try {
    fn();
  } catch (error) {
    expect(isWardenError(error, 'INVALID_PARAMS'), String(error)).toBe(true);
    return error as WardenError;
  }
  throw new Error('expected INVALID_PARAMS, nothing was thrown');
}

/** The reference's §6 linear pipeline: understand → think → respond, bounds 3/10/21. */
export const LINEAR_PIPELINE = {
  name: 'hello',
  max_iterations: 3,
  max_llm_calls: 10,
  max_agent_hops: 21,
  agents: [
    {
      name: 'understand',
      stage_order: 1,
      has_llm: true,
      model_role: 'fast',
      default_next: 'think',
    },
    { name: 'think', stage_order: 2, has_llm: true, model_role: 'smart', default_next: 'respond' },
    { name: 'respond', stage_order: 3, has_llm: true, model_role: 'fast', default_next: 'end' },
  ],
};
