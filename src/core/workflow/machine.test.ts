import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { isWardenError } from '../errors.ts';
import type { InterruptKind, InterruptResponse } from '../interrupt.ts';
import { emptyUsage, mergeQuota, type Quota, type TerminalReason } from '../quota.ts';
import { newEnvelope } from './envelope.ts';
import { buildWorkflow } from './load.ts';
import {
  advance,
  cancelRun,
  completeStep,
  type Effect,
  failStep,
  type MachineOptions,
  nextInstruction,
  resumeAfterInterrupt,
  route,
  routingContext,
  type RunSnapshot,
  startStage,
  type Transitioned,
} from './machine.ts';
import type { Workflow } from './schema.ts';

const END = 'end';

// ---------------------------------------------------------------------------------------------
// Helpers shared by the unit tests and the model test
// ---------------------------------------------------------------------------------------------

// The machine must run any workflow that loads, including ones loaded with unreachable stages
// allowed (several fixtures and the generated workflows have stages no route leads to).
function load(raw: Record<string, unknown>): Workflow {
  return buildWorkflow({ name: 'test', ...raw }, 'machine.test.yaml', { allowUnreachable: true })
    .workflow;
}

/** The quota the kernel derives from a workflow's bounds (see the orchestrator's startRun). */
function quotaFor(workflow: Workflow, extra: Partial<Quota> = {}): Quota {
  const b = workflow.bounds;
  return mergeQuota({
    max_iterations: b.max_iterations,
    max_llm_calls: b.max_llm_calls,
    max_agent_hops: b.max_agent_hops,
    max_tool_calls: b.max_tool_calls,
    max_input_tokens: b.max_input_tokens,
    max_output_tokens: b.max_output_tokens,
    timeout_ms: b.timeout,
    soft_timeout_ms: b.soft_timeout,
    ...extra,
  });
}

function freshSnapshot(workflow: Workflow, extra: Partial<Quota> = {}): RunSnapshot {
  return {
    envelope: newEnvelope({ topic: 'x' }, startStage(workflow)),
    usage: emptyUsage(),
    quota: quotaFor(workflow, extra),
    terminated: null,
  };
}

function opts(elapsedMs = 0): MachineOptions {
  return { elapsedMs, now: 1_000 + elapsedMs };
}

function thrownBy(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  return undefined;
}

function runAgent(effect: Effect): { stage: string; step: number; fresh: boolean } {
  if (effect.kind !== 'run_agent')
    throw new Error(`expected run_agent, got ${JSON.stringify(effect)}`);
  return effect;
}

/** Completes the pending agent step with `output`. */
function complete(
  workflow: Workflow,
  t: Transitioned,
  output: unknown,
  elapsedMs = 0,
): Transitioned {
  const { stage, step } = runAgent(t.effect);
  return completeStep(
    workflow,
    t.snapshot,
    { step, stage, output, modelCalls: 1 },
    opts(elapsedMs),
  );
}

function reasonOf(effect: Effect): TerminalReason {
  if (effect.kind !== 'terminate')
    throw new Error(`expected terminate, got ${JSON.stringify(effect)}`);
  return effect.reason;
}

// ---------------------------------------------------------------------------------------------
// Reference model: an independent re-statement of the routing and instruction rules
// ---------------------------------------------------------------------------------------------

interface GenStage {
  readonly name: string;
  readonly kind: 'llm' | 'noop';
  /** What a noop agent always outputs: `{ v: noopV }`. */
  readonly noopV: number;
  readonly rules: readonly { readonly eq: number; readonly next: string }[];
  readonly defaultNext: string | undefined;
  readonly errorNext: string | undefined;
  readonly maxVisits: number | undefined;
}

interface GenWorkflow {
  readonly stages: readonly GenStage[];
  readonly maxIterations: number;
  readonly maxLlmCalls: number;
  readonly maxAgentHops: number;
  readonly timeoutMs: number | undefined;
  readonly edgeLimits: readonly {
    readonly from: string;
    readonly to: string;
    readonly max_count: number;
  }[];
}

type RefEffect =
  | { kind: 'run_agent'; stage: string; step: number; fresh: boolean }
  | { kind: 'terminate'; reason: string };

interface RefRun {
  stage: string;
  step: number;
  pending: { step: number; stage: string } | null;
  terminated: string | null;
  hops: number;
  iterations: number;
  llmCalls: number;
  visits: Record<string, number>;
  edges: Record<string, number>;
}

function refStart(g: GenWorkflow): RefRun {
  return {
    stage: g.stages[0]!.name,
    step: 0,
    pending: null,
    terminated: null,
    hops: 0,
    iterations: 0,
    llmCalls: 0,
    visits: {},
    edges: {},
  };
}

function refStage(g: GenWorkflow, name: string): GenStage | undefined {
  for (const s of g.stages) if (s.name === name) return s;
  return undefined;
}

/** First matching `{when: {field: output.v, eq}, next}` rule, then default_next, then end. */
function refRoute(stage: GenStage, output: unknown): string {
  const v =
    typeof output === 'object' && output !== null && !Array.isArray(output)
      ? (output as { v?: unknown }).v
      : undefined;
  for (const rule of stage.rules) {
    if (typeof v === 'number' && v === rule.eq) return rule.next;
  }
  return stage.defaultNext ?? END;
}

function refEnd(run: RefRun, reason: string): RefEffect {
  run.terminated = reason;
  run.pending = null;
  return { kind: 'terminate', reason };
}

/** The instruction algorithm, in the documented order; applies what it decides. */
function refInstruction(g: GenWorkflow, run: RefRun, elapsedMs: number): RefEffect {
  if (run.terminated !== null) return { kind: 'terminate', reason: run.terminated };
  if (run.stage === END) return refEnd(run, 'completed');
  if (run.pending !== null) {
    return { kind: 'run_agent', stage: run.pending.stage, step: run.pending.step, fresh: false };
  }
  if (run.iterations >= g.maxIterations) return refEnd(run, 'max_iterations_exceeded');
  if (run.llmCalls >= g.maxLlmCalls) return refEnd(run, 'max_llm_calls_exceeded');
  if (run.hops >= g.maxAgentHops) return refEnd(run, 'max_agent_hops_exceeded');
  if (g.timeoutMs !== undefined && elapsedMs >= g.timeoutMs) return refEnd(run, 'timeout_exceeded');
  const stage = refStage(g, run.stage);
  if (stage === undefined) return refEnd(run, 'failed');
  run.step += 1;
  run.hops += 1;
  run.visits[stage.name] = (run.visits[stage.name] ?? 0) + 1;
  run.pending = { step: run.step, stage: stage.name };
  return { kind: 'run_agent', stage: stage.name, step: run.step, fresh: true };
}

