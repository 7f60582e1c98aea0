import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { invalidParamsOf } from '../../../test/helpers/jeeves-fixtures.ts';
import type { JsonObject } from '../json.ts';
import {
  checkEnvelopeBounds,
  cloneEnvelopeMessage,
  type EnvelopeMessage,
  envelopeMessageOf,
  envelopeMessageOfStateDict,
  type FlowInterruptMessage,
  newEnvelopeMessage,
  stateDictOfEnvelopeMessage,
} from './envelope-message.ts';

// Whole seconds: the state dict's RFC 3339 times carry no milliseconds (Go's time.RFC3339).
const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);
const T0_TEXT = '2026-01-02T03:04:05Z';

// The wire numbers, written out from reference §2 (not imported, so a table slip shows here).
const MAX_ITERATIONS_EXCEEDED = 1;
const MAX_LLM_CALLS_EXCEEDED = 2;
const MAX_AGENT_HOPS_EXCEEDED = 3;
const USER_CANCELLED = 4;
const TOOL_FAILED_FATALLY = 5;
const COMPLETED = 7;
const POLICY_VIOLATION = 8;
const CONFIRMATION = 2;
const INTERRUPT_RESOLVED = 2;

function json(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value), 'utf8');
}

function counter(now = T0) {
  const asked: string[] = [];
  let n = 0;
  return {
    asked,
    ids: {
      newId: (prefix: string) => {
        asked.push(prefix);
        return `${prefix}${++n}`;
      },
      now,
    },
  };
}

/** A healthy envelope: 3/10/21 bounds, nothing spent. */
function envelope(patch: Partial<EnvelopeMessage> = {}): EnvelopeMessage {
  return { ...newEnvelopeMessage({ user_id: 'alice' }, counter().ids), ...patch };
}

function interrupt(patch: Partial<FlowInterruptMessage> = {}): FlowInterruptMessage {
  return {
    id: 'int_1',
    kind: CONFIRMATION,
    request_id: 'req_1',
    user_id: 'alice',
    session_id: 'sess_1',
    envelope_id: 'env_1',
    question: 'Delete the branch?',
    message: 'Delete the branch?',
    data: json({ tool: 'git', args: ['branch', '-D', 'x'] }),
    response: {
      text: 'no',
      approved: false,
      decision: 'deny',
      data: json({ why: 'not mine' }),
      resolved_at_ms: T0 + 30_000,
    },
    status: 0,
    created_at_ms: T0 + 10_000,
    expires_at_ms: T0 + 3_600_000,
    resolved_at_ms: T0 + 30_000,
    trace_id: '',
    span_id: '',
    ...patch,
  };
}

/** Every field the state dict can carry, filled. */
function fullEnvelope(): EnvelopeMessage {
  return {
    envelope_id: 'env_1',
    request_id: 'req_1',
    user_id: 'alice',
    session_id: 'sess_1',
    raw_input: 'clean up the repo',
    received_at_ms: T0,
    current_stage: 'respond',
    stage_order: ['understand', 'think', 'respond'],
    iteration: 2,
    max_iterations: 5,
    llm_call_count: 4,
    max_llm_calls: 12,
    agent_hop_count: 3,
    max_agent_hops: 30,
    terminated: true,
    termination_reason: 'Pipeline completed',
    terminal_reason: COMPLETED,
    completed_at_ms: T0 + 60_000,
    interrupt_pending: false,
    interrupt: interrupt(),
    outputs: {
      understand: json({ intent: 'cleanup', tags: ['git'], n: 1.5, nested: { ok: true } }),
      think: json({ plan: null }),
    },
    active_stages: { respond: true },
    completed_stage_set: { understand: true, think: false },
    failed_stages: { lint: 'exit 1' },
    current_stage_number: 3,
    max_stages: 0,
    all_goals: ['g1', 'g2'],
    remaining_goals: ['g2'],
    goal_completion_status: { g1: 'satisfied', g2: 'pending' },
    metadata_str: { tenant: 'acme', trace: 'abc' },
    created_at_ms: T0 - 5_000,
  };
}

