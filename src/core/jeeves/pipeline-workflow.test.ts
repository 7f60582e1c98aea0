import { describe, expect, it } from 'vitest';

import { invalidParamsOf, LINEAR_PIPELINE } from '../../../test/helpers/jeeves-fixtures.ts';
import { isWardenError } from '../errors.ts';
import type { JsonObject } from '../json.ts';
import { addUsage, emptyUsage, mergeQuota, type Quota } from '../quota.ts';
import { evaluateCondition } from '../workflow/condition.ts';
import { newEnvelope } from '../workflow/envelope.ts';
import { buildWorkflow } from '../workflow/load.ts';
import {
  advance,
  completeStep,
  type Effect,
  failStep,
  type MachineOptions,
  outstandingSteps,
  resumeAfterInterrupt,
  routingContext,
  type RunSnapshot,
  startStage,
  type Transitioned,
} from '../workflow/machine.ts';
import type { Workflow } from '../workflow/schema.ts';
import { agentConfigJson } from './agent-config-json.ts';
import {
  instructionKindForEffect,
  jeevesReasonString,
  terminalReasonToWire,
  WIRE_INSTRUCTION_KIND,
  WIRE_TERMINAL_REASON,
} from './enums.ts';
import { parsePipelineConfig, pipelineStageOrder } from './pipeline-config.ts';
import { initialStage, loadPipelineWorkflow, pipelineToWorkflow } from './pipeline-workflow.ts';
import { emptyPassthrough, sessionEdgeTraversals, toStateDict } from './state-dict.ts';
import type { JeevesPipelineConfig } from './types.ts';

const OPTS: MachineOptions = { elapsedMs: 0, now: 1_700_000_000_000 };

function configOf(value: unknown): JeevesPipelineConfig {
  return parsePipelineConfig(JSON.stringify(value));
}

/** The quota the kernel derives from a workflow's bounds (as machine.test.ts does). */
function quotaFor(workflow: Workflow): Quota {
  const b = workflow.bounds;
  return mergeQuota({
    max_iterations: b.max_iterations,
    max_llm_calls: b.max_llm_calls,
    max_agent_hops: b.max_agent_hops,
    timeout_ms: b.timeout,
  });
}

/** A tiny driver over the machine: the run's snapshot and the last effect. */
class Run {
  readonly workflow: Workflow;
  snap: RunSnapshot;
  effect: Effect;

  constructor(workflow: Workflow) {
    this.workflow = workflow;
    const fresh: RunSnapshot = {
      envelope: newEnvelope('hello', startStage(workflow)),
      usage: emptyUsage(),
      quota: quotaFor(workflow),
      terminated: null,
    };
    const t = advance(workflow, fresh, OPTS);
    this.snap = t.snapshot;
    this.effect = t.effect;
  }

  get stage(): string {
    if (this.effect.kind !== 'run_agent')
      throw new Error(`not running: ${JSON.stringify(this.effect)}`);
    return this.effect.stage;
  }

  /** The running agent reports success with `output` and one LLM call. */
  succeed(output: Record<string, unknown>): this {
    if (this.effect.kind !== 'run_agent')
      throw new Error(`not running: ${JSON.stringify(this.effect)}`);
    const { stage, step } = this.effect;
    this.snap = { ...this.snap, usage: addUsage(this.snap.usage, { llm_calls: 1 }) };
    return this.#apply(
      completeStep(this.workflow, this.snap, { step, stage, output, modelCalls: 1 }, OPTS),
    );
  }

  fail(message: string): this {
    if (this.effect.kind !== 'run_agent')
      throw new Error(`not running: ${JSON.stringify(this.effect)}`);
    const { stage, step } = this.effect;
    return this.#apply(
      failStep(this.workflow, this.snap, { step, stage, code: 'JOB_FAILED', message }, OPTS),
    );
  }

  answer(stage: string, kind: 'clarification' | 'confirmation', response: object): this {
    return this.#apply(
      resumeAfterInterrupt(this.workflow, this.snap, { id: 'int_1', kind, stage, response }, OPTS),
    );
  }

  #apply(t: Transitioned): this {
    this.snap = t.snapshot;
    this.effect = t.effect;
    return this;
  }
}

