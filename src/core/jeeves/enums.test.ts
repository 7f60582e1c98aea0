import { describe, expect, it } from 'vitest';

import { invalidParamsOf } from '../../../test/helpers/jeeves-fixtures.ts';
import { INTERRUPT_KINDS, INTERRUPT_STATUSES } from '../interrupt.ts';
import { PRIORITIES, PROCESS_STATES } from '../process-state.ts';
import { TERMINAL_REASONS, type TerminalReason } from '../quota.ts';
import {
  decodeWireEnum,
  instructionKindForEffect,
  interruptKindFromWire,
  interruptKindToWire,
  interruptStatusFromWire,
  interruptStatusToWire,
  JEEVES_REASON_STRINGS,
  jeevesReasonString,
  joinStrategyFromWire,
  joinStrategyToWire,
  priorityFromWire,
  priorityToWire,
  processStateFromWire,
  processStateToWire,
  requireProcessState,
  requireWireEnum,
  terminalReasonFromWire,
  terminalReasonToWire,
  WIRE_EXECUTION_EVENT_TYPE,
  WIRE_INSTRUCTION_KIND,
  WIRE_INTERRUPT_KIND,
  WIRE_INTERRUPT_STATUS,
  WIRE_JOIN_STRATEGY,
  WIRE_PROCESS_STATE,
  WIRE_SCHEDULING_PRIORITY,
  WIRE_TERMINAL_REASON,
  wireName,
} from './enums.ts';

describe('wire enum tables (reference §2)', () => {
  it('have the proto’s names at the proto’s numbers', () => {
    expect(WIRE_TERMINAL_REASON.values).toEqual({
      TERMINAL_REASON_UNSPECIFIED: 0,
      MAX_ITERATIONS_EXCEEDED: 1,
      MAX_LLM_CALLS_EXCEEDED: 2,
      MAX_AGENT_HOPS_EXCEEDED: 3,
      USER_CANCELLED: 4,
      TOOL_FAILED_FATALLY: 5,
      LLM_FAILED_FATALLY: 6,
      COMPLETED: 7,
      POLICY_VIOLATION: 8,
    });
    expect(WIRE_INTERRUPT_KIND.values).toMatchObject({ CLARIFICATION: 1, AGENT_REVIEW: 7 });
    expect(WIRE_INTERRUPT_STATUS.values).toMatchObject({
      INTERRUPT_PENDING: 1,
      INTERRUPT_CANCELLED: 4,
    });
    expect(WIRE_PROCESS_STATE.values).toMatchObject({
      PROCESS_STATE_NEW: 1,
      PROCESS_STATE_ZOMBIE: 7,
    });
    expect(WIRE_SCHEDULING_PRIORITY.values).toMatchObject({
      SCHEDULING_PRIORITY_REALTIME: 1,
      SCHEDULING_PRIORITY_IDLE: 5,
    });
    expect(WIRE_INSTRUCTION_KIND.names).toEqual([
      'INSTRUCTION_KIND_UNSPECIFIED',
      'RUN_AGENT',
      'TERMINATE',
      'WAIT_INTERRUPT',
    ]);
    expect(WIRE_JOIN_STRATEGY.values).toEqual({
      JOIN_STRATEGY_UNSPECIFIED: 0,
      JOIN_ALL: 1,
      JOIN_ANY: 2,
    });
    expect(WIRE_EXECUTION_EVENT_TYPE.values).toMatchObject({
      STAGE_STARTED: 1,
      BOUNDS_EXCEEDED: 7,
    });
  });

  it('name known numbers only, and decode unknown ones as UNSPECIFIED', () => {
    expect(wireName(WIRE_TERMINAL_REASON, 8)).toBe('POLICY_VIOLATION');
    expect(wireName(WIRE_TERMINAL_REASON, 9)).toBeUndefined();
    for (const unknown of [9, -1, 1.5, Number.NaN, '7', null, undefined]) {
      expect(decodeWireEnum(WIRE_TERMINAL_REASON, unknown)).toBe(0);
    }
    expect(decodeWireEnum(WIRE_TERMINAL_REASON, 7)).toBe(7);
  });
});

