/**
 * Property test of the parallel machine against a reference model: random DAG workflows
 * (requires, after, join any, error_next handlers, max_concurrent_agents, bounds) and random
 * report orders, successes and failures. After every report the machine's effect, cancelled
 * branches, branch statuses, step numbers, hops and model calls must equal the model's.
 *
 * The model is written apart from parallel.ts and on purpose differently: plain sets instead of
 * the envelope, and "can never start" found by iterating to a fixpoint instead of by recursion.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { emptyUsage, mergeQuota } from '../quota.ts';
import { newEnvelope } from './envelope.ts';
import { buildWorkflow } from './load.ts';
import {
  advance,
  completeStep,
  type Effect,
  failStep,
  outstandingSteps,
  type RunSnapshot,
  startStage,
  type Transitioned,
} from './machine.ts';
import type { Workflow } from './schema.ts';

interface GenStage {
  readonly name: string;
  readonly kind: 'llm' | 'noop';
  readonly requires: readonly string[];
  readonly after: readonly string[];
  readonly any: boolean;
  readonly errorNext: string | undefined;
}

interface GenWorkflow {
  readonly stages: readonly GenStage[];
  readonly maxConcurrent: number | undefined;
  readonly maxAgentHops: number;
  readonly maxLlmCalls: number;
  readonly timeoutMs: number | undefined;
}

// ---------------------------------------------------------------------------------------------
// Generator: a random topological order; dependencies only point to stages earlier in it, and
// a handler is only named by stages earlier in it, so every generated graph is acyclic.
// ---------------------------------------------------------------------------------------------

const genWorkflowArb: fc.Arbitrary<GenWorkflow> = fc
  .integer({ min: 1, max: 6 })
  .chain((n) => {
    const names = Array.from({ length: n }, (_, i) => `s${i}`);
    const perStage = fc.record({
      kind: fc.constantFrom<'llm' | 'noop'>('llm', 'noop'),
      handler: fc.integer({ min: 0, max: 4 }).map((x) => x === 0),
      deps: fc.array(fc.tuple(fc.nat(), fc.constantFrom('requires', 'requires', 'after')), {
        maxLength: 4,
      }),
      any: fc.boolean(),
      errorNext: fc.constantFrom('none', 'end', 'handler', 'handler'),
      handlerPick: fc.nat(),
    });
    return fc.record({
      order: fc.shuffledSubarray(names, { minLength: n, maxLength: n }),
      stages: fc.tuple(...names.map(() => perStage)),
      maxConcurrent: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
      maxAgentHops: fc.integer({ min: 1, max: 10 }),
      maxLlmCalls: fc.integer({ min: 1, max: 6 }),
      timeoutMs: fc.option(fc.integer({ min: 1, max: 40 }), { nil: undefined }),
    });
  })
  .map(({ order, stages, ...bounds }): GenWorkflow => {
    const position = new Map(order.map((name, i) => [name, i]));
    const handlers = new Set(
      order.filter((name, i) => i > 0 && stages[Number(name.slice(1))]!.handler),
    );
    const built = stages.map((g, i): GenStage => {
      const name = `s${i}`;
      const earlier = order.slice(0, position.get(name));
      const requires: string[] = [];
      const after: string[] = [];
      if (!handlers.has(name) && earlier.length > 0) {
        for (const [pick, key] of g.deps) {
          const dep = earlier[pick % earlier.length]!;
          if (requires.includes(dep) || after.includes(dep)) continue;
          (key === 'requires' ? requires : after).push(dep);
        }
      }
      const later = order.slice(position.get(name)! + 1).filter((h) => handlers.has(h));
      const errorNext =
        g.errorNext === 'end'
          ? 'end'
          : g.errorNext === 'handler' && later.length > 0
            ? later[g.handlerPick % later.length]
            : undefined;
      return { name, kind: g.kind, requires, after, any: g.any && requires.length >= 2, errorNext };
    });
    return { stages: built, ...bounds };
  });

function toRaw(g: GenWorkflow): Record<string, unknown> {
  return {
    name: 'model',
    mode: 'parallel',
    ...(g.maxConcurrent === undefined ? {} : { max_concurrent_agents: g.maxConcurrent }),
    bounds: {
      max_agent_hops: g.maxAgentHops,
      max_llm_calls: g.maxLlmCalls,
      ...(g.timeoutMs === undefined ? {} : { timeout: g.timeoutMs }),
    },
    stages: g.stages.map((s) => ({
      name: s.name,
      agent: s.kind === 'llm' ? { kind: 'llm', prompt: 'go' } : { kind: 'noop' },
      ...(s.requires.length > 0 ? { requires: s.requires } : {}),
      ...(s.after.length > 0 ? { after: s.after } : {}),
      ...(s.any ? { join_strategy: 'any' } : {}),
      ...(s.errorNext === undefined ? {} : { error_next: s.errorNext }),
    })),
  };
}

// ---------------------------------------------------------------------------------------------
// Reference model
// ---------------------------------------------------------------------------------------------

type Status = 'outstanding' | 'completed' | 'failed' | 'cancelled';

interface ModelRun {
  status: Map<string, Status>;
  stepOf: Map<string, number | null>;
  steps: number;
  hops: number;
  llmCalls: number;
  terminated: string | null;
  cancelled: Array<{ stage: string; step: number | null; reason: string }>;
  fresh: Set<string>;
}

function namersOf(g: GenWorkflow, name: string): string[] {
  return g.stages.filter((s) => s.errorNext === name).map((s) => s.name);
}

/** The stages that can never start, grown to a fixpoint. */
function neverStart(g: GenWorkflow, run: ModelRun): Set<string> {
  const dead = new Set<string>();
  const lost = (n: string) =>
    run.status.get(n) === 'failed' || run.status.get(n) === 'cancelled' || dead.has(n);
  for (let changed = true; changed;) {
    changed = false;
    for (const s of g.stages) {
      if (dead.has(s.name) || run.status.has(s.name)) continue;
      const namers = namersOf(g, s.name);
      const neverTriggered =
        namers.length > 0 &&
        namers.every(
          (t) =>
            run.status.get(t) === 'completed' || run.status.get(t) === 'cancelled' || dead.has(t),
        );
      const unmet =
        s.requires.length > 0 && (s.any ? s.requires.every(lost) : s.requires.some(lost));
      if (neverTriggered || unmet) {
        dead.add(s.name);
        changed = true;
      }
    }
  }
  return dead;
}

