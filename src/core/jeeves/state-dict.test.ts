import { describe, expect, it } from 'vitest';

import { invalidParamsOf } from '../../../test/helpers/jeeves-fixtures.ts';
import type { JsonObject } from '../json.ts';
import { emptyUsage, type Usage } from '../quota.ts';
import { type Envelope, newEnvelope } from '../workflow/envelope.ts';
import { formatRfc3339, parseRfc3339 } from './rfc3339.ts';
import {
  emptyPassthrough,
  type JeevesPassthrough,
  sessionEdgeTraversals,
  type StateDictView,
  toStateDict,
} from './state-dict.ts';
import { fromStateDict, type StateDictInputOptions } from './state-dict-input.ts';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);
const T0_TEXT = '2026-01-02T03:04:05Z';

/** Go's ToStateDict keys, in its order (coreengine/envelope/envelope.go @ c52215a). */
const GO_KEYS = [
  'envelope_id',
  'request_id',
  'user_id',
  'session_id',
  'raw_input',
  'received_at',
  'outputs',
  'current_stage',
  'stage_order',
  'iteration',
  'llm_call_count',
  'agent_hop_count',
  'active_stages',
  'completed_stage_set',
  'failed_stages',
  'parallel_mode',
  'terminated',
  'termination_reason',
  'terminal_reason',
  'interrupt_pending',
  'interrupt',
  'completed_stages',
  'current_stage_number',
  'all_goals',
  'remaining_goals',
  'goal_completion_status',
  'prior_plans',
  'loop_feedback',
  'errors',
  'completed_at',
  'metadata',
];

function ids(): StateDictInputOptions {
  let n = 0;
  return { newId: (prefix) => `${prefix}${++n}`, now: T0 };
}

function envelopeWith(patch: Partial<Envelope>): Envelope {
  return { ...newEnvelope('hi', 'think', { tenant: 'acme' }), ...patch };
}

function view(patch: Partial<StateDictView> = {}): StateDictView {
  const usage: Usage = { ...emptyUsage(), llm_calls: 4, agent_hops: 2, iterations: 1 };
  return {
    identity: {
      envelope_id: 'env_a',
      request_id: 'req_a',
      user_id: 'alice',
      session_id: 'sess_a',
      raw_input: 'hi',
      received_at: T0 + 999,
    },
    stageOrder: ['think', 'respond'],
    envelope: envelopeWith({ outputs: { think: { plan: 'x' } } }),
    usage,
    terminated: null,
    completedAt: null,
    interrupt: null,
    passthrough: emptyPassthrough(),
    ...patch,
  };
}