describe('pipelineToWorkflow: the §6 linear pipeline', () => {
  const config = configOf(LINEAR_PIPELINE);

  it('converts to a workflow Warden’s loader accepts (even with unreachable stages refused)', () => {
    const { workflow } = buildWorkflow(pipelineToWorkflow(config), 'linear');
    expect(workflow.stages.map((s) => s.name)).toEqual(['understand', 'think', 'respond']);
    expect(workflow.bounds).toMatchObject({
      max_iterations: 3,
      max_llm_calls: 10,
      max_agent_hops: 21,
    });
    expect(workflow.stages.map((s) => s.default_next)).toEqual(['think', 'respond', 'end']);
    workflow.stages.forEach((stage, i) => {
      expect(stage.agent).toEqual({ kind: 'external', config: agentConfigJson(config.agents[i]!) });
      expect(stage.output_key).toBe(config.agents[i]!.name);
    });
  });

  it('runs to the §6 end state: 3 hops, 3 LLM calls, iteration 0, edges without ->end', () => {
    const run = new Run(loadPipelineWorkflow(config).workflow);
    const ran: string[] = [];
    while (run.effect.kind === 'run_agent') {
      ran.push(run.stage);
      run.succeed({ response: `${run.stage} done` });
    }
    expect(ran).toEqual(['understand', 'think', 'respond']);
    expect(run.effect).toMatchObject({ kind: 'terminate', reason: 'completed' });
    expect(instructionKindForEffect(run.effect.kind)).toBe(WIRE_INSTRUCTION_KIND.values.TERMINATE);
    expect(terminalReasonToWire('completed')).toBe(WIRE_TERMINAL_REASON.values.COMPLETED);
    expect(run.snap.envelope.edge_traversals).toHaveProperty(['respond->end'], 1);
    expect(sessionEdgeTraversals(run.snap.envelope.edge_traversals)).toEqual({
      'understand->think': 1,
      'think->respond': 1,
    });

    const dict = toStateDict({
      identity: {
        envelope_id: 'env_1',
        request_id: 'req_1',
        user_id: 'u',
        session_id: 's',
        raw_input: 'hello',
        received_at: OPTS.now,
      },
      stageOrder: pipelineStageOrder(config),
      envelope: run.snap.envelope,
      usage: run.snap.usage,
      terminated: run.snap.terminated,
      completedAt: OPTS.now,
      interrupt: null,
      passthrough: emptyPassthrough(),
    });
    expect(dict).toMatchObject({
      agent_hop_count: 3,
      llm_call_count: 3,
      iteration: 0,
      current_stage: 'end',
      terminated: true,
      terminal_reason: 'completed',
      stage_order: ['understand', 'think', 'respond'],
    });
  });

  it('gives the run a time budget of every hop at its agent timeout', () => {
    expect(pipelineToWorkflow(config).bounds?.timeout).toBe(300 * 21 * 1000);
    const slow = configOf({
      name: 'p',
      max_agent_hops: 4,
      agents: [{ name: 'a', timeout_seconds: 600 }],
    });
    expect(pipelineToWorkflow(slow).bounds?.timeout).toBe(600 * 4 * 1000);
  });
});