function modelOutstanding(g: GenWorkflow, run: ModelRun): string[] {
  return g.stages.filter((s) => run.status.get(s.name) === 'outstanding').map((s) => s.name);
}

function modelEnd(g: GenWorkflow, run: ModelRun, reason: string): void {
  for (const name of modelOutstanding(g, run)) {
    run.status.set(name, 'cancelled');
    run.cancelled.push({ stage: name, step: run.stepOf.get(name)!, reason: 'run_ended' });
  }
  run.terminated = reason;
}

function modelIssue(g: GenWorkflow, run: ModelRun, elapsedMs: number): void {
  run.fresh = new Set();
  const dead = neverStart(g, run);
  const finished = (n: string) =>
    (run.status.has(n) && run.status.get(n) !== 'outstanding') || dead.has(n);
  const ready = g.stages.filter((s) => {
    if (run.status.has(s.name) || dead.has(s.name)) return false;
    if (!s.after.every(finished)) return false;
    const done = s.requires.filter((r) => run.status.get(r) === 'completed').length;
    if (s.requires.length > 0 && (s.any ? done === 0 : done < s.requires.length)) return false;
    const namers = namersOf(g, s.name);
    return namers.length === 0 || namers.some((t) => run.status.get(t) === 'failed');
  });
  const room = (g.maxConcurrent ?? 1_000) - modelOutstanding(g, run).length;
  const issue = ready.slice(0, Math.max(0, room));
  if (issue.length > 0) {
    // The default max_iterations (3) is never reached: iterations stay 0.
    let reason: string | null = null;
    if (run.llmCalls >= g.maxLlmCalls) reason = 'max_llm_calls_exceeded';
    else if (run.hops + issue.length > g.maxAgentHops) reason = 'max_agent_hops_exceeded';
    else if (g.timeoutMs !== undefined && elapsedMs >= g.timeoutMs) reason = 'timeout_exceeded';
    if (reason) return modelEnd(g, run, reason);
  }
  for (const s of issue) {
    run.steps += 1;
    run.hops += 1;
    run.status.set(s.name, 'outstanding');
    run.stepOf.set(s.name, run.steps);
    run.fresh.add(s.name);
  }
  if (modelOutstanding(g, run).length === 0) run.terminated = 'completed';
}