const FULL_BOUNDS = { max_iterations: 5, max_llm_calls: 12, max_agent_hops: 30 };

function roundTrip(message: EnvelopeMessage): EnvelopeMessage {
  return envelopeMessageOfStateDict(stateDictOfEnvelopeMessage(message), {
    bounds: {
      max_iterations: message.max_iterations,
      max_llm_calls: message.max_llm_calls,
      max_agent_hops: message.max_agent_hops,
    },
    createdAt: message.created_at_ms,
  });
}

describe('newEnvelopeMessage', () => {
  it('generates env_/req_/sess_ ids when the request has none', () => {
    const { ids, asked } = counter();
    const message = newEnvelopeMessage({}, ids);
    expect(asked.sort()).toEqual(['env_', 'req_', 'sess_']);
    expect(message.envelope_id).toMatch(/^env_\d+$/);
    expect(message.request_id).toMatch(/^req_\d+$/);
    expect(message.session_id).toMatch(/^sess_\d+$/);
    expect(message.user_id).toBe('anonymous');
    expect(message.raw_input).toBe('');
    expect(message.stage_order).toEqual([]);
    expect(message.metadata_str).toEqual({});
  });

  it('keeps the request’s fields and starts at stage "start" with bounds 3/10/21', () => {
    const { ids, asked } = counter(T0 + 123);
    const message = newEnvelopeMessage(
      {
        raw_input: 'hello',
        user_id: 'alice',
        session_id: 'sess_given',
        request_id: 'req_given',
        metadata: { tenant: 'acme', count: 3, flag: true, nested: { a: 1 }, nothing: null },
        stage_order: ['understand', 'think', 7, 'respond'],
      },
      ids,
    );
    // Only the envelope id is generated: the request named the other two.
    expect(asked).toEqual(['env_']);
    expect(message).toEqual({
      envelope_id: 'env_1',
      request_id: 'req_given',
      user_id: 'alice',
      session_id: 'sess_given',
      raw_input: 'hello',
      received_at_ms: T0 + 123,
      current_stage: 'start',
      stage_order: ['understand', 'think', 'respond'],
      iteration: 0,
      max_iterations: 3,
      llm_call_count: 0,
      max_llm_calls: 10,
      agent_hop_count: 0,
      max_agent_hops: 21,
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
      // map<string,string>: values that are not strings cannot be on the wire.
      metadata_str: { tenant: 'acme' },
      created_at_ms: T0 + 123,
    });
  });

  it('treats empty and non-string ids as absent', () => {
    const { ids, asked } = counter();
    const message = newEnvelopeMessage({ request_id: '', session_id: 42, user_id: '' }, ids);
    expect(asked.sort()).toEqual(['env_', 'req_', 'sess_']);
    expect(message.user_id).toBe('anonymous');
  });
});