function refMove(
  g: GenWorkflow,
  run: RefRun,
  from: string,
  to: string,
  elapsedMs: number,
): RefEffect {
  const edge = `${from}->${to}`;
  run.edges[edge] = (run.edges[edge] ?? 0) + 1;
  run.stage = to;
  if (to !== END) {
    const limit = g.edgeLimits.find((l) => l.from === from && l.to === to);
    if (limit !== undefined && run.edges[edge] > limit.max_count)
      return refEnd(run, 'max_loop_exceeded');
    const position = (name: string): number => g.stages.findIndex((s) => s.name === name);
    if (position(to) <= position(from)) run.iterations += 1;
    const target = refStage(g, to)!;
    if (target.maxVisits !== undefined && (run.visits[to] ?? 0) >= target.maxVisits) {
      return refEnd(run, 'max_visits_exceeded');
    }
  }
  return refInstruction(g, run, elapsedMs);
}

function refComplete(
  g: GenWorkflow,
  run: RefRun,
  output: unknown,
  elapsedMs: number,
): { effect: RefEffect; to: string } {
  const stage = refStage(g, run.pending!.stage)!;
  run.pending = null;
  const to = refRoute(stage, output);
  return { effect: refMove(g, run, stage.name, to, elapsedMs), to };
}

function refFail(g: GenWorkflow, run: RefRun, code: string, elapsedMs: number): RefEffect {
  const stage = refStage(g, run.pending!.stage)!;
  run.pending = null;
  if (code === 'CANCELED') return refEnd(run, 'user_cancelled');
  if (stage.errorNext !== undefined) return refMove(g, run, stage.name, stage.errorNext, elapsedMs);
  // An llm stage's failures are the model's; other stages fail as tools unless the provider failed.
  return refEnd(
    run,
    code === 'PROVIDER_ERROR' || stage.kind === 'llm'
      ? 'llm_failed_fatally'
      : 'tool_failed_fatally',
  );
}

/** The workflow file for a generated spec. */
function toRaw(g: GenWorkflow): Record<string, unknown> {
  return {
    bounds: {
      max_iterations: g.maxIterations,
      max_llm_calls: g.maxLlmCalls,
      max_agent_hops: g.maxAgentHops,
      ...(g.timeoutMs === undefined ? {} : { timeout: g.timeoutMs }),
    },
    edge_limits: g.edgeLimits.map((l) => ({ ...l })),
    stages: g.stages.map((s) => ({
      name: s.name,
      agent:
        s.kind === 'llm'
          ? { kind: 'llm', prompt: `run ${s.name}`, output: 'json' }
          : { kind: 'noop', output: { v: s.noopV } },
      routing: s.rules.map((r) => ({ when: { field: 'output.v', eq: r.eq }, next: r.next })),
      ...(s.defaultNext === undefined ? {} : { default_next: s.defaultNext }),
      ...(s.errorNext === undefined ? {} : { error_next: s.errorNext }),
      ...(s.maxVisits === undefined ? {} : { max_visits: s.maxVisits }),
    })),
  };
}

/** Stages that can reach themselves through routing rules, default_next or error_next. */
function stagesOnCycles(stages: readonly Omit<GenStage, 'maxVisits'>[]): Set<string> {
  const successors = new Map(
    stages.map((s) => [
      s.name,
      [...s.rules.map((r) => r.next), s.defaultNext, s.errorNext].filter(
        (t): t is string => t !== undefined && t !== END,
      ),
    ]),
  );
  const out = new Set<string>();
  for (const s of stages) {
    const seen = new Set<string>();
    const queue = [...successors.get(s.name)!];
    while (queue.length > 0) {
      const next = queue.shift()!;
      if (next === s.name) {
        out.add(s.name);
        break;
      }
      if (seen.has(next)) continue;
      seen.add(next);
      queue.push(...successors.get(next)!);
    }
  }
  return out;
}

const genWorkflowArb: fc.Arbitrary<GenWorkflow> = fc.integer({ min: 1, max: 5 }).chain((n) => {
  const names = Array.from({ length: n }, (_, i) => `s${i}`);
  const target = fc.constantFrom(...names, END);
  const stageArb = (name: string) =>
    fc.record({
      name: fc.constant(name),
      kind: fc.constantFrom<'llm' | 'noop'>('llm', 'noop'),
      noopV: fc.integer({ min: 0, max: 3 }),
      rules: fc.array(fc.record({ eq: fc.integer({ min: 0, max: 3 }), next: target }), {
        maxLength: 3,
      }),
      defaultNext: fc.option(target, { nil: undefined }),
      errorNext: fc.option(target, { nil: undefined }),
      visitsLimit: fc.integer({ min: 1, max: 4 }),
      limitAnyway: fc.boolean(),
      defaultEdgeLimit: fc.option(fc.integer({ min: 1, max: 2 }), { nil: undefined }),
    });
  return fc
    .record({
      stages: fc.tuple(...names.map(stageArb)),
      maxIterations: fc.integer({ min: 1, max: 4 }),
      maxLlmCalls: fc.integer({ min: 1, max: 6 }),
      maxAgentHops: fc.integer({ min: 1, max: 8 }),
      timeoutMs: fc.option(fc.integer({ min: 1, max: 60 }), { nil: undefined }),
      edgeLimits: fc.uniqueArray(
        fc.record({
          from: fc.constantFrom(...names),
          to: fc.constantFrom(...names),
          max_count: fc.integer({ min: 1, max: 3 }),
        }),
        { maxLength: 3, selector: (l) => `${l.from}->${l.to}` },
      ),
    })
    .map(({ stages, edgeLimits, ...rest }): GenWorkflow => {
      const cyclic = stagesOnCycles(stages);
      // Also limit some edges that are actually taken, so edge limits get hit.
      const limits = [...edgeLimits];
      for (const s of stages) {
        const to = s.defaultNext;
        if (s.defaultEdgeLimit === undefined || to === undefined || to === END) continue;
        if (limits.some((l) => l.from === s.name && l.to === to)) continue;
        limits.push({ from: s.name, to, max_count: s.defaultEdgeLimit });
      }
      return {
        ...rest,
        edgeLimits: limits,
        stages: stages.map(({ visitsLimit, limitAnyway, defaultEdgeLimit: _limit, ...s }) => ({
          ...s,
          maxVisits: cyclic.has(s.name) || limitAnyway ? visitsLimit : undefined,
        })),
      };
    });
});

interface Action {
  readonly fail: boolean;
  readonly failCode: 'PROVIDER_ERROR' | 'INTERNAL' | 'CANCELED';
  /** What an llm stage answers; noop stages always answer their configured output. */
  readonly output: unknown;
  /** Ask again (a duplicate delivery) before reporting. */
  readonly askAgain: boolean;
  readonly elapsedMs: number;
}