describe('pipelineToWorkflow: routing', () => {
  const config = configOf({
    name: 'router',
    agents: [
      {
        name: 'decide',
        routing_rules: [
          { condition: 'verdict', value: 'retry', target: 'decide' },
          { condition: 'score', value: 1, target: 'end' },
          { condition: 'flag', target: 'act' },
        ],
        default_next: 'act',
        error_next: 'act',
      },
      { name: 'act' },
    ],
  });

  it('turns each rule into an eq test on the output, in order; error_next and default_next carry over', () => {
    const stage = pipelineToWorkflow(config).stages[0]!;
    expect(stage.routing).toEqual([
      { when: { field: 'output.verdict', eq: 'retry' }, next: 'decide' },
      { when: { field: 'output.score', eq: 1 }, next: 'end' },
      { when: { field: 'output.flag', eq: null }, next: 'act' },
    ]);
    expect(stage).toMatchObject({ default_next: 'act', error_next: 'act' });
  });

  it('bounds a self-loop by a max_visits the hop bound always reaches first', () => {
    const looping = configOf({
      name: 'loop',
      max_iterations: 100,
      max_agent_hops: 4,
      agents: [{ name: 'a', routing_rules: [{ condition: 'again', value: true, target: 'a' }] }],
    });
    const workflow = loadPipelineWorkflow(looping).workflow;
    expect(workflow.stages[0]!.max_visits).toBe(5);
    const run = new Run(workflow);
    let hops = 0;
    while (run.effect.kind === 'run_agent') {
      hops += 1;
      run.succeed({ again: true });
    }
    expect(hops).toBe(4);
    expect(run.effect).toMatchObject({ kind: 'terminate', reason: 'max_agent_hops_exceeded' });
  });

  it('leaves out unlimited edge limits (max_count ≤ 0)', () => {
    const limited = configOf({
      name: 'p',
      agents: [{ name: 'a', default_next: 'b' }, { name: 'b' }],
      edge_limits: { 'a->b': 0, 'b->a': 2 },
    });
    expect(pipelineToWorkflow(limited).edge_limits).toEqual([{ from: 'b', to: 'a', max_count: 2 }]);
  });

  it('makes a Warden workflow name of any pipeline name, keeping the original in the description', () => {
    const odd = configOf({ name: '9 lives/v2', agents: [{ name: 'a' }] });
    const workflow = pipelineToWorkflow(odd);
    expect(workflow.name).toBe('_9_lives_v2');
    expect(workflow.description).toContain('"9 lives/v2"');
    expect(() => buildWorkflow(workflow)).not.toThrow();
  });

  it('loads pipelines with agents no route reaches (a resumed envelope may start there)', () => {
    const islands = configOf({ name: 'p', agents: [{ name: 'a' }, { name: 'b' }] });
    const thrown = (() => {
      try {
        buildWorkflow(pipelineToWorkflow(islands));
      } catch (error) {
        return error;
      }
      return undefined;
    })();
    expect(isWardenError(thrown, 'WORKFLOW_INVALID')).toBe(true);
    expect(loadPipelineWorkflow(islands).workflow.stages).toHaveLength(2);
    expect(loadPipelineWorkflow(islands, { start: 'b' }).workflow.start).toBe('b');
  });
});

describe('routing equality: Warden’s eq against §4.7’s rule', () => {
  /** [output JSON, rule value JSON, what Go's route() decides] */
  const CASES: ReadonlyArray<readonly [string, string, boolean]> = [
    ['{"v":"yes"}', '"yes"', true],
    ['{"v":"yes"}', '"Yes"', false],
    ['{"v":true}', 'true', true],
    ['{"v":true}', '"true"', false],
    ['{"v":1}', '1.0', true],
    ['{"v":2.5}', '2.5', true],
    ['{"v":1}', '"1"', false],
    ['{"v":0}', 'false', false],
    ['{"v":null}', 'null', true],
    ['{}', 'null', false],
    ['{"v":""}', 'null', false],
    ['{"v":[1,2]}', '[1,2]', true],
    ['{"v":[1,2]}', '[2,1]', false],
    ['{"v":{"a":1,"b":[true]}}', '{"b":[true],"a":1.0}', true],
    ['{"v":{"a":1}}', '{"a":1,"b":null}', false],
  ];

  it.each(CASES)('output %s, value %s → %s', (output, value, go) => {
    const config = configOf({
      name: 'p',
      agents: [
        {
          name: 'a',
          routing_rules: [{ condition: 'v', value: JSON.parse(value) as unknown, target: 'end' }],
        },
      ],
    });
    const rule = pipelineToWorkflow(config).stages[0]!.routing![0]!;
    if (!('when' in rule)) throw new Error('expected a when rule');
    const ctx = routingContext(newEnvelope('', 'a'), JSON.parse(output), undefined);
    expect(evaluateCondition(rule.when as never, ctx)).toBe(go);
  });

  function wardenMatches(condition: string, value: unknown, output: unknown): boolean {
    const config = configOf({
      name: 'p',
      agents: [{ name: 'a', routing_rules: [{ condition, value, target: 'end' }] }],
    });
    const rule = pipelineToWorkflow(config).stages[0]!.routing![0]!;
    if (!('when' in rule)) throw new Error('expected a when rule');
    return evaluateCondition(
      rule.when as never,
      routingContext(newEnvelope('', 'a'), output, undefined),
    );
  }

  it('differs from Go for keys every object inherits (documented in pipeline-workflow.ts)', () => {
    // Go: no `constructor` key in the output, so no match. Warden reads the inherited function.
    expect(wardenMatches('constructor', null, {})).toBe(true);
    expect(wardenMatches('constructor', null, { constructor: 1 })).toBe(false);
  });

  it('differs from Go for unpaired surrogates (documented in pipeline-workflow.ts)', () => {
    // Go decodes "\ud800" as U+FFFD, so Go matches; JavaScript keeps the lone surrogate.
    const output = JSON.parse('{"v":"\\ud800"}') as unknown;
    expect(wardenMatches('v', '\ufffd', output)).toBe(false);
  });
});

