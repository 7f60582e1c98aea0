/**
 * The `Envelope` proto message (reference/jeeves-engine-api.md §2, §4.8) for EngineService,
 * pure: a new envelope, the UpdateEnvelope/CloneEnvelope round trip, CheckBounds, and the
 * conversions to and from the JSON state dict (§3.2) the orchestrator speaks.
 *
 * Messages are plain objects as @grpc/proto-loader decodes them (`keepCase`, longs and enums
 * as numbers, bytes as Buffers, `defaults`: absent sub-messages are null).
 *
 * Differences from the original, on purpose: CheckBounds uses the orchestrator's predicate
 * (`iteration ≥ max_iterations`) and clamps `*_remaining` at 0 (defect 2); bounds that are
 * absent or ≤ 0 take the defaults 3/10/21 (defect 8); non-string metadata is kept in
 * `metadata_str` as JSON text instead of vanishing, and `approved = false` with a response
 * stays a denial (defect 14).
 */
import { WardenError } from '../errors.ts';
import type { InterruptKind, InterruptStatus } from '../interrupt.ts';
import { isJsonObject, type JsonObject } from '../json.ts';
import { TERMINAL_REASONS, type TerminalReason } from '../quota.ts';
import {
  interruptKindFromWire,
  interruptKindToWire,
  interruptStatusFromWire,
  interruptStatusToWire,
  jeevesReasonString,
  terminalReasonFromWire,
  terminalReasonToWire,
} from './enums.ts';
import { decodeJsonObject } from './json-bytes.ts';
import { DEFAULT_PIPELINE_BOUNDS } from './pipeline-config.ts';
import { formatRfc3339, parseRfc3339 } from './rfc3339.ts';

export interface InterruptResponseMessage {
  text: string;
  approved: boolean;
  decision: string;
  data: Buffer;
  resolved_at_ms: number;
}

export interface FlowInterruptMessage {
  id: string;
  kind: number;
  request_id: string;
  user_id: string;
  session_id: string;
  envelope_id: string;
  question: string;
  message: string;
  data: Buffer;
  response: InterruptResponseMessage | null;
  status: number;
  created_at_ms: number;
  expires_at_ms: number;
  resolved_at_ms: number;
  trace_id: string;
  span_id: string;
}

export interface EnvelopeMessage {
  envelope_id: string;
  request_id: string;
  user_id: string;
  session_id: string;
  raw_input: string;
  received_at_ms: number;
  current_stage: string;
  stage_order: string[];
  iteration: number;
  max_iterations: number;
  llm_call_count: number;
  max_llm_calls: number;
  agent_hop_count: number;
  max_agent_hops: number;
  terminated: boolean;
  termination_reason: string;
  terminal_reason: number;
  completed_at_ms: number;
  interrupt_pending: boolean;
  interrupt: FlowInterruptMessage | null;
  outputs: Record<string, Buffer>;
  active_stages: Record<string, boolean>;
  completed_stage_set: Record<string, boolean>;
  failed_stages: Record<string, string>;
  current_stage_number: number;
  max_stages: number;
  all_goals: string[];
  remaining_goals: string[];
  goal_completion_status: Record<string, string>;
  metadata_str: Record<string, string>;
  created_at_ms: number;
}

export interface BoundsResultMessage {
  can_continue: boolean;
  terminal_reason: number;
  llm_calls_remaining: number;
  agent_hops_remaining: number;
  iterations_remaining: number;
}

export interface NewEnvelopeRequest {
  readonly raw_input?: unknown;
  readonly user_id?: unknown;
  readonly session_id?: unknown;
  readonly request_id?: unknown;
  readonly metadata?: unknown;
  readonly stage_order?: unknown;
}

export interface EnvelopeIds {
  readonly newId: (prefix: string) => string;
  readonly now: number;
}