describe('envelopeMessageOf', () => {
  it('is INVALID_PARAMS without an envelope (defect 18: Go dereferenced nil)', () => {
    for (const value of [null, undefined, 'env', 42, true]) {
      const error = invalidParamsOf(() => envelopeMessageOf(value));
      expect(error.message).toContain('envelope is required');
    }
    expect(invalidParamsOf(() => envelopeMessageOf(null, 'request.envelope')).message).toContain(
      'request.envelope is required',
    );
  });

  it('drops outputs that are not JSON objects and keeps objects as equivalent JSON', () => {
    const message = envelopeMessageOf({
      outputs: {
        array: json([1, 2]),
        string: json('text'),
        number: Buffer.from('42'),
        nullish: Buffer.from('null'),
        invalid_utf8: Buffer.from([0xff, 0xfe, 0x7b, 0x7d]),
        invalid_json: Buffer.from('{"a":'),
        empty: Buffer.alloc(0),
        not_bytes: { a: 1 },
        spaced: Buffer.from(' { "a" : 1 , "b" : [ true ] } '),
        plain: new Uint8Array(json({ x: 'y', n: null })),
      },
    });
    expect(Object.keys(message.outputs).sort()).toEqual(['plain', 'spaced']);
    expect(JSON.parse(message.outputs.spaced!.toString('utf8'))).toEqual({ a: 1, b: [true] });
    expect(JSON.parse(message.outputs.plain!.toString('utf8'))).toEqual({ x: 'y', n: null });
    expect(Buffer.isBuffer(message.outputs.plain)).toBe(true);
  });

  it('reads unknown enum numbers as UNSPECIFIED (0)', () => {
    const message = envelopeMessageOf({
      terminal_reason: 99,
      interrupt: { id: 'i', kind: 42, status: 9 },
    });
    expect(message.terminal_reason).toBe(0);
    expect(message.interrupt?.kind).toBe(0);
    expect(message.interrupt?.status).toBe(0);

    const negative = envelopeMessageOf({ terminal_reason: -1, interrupt: { kind: 1.5 } });
    expect(negative.terminal_reason).toBe(0);
    expect(negative.interrupt?.kind).toBe(0);
  });

  it('keeps known enum numbers', () => {
    const message = envelopeMessageOf({
      terminal_reason: POLICY_VIOLATION,
      interrupt: { kind: 7, status: 4 },
    });
    expect(message.terminal_reason).toBe(POLICY_VIOLATION);
    expect(message.interrupt?.kind).toBe(7);
    expect(message.interrupt?.status).toBe(4);
  });

  it('keeps an absent interrupt null', () => {
    expect(envelopeMessageOf({ interrupt: null }).interrupt).toBeNull();
    expect(envelopeMessageOf({}).interrupt).toBeNull();
  });

  it('keeps approved = false with a response as a denial, response included (defect 14)', () => {
    const message = envelopeMessageOf({
      interrupt: {
        id: 'int_1',
        kind: CONFIRMATION,
        response: { text: 'no', approved: false, decision: 'deny', resolved_at_ms: T0 },
      },
    });
    expect(message.interrupt?.response).toEqual({
      text: 'no',
      approved: false,
      decision: 'deny',
      data: Buffer.alloc(0),
      resolved_at_ms: T0,
    });
    expect(message.interrupt?.response?.approved).toBe(false);
    expect(envelopeMessageOf({ interrupt: { response: null } }).interrupt?.response).toBeNull();
  });

  it('keeps only string metadata, boolean stage maps and string lists', () => {
    const message = envelopeMessageOf({
      metadata_str: { a: 'x', b: 1, c: null },
      active_stages: { s1: true, s2: 'yes', s3: false },
      failed_stages: { s1: 'boom', s2: 3 },
      all_goals: ['g1', 2, null, 'g2'],
      stage_order: 'understand',
    });
    expect(message.metadata_str).toEqual({ a: 'x' });
    expect(message.active_stages).toEqual({ s1: true, s3: false });
    expect(message.failed_stages).toEqual({ s1: 'boom' });
    expect(message.all_goals).toEqual(['g1', 'g2']);
    expect(message.stage_order).toEqual([]);
  });

  it('reads counters as integers and anything else as 0', () => {
    const message = envelopeMessageOf({
      iteration: 2.9,
      llm_call_count: Number.NaN,
      agent_hop_count: '4',
      max_iterations: Infinity,
      received_at_ms: T0,
    });
    expect(message.iteration).toBe(2);
    expect(message.llm_call_count).toBe(0);
    expect(message.agent_hop_count).toBe(0);
    expect(message.max_iterations).toBe(0);
    expect(message.received_at_ms).toBe(T0);
  });

  it('returns a full envelope unchanged', () => {
    const full = fullEnvelope();
    expect(envelopeMessageOf(full)).toEqual(full);
  });
});