describe('defect 11: routes to clarification/confirmation raise the interrupt', () => {
  const config = configOf({
    name: 'ask',
    clarification_resume_stage: 'think',
    agents: [
      {
        name: 'think',
        routing_rules: [{ condition: 'needs_input', value: true, target: 'clarification' }],
        default_next: 'respond',
      },
      { name: 'respond' },
    ],
  });

  it('adds an interrupt-only stage that resumes at clarification_resume_stage', () => {
    const workflow = loadPipelineWorkflow(config).workflow;
    expect(workflow.stages.map((s) => s.name)).toEqual(['think', 'respond', 'clarification']);
    expect(workflow.stages[2]).toMatchObject({
      interrupt: { kind: 'clarification', prompt: '{{outputs.think.question}}' },
      resume_next: 'think',
    });
    expect(workflow.stages[2]!.agent).toBeUndefined();
  });

  it('raises the interrupt with the agent’s question, then continues at the resume stage', () => {
    const run = new Run(loadPipelineWorkflow(config).workflow);
    run.succeed({ needs_input: true, question: 'Which city?' });
    expect(run.effect).toMatchObject({
      kind: 'raise_interrupt',
      interrupt: { kind: 'clarification', stage: 'clarification', prompt: 'Which city?' },
    });
    expect(instructionKindForEffect(run.effect.kind)).toBe(
      WIRE_INSTRUCTION_KIND.values.WAIT_INTERRUPT,
    );
    expect(run.snap.envelope.current_stage).toBe('clarification');

    run.answer('clarification', 'clarification', { text: 'Paris' });
    expect(run.stage).toBe('think');
    expect(run.snap.envelope.outputs.clarification).toEqual({ text: 'Paris' });
    run.succeed({ needs_input: false });
    expect(run.stage).toBe('respond');
    // The documented difference: returning from the interrupt stage to an earlier agent is a loop-back.
    expect(run.snap.usage.iterations).toBe(1);
  });

  it('prompts with the message field for confirmation, one line per routing agent', () => {
    const two = configOf({
      name: 'confirm',
      confirmation_resume_stage: 'end',
      agents: [
        { name: 'a', default_next: 'confirmation' },
        { name: 'b', output_key: 'b_out', error_next: 'confirmation' },
      ],
    });
    const stage = loadPipelineWorkflow(two).workflow.stages[2]!;
    expect(stage.interrupt).toMatchObject({
      kind: 'confirmation',
      prompt: '{{outputs.a.message}}\n{{outputs.b_out.message}}',
    });
    expect(stage.resume_next).toBe('end');
  });

  it('runs an agent named clarification instead, as Go does', () => {
    const named = configOf({
      name: 'p',
      agents: [{ name: 'a', default_next: 'clarification' }, { name: 'clarification' }],
    });
    expect(pipelineToWorkflow(named).stages.map((s) => s.name)).toEqual(['a', 'clarification']);
    expect(pipelineToWorkflow(named).stages[1]!.agent?.kind).toBe('external');
  });

  it('refuses the route when the resume stage is not set', () => {
    const error = invalidParamsOf(() =>
      parsePipelineConfig(
        JSON.stringify({ name: 'p', agents: [{ name: 'a', error_next: 'confirmation' }] }),
      ),
    );
    expect(error.message).toContain('set confirmation_resume_stage');
  });
});

describe('defect 10: error routes count against edge limits', () => {
  it('terminates with max_loop_exceeded, sent as MAX_ITERATIONS_EXCEEDED', () => {
    const config = configOf({
      name: 'p',
      max_iterations: 10,
      agents: [
        { name: 'a', error_next: 'b' },
        { name: 'b', default_next: 'a' },
      ],
      edge_limits: [{ from: 'a', to: 'b', max_count: 1 }],
    });
    const run = new Run(loadPipelineWorkflow(config).workflow);
    run.fail('boom');
    expect(run.stage).toBe('b');
    run.succeed({});
    expect(run.stage).toBe('a');
    run.fail('boom again');
    expect(run.effect).toMatchObject({ kind: 'terminate', reason: 'max_loop_exceeded' });
    expect(terminalReasonToWire('max_loop_exceeded')).toBe(1);
    expect(jeevesReasonString('max_loop_exceeded')).toBe('max_loop_exceeded');
  });
});