function modelComplete(g: GenWorkflow, run: ModelRun, name: string, elapsedMs: number): void {
  run.cancelled = [];
  run.status.set(name, 'completed');
  const dead = neverStart(g, run);
  const open = (n: string) => !run.status.has(n) && !dead.has(n);
  const decided = (s: GenStage) =>
    s.any && s.requires.some((r) => run.status.get(r) === 'completed');
  const losers = new Map<string, { join: string }>();
  for (const join of g.stages) {
    if (!join.any || !join.requires.includes(name) || !open(join.name)) continue;
    if (join.requires.filter((r) => run.status.get(r) === 'completed').length !== 1) continue;
    for (const loser of join.requires) {
      if (loser === name || losers.has(loser)) continue;
      if (run.status.get(loser) !== 'outstanding' && !open(loser)) continue;
      const stillWanted = g.stages.some(
        (s) =>
          s.name !== join.name &&
          open(s.name) &&
          (s.after.includes(loser) || (s.requires.includes(loser) && !decided(s))),
      );
      if (!stillWanted) losers.set(loser, { join: join.name });
    }
  }
  for (const s of g.stages) {
    const lost = losers.get(s.name);
    if (!lost) continue;
    const step = run.stepOf.get(s.name) ?? null;
    run.status.set(s.name, 'cancelled');
    run.stepOf.set(s.name, step);
    run.cancelled.push({ stage: s.name, step, reason: 'join' });
  }
  modelIssue(g, run, elapsedMs);
}

function modelFail(
  g: GenWorkflow,
  run: ModelRun,
  name: string,
  code: string,
  elapsedMs: number,
): void {
  run.cancelled = [];
  run.fresh = new Set();
  run.status.set(name, 'failed');
  const stage = g.stages.find((s) => s.name === name)!;
  if (code === 'CANCELED') return modelEnd(g, run, 'user_cancelled');
  if (stage.errorNext === undefined)
    return modelEnd(
      g,
      run,
      code === 'PROVIDER_ERROR' || stage.kind === 'llm'
        ? 'llm_failed_fatally'
        : 'tool_failed_fatally',
    );
  modelIssue(g, run, elapsedMs);
}

// ---------------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------------

function expectSame(g: GenWorkflow, real: Transitioned, run: ModelRun, where: string): void {
  const env = real.snapshot.envelope;
  if (run.terminated) {
    expect(real.effect.kind, where).toBe('terminate');
    expect((real.effect as Extract<Effect, { kind: 'terminate' }>).reason, where).toBe(
      run.terminated,
    );
  } else {
    expect(real.effect, where).toEqual({
      kind: 'fork',
      steps: modelOutstanding(g, run).map((stage) => ({
        stage,
        step: run.stepOf.get(stage),
        fresh: run.fresh.has(stage),
      })),
    });
  }
  expect(
    (real.cancelled ?? []).map(({ stage, step, reason }) => ({ stage, step, reason })),
    where,
  ).toEqual(run.cancelled);
  const branches: Record<string, { step: number | null; status: Status }> = {};
  for (const s of g.stages) {
    const status = run.status.get(s.name);
    if (status) branches[s.name] = { step: run.stepOf.get(s.name) ?? null, status };
  }
  expect(env.branches, where).toEqual(branches);
  expect(env.step, where).toBe(run.steps);
  expect(env.pending, where).toBeNull();
  expect(real.snapshot.usage.agent_hops, where).toBe(run.hops);
  expect(real.snapshot.usage.iterations, where).toBe(0);
  expect(real.snapshot.terminated?.reason ?? null, where).toBe(run.terminated);
}

interface Action {
  readonly pick: number;
  readonly fail: boolean;
  readonly code: 'PROVIDER_ERROR' | 'TOOL_ERROR' | 'CANCELED';
  readonly elapsedMs: number;
}

const actionArb: fc.Arbitrary<Action> = fc.record({
  pick: fc.nat(),
  fail: fc.integer({ min: 0, max: 9 }).map((x) => x < 3),
  code: fc.constantFrom('PROVIDER_ERROR', 'TOOL_ERROR', 'TOOL_ERROR', 'CANCELED'),
  elapsedMs: fc.integer({ min: 0, max: 8 }),
});

function load(g: GenWorkflow): Workflow {
  return buildWorkflow(toRaw(g), 'model.yaml').workflow;
}

function fresh(workflow: Workflow): RunSnapshot {
  const b = workflow.bounds;
  return {
    envelope: newEnvelope(null, startStage(workflow)),
    usage: emptyUsage(),
    quota: mergeQuota({
      max_agent_hops: b.max_agent_hops,
      max_llm_calls: b.max_llm_calls,
      timeout_ms: b.timeout,
    }),
    terminated: null,
  };
}