describe('cloneEnvelopeMessage', () => {
  it('keeps the envelope_id and copies every field', () => {
    const original = fullEnvelope();
    const clone = cloneEnvelopeMessage(original);
    expect(clone.envelope_id).toBe('env_1');
    expect(clone).toEqual(original);
    expect(clone).not.toBe(original);
  });

  it('is a deep copy: changing the clone leaves the original alone', () => {
    const original = fullEnvelope();
    const snapshot = structuredClone(original);
    const clone = cloneEnvelopeMessage(original);

    clone.stage_order.push('extra');
    clone.all_goals.pop();
    clone.remaining_goals.push('g9');
    clone.outputs.understand![0] = 0x20;
    clone.outputs.added = json({});
    clone.active_stages.respond = false;
    clone.completed_stage_set.other = true;
    clone.failed_stages.lint = 'changed';
    clone.goal_completion_status.g2 = 'satisfied';
    clone.metadata_str.tenant = 'evil';
    clone.interrupt!.data[0] = 0x20;
    clone.interrupt!.question = 'changed';
    clone.interrupt!.response!.data[0] = 0x20;
    clone.interrupt!.response!.approved = true;

    // structuredClone turns Buffers into Uint8Arrays: compare the bytes, not the classes.
    expect(original.stage_order).toEqual(snapshot.stage_order);
    expect(original.all_goals).toEqual(snapshot.all_goals);
    expect(original.remaining_goals).toEqual(snapshot.remaining_goals);
    expect(Object.keys(original.outputs).sort()).toEqual(['think', 'understand']);
    expect([...original.outputs.understand!]).toEqual([...snapshot.outputs.understand!]);
    expect(original.active_stages).toEqual(snapshot.active_stages);
    expect(original.completed_stage_set).toEqual(snapshot.completed_stage_set);
    expect(original.failed_stages).toEqual(snapshot.failed_stages);
    expect(original.goal_completion_status).toEqual(snapshot.goal_completion_status);
    expect(original.metadata_str).toEqual(snapshot.metadata_str);
    expect([...original.interrupt!.data]).toEqual([...snapshot.interrupt!.data]);
    expect(original.interrupt!.question).toBe('Delete the branch?');
    expect([...original.interrupt!.response!.data]).toEqual([
      ...snapshot.interrupt!.response!.data,
    ]);
    expect(original.interrupt!.response!.approved).toBe(false);
  });
});