/** Go's `NewEnvelope` plus the request's fields (CreateEnvelope). */
export function newEnvelopeMessage(req: NewEnvelopeRequest, ids: EnvelopeIds): EnvelopeMessage {
  return {
    envelope_id: ids.newId('env_'),
    request_id: str(req.request_id) || ids.newId('req_'),
    user_id: str(req.user_id) || 'anonymous',
    session_id: str(req.session_id) || ids.newId('sess_'),
    raw_input: str(req.raw_input),
    received_at_ms: ids.now,
    current_stage: 'start',
    stage_order: strings(req.stage_order),
    iteration: 0,
    max_iterations: DEFAULT_PIPELINE_BOUNDS.max_iterations,
    llm_call_count: 0,
    max_llm_calls: DEFAULT_PIPELINE_BOUNDS.max_llm_calls,
    agent_hop_count: 0,
    max_agent_hops: DEFAULT_PIPELINE_BOUNDS.max_agent_hops,
    terminated: false,
    termination_reason: '',
    terminal_reason: 0,
    completed_at_ms: 0,
    interrupt_pending: false,
    interrupt: null,
    outputs: {},
    active_stages: {},
    completed_stage_set: {},
    failed_stages: {},
    current_stage_number: 1,
    max_stages: 0,
    all_goals: [],
    remaining_goals: [],
    goal_completion_status: {},
    metadata_str: stringMap(req.metadata),
    created_at_ms: ids.now,
  };
}

/**
 * The envelope of an Update/Clone/CheckBounds/Execute request, normalised as Go's proto →
 * internal → proto round trip does: outputs that are not JSON objects are dropped, unknown
 * enum numbers read as UNSPECIFIED. INVALID_PARAMS when the request carries no envelope (Go
 * dereferenced nil and crashed: defect 18).
 */
export function envelopeMessageOf(value: unknown, field = 'envelope'): EnvelopeMessage {
  if (value === null || value === undefined || typeof value !== 'object')
    throw new WardenError('INVALID_PARAMS', `${field} is required`);
  const m = value as Record<string, unknown>;
  const outputs: Record<string, Buffer> = {};
  for (const [key, bytes] of entriesOf(m.outputs)) {
    const object = objectOf(bytes);
    if (object) outputs[key] = jsonBuffer(object);
  }
  return {
    envelope_id: str(m.envelope_id),
    request_id: str(m.request_id),
    user_id: str(m.user_id),
    session_id: str(m.session_id),
    raw_input: str(m.raw_input),
    received_at_ms: num(m.received_at_ms),
    current_stage: str(m.current_stage),
    stage_order: strings(m.stage_order),
    iteration: num(m.iteration),
    max_iterations: num(m.max_iterations),
    llm_call_count: num(m.llm_call_count),
    max_llm_calls: num(m.max_llm_calls),
    agent_hop_count: num(m.agent_hop_count),
    max_agent_hops: num(m.max_agent_hops),
    terminated: m.terminated === true,
    termination_reason: str(m.termination_reason),
    terminal_reason: terminalReasonToWireOrZero(m.terminal_reason),
    completed_at_ms: num(m.completed_at_ms),
    interrupt_pending: m.interrupt_pending === true,
    interrupt: interruptMessageOf(m.interrupt),
    outputs,
    active_stages: boolMap(m.active_stages),
    completed_stage_set: boolMap(m.completed_stage_set),
    failed_stages: stringMap(m.failed_stages),
    current_stage_number: num(m.current_stage_number),
    max_stages: num(m.max_stages),
    all_goals: strings(m.all_goals),
    remaining_goals: strings(m.remaining_goals),
    goal_completion_status: stringMap(m.goal_completion_status),
    metadata_str: stringMap(m.metadata_str),
    created_at_ms: num(m.created_at_ms),
  };
}

/** A deep copy with the same `envelope_id` (CloneEnvelope). */
export function cloneEnvelopeMessage(envelope: EnvelopeMessage): EnvelopeMessage {
  return envelopeMessageOf(envelope);
}