describe('toStateDict', () => {
  it('writes every key Go writes, in Go’s order, with counters from Warden’s usage', () => {
    const dict = toStateDict(view());
    expect(Object.keys(dict)).toEqual(GO_KEYS);
    expect(dict).toMatchObject({
      envelope_id: 'env_a',
      user_id: 'alice',
      received_at: T0_TEXT,
      outputs: { think: { plan: 'x' } },
      current_stage: 'think',
      stage_order: ['think', 'respond'],
      iteration: 1,
      llm_call_count: 4,
      agent_hop_count: 2,
      terminated: false,
      termination_reason: null,
      terminal_reason: null,
      interrupt_pending: false,
      interrupt: null,
      current_stage_number: 1,
      completed_at: null,
      metadata: { tenant: 'acme' },
    });
    expect(JSON.parse(JSON.stringify(dict))).toEqual(dict);
  });

  it('keeps only object outputs', () => {
    const dict = toStateDict(
      view({
        envelope: envelopeWith({ outputs: { a: { ok: true }, b: 'text', c: [1], d: null } }),
      }),
    );
    expect(dict.outputs).toEqual({ a: { ok: true } });
  });

  it('defect 4: a failed step is in failed_stages and errors, with its error text', () => {
    const dict = toStateDict(
      view({
        envelope: envelopeWith({
          errors: [{ step: 2, stage: 'think', code: 'JOB_FAILED', message: 'model down' }],
        }),
        passthrough: {
          ...emptyPassthrough(),
          failed_stages: { earlier: 'old failure' },
          errors: [{ agent: 'earlier', error: 'old failure' }],
        },
      }),
    );
    expect(dict.failed_stages).toEqual({ earlier: 'old failure', think: 'model down' });
    expect(dict.errors).toEqual([
      { agent: 'earlier', error: 'old failure' },
      { agent: 'think', stage: 'think', error: 'model down', code: 'JOB_FAILED', step: 2 },
    ]);
  });

  it('writes the lowercase reason, Go’s completion text, and completed_at', () => {
    const done = toStateDict(
      view({ terminated: { reason: 'completed', message: 'workflow completed' }, completedAt: T0 }),
    );
    expect(done).toMatchObject({
      terminated: true,
      terminal_reason: 'completed',
      termination_reason: 'Pipeline completed',
      completed_at: T0_TEXT,
    });
    const timedOut = toStateDict(
      view({ terminated: { reason: 'timeout_exceeded', message: 'timeout exceeded' } }),
    );
    expect(timedOut).toMatchObject({
      terminal_reason: 'max_iterations_exceeded',
      termination_reason: 'timeout exceeded',
    });
  });

  it('defect 14: writes the interrupt’s status, expiry and an explicit approved: false', () => {
    const dict = toStateDict(
      view({
        envelope: envelopeWith({ pending: { step: 3, stage: 'confirmation', kind: 'interrupt' } }),
        interrupt: {
          id: 'int_1',
          kind: 'confirmation',
          prompt: 'Delete it?',
          data: { file: 'a.txt' },
          status: 'resolved',
          created_at: T0,
          expires_at: T0 + 3_600_000,
          response: { approved: false, received_at: T0 + 60_000 },
        },
      }),
    );
    expect(dict.interrupt_pending).toBe(true);
    expect(dict.interrupt).toEqual({
      kind: 'confirmation',
      id: 'int_1',
      question: 'Delete it?',
      message: 'Delete it?',
      data: { file: 'a.txt' },
      created_at: T0_TEXT,
      status: 'resolved',
      expires_at: '2026-01-02T04:04:05Z',
      response: { received_at: '2026-01-02T03:05:05Z', approved: false },
    });
  });
});

describe('toStateDict: the parallel runner’s keys', () => {
  const clientSets: JeevesPassthrough = {
    ...emptyPassthrough(),
    active_stages: { old: true },
    completed_stage_set: { older: true },
    failed_stages: { oldest: 'gone' },
    parallel_mode: false,
  };

  it('a sequential run carries the client’s values unchanged (plus its own failures)', () => {
    const dict = toStateDict(
      view({
        passthrough: clientSets,
        envelope: envelopeWith({
          errors: [{ step: 1, stage: 'think', code: 'JOB_FAILED', message: 'down' }],
        }),
      }),
    );
    expect(dict).toMatchObject({
      active_stages: { old: true },
      completed_stage_set: { older: true },
      failed_stages: { oldest: 'gone', think: 'down' },
      parallel_mode: false,
    });
  });

  it('a parallel run writes its own branches: outstanding, completed, failed; cancelled in none', () => {
    const dict = toStateDict(
      view({
        passthrough: clientSets,
        envelope: envelopeWith({
          branches: {
            plan: { step: 1, status: 'completed' },
            a: { step: 2, status: 'outstanding', started_at: T0 },
            b: { step: 3, status: 'outstanding' },
            c: { step: 4, status: 'failed' },
            d: { step: 5, status: 'cancelled' },
            e: { step: null, status: 'cancelled' },
            f: { step: 6, status: 'failed' },
          },
          // f's entry was dropped (errors are bounded); c failed once, its last error counts.
          errors: [
            { step: 4, stage: 'c', code: 'JOB_FAILED', message: 'first try' },
            { step: 4, stage: 'c', code: 'JOB_FAILED', message: 'tool down' },
          ],
        }),
      }),
    );
    expect(dict).toMatchObject({
      active_stages: { a: true, b: true },
      completed_stage_set: { plan: true },
      failed_stages: { c: 'tool down', f: 'failed' },
      parallel_mode: true,
    });
    expect(Object.keys(dict)).toEqual(GO_KEYS);
    expect(dict.errors).toHaveLength(2);
  });

  it('a parallel run that has issued nothing yet still says parallel_mode', () => {
    const dict = toStateDict(view({ envelope: envelopeWith({ branches: {} }) }));
    expect(dict).toMatchObject({
      active_stages: {},
      completed_stage_set: {},
      failed_stages: {},
      parallel_mode: true,
    });
  });
});