describe('checkEnvelopeBounds', () => {
  it('lets a healthy envelope continue, with the exact remaining numbers', () => {
    expect(
      checkEnvelopeBounds(
        envelope({
          iteration: 1,
          max_iterations: 4,
          llm_call_count: 4,
          max_llm_calls: 10,
          agent_hop_count: 5,
          max_agent_hops: 21,
        }),
      ),
    ).toEqual({
      can_continue: true,
      terminal_reason: 0,
      iterations_remaining: 3,
      llm_calls_remaining: 6,
      agent_hops_remaining: 16,
    });
  });

  it('stops at iteration == max_iterations (defect 2: one predicate, ≥)', () => {
    expect(checkEnvelopeBounds(envelope({ iteration: 2, max_iterations: 3 })).can_continue).toBe(
      true,
    );
    expect(checkEnvelopeBounds(envelope({ iteration: 3, max_iterations: 3 }))).toEqual({
      can_continue: false,
      terminal_reason: MAX_ITERATIONS_EXCEEDED,
      iterations_remaining: 0,
      llm_calls_remaining: 10,
      agent_hops_remaining: 21,
    });
  });

  it('stops at llm_call_count == max and agent_hop_count == max', () => {
    const llm = checkEnvelopeBounds(envelope({ llm_call_count: 10 }));
    expect(llm.can_continue).toBe(false);
    expect(llm.terminal_reason).toBe(MAX_LLM_CALLS_EXCEEDED);
    expect(llm.llm_calls_remaining).toBe(0);

    const hops = checkEnvelopeBounds(envelope({ agent_hop_count: 21 }));
    expect(hops.can_continue).toBe(false);
    expect(hops.terminal_reason).toBe(MAX_AGENT_HOPS_EXCEEDED);
    expect(hops.agent_hops_remaining).toBe(0);
  });

  it('names iterations before LLM calls before agent hops', () => {
    const all = { iteration: 3, llm_call_count: 10, agent_hop_count: 21 };
    expect(checkEnvelopeBounds(envelope(all)).terminal_reason).toBe(MAX_ITERATIONS_EXCEEDED);
    expect(checkEnvelopeBounds(envelope({ ...all, iteration: 0 })).terminal_reason).toBe(
      MAX_LLM_CALLS_EXCEEDED,
    );
    expect(
      checkEnvelopeBounds(envelope({ ...all, iteration: 0, llm_call_count: 0 })).terminal_reason,
    ).toBe(MAX_AGENT_HOPS_EXCEEDED);
  });

  it('clamps the remaining counts at 0 when counters are past their bounds (defect 2)', () => {
    expect(
      checkEnvelopeBounds(envelope({ iteration: 7, llm_call_count: 15, agent_hop_count: 30 })),
    ).toEqual({
      can_continue: false,
      terminal_reason: MAX_ITERATIONS_EXCEEDED,
      iterations_remaining: 0,
      llm_calls_remaining: 0,
      agent_hops_remaining: 0,
    });
  });

  it('takes the defaults 3/10/21 for bounds that are 0 or negative (defect 8)', () => {
    const unset = { max_iterations: 0, max_llm_calls: -1, max_agent_hops: 0 };
    expect(
      checkEnvelopeBounds(
        envelope({ ...unset, iteration: 1, llm_call_count: 2, agent_hop_count: 3 }),
      ),
    ).toEqual({
      can_continue: true,
      terminal_reason: 0,
      iterations_remaining: 2,
      llm_calls_remaining: 8,
      agent_hops_remaining: 18,
    });
    // A 0 bound read as 0 would have stopped the envelope before its first pass.
    expect(checkEnvelopeBounds(envelope({ ...unset, iteration: 0 })).can_continue).toBe(true);
    expect(checkEnvelopeBounds(envelope({ ...unset, iteration: 3 })).terminal_reason).toBe(
      MAX_ITERATIONS_EXCEEDED,
    );
  });

  it('stops a terminated envelope with its own terminal_reason', () => {
    const result = checkEnvelopeBounds(
      envelope({ terminated: true, terminal_reason: USER_CANCELLED, iteration: 1 }),
    );
    expect(result).toEqual({
      can_continue: false,
      terminal_reason: USER_CANCELLED,
      iterations_remaining: 2,
      llm_calls_remaining: 10,
      agent_hops_remaining: 21,
    });
    // Terminated without a recorded reason: nothing to report.
    expect(checkEnvelopeBounds(envelope({ terminated: true }))).toMatchObject({
      can_continue: false,
      terminal_reason: 0,
    });
  });

  it('reports a terminated envelope’s own reason even when a counter reached its bound', () => {
    // A run that completed on its last allowed pass (or with its last LLM call) completed: the
    // reason it stopped is COMPLETED, not a bound. Go's CanContinue returns early for a
    // terminated envelope, so CheckBounds reports the envelope's own reason.
    const completed = { terminated: true, terminal_reason: COMPLETED };
    expect(checkEnvelopeBounds(envelope({ ...completed, iteration: 3 }))).toMatchObject({
      can_continue: false,
      terminal_reason: COMPLETED,
    });
    expect(checkEnvelopeBounds(envelope({ ...completed, llm_call_count: 10 }))).toMatchObject({
      can_continue: false,
      terminal_reason: COMPLETED,
    });
  });

  it('stops an envelope with an interrupt pending, without a terminal reason', () => {
    expect(checkEnvelopeBounds(envelope({ interrupt_pending: true, iteration: 1 }))).toEqual({
      can_continue: false,
      terminal_reason: 0,
      iterations_remaining: 2,
      llm_calls_remaining: 10,
      agent_hops_remaining: 21,
    });
  });
});

