/**
 * The `jeeves.engine.v1` wire enums (reference/jeeves-engine-api.md §2) as number tables, and
 * their conversions to and from Warden's strings.
 *
 * Every enum is dense from 0 (`*_UNSPECIFIED`), so a table is its names in number order. The
 * Python client calls `Name(n)`, which raises for a number outside the table: nothing here
 * ever produces such a number, and decoding maps unknown numbers to 0 (defect 3), never to a
 * meaningful value.
 */
import { WardenError } from '../errors.ts';
import type { InterruptKind, InterruptStatus } from '../interrupt.ts';
import { describeValue, invalidParams } from '../params.ts';
import type { Priority, ProcessState } from '../process-state.ts';
import type { TerminalReason } from '../quota.ts';
import type { Effect } from '../workflow/machine.ts';

/** A wire enum: `names[n]` is the proto name of number `n`. */
export interface WireEnum<Name extends string = string> {
  /** The proto enum's name, for messages (`TerminalReason`). */
  readonly enumName: string;
  readonly names: readonly Name[];
  /** Name → number. */
  readonly values: Readonly<Record<Name, number>>;
}

function wireEnum<const Names extends readonly string[]>(
  enumName: string,
  names: Names,
): WireEnum<Names[number]> {
  const values = Object.fromEntries(names.map((name, i) => [name, i])) as Record<
    Names[number],
    number
  >;
  return Object.freeze({ enumName, names, values: Object.freeze(values) });
}

export const WIRE_TERMINAL_REASON = wireEnum('TerminalReason', [
  'TERMINAL_REASON_UNSPECIFIED',
  'MAX_ITERATIONS_EXCEEDED',
  'MAX_LLM_CALLS_EXCEEDED',
  'MAX_AGENT_HOPS_EXCEEDED',
  'USER_CANCELLED',
  'TOOL_FAILED_FATALLY',
  'LLM_FAILED_FATALLY',
  'COMPLETED',
  'POLICY_VIOLATION',
]);

export const WIRE_INTERRUPT_KIND = wireEnum('InterruptKind', [
  'INTERRUPT_KIND_UNSPECIFIED',
  'CLARIFICATION',
  'CONFIRMATION',
  'CHECKPOINT',
  'RESOURCE_EXHAUSTED',
  'TIMEOUT',
  'SYSTEM_ERROR',
  'AGENT_REVIEW',
]);

export const WIRE_INTERRUPT_STATUS = wireEnum('InterruptStatus', [
  'INTERRUPT_STATUS_UNSPECIFIED',
  'INTERRUPT_PENDING',
  'INTERRUPT_RESOLVED',
  'INTERRUPT_EXPIRED',
  'INTERRUPT_CANCELLED',
]);

export const WIRE_PROCESS_STATE = wireEnum('ProcessState', [
  'PROCESS_STATE_UNSPECIFIED',
  'PROCESS_STATE_NEW',
  'PROCESS_STATE_READY',
  'PROCESS_STATE_RUNNING',
  'PROCESS_STATE_WAITING',
  'PROCESS_STATE_BLOCKED',
  'PROCESS_STATE_TERMINATED',
  'PROCESS_STATE_ZOMBIE',
]);

export const WIRE_SCHEDULING_PRIORITY = wireEnum('SchedulingPriority', [
  'SCHEDULING_PRIORITY_UNSPECIFIED',
  'SCHEDULING_PRIORITY_REALTIME',
  'SCHEDULING_PRIORITY_HIGH',
  'SCHEDULING_PRIORITY_NORMAL',
  'SCHEDULING_PRIORITY_LOW',
  'SCHEDULING_PRIORITY_IDLE',
]);

export const WIRE_INSTRUCTION_KIND = wireEnum('InstructionKind', [
  'INSTRUCTION_KIND_UNSPECIFIED',
  'RUN_AGENT',
  'TERMINATE',
  'WAIT_INTERRUPT',
]);