/** The envelope's bounds, with the defaults for absent or non-positive ones (defect 8). */
export function envelopeBounds(envelope: EnvelopeMessage): {
  max_iterations: number;
  max_llm_calls: number;
  max_agent_hops: number;
} {
  const pick = (n: number, fallback: number) => (n > 0 ? n : fallback);
  return {
    max_iterations: pick(envelope.max_iterations, DEFAULT_PIPELINE_BOUNDS.max_iterations),
    max_llm_calls: pick(envelope.max_llm_calls, DEFAULT_PIPELINE_BOUNDS.max_llm_calls),
    max_agent_hops: pick(envelope.max_agent_hops, DEFAULT_PIPELINE_BOUNDS.max_agent_hops),
  };
}

/**
 * CheckBounds with the orchestrator's predicate: a counter that has reached its bound stops
 * (iterations first, as GetNextInstruction checks them); `*_remaining` never below 0.
 */
export function checkEnvelopeBounds(envelope: EnvelopeMessage): BoundsResultMessage {
  const bounds = envelopeBounds(envelope);
  const remaining = {
    iterations_remaining: Math.max(0, bounds.max_iterations - envelope.iteration),
    llm_calls_remaining: Math.max(0, bounds.max_llm_calls - envelope.llm_call_count),
    agent_hops_remaining: Math.max(0, bounds.max_agent_hops - envelope.agent_hop_count),
  };
  const tripped =
    envelope.iteration >= bounds.max_iterations
      ? 1 // MAX_ITERATIONS_EXCEEDED
      : envelope.llm_call_count >= bounds.max_llm_calls
        ? 2 // MAX_LLM_CALLS_EXCEEDED
        : envelope.agent_hop_count >= bounds.max_agent_hops
          ? 3 // MAX_AGENT_HOPS_EXCEEDED
          : 0;
  // A terminated envelope reports its own reason (Go's CanContinue returned early there).
  const reason =
    envelope.terminated && envelope.terminal_reason ? envelope.terminal_reason : tripped;
  return {
    can_continue: tripped === 0 && !envelope.terminated && !envelope.interrupt_pending,
    terminal_reason: reason,
    ...remaining,
  };
}

/** The JSON state dict of an envelope message (the orchestrator's input, §3.2). */
export function stateDictOfEnvelopeMessage(envelope: EnvelopeMessage): JsonObject {
  const outputs: JsonObject = {};
  for (const [key, bytes] of entriesOf(envelope.outputs)) {
    const object = objectOf(bytes);
    if (object) outputs[key] = object;
  }
  const reason = terminalReasonFromWire(envelope.terminal_reason);
  const metadata: JsonObject = {};
  for (const [key, value] of entriesOf(envelope.metadata_str)) metadata[key] = value as string;
  const dict: JsonObject = {
    envelope_id: envelope.envelope_id,
    request_id: envelope.request_id,
    user_id: envelope.user_id,
    session_id: envelope.session_id,
    raw_input: envelope.raw_input,
    received_at: formatRfc3339(envelope.received_at_ms || null),
    outputs,
    current_stage: envelope.current_stage || 'start',
    stage_order: [...envelope.stage_order],
    iteration: envelope.iteration,
    llm_call_count: envelope.llm_call_count,
    agent_hop_count: envelope.agent_hop_count,
    active_stages: { ...envelope.active_stages },
    completed_stage_set: { ...envelope.completed_stage_set },
    failed_stages: { ...envelope.failed_stages },
    terminated: envelope.terminated,
    termination_reason: envelope.termination_reason || null,
    terminal_reason: reason ? jeevesReasonString(reason) : null,
    interrupt_pending: envelope.interrupt_pending,
    interrupt: envelope.interrupt ? interruptDictOf(envelope.interrupt) : null,
    current_stage_number: envelope.current_stage_number || 1,
    all_goals: [...envelope.all_goals],
    remaining_goals: [...envelope.remaining_goals],
    goal_completion_status: { ...envelope.goal_completion_status },
    completed_at: formatRfc3339(envelope.completed_at_ms || null),
    metadata,
  };
  // proto3 cannot tell '' from unset: let the state dict's defaults fill them.
  for (const key of ['envelope_id', 'request_id', 'user_id', 'session_id', 'received_at'])
    if (!dict[key]) delete dict[key];
  return dict;
}