describe('state dict conversions', () => {
  it('writes the §3.2 keys with RFC 3339 times and lowercase enum strings', () => {
    const dict = stateDictOfEnvelopeMessage(fullEnvelope());
    expect(dict).toMatchObject({
      envelope_id: 'env_1',
      received_at: T0_TEXT,
      completed_at: '2026-01-02T03:05:05Z',
      current_stage: 'respond',
      terminal_reason: 'completed',
      termination_reason: 'Pipeline completed',
      outputs: {
        understand: { intent: 'cleanup', tags: ['git'], n: 1.5, nested: { ok: true } },
        think: { plan: null },
      },
      metadata: { tenant: 'acme', trace: 'abc' },
    });
    expect(dict.interrupt).toEqual({
      kind: 'confirmation',
      id: 'int_1',
      question: 'Delete the branch?',
      message: 'Delete the branch?',
      data: { tool: 'git', args: ['branch', '-D', 'x'] },
      created_at: '2026-01-02T03:04:15Z',
      expires_at: '2026-01-02T04:04:05Z',
      response: {
        received_at: '2026-01-02T03:04:35Z',
        text: 'no',
        approved: false,
        decision: 'deny',
        data: { why: 'not mine' },
      },
    });
    // Bounds, max_stages and created_at are not part of the state dict (§3.2).
    for (const key of ['max_iterations', 'max_llm_calls', 'max_agent_hops', 'max_stages'])
      expect(dict).not.toHaveProperty(key);
  });

  it('leaves empty identity fields and times to the state dict’s defaults', () => {
    const dict = stateDictOfEnvelopeMessage(envelopeMessageOf({}));
    for (const key of ['envelope_id', 'request_id', 'user_id', 'session_id', 'received_at'])
      expect(dict).not.toHaveProperty(key);
    expect(dict).toMatchObject({
      current_stage: 'start',
      current_stage_number: 1,
      terminal_reason: null,
      termination_reason: null,
      completed_at: null,
      interrupt: null,
    });
  });

  it('round-trips a full envelope through the state dict', () => {
    // FlowInterrupt.status, trace_id and span_id are left at their zero values here: the state
    // dict has no trace/span keys, and status has its own test below.
    const full = fullEnvelope();
    expect(roundTrip(full)).toEqual(full);
    expect(
      envelopeMessageOfStateDict(stateDictOfEnvelopeMessage(full), {
        bounds: FULL_BOUNDS,
        createdAt: T0 - 5_000,
      }),
    ).toEqual(full);
  });

  it('round-trips a pending interrupt without a response', () => {
    const pending = {
      ...fullEnvelope(),
      terminated: false,
      termination_reason: '',
      terminal_reason: 0,
      completed_at_ms: 0,
      interrupt_pending: true,
      interrupt: interrupt({ response: null, resolved_at_ms: 0, expires_at_ms: 0 }),
    };
    const back = roundTrip(pending);
    expect(back).toEqual(pending);
    expect(back.interrupt?.response).toBeNull();
  });

  it('round-trips the interrupt’s status (defect 14: fill every field you have)', () => {
    // The reader takes `interrupt.status` from the state dict (as toStateDict writes it), so
    // the writer must put it there too, or a RESOLVED interrupt comes back UNSPECIFIED.
    const resolved = { ...fullEnvelope(), interrupt: interrupt({ status: INTERRUPT_RESOLVED }) };
    expect(roundTrip(resolved).interrupt?.status).toBe(INTERRUPT_RESOLVED);
  });

  it('keeps approved = false through the state dict (defect 14)', () => {
    const dict = stateDictOfEnvelopeMessage(fullEnvelope());
    expect((dict.interrupt as JsonObject).response).toMatchObject({ approved: false });
    const back = roundTrip(fullEnvelope());
    expect(back.interrupt?.response).not.toBeNull();
    expect(back.interrupt?.response?.approved).toBe(false);
  });

  it('keeps non-string metadata as JSON text in metadata_str (defect 14)', () => {
    const message = envelopeMessageOfStateDict(
      {
        metadata: {
          tenant: 'acme',
          count: 3,
          ratio: 0.5,
          flag: false,
          nothing: null,
          nested: { a: [1, 'b'] },
          list: ['x'],
        },
      },
      { bounds: FULL_BOUNDS, createdAt: T0 },
    );
    expect(message.metadata_str).toEqual({
      tenant: 'acme',
      count: '3',
      ratio: '0.5',
      flag: 'false',
      nothing: 'null',
      nested: '{"a":[1,"b"]}',
      list: '["x"]',
    });
  });

  it('drops non-object outputs of a state dict and takes the run’s bounds and creation time', () => {
    const message = envelopeMessageOfStateDict(
      { outputs: { ok: { a: 1 }, list: [1], text: 'x', nothing: null } },
      { bounds: FULL_BOUNDS, createdAt: T0 + 7_000 },
    );
    expect(Object.keys(message.outputs)).toEqual(['ok']);
    expect(JSON.parse(message.outputs.ok!.toString('utf8'))).toEqual({ a: 1 });
    expect(message).toMatchObject({ ...FULL_BOUNDS, created_at_ms: T0 + 7_000, max_stages: 0 });
  });

  it('reads RFC 3339 times with offsets and fractions, and 0 for anything else', () => {
    const message = envelopeMessageOfStateDict(
      { received_at: '2026-01-02T05:04:05.250+02:00', completed_at: 'yesterday' },
      { bounds: FULL_BOUNDS, createdAt: T0 },
    );
    expect(message.received_at_ms).toBe(T0 + 250);
    expect(message.completed_at_ms).toBe(0);
  });

  // terminalReasonToWire (enums.ts): the reference prescribes max_loop_exceeded → 1 and
  // policy_violation ↔ 8 (defect 3); the rest are Warden's documented choices.
  it.each([
    ['completed', COMPLETED],
    ['max_iterations_exceeded', MAX_ITERATIONS_EXCEEDED],
    ['max_llm_calls_exceeded', MAX_LLM_CALLS_EXCEEDED],
    ['max_agent_hops_exceeded', MAX_AGENT_HOPS_EXCEEDED],
    ['max_loop_exceeded', MAX_ITERATIONS_EXCEEDED],
    ['max_visits_exceeded', MAX_ITERATIONS_EXCEEDED],
    ['timeout_exceeded', MAX_ITERATIONS_EXCEEDED],
    ['max_tool_calls_exceeded', MAX_LLM_CALLS_EXCEEDED],
    ['max_input_tokens_exceeded', MAX_LLM_CALLS_EXCEEDED],
    ['user_cancelled', USER_CANCELLED],
    ['interrupt_denied', USER_CANCELLED],
    ['interrupt_expired', USER_CANCELLED],
    ['failed', TOOL_FAILED_FATALLY],
    ['tool_failed_fatally', TOOL_FAILED_FATALLY],
    ['llm_failed_fatally', 6],
    ['policy_violation', POLICY_VIOLATION],
    ['not_a_reason', 0],
    ['', 0],
  ])('maps state dict terminal_reason %j to wire %i', (reason, wire) => {
    const message = envelopeMessageOfStateDict(
      { terminated: true, terminal_reason: reason },
      { bounds: FULL_BOUNDS, createdAt: T0 },
    );
    expect(message.terminal_reason).toBe(wire);
  });

  it('reads a null or non-string terminal_reason as UNSPECIFIED', () => {
    for (const terminal_reason of [null, 7, true]) {
      const message = envelopeMessageOfStateDict(
        { terminal_reason },
        { bounds: FULL_BOUNDS, createdAt: T0 },
      );
      expect(message.terminal_reason).toBe(0);
    }
  });

  it('writes each wire reason as the jeeves string of the same meaning', () => {
    const strings = [1, 2, 3, 4, 5, 6, 7, 8].map(
      (n) => stateDictOfEnvelopeMessage(envelope({ terminal_reason: n })).terminal_reason,
    );
    expect(strings).toEqual([
      'max_iterations_exceeded',
      'max_llm_calls_exceeded',
      'max_agent_hops_exceeded',
      'user_cancelled',
      'tool_failed_fatally',
      'llm_failed_fatally',
      'completed',
      'policy_violation',
    ]);
    // Every wire reason survives the round trip.
    for (let n = 1; n <= 8; n += 1)
      expect(roundTrip(envelope({ terminal_reason: n })).terminal_reason).toBe(n);
  });
});