export const WIRE_JOIN_STRATEGY = wireEnum('JoinStrategy', [
  'JOIN_STRATEGY_UNSPECIFIED',
  'JOIN_ALL',
  'JOIN_ANY',
]);

export const WIRE_EXECUTION_EVENT_TYPE = wireEnum('ExecutionEventType', [
  'EXECUTION_EVENT_TYPE_UNSPECIFIED',
  'STAGE_STARTED',
  'STAGE_COMPLETED',
  'STAGE_FAILED',
  'PIPELINE_COMPLETED',
  'INTERRUPT_RAISED',
  'CHECKPOINT_CREATED',
  'BOUNDS_EXCEEDED',
]);

/** True when `n` is a number of `wire` (UNSPECIFIED included). */
export function isWireValue(wire: WireEnum, n: unknown): n is number {
  return typeof n === 'number' && Number.isInteger(n) && n >= 0 && n < wire.names.length;
}

/** `n` when it is in the table, else 0 (UNSPECIFIED): unknown numbers never mean anything. */
export function decodeWireEnum(wire: WireEnum, n: unknown): number {
  return isWireValue(wire, n) ? n : 0;
}

/** The proto name of `n`, or undefined for a number outside the table. */
export function wireName(wire: WireEnum, n: number): string | undefined {
  return isWireValue(wire, n) ? wire.names[n] : undefined;
}

/**
 * `n` when it is a value other than UNSPECIFIED; otherwise INVALID_PARAMS naming `field` and
 * the accepted values (defect 16: an UNSPECIFIED enum where one is required is the caller's
 * mistake, never silently read as the first value).
 */
export function requireWireEnum(wire: WireEnum, n: unknown, field: string): number {
  if (isWireValue(wire, n) && n !== 0) return n;
  const accepted = wire.names
    .slice(1)
    .map((name, i) => `${name} (${i + 1})`)
    .join(', ');
  const problem = isWireValue(wire, n)
    ? `${wire.names[0]} (0) is not allowed here`
    : `${typeof n === 'number' ? n : describeValue(n)} is not a ${wire.enumName} value`;
  throw invalidParams(field, [{ path: '', message: `${problem}: expected one of ${accepted}` }]);
}

// ---------------------------------------------------------------------------------------------
// TerminalReason
// ---------------------------------------------------------------------------------------------

/** The lowercase reason strings jeeves itself knows (§2 wire notes); all are Warden reasons too. */
export const JEEVES_REASON_STRINGS = [
  'completed',
  'max_iterations_exceeded',
  'max_llm_calls_exceeded',
  'max_agent_hops_exceeded',
  'max_loop_exceeded',
  'user_cancelled',
  'tool_failed_fatally',
  'llm_failed_fatally',
  'policy_violation',
] as const satisfies readonly TerminalReason[];
export type JeevesReasonString = (typeof JEEVES_REASON_STRINGS)[number];

const T = WIRE_TERMINAL_REASON.values;

/**
 * Every Warden terminal reason's wire number: never 0 for a terminated run, never above 8
 * (defect 3). The wire has fewer reasons than Warden, so several share a number; the exact
 * reason still reaches the client in `termination_message` and in the state dict's
 * `termination_reason` text.
 *
 * Choices where the wire has no reason of the same name:
 * - `max_loop_exceeded` (an edge limit) and `max_visits_exceeded` (a stage's visit cap) are
 *   loop bounds → MAX_ITERATIONS_EXCEEDED, as defect 3 prescribes for edge limits.
 * - `timeout_exceeded`: the run's time bound; the wire's bound on how long a run goes on is
 *   the iteration bound → MAX_ITERATIONS_EXCEEDED.
 * - `max_tool_calls_exceeded`, `max_input_tokens_exceeded`, `max_output_tokens_exceeded`:
 *   budgets of the model loop (its calls and tokens) → MAX_LLM_CALLS_EXCEEDED, the wire's one
 *   call/usage budget. None of them is a failure, so TOOL/LLM_FAILED_FATALLY would mislead.
 * - `failed` (a stage failed, an unknown stage) → TOOL_FAILED_FATALLY, what Go sent for both.
 * - `interrupt_denied` and `interrupt_expired`: the person said no, or never answered; the run
 *   ended by the user's (in)action, not a failure or a budget → USER_CANCELLED.
 */