describe('defect 19: outputs live under output_key and are never deleted', () => {
  it('stores under output_key, routes on the reported object, keeps outputs on a loop-back', () => {
    const config = configOf({
      name: 'p',
      max_iterations: 5,
      agents: [
        { name: 'plan', output_key: 'the_plan', default_next: 'critic' },
        {
          name: 'critic',
          routing_rules: [{ condition: 'verdict', value: 'loop', target: 'plan' }],
          default_next: 'end',
        },
      ],
    });
    const run = new Run(loadPipelineWorkflow(config).workflow);
    run.succeed({ steps: [1] });
    expect(run.snap.envelope.outputs).toHaveProperty('the_plan', { steps: [1] });
    expect(run.snap.envelope.outputs).not.toHaveProperty('plan');
    run.succeed({ verdict: 'loop' });
    expect(run.stage).toBe('plan');
    // Go deleted outputs.plan and outputs.critic on this loop-back.
    expect(run.snap.envelope.outputs).toMatchObject({
      the_plan: { steps: [1] },
      critic: { verdict: 'loop' },
    });
    expect(run.snap.usage.iterations).toBe(1);
  });
});

describe('initialStage', () => {
  const config = configOf({
    name: 'p',
    clarification_resume_stage: 'b',
    agents: [{ name: 'a', default_next: 'clarification' }, { name: 'b' }],
  });
  const none = { pending: false, answered: false };

  it('keeps an agent or end, and starts anything else at the first agent', () => {
    expect(initialStage(config, 'b', none)).toBe('b');
    expect(initialStage(config, 'end', none)).toBe('end');
    expect(initialStage(config, 'start', none)).toBe('a');
    expect(initialStage(config, 'ghost', none)).toBe('a');
  });

  it('waits at an interrupt stage until it is answered, then resumes', () => {
    expect(initialStage(config, 'clarification', { pending: true, answered: false })).toBe(
      'clarification',
    );
    expect(initialStage(config, 'clarification', { pending: false, answered: true })).toBe('b');
  });

  it('keeps an interrupt target the pipeline has no stage for (it fails as in Go)', () => {
    expect(initialStage(config, 'confirmation', none)).toBe('confirmation');
  });
});

/** A driver over a parallel run: outstanding branches, reported one stage at a time. */
class ParallelRun {
  readonly workflow: Workflow;
  snap: RunSnapshot;
  effect: Effect;

  constructor(workflow: Workflow) {
    this.workflow = workflow;
    const t = advance(
      workflow,
      {
        envelope: newEnvelope('hello', startStage(workflow)),
        usage: emptyUsage(),
        quota: quotaFor(workflow),
        terminated: null,
      },
      OPTS,
    );
    this.snap = t.snapshot;
    this.effect = t.effect;
  }

  /** The outstanding branches, in stage order. */
  get outstanding(): string[] {
    return outstandingSteps(this.workflow, this.snap.envelope).map((s) => s.stage);
  }

  succeed(stage: string, output: Record<string, unknown> = { done: stage }): this {
    const step = this.#stepOf(stage);
    this.snap = { ...this.snap, usage: addUsage(this.snap.usage, { llm_calls: 1 }) };
    return this.#apply(
      completeStep(this.workflow, this.snap, { step, stage, output, modelCalls: 1 }, OPTS),
    );
  }

  fail(stage: string, message: string): this {
    const step = this.#stepOf(stage);
    return this.#apply(
      failStep(this.workflow, this.snap, { step, stage, code: 'JOB_FAILED', message }, OPTS),
    );
  }

  stateDict(): JsonObject {
    return toStateDict({
      identity: {
        envelope_id: 'env_p',
        request_id: 'req_p',
        user_id: 'u',
        session_id: 's',
        raw_input: 'hello',
        received_at: OPTS.now,
      },
      stageOrder: this.workflow.stages.map((s) => s.name),
      envelope: this.snap.envelope,
      usage: this.snap.usage,
      terminated: this.snap.terminated,
      completedAt: null,
      interrupt: null,
      passthrough: emptyPassthrough(),
    });
  }

  #stepOf(stage: string): number {
    const found = outstandingSteps(this.workflow, this.snap.envelope).find(
      (s) => s.stage === stage,
    );
    if (!found) throw new Error(`${stage} is not outstanding (${this.outstanding.join(', ')})`);
    return found.step;
  }

  #apply(t: Transitioned): this {
    this.snap = t.snapshot;
    this.effect = t.effect;
    return this;
  }
}