describe('envelopeMessageOf (property)', () => {
  const bytes = fc.oneof(
    fc.jsonValue().map((v) => json(v)),
    fc.dictionary(fc.string(), fc.jsonValue()).map((v) => json(v)),
    fc.uint8Array({ maxLength: 16 }).map((a) => Buffer.from(a)),
    fc.constant(Buffer.alloc(0)),
    fc.string().map((s) => Buffer.from(s, 'utf8')),
  );
  const loose = fc.oneof(
    fc.string(),
    fc.integer({ min: -5, max: 120 }),
    fc.double(),
    fc.boolean(),
    fc.constant(null),
    fc.constant(undefined),
  );
  const enumLike = fc.oneof(fc.integer({ min: -3, max: 12 }), fc.double(), fc.string(), loose);
  const map = <T>(value: fc.Arbitrary<T>) =>
    fc.oneof(fc.dictionary(fc.string({ maxLength: 6 }), value), loose);
  const list = fc.oneof(fc.array(fc.oneof(fc.string(), loose), { maxLength: 4 }), loose);
  const response = fc.oneof(
    fc.constant(null),
    fc.record(
      {
        text: loose,
        approved: fc.oneof(fc.boolean(), loose),
        decision: loose,
        data: fc.oneof(bytes, loose),
        resolved_at_ms: loose,
      },
      { requiredKeys: [] },
    ),
  );
  const flowInterrupt = fc.oneof(
    fc.constant(null),
    loose,
    fc.record(
      {
        id: loose,
        kind: fc.oneof(
          enumLike,
          fc.constantFrom('clarification', 'confirmation', 'agent_review', 'bogus'),
        ),
        question: loose,
        message: loose,
        data: fc.oneof(bytes, loose),
        response,
        status: enumLike,
        created_at_ms: loose,
        expires_at_ms: loose,
        trace_id: loose,
      },
      { requiredKeys: [] },
    ),
  );
  const envelopeLike = fc.record(
    {
      envelope_id: loose,
      request_id: loose,
      user_id: loose,
      raw_input: loose,
      received_at_ms: loose,
      current_stage: loose,
      stage_order: list,
      iteration: loose,
      max_iterations: loose,
      llm_call_count: loose,
      terminated: loose,
      termination_reason: loose,
      terminal_reason: fc.oneof(
        enumLike,
        fc.constantFrom('completed', 'max_loop_exceeded', 'policy_violation', 'nope'),
      ),
      completed_at_ms: loose,
      interrupt_pending: loose,
      interrupt: flowInterrupt,
      outputs: map(fc.oneof(bytes, loose)),
      active_stages: map(loose),
      completed_stage_set: map(fc.boolean()),
      failed_stages: map(loose),
      current_stage_number: loose,
      all_goals: list,
      remaining_goals: list,
      goal_completion_status: map(loose),
      metadata_str: map(loose),
      created_at_ms: loose,
    },
    { requiredKeys: [] },
  );

  it('normalising twice is normalising once', () => {
    fc.assert(
      fc.property(envelopeLike, (input) => {
        const once = envelopeMessageOf(input);
        expect(envelopeMessageOf(once)).toEqual(once);
        expect(cloneEnvelopeMessage(once)).toEqual(once);
      }),
      { numRuns: 300 },
    );
  });
});

describe('map keys named __proto__', () => {
  it('are dropped instead of replacing the map’s prototype', () => {
    const outputs = Object.defineProperty({}, '__proto__', {
      value: Buffer.from('{"a":1}'),
      enumerable: true,
    }) as Record<string, Buffer>;
    outputs.ok = Buffer.from('{"b":2}');
    const metadata = JSON.parse('{"__proto__":"x","kept":"y"}') as Record<string, string>;
    const message = envelopeMessageOf({ outputs, metadata_str: metadata });
    expect(Object.getPrototypeOf(message.outputs)).toBe(Object.prototype);
    expect(Object.keys(message.outputs)).toEqual(['ok']);
    expect(Object.getPrototypeOf(message.metadata_str)).toBe(Object.prototype);
    expect(message.metadata_str).toEqual({ kept: 'y' });
  });
});