const REASON_TO_WIRE: Readonly<Record<TerminalReason, number>> = {
  completed: T.COMPLETED,
  failed: T.TOOL_FAILED_FATALLY,
  user_cancelled: T.USER_CANCELLED,
  max_iterations_exceeded: T.MAX_ITERATIONS_EXCEEDED,
  max_llm_calls_exceeded: T.MAX_LLM_CALLS_EXCEEDED,
  max_agent_hops_exceeded: T.MAX_AGENT_HOPS_EXCEEDED,
  max_tool_calls_exceeded: T.MAX_LLM_CALLS_EXCEEDED,
  max_input_tokens_exceeded: T.MAX_LLM_CALLS_EXCEEDED,
  max_output_tokens_exceeded: T.MAX_LLM_CALLS_EXCEEDED,
  timeout_exceeded: T.MAX_ITERATIONS_EXCEEDED,
  max_loop_exceeded: T.MAX_ITERATIONS_EXCEEDED,
  max_visits_exceeded: T.MAX_ITERATIONS_EXCEEDED,
  tool_failed_fatally: T.TOOL_FAILED_FATALLY,
  llm_failed_fatally: T.LLM_FAILED_FATALLY,
  policy_violation: T.POLICY_VIOLATION,
  interrupt_expired: T.USER_CANCELLED,
  interrupt_denied: T.USER_CANCELLED,
};

/** Wire number → the Warden reason of the same meaning (all nine jeeves reasons exist in Warden). */
const WIRE_TO_REASON: readonly (TerminalReason | null)[] = [
  null,
  'max_iterations_exceeded',
  'max_llm_calls_exceeded',
  'max_agent_hops_exceeded',
  'user_cancelled',
  'tool_failed_fatally',
  'llm_failed_fatally',
  'completed',
  'policy_violation',
];

/** The TerminalReason number for a terminated run: 1–8, never 0 (defect 3). */
export function terminalReasonToWire(reason: TerminalReason): number {
  return REASON_TO_WIRE[reason];
}

/** The Warden reason a wire number stands for; null for UNSPECIFIED and unknown numbers. */
export function terminalReasonFromWire(n: unknown): TerminalReason | null {
  return WIRE_TO_REASON[decodeWireEnum(WIRE_TERMINAL_REASON, n)] ?? null;
}

/**
 * The lowercase reason for the state dict's `terminal_reason`: Warden's own string when jeeves
 * has the same one (`max_loop_exceeded` included, as defect 3 asks), else the jeeves string
 * of its wire number, which clients can parse (the Python client's `TerminalReason(str)`
 * drops a string it does not know).
 */
export function jeevesReasonString(reason: TerminalReason): JeevesReasonString {
  if ((JEEVES_REASON_STRINGS as readonly string[]).includes(reason)) {
    return reason as JeevesReasonString;
  }
  return WIRE_TO_REASON[REASON_TO_WIRE[reason]] as JeevesReasonString;
}

// ---------------------------------------------------------------------------------------------
// Process state, priority, interrupts, instructions, join strategy
// ---------------------------------------------------------------------------------------------

/** Index = wire number; 0 (UNSPECIFIED) has no Warden counterpart. */
const PROCESS_STATES_BY_NUMBER: readonly (ProcessState | null)[] = [
  null,
  'new',
  'ready',
  'running',
  'waiting',
  'blocked',
  'terminated',
  'zombie',
];

export function processStateToWire(state: ProcessState): number {
  return PROCESS_STATES_BY_NUMBER.indexOf(state);
}