/** plan → a, b → merge, every agent with Go's habitual `default_next` along the graph. */
const FORK_JOIN = {
  name: 'fork-join',
  default_run_mode: 'parallel',
  agents: [
    { name: 'plan', stage_order: 1, default_next: 'a' },
    { name: 'a', stage_order: 2, requires: ['plan'], default_next: 'merge' },
    { name: 'b', stage_order: 2, requires: ['plan'], default_next: 'end' },
    { name: 'merge', stage_order: 3, requires: ['a', 'b'] },
  ],
};

describe('pipelineToWorkflow: parallel pipelines (default_run_mode: parallel)', () => {
  it('emits mode: parallel with each agent’s requires, after and join_strategy, and no routing', () => {
    const config = configOf({
      ...FORK_JOIN,
      agents: [
        ...FORK_JOIN.agents.slice(0, 3),
        {
          name: 'merge',
          stage_order: 3,
          requires: ['a', 'b'],
          after: ['plan'],
          join_strategy: 'any',
          error_next: 'end',
        },
      ],
      edge_limits: { 'a->merge': 0 },
    });
    const input = pipelineToWorkflow(config, { start: 'b' });
    expect(input).toMatchObject({ mode: 'parallel', bounds: { max_agent_hops: 21 } });
    expect(input.start).toBeUndefined();
    expect(input.edge_limits).toBeUndefined();
    expect(input.max_concurrent_agents).toBeUndefined();
    const { workflow } = buildWorkflow(input, 'fork-join');
    // toEqual ignores undefined keys only: a default_next the stage kept would fail this.
    expect(
      workflow.stages.map((s) => ({
        name: s.name,
        requires: s.requires,
        after: s.after,
        join: s.join_strategy,
        default_next: s.default_next,
        error_next: s.error_next,
        routing: s.routing,
      })),
    ).toEqual([
      { name: 'plan', routing: [] },
      { name: 'a', requires: ['plan'], routing: [] },
      { name: 'b', requires: ['plan'], routing: [] },
      {
        name: 'merge',
        requires: ['a', 'b'],
        after: ['plan'],
        join: 'any',
        error_next: 'end',
        routing: [],
      },
    ]);
    workflow.stages.forEach((stage, i) =>
      expect(stage.agent).toEqual({ kind: 'external', config: agentConfigJson(config.agents[i]!) }),
    );
  });

  it('normalises without changing the meaning: repeats, after ∩ requires, any with one require', () => {
    const config = configOf({
      name: 'p',
      default_run_mode: 'parallel',
      agents: [
        { name: 'a' },
        { name: 'b' },
        { name: 'c', requires: ['a', 'a'], after: ['a', 'b', 'b'], join_strategy: 'any' },
        { name: 'd', requires: ['a', 'b'], join_strategy: 'all' },
      ],
    });
    const stages = loadPipelineWorkflow(config).workflow.stages;
    expect(stages[2]).toMatchObject({ requires: ['a'], after: ['b'] });
    expect(stages[2]!.join_strategy).toBeUndefined();
    expect(stages[3]!.join_strategy).toBeUndefined();
  });

  it('runs a fork/join: every agent once, one hop each, the join after both branches', () => {
    const run = new ParallelRun(loadPipelineWorkflow(configOf(FORK_JOIN)).workflow);
    expect(run.outstanding).toEqual(['plan']);
    run.succeed('plan');
    expect(run.outstanding).toEqual(['a', 'b']);
    expect(run.stateDict()).toMatchObject({
      parallel_mode: true,
      active_stages: { a: true, b: true },
      completed_stage_set: { plan: true },
      failed_stages: {},
      agent_hop_count: 3,
    });
    run.succeed('b');
    expect(run.outstanding).toEqual(['a']);
    run.succeed('a');
    expect(run.outstanding).toEqual(['merge']);
    run.succeed('merge');
    expect(run.effect).toMatchObject({ kind: 'terminate', reason: 'completed' });
    expect(run.stateDict()).toMatchObject({
      parallel_mode: true,
      active_stages: {},
      completed_stage_set: { plan: true, a: true, b: true, merge: true },
      agent_hop_count: 4,
      llm_call_count: 4,
      iteration: 0,
      current_stage: 'end',
      terminal_reason: 'completed',
    });
  });

  it('join any: the first branch to complete wins, the other is cancelled and in no set', () => {
    const config = configOf({
      ...FORK_JOIN,
      agents: [
        ...FORK_JOIN.agents.slice(0, 3),
        { name: 'merge', requires: ['a', 'b'], join_strategy: 'any' },
      ],
    });
    const run = new ParallelRun(loadPipelineWorkflow(config).workflow);
    run.succeed('plan').succeed('b');
    expect(run.outstanding).toEqual(['merge']);
    expect(run.snap.envelope.branches?.a?.status).toBe('cancelled');
    expect(run.stateDict()).toMatchObject({
      active_stages: { merge: true },
      completed_stage_set: { plan: true, b: true },
      failed_stages: {},
    });
    run.succeed('merge');
    expect(run.effect).toMatchObject({ kind: 'terminate', reason: 'completed' });
    // a was issued with b (one hop each) before b won.
    expect(run.snap.usage.agent_hops).toBe(4);
  });

  it('a failing branch without error_next ends the run tool_failed_fatally, cancelling the other', () => {
    const run = new ParallelRun(loadPipelineWorkflow(configOf(FORK_JOIN)).workflow);
    run.succeed('plan').fail('a', 'model down');
    expect(run.effect).toMatchObject({ kind: 'terminate', reason: 'tool_failed_fatally' });
    expect(run.snap.envelope.branches?.b?.status).toBe('cancelled');
    expect(run.stateDict()).toMatchObject({
      active_stages: {},
      completed_stage_set: { plan: true },
      failed_stages: { a: 'model down' },
      terminal_reason: 'tool_failed_fatally',
    });
  });

  it('error_next: end tolerates the failure; error_next: <agent> runs that agent only on failure', () => {
    const config = configOf({
      name: 'p',
      default_run_mode: 'parallel',
      agents: [
        { name: 'primary', error_next: 'fallback' },
        { name: 'notes', error_next: 'end' },
        { name: 'fallback' },
        {
          name: 'write',
          requires: ['primary', 'fallback'],
          join_strategy: 'any',
          after: ['notes'],
        },
      ],
    });
    const run = new ParallelRun(loadPipelineWorkflow(config).workflow);
    expect(run.outstanding).toEqual(['primary', 'notes']);
    run.fail('notes', 'no notes').fail('primary', 'primary down');
    expect(run.outstanding).toEqual(['fallback']);
    run.succeed('fallback');
    expect(run.outstanding).toEqual(['write']);
    run.succeed('write');
    expect(run.effect).toMatchObject({ kind: 'terminate', reason: 'completed' });
    expect(run.stateDict()).toMatchObject({
      completed_stage_set: { fallback: true, write: true },
      failed_stages: { notes: 'no notes', primary: 'primary down' },
    });
  });

  it('bounds apply as in sequential: a fork wider than the hops left ends the run there', () => {
    const config = configOf({
      name: 'wide',
      default_run_mode: 'parallel',
      max_agent_hops: 3,
      agents: [
        { name: 'plan' },
        { name: 'a', requires: ['plan'] },
        { name: 'b', requires: ['plan'] },
        { name: 'c', requires: ['plan'] },
      ],
    });
    const run = new ParallelRun(loadPipelineWorkflow(config).workflow);
    run.succeed('plan');
    expect(run.effect).toMatchObject({ kind: 'terminate', reason: 'max_agent_hops_exceeded' });
    expect(run.snap.usage.agent_hops).toBe(1);
    expect(run.outstanding).toEqual([]);
    const llm = configOf({ ...config, max_agent_hops: 21, max_llm_calls: 1 });
    const bounded = new ParallelRun(loadPipelineWorkflow(llm).workflow).succeed('plan');
    expect(bounded.effect).toMatchObject({ kind: 'terminate', reason: 'max_llm_calls_exceeded' });
  });
});