/**
 * The envelope message of a state dict (built by toStateDict), with the run's bounds and
 * creation time. Metadata values that are not strings are kept as JSON text (defect 14).
 */
export function envelopeMessageOfStateDict(
  dict: JsonObject,
  extra: {
    readonly bounds: { max_iterations: number; max_llm_calls: number; max_agent_hops: number };
    readonly createdAt: number;
  },
): EnvelopeMessage {
  const outputs: Record<string, Buffer> = {};
  for (const [key, value] of entriesOf(dict.outputs)) {
    if (isJsonObject(value)) outputs[key] = jsonBuffer(value);
  }
  const metadata: Record<string, string> = {};
  for (const [key, value] of entriesOf(dict.metadata)) {
    metadata[key] = typeof value === 'string' ? value : JSON.stringify(value);
  }
  const reasonText = typeof dict.terminal_reason === 'string' ? dict.terminal_reason : null;
  return {
    envelope_id: str(dict.envelope_id),
    request_id: str(dict.request_id),
    user_id: str(dict.user_id),
    session_id: str(dict.session_id),
    raw_input: str(dict.raw_input),
    received_at_ms: timeOf(dict.received_at),
    current_stage: str(dict.current_stage),
    stage_order: strings(dict.stage_order),
    iteration: num(dict.iteration),
    max_iterations: extra.bounds.max_iterations,
    llm_call_count: num(dict.llm_call_count),
    max_llm_calls: extra.bounds.max_llm_calls,
    agent_hop_count: num(dict.agent_hop_count),
    max_agent_hops: extra.bounds.max_agent_hops,
    terminated: dict.terminated === true,
    termination_reason: str(dict.termination_reason),
    terminal_reason: reasonText ? terminalReasonToWireOrZero(reasonText) : 0,
    completed_at_ms: timeOf(dict.completed_at),
    interrupt_pending: dict.interrupt_pending === true,
    interrupt: isJsonObject(dict.interrupt) ? interruptMessageOfDict(dict.interrupt, dict) : null,
    outputs,
    active_stages: boolMap(dict.active_stages),
    completed_stage_set: boolMap(dict.completed_stage_set),
    failed_stages: stringMap(dict.failed_stages),
    current_stage_number: num(dict.current_stage_number),
    max_stages: 0,
    all_goals: strings(dict.all_goals),
    remaining_goals: strings(dict.remaining_goals),
    goal_completion_status: stringMap(dict.goal_completion_status),
    metadata_str: metadata,
    created_at_ms: extra.createdAt,
  };
}

function interruptMessageOf(value: unknown): FlowInterruptMessage | null {
  if (value === null || value === undefined || typeof value !== 'object') return null;
  const m = value as Record<string, unknown>;
  const r = m.response as Record<string, unknown> | null | undefined;
  return {
    id: str(m.id),
    kind: interruptKindToWireOrZero(m.kind),
    request_id: str(m.request_id),
    user_id: str(m.user_id),
    session_id: str(m.session_id),
    envelope_id: str(m.envelope_id),
    question: str(m.question),
    message: str(m.message),
    data: bufferOf(m.data),
    response:
      r && typeof r === 'object'
        ? {
            text: str(r.text),
            approved: r.approved === true,
            decision: str(r.decision),
            data: bufferOf(r.data),
            resolved_at_ms: num(r.resolved_at_ms),
          }
        : null,
    status: interruptStatusFromWire(m.status) ? num(m.status) : 0,
    created_at_ms: num(m.created_at_ms),
    expires_at_ms: num(m.expires_at_ms),
    resolved_at_ms: num(m.resolved_at_ms),
    trace_id: str(m.trace_id),
    span_id: str(m.span_id),
  };
}