describe('sessionEdgeTraversals', () => {
  it('drops edges into end, which Go never counted, and keeps the rest', () => {
    expect(
      sessionEdgeTraversals({ 'a->b': 2, 'b->b': 1, 'b->end': 1, 'ending->x': 1, 'x->end': 3 }),
    ).toEqual({ 'a->b': 2, 'b->b': 1, 'ending->x': 1 });
  });
});

describe('fromStateDict', () => {
  it('gives a new envelope’s defaults for missing keys (and for empty bytes)', () => {
    for (const input of [new Uint8Array(), '{}', {}]) {
      const start = fromStateDict(input, ids());
      expect(start.identity).toEqual({
        envelope_id: 'env_1',
        request_id: 'req_2',
        user_id: 'anonymous',
        session_id: 'sess_3',
        raw_input: '',
        received_at: T0,
      });
      expect(start).toMatchObject({
        outputs: {},
        currentStage: 'start',
        counters: { iteration: 0, llm_call_count: 0, agent_hop_count: 0 },
        interruptPending: false,
        interrupt: null,
        terminated: null,
        completedAt: null,
        metadata: {},
      });
      expect(start.passthrough).toEqual(emptyPassthrough());
    }
  });

  it('reads what the Python client sends: nulls, unknown keys, resolved_at, "unspecified"', () => {
    const start = fromStateDict(
      JSON.stringify({
        request_context: { request_id: 'req_9', user_id: 'bob' },
        envelope_id: 'env_9',
        request_id: 'req_9',
        user_id: 'bob',
        session_id: 'sess_9',
        raw_input: 'hello',
        received_at: '2026-01-02T03:04:05.123456',
        outputs: { understand: { intent: 'greet' }, junk: 'not an object' },
        current_stage: 'think',
        stage_order: ['understand', 'think'],
        iteration: 1,
        max_iterations: 3,
        llm_call_count: 2,
        agent_hop_count: 2,
        max_stages: 5,
        terminal_reason: null,
        termination_reason: null,
        terminated: false,
        interrupt_pending: false,
        interrupt: {
          id: 'int_7',
          kind: 'unspecified',
          question: '',
          message: 'Proceed?',
          data: null,
          status: 'resolved',
          response: { text: '', approved: false, decision: '', data: null, resolved_at: null },
          created_at: null,
          expires_at: null,
          resolved_at: null,
          trace_id: '',
        },
        processing_history: [],
        created_at: null,
        completed_at: null,
        metadata: { source: 'cli' },
      }),
      ids(),
    );
    expect(start.identity).toEqual({
      envelope_id: 'env_9',
      request_id: 'req_9',
      user_id: 'bob',
      session_id: 'sess_9',
      raw_input: 'hello',
      received_at: T0 + 123,
    });
    expect(start.outputs).toEqual({ understand: { intent: 'greet' } });
    expect(start.currentStage).toBe('think');
    expect(start.counters).toEqual({ iteration: 1, llm_call_count: 2, agent_hop_count: 2 });
    expect(start.interrupt).toEqual({
      id: 'int_7',
      kind: null,
      prompt: 'Proceed?',
      data: null,
      status: 'resolved',
      created_at: T0,
      expires_at: null,
      response: { text: '', approved: false, decision: '' },
    });
    expect(start.metadata).toEqual({ source: 'cli' });
  });

  it('defect 14: keeps approved: false as an explicit denial', () => {
    const start = fromStateDict(
      { interrupt: { kind: 'confirmation', id: 'i', response: { approved: false } } },
      ids(),
    );
    expect(start.interrupt?.response).toEqual({ approved: false });
    expect(start.interrupt?.response?.approved).toBe(false);
  });

  it('defect 20: an envelope that arrives terminated starts the session terminated', () => {
    const withReason = fromStateDict(
      { terminated: true, terminal_reason: 'policy_violation', termination_reason: 'blocked' },
      ids(),
    );
    expect(withReason.terminated).toEqual({ reason: 'policy_violation', message: 'blocked' });
    expect(
      fromStateDict({ terminated: true, current_stage: 'end' }, ids()).terminated?.reason,
    ).toBe('completed');
    expect(
      fromStateDict({ terminated: true, current_stage: 'think' }, ids()).terminated?.reason,
    ).toBe('user_cancelled');
    expect(
      fromStateDict({ terminated: false, terminal_reason: 'completed' }, ids()).terminated,
    ).toBe(null);
  });

  const WRONG_TYPES: ReadonlyArray<readonly [string, JsonObject, string]> = [
    [
      'a counter as a string',
      { iteration: '3' },
      'envelope: iteration: expected an integer ≥ 0 (got "3")',
    ],
    [
      'a negative counter',
      { agent_hop_count: -1 },
      'agent_hop_count: expected an integer ≥ 0 (got -1)',
    ],
    ['outputs as an array', { outputs: [] }, 'outputs: expected an object (got an array of 0)'],
    ['a numeric user_id', { user_id: 7 }, 'user_id: expected a string (got 7)'],
    [
      'terminated as a string',
      { terminated: 'yes' },
      'terminated: expected true or false (got "yes")',
    ],
    [
      'an unknown terminal reason',
      { terminal_reason: 'exploded' },
      'terminal_reason: expected one of completed',
    ],
    ['a bad time', { received_at: 'yesterday' }, 'received_at: expected an RFC 3339 time'],
    [
      'goals that are not strings',
      { all_goals: ['a', 1] },
      'all_goals: expected an array of strings',
    ],
    [
      'a map of the wrong values',
      { active_stages: { a: 'yes' } },
      'active_stages: expected an object of booleans',
    ],
    [
      'an unknown interrupt kind',
      { interrupt: { kind: 'nag' } },
      'interrupt.kind: expected one of clarification',
    ],
    [
      'a bad response field',
      { interrupt: { response: { approved: 'no' } } },
      'interrupt.response.approved: expected true or false',
    ],
    ['metadata as a string', { metadata: 'x' }, 'metadata: expected an object (got "x")'],
  ];

  it.each(WRONG_TYPES)('refuses %s with INVALID_PARAMS naming the key', (_, input, fragment) => {
    const error = invalidParamsOf(() => fromStateDict(input, ids()));
    expect(error.message).toContain(fragment);
  });

  it('refuses bytes that are not UTF-8 JSON objects', () => {
    expect(invalidParamsOf(() => fromStateDict(new Uint8Array([0xc3]), ids())).message).toContain(
      'envelope: is not valid UTF-8',
    );
    expect(invalidParamsOf(() => fromStateDict('{', ids())).message).toContain(
      'envelope: is not valid JSON',
    );
    expect(invalidParamsOf(() => fromStateDict('"x"', ids())).message).toContain(
      'envelope: expected a JSON object',
    );
  });

  it('lists every wrong key at once', () => {
    const error = invalidParamsOf(() => fromStateDict({ iteration: 'x', user_id: 1 }, ids()));
    expect((error.details as { issues: { path: string }[] }).issues.map((i) => i.path)).toEqual([
      'user_id',
      'iteration',
    ]);
  });
});