describe('parallel machine: reference model', () => {
  it('generated workflows are valid', () => {
    fc.assert(
      fc.property(genWorkflowArb, (g) => {
        expect(() => load(g)).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });

  it('property: every report agrees with the reference model', () => {
    // What the generated runs went through: each case must occur, or the test proves little.
    const seen = {
      joinCancel: 0,
      runEndedCancel: 0,
      handlerRan: 0,
      atLimit: 0,
      boundEnd: 0,
      completed: 0,
      failed: 0,
    };
    fc.assert(
      fc.property(
        genWorkflowArb,
        fc.array(actionArb, { minLength: 8, maxLength: 8 }),
        (g, actions) => {
          const workflow = load(g);
          const run: ModelRun = {
            status: new Map(),
            stepOf: new Map(),
            steps: 0,
            hops: 0,
            llmCalls: 0,
            terminated: null,
            cancelled: [],
            fresh: new Set(),
          };
          let elapsed = 0;
          let real = advance(workflow, fresh(workflow), { elapsedMs: 0, now: 0 });
          modelIssue(g, run, 0);
          expectSame(g, real, run, 'start');
          let maxOutstanding = 0;
          let modelCalls = 0;

          for (const [i, action] of actions.entries()) {
            if (real.effect.kind === 'terminate') break;
            const where = `action ${i}`;
            const outstanding = outstandingSteps(workflow, real.snapshot.envelope);
            maxOutstanding = Math.max(maxOutstanding, outstanding.length);
            const { stage, step } = outstanding[action.pick % outstanding.length]!;
            const spec = g.stages.find((s) => s.name === stage)!;
            elapsed += action.elapsedMs;
            const options = { elapsedMs: elapsed, now: elapsed };
            // The branch's worker records its model call on the run before it reports.
            const snapshot = structuredClone(real.snapshot);
            if (spec.kind === 'llm') {
              snapshot.usage.llm_calls += 1;
              run.llmCalls += 1;
            }
            if (action.fail) {
              real = failStep(
                workflow,
                snapshot,
                { step, stage, code: action.code, message: 'x' },
                options,
              );
              modelFail(g, run, stage, action.code, elapsed);
            } else {
              const calls = spec.kind === 'llm' ? 1 : 0;
              modelCalls += calls;
              real = completeStep(
                workflow,
                snapshot,
                { step, stage, output: { stage }, modelCalls: calls },
                options,
              );
              modelComplete(g, run, stage, elapsed);
            }
            expectSame(g, real, run, where);
            for (const c of real.cancelled ?? [])
              seen[c.reason === 'join' ? 'joinCancel' : 'runEndedCancel'] += 1;
          }

          // Each stage runs at most once, so 8 reports end any run of at most 6 stages.
          expect(real.effect.kind).toBe('terminate');
          const branches = Object.values(real.snapshot.envelope.branches ?? {});
          const issued = branches.filter((b) => b.step !== null);
          // One hop per issued branch, step numbers 1..hops, within the bound and the limit.
          expect(real.snapshot.usage.agent_hops).toBe(issued.length);
          expect(issued.map((b) => b.step).sort((a, b) => a! - b!)).toEqual(
            issued.map((_, i) => i + 1),
          );
          expect(real.snapshot.usage.agent_hops).toBeLessThanOrEqual(g.maxAgentHops);
          expect(maxOutstanding).toBeLessThanOrEqual(g.maxConcurrent ?? 6);
          expect(Object.values(real.snapshot.envelope.visits).every((v) => v === 1)).toBe(true);
          // Model calls are counted once per branch: no join adds any.
          const stageCalls = Object.values(real.snapshot.envelope.stage_calls);
          expect(stageCalls.reduce((a, b) => a + b, 0)).toBe(modelCalls);
          expect(stageCalls.every((c) => c <= 1)).toBe(true);
          expect(real.snapshot.usage.llm_calls).toBe(run.llmCalls);
          expect(outstandingSteps(workflow, real.snapshot.envelope)).toEqual([]);

          const handlers = new Set(g.stages.map((s) => s.errorNext));
          const entries = Object.entries(real.snapshot.envelope.branches ?? {});
          if (entries.some(([name, b]) => b.step !== null && handlers.has(name)))
            seen.handlerRan += 1;
          if (g.maxConcurrent !== undefined && maxOutstanding === g.maxConcurrent)
            seen.atLimit += 1;
          const reason = run.terminated!;
          if (reason.endsWith('_exceeded')) seen.boundEnd += 1;
          else if (reason === 'completed') seen.completed += 1;
          else seen.failed += 1;
        },
      ),
      { numRuns: 600 },
    );
    for (const [what, count] of Object.entries(seen)) expect(count, what).toBeGreaterThan(10);
  });
});