function interruptDictOf(m: FlowInterruptMessage): JsonObject {
  const out: JsonObject = {
    kind: interruptKindFromWire(m.kind) ?? '',
    id: m.id,
    question: m.question,
    message: m.message,
    data: objectOf(m.data),
    created_at: formatRfc3339(m.created_at_ms || null),
  };
  const status = interruptStatusFromWire(m.status);
  if (status) out.status = status;
  if (m.expires_at_ms) out.expires_at = formatRfc3339(m.expires_at_ms);
  if (m.response) {
    out.response = {
      received_at: formatRfc3339(m.response.resolved_at_ms || m.created_at_ms || null),
      text: m.response.text,
      // proto3 cannot tell false from unset: with a response present, false is a denial.
      approved: m.response.approved,
      decision: m.response.decision,
      ...(objectOf(m.response.data) ? { data: objectOf(m.response.data) } : {}),
    };
  }
  return out;
}

function interruptMessageOfDict(i: JsonObject, dict: JsonObject): FlowInterruptMessage {
  const response = isJsonObject(i.response) ? i.response : null;
  const status = typeof i.status === 'string' ? i.status : null;
  return {
    id: str(i.id),
    kind: typeof i.kind === 'string' ? interruptKindToWireOrZero(i.kind) : 0,
    request_id: str(dict.request_id),
    user_id: str(dict.user_id),
    session_id: str(dict.session_id),
    envelope_id: str(dict.envelope_id),
    question: str(i.question),
    message: str(i.message),
    data: isJsonObject(i.data) ? jsonBuffer(i.data) : Buffer.alloc(0),
    response: response
      ? {
          text: str(response.text),
          approved: response.approved === true,
          decision: str(response.decision),
          data: isJsonObject(response.data) ? jsonBuffer(response.data) : Buffer.alloc(0),
          resolved_at_ms: timeOf(response.received_at),
        }
      : null,
    status: status ? statusToWire(status) : 0,
    created_at_ms: timeOf(i.created_at),
    expires_at_ms: timeOf(i.expires_at),
    resolved_at_ms: response ? timeOf(response.received_at) : 0,
    trace_id: '',
    span_id: '',
  };
}

function statusToWire(status: string): number {
  return Math.max(0, interruptStatusToWire(status as InterruptStatus));
}

function terminalReasonToWireOrZero(value: unknown): number {
  if (typeof value === 'number') return terminalReasonFromWire(value) ? value : 0;
  if (typeof value !== 'string' || !(TERMINAL_REASONS as readonly string[]).includes(value))
    return 0;
  return terminalReasonToWire(value as TerminalReason);
}

function interruptKindToWireOrZero(value: unknown): number {
  if (typeof value === 'number') return interruptKindFromWire(value) ? value : 0;
  if (typeof value !== 'string') return 0;
  return Math.max(0, interruptKindToWire(value as InterruptKind));
}

function objectOf(bytes: unknown): JsonObject | null {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) return null;
  try {
    return decodeJsonObject(bytes, 'output');
  } catch {
    return null;
  }
}

function jsonBuffer(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

function bufferOf(value: unknown): Buffer {
  return value instanceof Uint8Array ? Buffer.from(value) : Buffer.alloc(0);
}

function timeOf(value: unknown): number {
  if (typeof value !== 'string') return 0;
  return parseRfc3339(value) ?? 0;
}

function str(value: unknown): string {
  return typeof value === 'string' ? value : '';
}

function num(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) ? Math.trunc(value) : 0;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function record(value: unknown): Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : {};
}

/**
 * A map's entries without `__proto__`: assigning that key to a plain object would replace its
 * prototype instead of adding an entry.
 */
function entriesOf(value: unknown): Array<[string, unknown]> {
  return Object.entries(record(value)).filter(([key]) => key !== '__proto__');
}

function stringMap(value: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, v] of entriesOf(value)) if (typeof v === 'string') out[key] = v;
  return out;
}

function boolMap(value: unknown): Record<string, boolean> {
  const out: Record<string, boolean> = {};
  for (const [key, v] of entriesOf(value)) if (typeof v === 'boolean') out[key] = v;
  return out;
}