const actionArb: fc.Arbitrary<Action> = fc.record({
  fail: fc.integer({ min: 0, max: 9 }).map((x) => x < 2),
  failCode: fc.constantFrom('PROVIDER_ERROR', 'INTERNAL', 'CANCELED'),
  output: fc.oneof(
    { weight: 6, arbitrary: fc.record({ v: fc.integer({ min: 0, max: 3 }) }) },
    { weight: 1, arbitrary: fc.record({ v: fc.constantFrom('1', '0', true, null) }) },
    { weight: 1, arbitrary: fc.constantFrom('plain text', null, [1, 2], 3) },
  ),
  askAgain: fc.boolean(),
  elapsedMs: fc.integer({ min: 0, max: 10 }),
});

function expectSameEffect(real: Effect, ref: RefEffect, where: string): void {
  expect(real.kind, where).toBe(ref.kind);
  if (real.kind === 'run_agent' && ref.kind === 'run_agent') {
    expect(
      { kind: real.kind, stage: real.stage, step: real.step, fresh: real.fresh },
      where,
    ).toEqual(ref);
  }
  if (real.kind === 'terminate' && ref.kind === 'terminate')
    expect(real.reason, where).toBe(ref.reason);
}

function expectSameState(snap: RunSnapshot, run: RefRun, where: string): void {
  expect(snap.envelope.current_stage, where).toBe(run.stage);
  expect(snap.envelope.step, where).toBe(run.step);
  expect(snap.usage.agent_hops, where).toBe(run.hops);
  expect(snap.usage.iterations, where).toBe(run.iterations);
  expect(snap.usage.llm_calls, where).toBe(run.llmCalls);
  expect(snap.envelope.visits, where).toEqual(run.visits);
  expect(snap.envelope.edge_traversals, where).toEqual(run.edges);
  expect(snap.terminated?.reason ?? null, where).toBe(run.terminated);
  expect(
    snap.envelope.pending === null
      ? null
      : { step: snap.envelope.pending.step, stage: snap.envelope.pending.stage },
    where,
  ).toEqual(run.pending);
}