describe('state dict round trip', () => {
  const passthrough: JeevesPassthrough = {
    active_stages: { think: true },
    completed_stage_set: { understand: true },
    failed_stages: { x: 'old' },
    parallel_mode: true,
    completed_stages: [{ stage_number: 1 }],
    current_stage_number: 2,
    all_goals: ['g1', 'g2'],
    remaining_goals: ['g2'],
    goal_completion_status: { g1: 'satisfied', g2: 'pending' },
    prior_plans: [{ plan_id: 'p1' }],
    loop_feedback: ['try harder'],
    errors: [{ agent: 'x', error: 'old' }],
  };

  it('fromStateDict(toStateDict(view)) gives back identity, outputs, counters, interrupt and passthrough', () => {
    const original = view({
      passthrough,
      interrupt: {
        id: 'int_1',
        kind: 'clarification',
        prompt: 'Which city?',
        data: null,
        status: 'resolved',
        created_at: T0,
        expires_at: T0 + 1000,
        response: { text: 'Paris', approved: false, received_at: T0 + 5000 },
      },
      terminated: { reason: 'max_loop_exceeded', message: 'edge limit exceeded: a->b' },
      completedAt: T0 + 9000,
    });
    const bytes = new TextEncoder().encode(JSON.stringify(toStateDict(original)));
    const back = fromStateDict(bytes, ids());
    expect(back.identity).toEqual({ ...original.identity, received_at: T0 }); // whole seconds, as Go
    expect(back.outputs).toEqual({ think: { plan: 'x' } });
    expect(back.currentStage).toBe('think');
    expect(back.counters).toEqual({ iteration: 1, llm_call_count: 4, agent_hop_count: 2 });
    expect(back.interrupt).toEqual({ ...original.interrupt, expires_at: T0 + 1000 });
    expect(back.terminated).toEqual({
      reason: 'max_loop_exceeded',
      message: 'edge limit exceeded: a->b',
    });
    expect(back.completedAt).toBe(T0 + 9000);
    expect(back.metadata).toEqual({ tenant: 'acme' });
    expect(back.passthrough).toEqual(passthrough);
  });

  it('toStateDict(fromStateDict(dict)) reproduces a Go state dict', () => {
    const goDict = {
      envelope_id: 'env_x',
      request_id: 'req_x',
      user_id: 'u',
      session_id: 's',
      raw_input: 'in',
      received_at: T0_TEXT,
      outputs: { a: { k: 1 } },
      current_stage: 'b',
      stage_order: ['a', 'b'],
      iteration: 0,
      llm_call_count: 1,
      agent_hop_count: 1,
      ...passthrough,
      terminated: false,
      termination_reason: null,
      terminal_reason: null,
      interrupt_pending: false,
      interrupt: null,
      completed_at: null,
      metadata: { m: true },
    };
    const start = fromStateDict(JSON.stringify(goDict), ids());
    const envelope: Envelope = {
      ...newEnvelope(start.identity.raw_input, start.currentStage, start.metadata),
      outputs: start.outputs,
    };
    const usage: Usage = {
      ...emptyUsage(),
      iterations: start.counters.iteration,
      llm_calls: start.counters.llm_call_count,
      agent_hops: start.counters.agent_hop_count,
    };
    const again = toStateDict({
      identity: start.identity,
      stageOrder: ['a', 'b'],
      envelope,
      usage,
      terminated: null,
      completedAt: start.completedAt,
      interrupt: start.interrupt,
      passthrough: start.passthrough,
    });
    expect(again).toEqual(goDict);
  });
});

describe('RFC 3339 times', () => {
  it('formats like Go’s time.RFC3339 in UTC (whole seconds, Z)', () => {
    expect(formatRfc3339(T0 + 999)).toBe(T0_TEXT);
    expect(formatRfc3339(null)).toBe(null);
    expect(formatRfc3339(Number.NaN)).toBe(null);
  });

  it('parses offsets, fractions and Python’s naive isoformat; refuses the rest', () => {
    expect(parseRfc3339('2026-01-02T03:04:05Z')).toBe(T0);
    expect(parseRfc3339('2026-01-02T05:04:05+02:00')).toBe(T0);
    expect(parseRfc3339('2026-01-01T22:04:05.5-05:00')).toBe(T0 + 500);
    expect(parseRfc3339('2026-01-02T03:04:05')).toBe(T0);
    for (const bad of ['2026-02-30T00:00:00Z', '2026-01-02', 'yesterday', '2026-01-02T25:00:00Z']) {
      expect(parseRfc3339(bad)).toBe(null);
    }
  });
});