/** Null for UNSPECIFIED and unknown numbers (a ListProcesses filter of "any state"). */
export function processStateFromWire(n: unknown): ProcessState | null {
  return PROCESS_STATES_BY_NUMBER[decodeWireEnum(WIRE_PROCESS_STATE, n)] ?? null;
}

/** A required process state (TransitionState.new_state): INVALID_PARAMS for 0 or unknown. */
export function requireProcessState(n: unknown, field: string): ProcessState {
  return PROCESS_STATES_BY_NUMBER[requireWireEnum(WIRE_PROCESS_STATE, n, field)]!;
}

const PRIORITIES_BY_NUMBER: readonly (Priority | null)[] = [
  null,
  'realtime',
  'high',
  'normal',
  'low',
  'idle',
];

export function priorityToWire(priority: Priority): number {
  return PRIORITIES_BY_NUMBER.indexOf(priority);
}

/** UNSPECIFIED and unknown numbers are `normal`, as the scheduler ranks them (§4.3). */
export function priorityFromWire(n: unknown): Priority {
  return PRIORITIES_BY_NUMBER[decodeWireEnum(WIRE_SCHEDULING_PRIORITY, n)] ?? 'normal';
}

const INTERRUPT_KINDS_BY_NUMBER: readonly (InterruptKind | null)[] = [
  null,
  'clarification',
  'confirmation',
  'checkpoint',
  'resource_exhausted',
  'timeout',
  'system_error',
  'agent_review',
];

export function interruptKindToWire(kind: InterruptKind): number {
  return INTERRUPT_KINDS_BY_NUMBER.indexOf(kind);
}

export function interruptKindFromWire(n: unknown): InterruptKind | null {
  return INTERRUPT_KINDS_BY_NUMBER[decodeWireEnum(WIRE_INTERRUPT_KIND, n)] ?? null;
}

const INTERRUPT_STATUSES_BY_NUMBER: readonly (InterruptStatus | null)[] = [
  null,
  'pending',
  'resolved',
  'expired',
  'cancelled',
];

export function interruptStatusToWire(status: InterruptStatus): number {
  return INTERRUPT_STATUSES_BY_NUMBER.indexOf(status);
}

export function interruptStatusFromWire(n: unknown): InterruptStatus | null {
  return INTERRUPT_STATUSES_BY_NUMBER[decodeWireEnum(WIRE_INTERRUPT_STATUS, n)] ?? null;
}

/**
 * The Instruction kind for a machine effect: a raised or awaited interrupt is WAIT_INTERRUPT
 * either way (the client only learns that it must wait).
 */
export function instructionKindForEffect(kind: Effect['kind']): number {
  const K = WIRE_INSTRUCTION_KIND.values;
  switch (kind) {
    case 'run_agent':
    case 'fork': // a client takes a parallel run's branches one at a time
      return K.RUN_AGENT;
    case 'terminate':
      return K.TERMINATE;
    case 'raise_interrupt':
    case 'wait_interrupt':
      return K.WAIT_INTERRUPT;
    default: {
      const never: never = kind;
      throw new WardenError('INTERNAL', `unhandled effect kind ${String(never)}`);
    }
  }
}

export const JOIN_STRATEGIES = ['all', 'any'] as const;
export type JoinStrategy = (typeof JOIN_STRATEGIES)[number];

export function joinStrategyToWire(strategy: JoinStrategy): number {
  return strategy === 'any'
    ? WIRE_JOIN_STRATEGY.values.JOIN_ANY
    : WIRE_JOIN_STRATEGY.values.JOIN_ALL;
}

/** UNSPECIFIED and unknown numbers are `all`, the jeeves default. */
export function joinStrategyFromWire(n: unknown): JoinStrategy {
  return decodeWireEnum(WIRE_JOIN_STRATEGY, n) === WIRE_JOIN_STRATEGY.values.JOIN_ANY
    ? 'any'
    : 'all';
}