describe('defect 3: terminal reasons', () => {
  // What the spec asks for where it names a number; the rest are this layer's documented choices.
  const EXPECTED: Readonly<Record<TerminalReason, number>> = {
    completed: 7,
    failed: 5,
    user_cancelled: 4,
    max_iterations_exceeded: 1,
    max_llm_calls_exceeded: 2,
    max_agent_hops_exceeded: 3,
    max_tool_calls_exceeded: 2,
    max_input_tokens_exceeded: 2,
    max_output_tokens_exceeded: 2,
    timeout_exceeded: 1,
    max_loop_exceeded: 1,
    max_visits_exceeded: 1,
    tool_failed_fatally: 5,
    llm_failed_fatally: 6,
    policy_violation: 8,
    interrupt_expired: 4,
    interrupt_denied: 4,
  };

  it.each(TERMINAL_REASONS)('%s is sent as a number in 1..8, never 0', (reason) => {
    const n = terminalReasonToWire(reason);
    expect(n).toBe(EXPECTED[reason]);
    expect(n).toBeGreaterThanOrEqual(1);
    expect(n).toBeLessThanOrEqual(8);
  });

  it('maps policy_violation ↔ 8 and an edge-limit stop to MAX_ITERATIONS_EXCEEDED', () => {
    expect(terminalReasonToWire('policy_violation')).toBe(8);
    expect(terminalReasonFromWire(8)).toBe('policy_violation');
    expect(terminalReasonToWire('max_loop_exceeded')).toBe(1);
  });

  it('decodes every known number to its own reason, and 0 or unknown numbers to none (not completed)', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 8].map(terminalReasonFromWire)).toEqual([
      'max_iterations_exceeded',
      'max_llm_calls_exceeded',
      'max_agent_hops_exceeded',
      'user_cancelled',
      'tool_failed_fatally',
      'llm_failed_fatally',
      'completed',
      'policy_violation',
    ]);
    for (const n of [0, 9, 42, -3]) expect(terminalReasonFromWire(n)).toBeNull();
  });

  it('keeps Warden’s string for the state dict when jeeves has it, else its wire number’s string', () => {
    expect(jeevesReasonString('max_loop_exceeded')).toBe('max_loop_exceeded');
    expect(jeevesReasonString('policy_violation')).toBe('policy_violation');
    expect(jeevesReasonString('failed')).toBe('tool_failed_fatally');
    expect(jeevesReasonString('interrupt_denied')).toBe('user_cancelled');
    expect(jeevesReasonString('max_output_tokens_exceeded')).toBe('max_llm_calls_exceeded');
    for (const reason of TERMINAL_REASONS) {
      const text = jeevesReasonString(reason);
      expect(JEEVES_REASON_STRINGS).toContain(text);
      expect(terminalReasonToWire(text)).toBe(terminalReasonToWire(reason));
    }
  });
});

describe('process states, priorities, interrupts, join strategies', () => {
  it('round-trip every Warden value through its wire number', () => {
    for (const s of PROCESS_STATES) expect(processStateFromWire(processStateToWire(s))).toBe(s);
    for (const p of PRIORITIES) expect(priorityFromWire(priorityToWire(p))).toBe(p);
    for (const k of INTERRUPT_KINDS) expect(interruptKindFromWire(interruptKindToWire(k))).toBe(k);
    for (const s of INTERRUPT_STATUSES)
      expect(interruptStatusFromWire(interruptStatusToWire(s))).toBe(s);
    expect(processStateToWire('terminated')).toBe(6);
    expect(priorityToWire('low')).toBe(4);
    expect(interruptKindToWire('agent_review')).toBe(7);
    expect(interruptStatusToWire('expired')).toBe(3);
    expect(joinStrategyToWire('any')).toBe(2);
    expect(joinStrategyFromWire(joinStrategyToWire('all'))).toBe('all');
  });

  it('read UNSPECIFIED and unknown numbers as no value, or as the documented default', () => {
    expect(processStateFromWire(0)).toBeNull();
    expect(processStateFromWire(8)).toBeNull();
    expect(interruptKindFromWire(0)).toBeNull();
    expect(interruptStatusFromWire(99)).toBeNull();
    expect(priorityFromWire(0)).toBe('normal');
    expect(priorityFromWire(17)).toBe('normal');
    expect(joinStrategyFromWire(0)).toBe('all');
  });

  it('gives each machine effect its Instruction kind', () => {
    expect(instructionKindForEffect('run_agent')).toBe(1);
    expect(instructionKindForEffect('terminate')).toBe(2);
    expect(instructionKindForEffect('raise_interrupt')).toBe(3);
    expect(instructionKindForEffect('wait_interrupt')).toBe(3);
  });
});

describe('defect 16: UNSPECIFIED where a value is required', () => {
  it('is INVALID_PARAMS naming the field and the accepted values', () => {
    const error = invalidParamsOf(() => requireProcessState(0, 'new_state'));
    expect(error.message).toContain(
      'new_state: PROCESS_STATE_UNSPECIFIED (0) is not allowed here: expected one of',
    );
    expect(error.message).toContain('PROCESS_STATE_NEW (1)');
    expect(error.message).toContain('PROCESS_STATE_ZOMBIE (7)');
    expect(invalidParamsOf(() => requireProcessState(12, 'new_state')).message).toContain(
      'new_state: 12 is not a ProcessState value',
    );
    expect(
      invalidParamsOf(() => requireWireEnum(WIRE_INTERRUPT_KIND, 0, 'kind')).message,
    ).toContain(
      'kind: INTERRUPT_KIND_UNSPECIFIED (0) is not allowed here: expected one of CLARIFICATION (1)',
    );
  });

  it('passes real values through', () => {
    expect(requireProcessState(2, 'new_state')).toBe('ready');
    expect(requireWireEnum(WIRE_INSTRUCTION_KIND, 3, 'kind')).toBe(3);
  });
});