describe('workflow machine: reference model', () => {
  it('generated workflows are valid (the generator only makes loadable files)', () => {
    fc.assert(
      fc.property(genWorkflowArb, (g) => {
        expect(() => load(toRaw(g))).not.toThrow();
      }),
      { numRuns: 200 },
    );
  });

  it('property: advance/completeStep/failStep agree with the reference model step by step', () => {
    fc.assert(
      fc.property(
        genWorkflowArb,
        fc.array(actionArb, { minLength: 10, maxLength: 10 }),
        (g, actions) => {
          const workflow = load(toRaw(g));
          const run = refStart(g);
          let elapsed = 0;
          let real = advance(workflow, freshSnapshot(workflow), opts(elapsed));
          let ref = refInstruction(g, run, elapsed);
          const effects: Effect[] = [real.effect];
          expectSameEffect(real.effect, ref, 'start');
          expectSameState(real.snapshot, run, 'start');

          for (const [i, action] of actions.entries()) {
            if (real.effect.kind === 'terminate') break;
            const where = `action ${i}`;
            const { stage, step } = runAgent(real.effect);
            const spec = refStage(g, stage)!;

            if (action.askAgain) {
              // A duplicate request while the step is outstanding returns the same step, counts nothing.
              const before = structuredClone(real.snapshot);
              const again = nextInstruction(workflow, real.snapshot, elapsed);
              expect(again, where).toEqual({ kind: 'run_agent', stage, step, fresh: false });
              const readvanced = advance(workflow, real.snapshot, opts(elapsed));
              expect(readvanced.effect, where).toEqual({
                kind: 'run_agent',
                stage,
                step,
                fresh: false,
              });
              expect(readvanced.snapshot, where).toEqual(before);
              expect(real.snapshot, where).toEqual(before);
              effects.push(readvanced.effect);
              expectSameEffect(readvanced.effect, refInstruction(g, run, elapsed), where);
            }

            elapsed += action.elapsedMs;
            // The worker's model call is recorded on the process before the step reports back.
            const snapshot = structuredClone(real.snapshot);
            if (spec.kind === 'llm') {
              snapshot.usage.llm_calls += 1;
              run.llmCalls += 1;
            }
            // Neither call changes its input (the machine shares only immutable entries).
            const input = structuredClone(snapshot);
            if (action.fail) {
              real = failStep(
                workflow,
                snapshot,
                { step, stage, code: action.failCode, message: 'boom' },
                opts(elapsed),
              );
              ref = refFail(g, run, action.failCode, elapsed);
              if (spec.errorNext !== undefined && action.failCode !== 'CANCELED') {
                expect(real.routes, where).toEqual([
                  { from: stage, to: spec.errorNext, via: 'error_next' },
                ]);
              }
            } else {
              const output = spec.kind === 'noop' ? { v: spec.noopV } : action.output;
              real = completeStep(
                workflow,
                snapshot,
                { step, stage, output, modelCalls: spec.kind === 'llm' ? 1 : 0 },
                opts(elapsed),
              );
              const refResult = refComplete(g, run, output, elapsed);
              ref = refResult.effect;
              expect(
                real.routes.map((r) => r.to),
                where,
              ).toEqual([refResult.to]);
              expect(real.snapshot.envelope.outputs[stage], where).toEqual(output);
            }
            expect(snapshot, where).toEqual(input);
            effects.push(real.effect);
            expectSameEffect(real.effect, ref, where);
            expectSameState(real.snapshot, run, where);
          }

          // Hop bound ≤ 8 and 10 actions: every run has ended.
          expect(real.effect.kind).toBe('terminate');
          expect(real.snapshot.envelope.pending).toBeNull();
          // Asking a terminated run again repeats the terminal effect and changes nothing.
          expect(nextInstruction(workflow, real.snapshot, elapsed)).toEqual(real.effect);
          expect(advance(workflow, real.snapshot, opts(elapsed)).snapshot).toEqual(real.snapshot);
          // A hop is counted exactly once per issued step.
          const issued = effects.filter((e) => e.kind === 'run_agent' && e.fresh).length;
          expect(real.snapshot.usage.agent_hops).toBe(issued);
          expect(real.snapshot.usage.agent_hops).toBeLessThanOrEqual(g.maxAgentHops);
          expect(Object.values(real.snapshot.envelope.visits).reduce((a, b) => a + b, 0)).toBe(
            issued,
          );
          // max_visits is never exceeded.
          for (const s of g.stages) {
            if (s.maxVisits !== undefined) {
              expect(real.snapshot.envelope.visits[s.name] ?? 0).toBeLessThanOrEqual(s.maxVisits);
            }
          }
        },
      ),
      { numRuns: 400 },
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Unit tests
// ---------------------------------------------------------------------------------------------

const TWO_STAGES = {
  stages: [
    { name: 'a', agent: { kind: 'llm', prompt: 'go', output: 'json' }, default_next: 'b' },
    { name: 'b', agent: { kind: 'noop' } },
  ],
};

describe('instructions', () => {
  it('nextInstruction is idempotent while a step is pending and changes nothing', () => {
    const workflow = load(TWO_STAGES);
    const initial = freshSnapshot(workflow);
    const copy = structuredClone(initial);
    // Before anything is issued: the same proposal, twice, without applying it.
    expect(nextInstruction(workflow, initial, 0)).toEqual({
      kind: 'run_agent',
      stage: 'a',
      step: 1,
      fresh: true,
    });
    expect(nextInstruction(workflow, initial, 0)).toEqual({
      kind: 'run_agent',
      stage: 'a',
      step: 1,
      fresh: true,
    });
    expect(initial).toEqual(copy);

    const issued = advance(workflow, initial, opts());
    expect(initial).toEqual(copy); // advance does not mutate its input
    expect(issued.effect).toEqual({ kind: 'run_agent', stage: 'a', step: 1, fresh: true });
    expect(issued.snapshot.usage.agent_hops).toBe(1);
    expect(issued.snapshot.envelope.pending).toEqual({ step: 1, stage: 'a', kind: 'agent' });

    const pendingCopy = structuredClone(issued.snapshot);
    const first = nextInstruction(workflow, issued.snapshot, 0);
    const second = nextInstruction(workflow, issued.snapshot, 0);
    expect(first).toEqual({ kind: 'run_agent', stage: 'a', step: 1, fresh: false });
    expect(second).toEqual(first);
    expect(issued.snapshot).toEqual(pendingCopy);

    const again = advance(workflow, issued.snapshot, opts());
    expect(again.effect).toEqual(first);
    expect(again.snapshot).toEqual(pendingCopy);
    expect(again.snapshot.usage.agent_hops).toBe(1);
    expect(again.snapshot.envelope.visits).toEqual({ a: 1 });
  });

  it('a pending step is returned even when a bound has since been reached', () => {
    const workflow = load({ ...TWO_STAGES, bounds: { timeout: 100 } });
    const issued = advance(workflow, freshSnapshot(workflow), opts());
    expect(nextInstruction(workflow, issued.snapshot, 10_000)).toMatchObject({
      kind: 'run_agent',
      fresh: false,
    });
  });

  it('runs to completion and counts one hop per stage', () => {
    const workflow = load(TWO_STAGES);
    let t = advance(workflow, freshSnapshot(workflow), opts());
    t = complete(workflow, t, { v: 1 });
    expect(t.effect).toEqual({ kind: 'run_agent', stage: 'b', step: 2, fresh: true });
    expect(t.routes).toEqual([{ from: 'a', to: 'b', via: 'default_next' }]);
    t = complete(workflow, t, {});
    expect(t.effect).toEqual({
      kind: 'terminate',
      reason: 'completed',
      message: 'workflow completed',
    });
    expect(t.snapshot.terminated).toEqual({ reason: 'completed', message: 'workflow completed' });
    expect(t.snapshot.usage.agent_hops).toBe(2);
    expect(t.snapshot.usage.iterations).toBe(0);
    expect(t.snapshot.envelope.history.map((h) => [h.step, h.stage, h.status])).toEqual([
      [1, 'a', 'ok'],
      [2, 'b', 'ok'],
    ]);
  });

  it('without default_next or a matching rule the run ends', () => {
    const workflow = load({
      stages: [
        {
          name: 'a',
          agent: { kind: 'noop' },
          routing: [{ when: { field: 'output.v', eq: 1 }, next: 'b' }],
        },
        { name: 'b', agent: { kind: 'noop' } },
      ],
    });
    const t = complete(workflow, advance(workflow, freshSnapshot(workflow), opts()), { v: 2 });
    expect(t.routes).toEqual([{ from: 'a', to: END, via: 'end' }]);
    expect(reasonOf(t.effect)).toBe('completed');
  });

  it('starts at workflow.start when given', () => {
    const workflow = load({ ...TWO_STAGES, start: 'b' });
    expect(runAgent(advance(workflow, freshSnapshot(workflow), opts()).effect).stage).toBe('b');
  });

  it('checks bounds in order before issuing a step', () => {
    const workflow = load({
      ...TWO_STAGES,
      bounds: { max_iterations: 2, max_llm_calls: 2, max_agent_hops: 2 },
    });
    const at = (usage: Partial<RunSnapshot['usage']>, elapsed = 0): Effect => {
      const snap = freshSnapshot(workflow);
      Object.assign(snap.usage, usage);
      return advance(workflow, snap, opts(elapsed)).effect;
    };
    expect(reasonOf(at({ iterations: 2, llm_calls: 2, agent_hops: 2 }))).toBe(
      'max_iterations_exceeded',
    );
    expect(reasonOf(at({ llm_calls: 2, agent_hops: 2 }))).toBe('max_llm_calls_exceeded');
    expect(reasonOf(at({ agent_hops: 2 }))).toBe('max_agent_hops_exceeded');
    expect(reasonOf(at({}, DEFAULT_TIMEOUT))).toBe('timeout_exceeded');
    expect(at({ iterations: 1, llm_calls: 1, agent_hops: 1 }).kind).toBe('run_agent');
  });

  it('a completed run stays completed even with bounds reached (end is checked first)', () => {
    const workflow = load({
      stages: [{ name: 'a', agent: { kind: 'noop' } }],
      bounds: { max_agent_hops: 1 },
    });
    const t = complete(workflow, advance(workflow, freshSnapshot(workflow), opts()), {});
    expect(t.snapshot.usage.agent_hops).toBe(1);
    expect(reasonOf(t.effect)).toBe('completed');
  });
});

const DEFAULT_TIMEOUT = mergeQuota(undefined).timeout_ms;

describe('stale reports', () => {
  it('a completeStep for the wrong step throws INVALID_STATE and changes nothing', () => {
    const workflow = load(TWO_STAGES);
    const issued = advance(workflow, freshSnapshot(workflow), opts());
    const copy = structuredClone(issued.snapshot);
    for (const report of [
      { step: 2, stage: 'a' },
      { step: 0, stage: 'a' },
      { step: 1, stage: 'b' },
    ]) {
      const error = thrownBy(() =>
        completeStep(workflow, issued.snapshot, { ...report, output: {}, modelCalls: 0 }, opts()),
      );
      expect(isWardenError(error, 'INVALID_STATE'), JSON.stringify(report)).toBe(true);
      expect((error as Error).message).toContain('expects step 1 (a)');
    }
    expect(issued.snapshot).toEqual(copy);
  });

  it('replaying a report that was already applied is stale', () => {
    const workflow = load(TWO_STAGES);
    const issued = advance(workflow, freshSnapshot(workflow), opts());
    const done = complete(workflow, issued, { v: 1 });
    const replay = thrownBy(() =>
      completeStep(
        workflow,
        done.snapshot,
        { step: 1, stage: 'a', output: {}, modelCalls: 1 },
        opts(),
      ),
    );
    expect(isWardenError(replay, 'INVALID_STATE')).toBe(true);
    const failReplay = thrownBy(() =>
      failStep(
        workflow,
        done.snapshot,
        { step: 1, stage: 'a', code: 'INTERNAL', message: 'x' },
        opts(),
      ),
    );
    expect(isWardenError(failReplay, 'INVALID_STATE')).toBe(true);
  });

  it('a report after the run was cancelled is stale', () => {
    const workflow = load(TWO_STAGES);
    const issued = advance(workflow, freshSnapshot(workflow), opts());
    const cancelled = cancelRun(issued.snapshot, 'stop');
    expect(cancelled.terminated).toEqual({ reason: 'user_cancelled', message: 'stop' });
    expect(cancelled.envelope.pending).toBeNull();
    expect(issued.snapshot.terminated).toBeNull();
    const error = thrownBy(() =>
      completeStep(workflow, cancelled, { step: 1, stage: 'a', output: {}, modelCalls: 0 }, opts()),
    );
    expect(isWardenError(error, 'INVALID_STATE')).toBe(true);
    expect((error as Error).message).toContain('has terminated');
    expect(advance(workflow, cancelled, opts()).effect).toEqual({
      kind: 'terminate',
      reason: 'user_cancelled',
      message: 'stop',
    });
  });

  it('resumeAfterInterrupt without a pending interrupt throws INVALID_STATE', () => {
    const workflow = load(TWO_STAGES);
    const issued = advance(workflow, freshSnapshot(workflow), opts());
    const error = thrownBy(() =>
      resumeAfterInterrupt(
        workflow,
        issued.snapshot,
        { id: 'int_1', kind: 'confirmation', stage: 'a', response: { approved: true } },
        opts(),
      ),
    );
    expect(isWardenError(error, 'INVALID_STATE')).toBe(true);
  });
});

describe('loops', () => {
  it('an edge limit stops the run with max_loop_exceeded', () => {
    const workflow = load({
      bounds: { max_iterations: 10 },
      edge_limits: [{ from: 'a', to: 'a', max_count: 2 }],
      stages: [{ name: 'a', agent: { kind: 'noop' }, default_next: 'a', max_visits: 10 }],
    });
    let t = advance(workflow, freshSnapshot(workflow), opts());
    t = complete(workflow, t, {});
    expect(runAgent(t.effect).step).toBe(2);
    t = complete(workflow, t, {});
    expect(runAgent(t.effect).step).toBe(3);
    t = complete(workflow, t, {});
    expect(t.effect).toEqual({
      kind: 'terminate',
      reason: 'max_loop_exceeded',
      message: 'edge limit exceeded: a->a (max 2)',
    });
    expect(t.snapshot.envelope.edge_traversals).toEqual({ 'a->a': 3 });
    expect(t.snapshot.usage.agent_hops).toBe(3);
  });

  it('max_visits stops the run with max_visits_exceeded', () => {
    const workflow = load({
      bounds: { max_iterations: 10 },
      stages: [{ name: 'a', agent: { kind: 'noop' }, default_next: 'a', max_visits: 2 }],
    });
    let t = advance(workflow, freshSnapshot(workflow), opts());
    t = complete(workflow, t, {});
    expect(runAgent(t.effect).step).toBe(2);
    t = complete(workflow, t, {});
    expect(reasonOf(t.effect)).toBe('max_visits_exceeded');
    expect(t.snapshot.envelope.visits).toEqual({ a: 2 });
    expect(t.snapshot.usage.agent_hops).toBe(2);
    expect(t.snapshot.envelope.pending).toBeNull();
  });

  it('a loop-back counts one iteration; forward moves count none', () => {
    const workflow = load({
      bounds: { max_iterations: 2 },
      stages: [
        { name: 'a', agent: { kind: 'noop' }, default_next: 'b' },
        { name: 'b', agent: { kind: 'noop' }, default_next: 'a' },
      ],
    });
    let t = advance(workflow, freshSnapshot(workflow), opts());
    t = complete(workflow, t, {}); // a -> b
    expect(t.snapshot.usage.iterations).toBe(0);
    t = complete(workflow, t, {}); // b -> a: loop-back
    expect(t.snapshot.usage.iterations).toBe(1);
    expect(runAgent(t.effect).stage).toBe('a');
    t = complete(workflow, t, {}); // a -> b
    t = complete(workflow, t, {}); // b -> a: second loop-back reaches max_iterations
    expect(t.snapshot.usage.iterations).toBe(2);
    expect(reasonOf(t.effect)).toBe('max_iterations_exceeded');
  });
});

describe('failures', () => {
  const withError = {
    stages: [
      { name: 'a', agent: { kind: 'llm', prompt: 'go' }, error_next: 'b', default_next: 'c' },
      { name: 'b', agent: { kind: 'noop' }, default_next: 'a' },
      { name: 'c', agent: { kind: 'noop' } },
    ],
  };

  it('error_next is followed on failStep and counted as an edge', () => {
    const workflow = load(withError);
    const issued = advance(workflow, freshSnapshot(workflow), opts());
    const t = failStep(
      workflow,
      issued.snapshot,
      { step: 1, stage: 'a', code: 'PROVIDER_ERROR', message: 'down' },
      opts(),
    );
    expect(t.routes).toEqual([{ from: 'a', to: 'b', via: 'error_next' }]);
    expect(t.effect).toEqual({ kind: 'run_agent', stage: 'b', step: 2, fresh: true });
    expect(t.snapshot.envelope.edge_traversals).toEqual({ 'a->b': 1 });
    expect(t.snapshot.envelope.errors).toEqual([
      { step: 1, stage: 'a', code: 'PROVIDER_ERROR', message: 'down' },
    ]);
    expect(t.snapshot.envelope.history.at(-1)).toMatchObject({
      step: 1,
      stage: 'a',
      status: 'error',
      error: 'down',
    });
    expect(t.snapshot.usage.agent_hops).toBe(2);
  });

  it('error routes count against edge limits', () => {
    const workflow = load({
      ...withError,
      bounds: { max_iterations: 10 },
      edge_limits: [{ from: 'a', to: 'b', max_count: 1 }],
    });
    let t = advance(workflow, freshSnapshot(workflow), opts());
    const fail = (x: Transitioned): Transitioned => {
      const { step, stage } = runAgent(x.effect);
      return failStep(
        workflow,
        x.snapshot,
        { step, stage, code: 'INTERNAL', message: 'bad' },
        opts(),
      );
    };
    t = fail(t); // a -(error)-> b
    expect(runAgent(t.effect).stage).toBe('b');
    t = complete(workflow, t, {}); // b -> a
    expect(runAgent(t.effect).stage).toBe('a');
    t = fail(t); // a -(error)-> b again: over the limit
    expect(reasonOf(t.effect)).toBe('max_loop_exceeded');
    expect(t.snapshot.envelope.edge_traversals).toEqual({ 'a->b': 2, 'b->a': 1 });
  });

  it('without error_next a failure terminates by its code (and stage kind)', () => {
    const workflow = load({
      stages: [
        { name: 'a', agent: { kind: 'noop' }, default_next: 'b' },
        { name: 'b', agent: { kind: 'noop' } },
      ],
    });
    const issued = advance(workflow, freshSnapshot(workflow), opts());
    const fail = (code: string): Transitioned =>
      failStep(workflow, issued.snapshot, { step: 1, stage: 'a', code, message: 'm' }, opts());
    expect(reasonOf(fail('PROVIDER_ERROR').effect)).toBe('llm_failed_fatally');
    expect(reasonOf(fail('INTERNAL').effect)).toBe('tool_failed_fatally');
    expect(reasonOf(fail('CANCELED').effect)).toBe('user_cancelled');
    expect(fail('INTERNAL').snapshot.terminated?.message).toBe("stage 'a' failed: m");
  });

  it('CANCELED terminates even when error_next is set', () => {
    const workflow = load(withError);
    const issued = advance(workflow, freshSnapshot(workflow), opts());
    const t = failStep(
      workflow,
      issued.snapshot,
      { step: 1, stage: 'a', code: 'CANCELED', message: 'stop' },
      opts(),
    );
    expect(reasonOf(t.effect)).toBe('user_cancelled');
    expect(t.routes).toEqual([]);
  });

  it('QUOTA_EXCEEDED with a reason terminates with that reason, even with error_next', () => {
    const workflow = load(withError);
    const issued = advance(workflow, freshSnapshot(workflow), opts());
    const t = failStep(
      workflow,
      issued.snapshot,
      {
        step: 1,
        stage: 'a',
        code: 'QUOTA_EXCEEDED',
        message: 'too big',
        reason: 'max_input_tokens_exceeded',
      },
      opts(),
    );
    expect(t.effect).toMatchObject({ kind: 'terminate', reason: 'max_input_tokens_exceeded' });
    expect(t.snapshot.terminated?.reason).toBe('max_input_tokens_exceeded');
    expect(t.snapshot.envelope.pending).toBeNull();
    expect(t.routes).toEqual([]);
  });

  it('QUOTA_EXCEEDED raises a resource_exhausted interrupt when on_budget_exhausted is interrupt', () => {
    const workflow = load({ ...withError, on_budget_exhausted: 'interrupt' });
    const issued = advance(workflow, freshSnapshot(workflow), opts());
    const t = failStep(
      workflow,
      issued.snapshot,
      {
        step: 1,
        stage: 'a',
        code: 'QUOTA_EXCEEDED',
        message: 'too big',
        reason: 'max_input_tokens_exceeded',
      },
      opts(),
    );
    expect(t.effect.kind).toBe('raise_interrupt');
    if (t.effect.kind !== 'raise_interrupt') return;
    expect(t.effect.interrupt).toMatchObject({
      kind: 'resource_exhausted',
      stage: 'a',
      data: { reason: 'max_input_tokens_exceeded', limit: 'max_input_tokens' },
    });
    expect(t.snapshot.terminated).toBeNull();
    expect(t.snapshot.envelope.pending).toMatchObject({ stage: 'a', kind: 'interrupt' });
    expect(nextInstruction(workflow, t.snapshot, 0)).toEqual({ kind: 'wait_interrupt' });

    // A budget reason without a limit to raise still terminates.
    const other = failStep(
      workflow,
      issued.snapshot,
      { step: 1, stage: 'a', code: 'QUOTA_EXCEEDED', message: 'no', reason: 'policy_violation' },
      opts(),
    );
    expect(reasonOf(other.effect)).toBe('policy_violation');
  });
});

describe('interrupts', () => {
  const gate = {
    stages: [
      {
        name: 'ask',
        interrupt: { kind: 'confirmation', prompt: 'ship it?' },
        routing: [
          { when: { field: 'interrupt.approved', eq: true }, next: 'yes' },
          { when: { field: 'interrupt.approved', eq: false }, next: 'no' },
        ],
      },
      { name: 'yes', agent: { kind: 'noop' } },
      { name: 'no', agent: { kind: 'noop' } },
    ],
  };

  function raised(workflow: Workflow): Transitioned {
    const t = advance(workflow, freshSnapshot(workflow), opts());
    expect(t.effect).toEqual({
      kind: 'raise_interrupt',
      step: 1,
      interrupt: { kind: 'confirmation', stage: 'ask', prompt: 'ship it?', data: {} },
    });
    expect(t.snapshot.usage.agent_hops).toBe(1);
    expect(t.snapshot.envelope.pending).toEqual({ step: 1, stage: 'ask', kind: 'interrupt' });
    return t;
  }

  function resume(
    workflow: Workflow,
    t: Transitioned,
    kind: InterruptKind,
    response: InterruptResponse | undefined,
  ): Transitioned {
    return resumeAfterInterrupt(
      workflow,
      t.snapshot,
      { id: 'int_1', kind, stage: 'ask', response },
      opts(),
    );
  }

  it('a pending interrupt makes the run wait, idempotently', () => {
    const workflow = load(gate);
    const t = raised(workflow);
    expect(nextInstruction(workflow, t.snapshot, 0)).toEqual({ kind: 'wait_interrupt' });
    const again = advance(workflow, t.snapshot, opts());
    expect(again.effect).toEqual({ kind: 'wait_interrupt' });
    expect(again.snapshot).toEqual(t.snapshot);
  });

  it('a confirmation gate routes on interrupt.approved', () => {
    const workflow = load(gate);
    const t = raised(workflow);
    const approved = resume(workflow, t, 'confirmation', { approved: true });
    expect(approved.effect).toEqual({ kind: 'run_agent', stage: 'yes', step: 2, fresh: true });
    expect(approved.routes).toEqual([{ from: 'ask', to: 'yes', via: 'routing[0]' }]);
    expect(approved.snapshot.envelope.outputs['ask']).toEqual({ approved: true });
    expect(approved.snapshot.envelope.last_interrupt).toEqual({
      id: 'int_1',
      kind: 'confirmation',
      stage: 'ask',
      response: { approved: true },
    });
    const denied = resume(workflow, t, 'confirmation', { approved: false });
    expect(denied.effect).toEqual({ kind: 'run_agent', stage: 'no', step: 2, fresh: true });
  });

  it('an expired confirmation becomes a denial and routing continues', () => {
    const workflow = load(gate);
    const t = resume(workflow, raised(workflow), 'confirmation', undefined);
    expect(t.snapshot.envelope.last_interrupt?.response).toEqual({
      approved: false,
      expired: true,
    });
    expect(t.snapshot.envelope.outputs['ask']).toEqual({ approved: false, expired: true });
    expect(t.effect).toMatchObject({ kind: 'run_agent', stage: 'no' });
    expect(t.snapshot.terminated).toBeNull();
  });

  it('an expired clarification terminates with interrupt_expired', () => {
    const workflow = load({
      stages: [
        {
          name: 'ask',
          interrupt: { kind: 'clarification', prompt: 'which one?' },
          default_next: 'next',
        },
        { name: 'next', agent: { kind: 'noop' } },
      ],
    });
    const t0 = advance(workflow, freshSnapshot(workflow), opts());
    expect(t0.effect.kind).toBe('raise_interrupt');
    const t = resume(workflow, t0, 'clarification', undefined);
    expect(t.effect).toEqual({
      kind: 'terminate',
      reason: 'interrupt_expired',
      message: 'clarification interrupt int_1 expired',
    });
    expect(t.snapshot.terminated?.reason).toBe('interrupt_expired');
    expect(t.snapshot.envelope.pending).toBeNull();
    // Answered in time, the same clarification continues.
    const answered = resume(workflow, t0, 'clarification', { text: 'the red one' });
    expect(answered.effect).toMatchObject({ kind: 'run_agent', stage: 'next' });
  });

  it('an agent stage with a confirmation raises it after the step and routes on output and answer', () => {
    const workflow = load({
      stages: [
        {
          name: 'ask',
          agent: { kind: 'llm', prompt: 'draft', output: 'json' },
          interrupt: {
            kind: 'confirmation',
            prompt: 'fallback',
            prompt_from: 'output.question',
            when: { field: 'output.risky', eq: true },
          },
          routing: [{ when: { field: 'interrupt.approved', eq: true }, next: 'yes' }],
          default_next: 'no',
        },
        { name: 'yes', agent: { kind: 'noop' } },
        { name: 'no', agent: { kind: 'noop' } },
      ],
    });
    const issued = advance(workflow, freshSnapshot(workflow), opts());
    const output = { risky: true, question: 'really deploy?' };
    const t = complete(workflow, issued, output);
    expect(t.effect).toEqual({
      kind: 'raise_interrupt',
      step: 1,
      interrupt: { kind: 'confirmation', stage: 'ask', prompt: 'really deploy?', data: { output } },
    });
    const yes = resume(workflow, t, 'confirmation', { approved: true });
    expect(yes.effect).toMatchObject({ kind: 'run_agent', stage: 'yes', step: 2 });
    expect(yes.snapshot.envelope.outputs['ask']).toEqual(output);
    // Not risky: no interrupt, plain routing.
    const safe = complete(workflow, issued, { risky: false });
    expect(safe.effect).toMatchObject({ kind: 'run_agent', stage: 'no' });
  });

  it("a gate's prompt is a template over input, earlier outputs and the last answer", () => {
    const workflow = load({
      stages: [
        { name: 'extract', agent: { kind: 'noop' }, default_next: 'ask' },
        {
          name: 'ask',
          interrupt: {
            kind: 'confirmation',
            prompt: 'Pay {{outputs.extract.amount}} to {{ input.topic }}? {{outputs.extract}}',
          },
          resume_next: 'again',
        },
        {
          name: 'again',
          interrupt: { kind: 'clarification', prompt: 'Why "{{interrupt.text}}"?' },
        },
      ],
    });
    const t = complete(workflow, advance(workflow, freshSnapshot(workflow), opts()), {
      amount: 12.5,
    });
    expect(t.effect).toMatchObject({
      kind: 'raise_interrupt',
      interrupt: { stage: 'ask', prompt: 'Pay 12.5 to x? {"amount":12.5}' },
    });
    const next = resumeAfterInterrupt(
      workflow,
      t.snapshot,
      { id: 'i1', kind: 'confirmation', stage: 'ask', response: { approved: false, text: 'no' } },
      opts(),
    );
    expect(next.effect).toMatchObject({ interrupt: { stage: 'again', prompt: 'Why "no"?' } });
  });

  it("an agent stage's interrupt prompt sees the stage's own output; prompt_from is not a template", () => {
    const workflow = load({
      stages: [
        {
          name: 'decide',
          agent: { kind: 'noop' },
          interrupt: {
            kind: 'agent_review',
            prompt: 'Refund {{outputs.decide.amount}} to {{outputs.decide.payee}}?',
            prompt_from: 'output.question',
          },
        },
      ],
    });
    const issued = advance(workflow, freshSnapshot(workflow), opts());
    const templated = complete(workflow, issued, { amount: 900, payee: 'ACME' });
    expect(templated.effect).toMatchObject({ interrupt: { prompt: 'Refund 900 to ACME?' } });
    // A question from the output is shown as written: its braces are data, not placeholders.
    const fromOutput = complete(workflow, issued, { question: 'Leak {{input.topic}}?' });
    expect(fromOutput.effect).toMatchObject({ interrupt: { prompt: 'Leak {{input.topic}}?' } });
  });

  it('a prompt that renders empty falls back to the stage name', () => {
    const workflow = load({
      stages: [{ name: 'ask', interrupt: { kind: 'checkpoint', prompt: '{{input.missing}}' } }],
    });
    expect(advance(workflow, freshSnapshot(workflow), opts()).effect).toMatchObject({
      interrupt: { prompt: 'ask' },
    });
  });

  it('resume_next overrides routing after an interrupt', () => {
    const workflow = load({
      stages: [
        {
          name: 'ask',
          interrupt: { kind: 'checkpoint', prompt: 'look' },
          resume_next: 'b',
          default_next: 'end',
        },
        { name: 'b', agent: { kind: 'noop' } },
      ],
    });
    const t0 = advance(workflow, freshSnapshot(workflow), opts());
    const t = resumeAfterInterrupt(
      workflow,
      t0.snapshot,
      { id: 'i', kind: 'checkpoint', stage: 'ask', response: {} },
      opts(),
    );
    expect(t.routes).toEqual([{ from: 'ask', to: 'b', via: 'resume_next' }]);
    expect(t.effect).toMatchObject({ kind: 'run_agent', stage: 'b' });
  });

  describe('resource_exhausted', () => {
    const budget = {
      on_budget_exhausted: 'interrupt',
      bounds: { max_llm_calls: 1, max_iterations: 10 },
      stages: [
        { name: 'a', agent: { kind: 'llm', prompt: 'go' }, default_next: 'b' },
        { name: 'b', agent: { kind: 'llm', prompt: 'go' } },
      ],
    };

    function exhausted(): { workflow: Workflow; t: Transitioned } {
      const workflow = load(budget);
      const issued = advance(workflow, freshSnapshot(workflow), opts());
      const snap = structuredClone(issued.snapshot);
      snap.usage.llm_calls = 1;
      const t = completeStep(
        workflow,
        snap,
        { step: 1, stage: 'a', output: {}, modelCalls: 1 },
        opts(),
      );
      expect(t.effect.kind).toBe('raise_interrupt');
      if (t.effect.kind === 'raise_interrupt') {
        expect(t.effect.interrupt).toMatchObject({
          kind: 'resource_exhausted',
          stage: 'b',
          data: { reason: 'max_llm_calls_exceeded', limit: 'max_llm_calls' },
        });
      }
      expect(t.snapshot.envelope.pending).toMatchObject({ kind: 'interrupt', stage: 'b' });
      expect(t.snapshot.usage.agent_hops).toBe(1);
      return { workflow, t };
    }

    function resolve(
      workflow: Workflow,
      t: Transitioned,
      response: InterruptResponse | undefined,
    ): Transitioned {
      return resumeAfterInterrupt(
        workflow,
        t.snapshot,
        {
          id: 'int_b',
          kind: 'resource_exhausted',
          stage: 'b',
          response,
          reason: 'max_llm_calls_exceeded',
        },
        opts(),
      );
    }

    it('approval without an explicit grant doubles the exhausted limit and continues', () => {
      const { workflow, t } = exhausted();
      const resumed = resolve(workflow, t, { approved: true });
      expect(resumed.snapshot.quota.max_llm_calls).toBe(2);
      expect(resumed.effect).toEqual({ kind: 'run_agent', stage: 'b', step: 2, fresh: true });
      expect(resumed.snapshot.usage.agent_hops).toBe(2);
    });

    it('an explicit grant is added to the named limit', () => {
      const { workflow, t } = exhausted();
      const resumed = resolve(workflow, t, { approved: true, grant: { max_llm_calls: 5 } });
      expect(resumed.snapshot.quota.max_llm_calls).toBe(6);
      expect(resumed.effect).toMatchObject({ kind: 'run_agent', stage: 'b' });
    });

    it('a grant for another limit leaves the run waiting on a new budget interrupt', () => {
      const { workflow, t } = exhausted();
      const resumed = resolve(workflow, t, { approved: true, grant: { max_tool_calls: 5 } });
      expect(resumed.snapshot.quota.max_llm_calls).toBe(1);
      expect(resumed.effect).toMatchObject({
        kind: 'raise_interrupt',
        interrupt: { kind: 'resource_exhausted' },
      });
    });

    it('a denial or an expiry terminates with the budget reason', () => {
      const { workflow, t } = exhausted();
      expect(reasonOf(resolve(workflow, t, { approved: false }).effect)).toBe(
        'max_llm_calls_exceeded',
      );
      expect(reasonOf(resolve(workflow, t, undefined).effect)).toBe('max_llm_calls_exceeded');
    });

    it('with on_budget_exhausted terminate the same run just ends', () => {
      const workflow = load({ ...budget, on_budget_exhausted: 'terminate' });
      const issued = advance(workflow, freshSnapshot(workflow), opts());
      const snap = structuredClone(issued.snapshot);
      snap.usage.llm_calls = 1;
      const t = completeStep(
        workflow,
        snap,
        { step: 1, stage: 'a', output: {}, modelCalls: 1 },
        opts(),
      );
      expect(t.effect).toEqual({
        kind: 'terminate',
        reason: 'max_llm_calls_exceeded',
        message: 'max llm calls exceeded',
      });
    });
  });
});

describe('route', () => {
  const workflow = load({
    stages: [
      {
        name: 'a',
        agent: { kind: 'noop' },
        routing: [
          { fn: 'pick' },
          { when: { field: 'output.v', gte: 2 }, next: 'b' },
          { when: { always: true }, next: 'c' },
        ],
        default_next: 'b',
      },
      { name: 'b', agent: { kind: 'noop' } },
      { name: 'c', agent: { kind: 'noop' } },
    ],
  });
  const stage = workflow.stages[0]!;
  const env = newEnvelope(null, 'a');

  it('first matching rule wins, and a routing function returning nothing falls through', () => {
    const fns = new Map([
      [
        'pick',
        (ctx: { output: unknown }) => ((ctx.output as { v: number }).v === 0 ? 'c' : undefined),
      ],
    ]);
    expect(route(stage, routingContext(env, { v: 0 }, undefined), fns)).toEqual({
      to: 'c',
      via: 'fn:pick',
    });
    expect(route(stage, routingContext(env, { v: 5 }, undefined), fns)).toEqual({
      to: 'b',
      via: 'routing[1]',
    });
    expect(route(stage, routingContext(env, { v: 1 }, undefined), fns)).toEqual({
      to: 'c',
      via: 'routing[2]',
    });
  });

  it('an unregistered routing function is WORKFLOW_INVALID', () => {
    const error = thrownBy(() => route(stage, routingContext(env, { v: 0 }, undefined)));
    expect(isWardenError(error, 'WORKFLOW_INVALID')).toBe(true);
  });

  it('default_next, then end', () => {
    const plain = load({
      stages: [
        {
          name: 'a',
          agent: { kind: 'noop' },
          routing: [{ when: { field: 'output.v', eq: 1 }, next: 'b' }],
          default_next: 'b',
        },
        { name: 'b', agent: { kind: 'noop' } },
      ],
    });
    expect(route(plain.stages[0]!, routingContext(env, { v: 9 }, undefined))).toEqual({
      to: 'b',
      via: 'default_next',
    });
    expect(route(plain.stages[1]!, routingContext(env, { v: 9 }, undefined))).toEqual({
      to: END,
      via: 'end',
    });
  });
});
