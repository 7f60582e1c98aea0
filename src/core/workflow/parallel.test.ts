/**
 * The parallel machine (parallel.ts, through machine.ts's entry points): fork/join all and any,
 * cancellation of losers, failures and handlers, max_concurrent_agents, bounds; then a
 * property test against an independent reference model on random DAG workflows.
 */
import { describe, expect, it } from 'vitest';

import { isWardenError } from '../errors.ts';
import { emptyUsage, mergeQuota, type Quota } from '../quota.ts';
import { newEnvelope } from './envelope.ts';
import { buildWorkflow } from './load.ts';
import {
  advance,
  cancelRun,
  completeStep,
  type Effect,
  failStep,
  type ForkedStep,
  type MachineOptions,
  nextInstruction,
  outstandingStep,
  outstandingSteps,
  type RunSnapshot,
  startStage,
  type Transitioned,
} from './machine.ts';
import type { Workflow, WorkflowInput } from './schema.ts';

function loadParallel(raw: Omit<WorkflowInput, 'name'>): Workflow {
  return buildWorkflow({ name: 'par', mode: 'parallel', ...raw }, 'par.yaml').workflow;
}

function quotaFor(workflow: Workflow): Quota {
  const b = workflow.bounds;
  return mergeQuota({
    max_iterations: b.max_iterations,
    max_llm_calls: b.max_llm_calls,
    max_agent_hops: b.max_agent_hops,
    timeout_ms: b.timeout,
  });
}

function freshSnapshot(workflow: Workflow): RunSnapshot {
  return {
    envelope: newEnvelope(null, startStage(workflow)),
    usage: emptyUsage(),
    quota: quotaFor(workflow),
    terminated: null,
  };
}

function opts(elapsedMs = 0): MachineOptions {
  return { elapsedMs, now: 1_000 + elapsedMs };
}

function forked(effect: Effect): readonly ForkedStep[] {
  if (effect.kind !== 'fork') throw new Error(`expected fork, got ${JSON.stringify(effect)}`);
  return effect.steps;
}

/** `stage:step` of the fork's steps, `*` marking the fresh ones. */
function shape(effect: Effect): string[] {
  return forked(effect).map((s) => `${s.stage}:${s.step}${s.fresh ? '*' : ''}`);
}

function stepOf(t: Transitioned, stage: string): number {
  const found = outstandingSteps(WORKFLOWS.get(t)!, t.snapshot.envelope).find(
    (s) => s.stage === stage,
  );
  if (!found) throw new Error(`stage ${stage} is not outstanding`);
  return found.step;
}

/** Remembers which workflow a transition belongs to (keeps the helpers short). */
const WORKFLOWS = new WeakMap<Transitioned, Workflow>();

function start(workflow: Workflow, snap = freshSnapshot(workflow)): Transitioned {
  const t = advance(workflow, snap, opts());
  WORKFLOWS.set(t, workflow);
  return t;
}

function done(t: Transitioned, stage: string, output: unknown = { from: stage }, calls = 0) {
  const workflow = WORKFLOWS.get(t)!;
  const next = completeStep(
    workflow,
    t.snapshot,
    { step: stepOf(t, stage), stage, output, modelCalls: calls },
    opts(),
  );
  WORKFLOWS.set(next, workflow);
  return next;
}

function fail(t: Transitioned, stage: string, code = 'TOOL_ERROR') {
  const workflow = WORKFLOWS.get(t)!;
  const next = failStep(
    workflow,
    t.snapshot,
    { step: stepOf(t, stage), stage, code, message: 'boom' },
    opts(),
  );
  WORKFLOWS.set(next, workflow);
  return next;
}

function statuses(t: Transitioned): Record<string, string> {
  return Object.fromEntries(
    Object.entries(t.snapshot.envelope.branches ?? {}).map(([k, b]) => [k, b.status]),
  );
}

const noop = { kind: 'noop' } as const;
const llm = { kind: 'llm', prompt: 'go' } as const;

describe('parallel machine: fork and join', () => {
  it('starts every stage without requires or after, in stage order, one hop each', () => {
    const workflow = loadParallel({
      stages: [
        { name: 'join', agent: noop, requires: ['a', 'b'] },
        { name: 'a', agent: noop },
        { name: 'b', agent: noop },
        { name: 'later', agent: noop, after: ['a'] },
      ],
    });
    const t = start(workflow);
    expect(shape(t.effect)).toEqual(['a:1*', 'b:2*']);
    expect(t.snapshot.usage.agent_hops).toBe(2);
    expect(t.snapshot.envelope.visits).toEqual({ a: 1, b: 1 });
    expect(t.snapshot.envelope.pending).toBeNull();
    expect(t.snapshot.envelope.current_stage).toBe('a');
    expect(outstandingSteps(workflow, t.snapshot.envelope)).toEqual([
      { step: 1, stage: 'a' },
      { step: 2, stage: 'b' },
    ]);
    expect(outstandingStep(t.snapshot.envelope, 2)).toEqual({ step: 2, stage: 'b' });
    expect(outstandingStep(t.snapshot.envelope, 3)).toBeUndefined();
  });

  it('join all: the joining stage starts once every required stage completed', () => {
    const workflow = loadParallel({
      stages: [
        { name: 'a', agent: noop },
        { name: 'b', agent: noop },
        { name: 'c', agent: noop, requires: ['a', 'b'] },
      ],
    });
    let t = start(workflow);
    t = done(t, 'b', { n: 2 });
    expect(shape(t.effect)).toEqual(['a:1']);
    t = done(t, 'a', { n: 1 });
    expect(shape(t.effect)).toEqual(['c:3*']);
    expect(t.snapshot.envelope.current_stage).toBe('c');
    t = done(t, 'c');
    expect(t.effect).toEqual({
      kind: 'terminate',
      reason: 'completed',
      message: 'workflow completed',
    });
    expect(t.snapshot.envelope.current_stage).toBe('end');
    expect(t.snapshot.envelope.outputs).toEqual({ a: { n: 1 }, b: { n: 2 }, c: { from: 'c' } });
    expect(t.snapshot.usage.agent_hops).toBe(3);
    expect(t.snapshot.usage.iterations).toBe(0);
    expect(t.snapshot.envelope.history.map((h) => `${h.stage}:${h.step}:${h.status}`)).toEqual([
      'b:2:ok',
      'a:1:ok',
      'c:3:ok',
    ]);
  });

  it('join any: the first completed starts the join, the other branch is cancelled and its report is stale', () => {
    const workflow = loadParallel({
      stages: [
        { name: 'fast', agent: noop },
        { name: 'slow', agent: noop },
        { name: 'pick', agent: noop, requires: ['fast', 'slow'], join_strategy: 'any' },
      ],
    });
    let t = start(workflow);
    const before = t;
    t = done(t, 'fast');
    expect(shape(t.effect)).toEqual(['pick:3*']);
    expect(t.cancelled).toEqual([
      { stage: 'slow', step: 2, reason: 'join', join: 'pick', winner: 'fast' },
    ]);
    expect(statuses(t)).toEqual({ fast: 'completed', slow: 'cancelled', pick: 'outstanding' });
    const late = (() => {
      try {
        completeStep(
          workflow,
          t.snapshot,
          { step: 2, stage: 'slow', output: {}, modelCalls: 1 },
          opts(),
        );
      } catch (error) {
        return error;
      }
    })();
    expect(isWardenError(late, 'INVALID_STATE')).toBe(true);
    expect(String((late as Error).message)).toContain('expects step 3 (pick)');
    // Nothing of the late branch was recorded; the earlier snapshot was not changed either.
    expect(t.snapshot.envelope.outputs).not.toHaveProperty('slow');
    expect(statuses(before)).toEqual({ fast: 'outstanding', slow: 'outstanding' });
    t = done(t, 'pick');
    expect(t.effect).toMatchObject({ kind: 'terminate', reason: 'completed' });
    expect(t.snapshot.usage.agent_hops).toBe(3);
  });

  it('join any: a loser another stage still waits for keeps running', () => {
    const workflow = loadParallel({
      stages: [
        { name: 'a', agent: noop },
        { name: 'b', agent: noop },
        { name: 'pick', agent: noop, requires: ['a', 'b'], join_strategy: 'any' },
        { name: 'needs_b', agent: noop, requires: ['b'] },
        { name: 'after_a', agent: noop, after: ['a'] },
      ],
    });
    let t = start(workflow);
    t = done(t, 'a');
    expect(t.cancelled).toEqual([]);
    expect(shape(t.effect)).toEqual(['b:2', 'pick:3*', 'after_a:4*']);
    t = done(t, 'b');
    expect(shape(t.effect)).toEqual(['pick:3', 'needs_b:5*', 'after_a:4']);
  });

  it('join any: a loser that has not started yet is cancelled before it starts', () => {
    const workflow = loadParallel({
      stages: [
        { name: 'x', agent: noop },
        { name: 'quick', agent: noop },
        { name: 'long', agent: noop, requires: ['x'] },
        { name: 'pick', agent: noop, requires: ['quick', 'long'], join_strategy: 'any' },
      ],
    });
    let t = start(workflow);
    t = done(t, 'quick');
    expect(t.cancelled).toEqual([
      { stage: 'long', step: null, reason: 'join', join: 'pick', winner: 'quick' },
    ]);
    expect(shape(t.effect)).toEqual(['x:1', 'pick:3*']);
    t = done(t, 'x'); // 'long' would be ready now: it was cancelled, so it never runs
    expect(shape(t.effect)).toEqual(['pick:3']);
    t = done(t, 'pick');
    expect(t.effect).toMatchObject({ kind: 'terminate', reason: 'completed' });
    expect(t.snapshot.usage.agent_hops).toBe(3);
    expect(t.snapshot.envelope.visits).not.toHaveProperty('long');
  });

  it('after waits for a failed stage, requires never runs after one; the run still completes', () => {
    const workflow = loadParallel({
      stages: [
        { name: 'a', agent: noop, error_next: 'end' },
        { name: 'cleanup', agent: noop, after: ['a'] },
        { name: 'use', agent: noop, requires: ['a'] },
        { name: 'after_use', agent: noop, after: ['use'] },
      ],
    });
    let t = start(workflow);
    t = fail(t, 'a');
    expect(t.routes).toEqual([{ from: 'a', to: 'end', via: 'error_next' }]);
    // 'use' can never run, so it counts as settled for 'after_use'.
    expect(shape(t.effect)).toEqual(['cleanup:2*', 'after_use:3*']);
    t = done(t, 'cleanup');
    t = done(t, 'after_use');
    expect(t.effect).toMatchObject({ kind: 'terminate', reason: 'completed' });
    expect(statuses(t)).toEqual({ a: 'failed', cleanup: 'completed', after_use: 'completed' });
    expect(t.snapshot.envelope.errors).toMatchObject([{ step: 1, stage: 'a', code: 'TOOL_ERROR' }]);
  });

  it('a handler runs only when the stage naming it fails, and can stand in for it in an any join', () => {
    const workflow = loadParallel({
      stages: [
        { name: 'primary', agent: noop, error_next: 'fallback' },
        { name: 'fallback', agent: noop },
        { name: 'merge', agent: noop, requires: ['primary', 'fallback'], join_strategy: 'any' },
      ],
    });
    const failed = fail(start(workflow), 'primary');
    expect(failed.routes).toEqual([{ from: 'primary', to: 'fallback', via: 'error_next' }]);
    expect(shape(failed.effect)).toEqual(['fallback:2*']);
    const merged = done(failed, 'fallback');
    expect(shape(merged.effect)).toEqual(['merge:3*']);
    expect(merged.cancelled).toEqual([]);

    const ok = done(start(workflow), 'primary');
    expect(shape(ok.effect)).toEqual(['merge:2*']);
    // The handler can no longer be triggered: nothing to cancel, it just never runs.
    expect(ok.cancelled).toEqual([]);
    const end = done(ok, 'merge');
    expect(end.effect).toMatchObject({ kind: 'terminate', reason: 'completed' });
    expect(statuses(end)).toEqual({ primary: 'completed', merge: 'completed' });
  });

  it('a failure without error_next ends the run and cancels every outstanding branch', () => {
    const workflow = loadParallel({
      stages: [
        { name: 'a', agent: noop },
        { name: 'b', agent: llm },
        { name: 'c', agent: noop },
      ],
    });
    const t = fail(start(workflow), 'b', 'PROVIDER_ERROR');
    expect(t.effect).toEqual({
      kind: 'terminate',
      reason: 'llm_failed_fatally',
      message: "stage 'b' failed: boom",
    });
    expect(t.cancelled).toEqual([
      { stage: 'a', step: 1, reason: 'run_ended' },
      { stage: 'c', step: 3, reason: 'run_ended' },
    ]);
    expect(statuses(t)).toEqual({ a: 'cancelled', b: 'failed', c: 'cancelled' });
    expect(outstandingSteps(workflow, t.snapshot.envelope)).toEqual([]);
    expect(t.snapshot.envelope.history.map((h) => `${h.stage}:${h.status}`)).toEqual([
      'b:error',
      'a:cancelled',
      'c:cancelled',
    ]);
    expect(() => done(t, 'a')).toThrow(); // not outstanding any more
    expect(fail(start(workflow), 'a').effect).toMatchObject({ reason: 'tool_failed_fatally' });
  });

  it('CANCELED and QUOTA_EXCEEDED end the run even with error_next', () => {
    const workflow = loadParallel({
      stages: [
        { name: 'a', agent: noop, error_next: 'end' },
        { name: 'b', agent: noop },
      ],
    });
    expect(fail(start(workflow), 'a', 'CANCELED').effect).toMatchObject({
      reason: 'user_cancelled',
    });
    const quota = failStep(
      workflow,
      start(workflow).snapshot,
      {
        step: 1,
        stage: 'a',
        code: 'QUOTA_EXCEEDED',
        message: 'spent',
        reason: 'max_output_tokens_exceeded',
      },
      opts(),
    );
    expect(quota.effect).toEqual({
      kind: 'terminate',
      reason: 'max_output_tokens_exceeded',
      message: 'max output tokens exceeded',
    });
    expect(quota.cancelled).toEqual([{ stage: 'b', step: 2, reason: 'run_ended' }]);
  });
});

describe('parallel machine: limits', () => {
  it('max_concurrent_agents: ready stages wait for a free slot, in stage order', () => {
    const workflow = loadParallel({
      max_concurrent_agents: 2,
      stages: ['a', 'b', 'c', 'd'].map((name) => ({ name, agent: noop })),
    });
    let t = start(workflow);
    expect(shape(t.effect)).toEqual(['a:1*', 'b:2*']);
    t = done(t, 'b');
    expect(shape(t.effect)).toEqual(['a:1', 'c:3*']);
    t = done(t, 'c');
    expect(shape(t.effect)).toEqual(['a:1', 'd:4*']);
    t = done(done(t, 'a'), 'd');
    expect(t.effect).toMatchObject({ kind: 'terminate', reason: 'completed' });
    expect(t.snapshot.usage.agent_hops).toBe(4);
  });

  it('bounds are checked before a fork, all or none: too many hops ends the run', () => {
    const workflow = loadParallel({
      bounds: { max_agent_hops: 3 },
      stages: [
        { name: 'a', agent: noop },
        { name: 'b', agent: noop },
        { name: 'c', agent: noop, after: ['a'] },
        { name: 'd', agent: noop, after: ['a'] },
      ],
    });
    let t = start(workflow);
    t = done(t, 'a'); // c and d would take hops 3 and 4
    expect(t.effect).toEqual({
      kind: 'terminate',
      reason: 'max_agent_hops_exceeded',
      message: 'max agent hops exceeded',
    });
    expect(t.snapshot.usage.agent_hops).toBe(2);
    expect(t.cancelled).toEqual([{ stage: 'b', step: 2, reason: 'run_ended' }]);

    const tooWide = loadParallel({
      bounds: { max_agent_hops: 1 },
      stages: [
        { name: 'a', agent: noop },
        { name: 'b', agent: noop },
      ],
    });
    const none = start(tooWide);
    expect(none.effect).toMatchObject({ kind: 'terminate', reason: 'max_agent_hops_exceeded' });
    expect(none.snapshot.usage.agent_hops).toBe(0);
  });

  it('llm calls and time are checked before a fork; model calls count once per branch', () => {
    const workflow = loadParallel({
      bounds: { max_llm_calls: 3, timeout: 100 },
      stages: [
        { name: 'a', agent: llm },
        { name: 'b', agent: llm },
        { name: 'c', agent: llm, requires: ['a', 'b'] },
      ],
    });
    let t = start(workflow);
    // Each worker records its branch's calls on the run (the kernel does; here by hand).
    t.snapshot.usage.llm_calls += 2;
    t = done(t, 'a', {}, 1);
    t = done(t, 'b', {}, 1);
    expect(shape(t.effect)).toEqual(['c:3*']);
    expect(t.snapshot.envelope.stage_calls).toEqual({ a: 1, b: 1 });
    expect(t.snapshot.usage.llm_calls).toBe(2); // the join added nothing

    const spent = start(workflow);
    spent.snapshot.usage.llm_calls = 3;
    expect(done(done(spent, 'a'), 'b').effect).toMatchObject({ reason: 'max_llm_calls_exceeded' });
    const late = completeStep(
      workflow,
      done(start(workflow), 'a').snapshot,
      { step: 2, stage: 'b', output: {}, modelCalls: 0 },
      opts(100),
    );
    expect(late.effect).toMatchObject({ reason: 'timeout_exceeded' });
  });
});

describe('parallel machine: instructions', () => {
  it('nextInstruction and advance are idempotent while branches are outstanding', () => {
    const workflow = loadParallel({
      stages: [
        { name: 'a', agent: noop },
        { name: 'b', agent: noop },
      ],
    });
    const initial = freshSnapshot(workflow);
    expect(nextInstruction(workflow, initial, 0)).toEqual({
      kind: 'fork',
      steps: [
        { stage: 'a', step: 1, fresh: true },
        { stage: 'b', step: 2, fresh: true },
      ],
    });
    expect(initial.envelope.branches).toBeUndefined();
    const t = start(workflow);
    const copy = structuredClone(t.snapshot);
    const again = advance(workflow, t.snapshot, opts());
    expect(again.effect).toEqual({
      kind: 'fork',
      steps: [
        { stage: 'a', step: 1, fresh: false },
        { stage: 'b', step: 2, fresh: false },
      ],
    });
    expect(again.snapshot).toEqual(copy);
    expect(nextInstruction(workflow, t.snapshot, 0)).toEqual(again.effect);
    expect(t.snapshot).toEqual(copy);
  });

  it('cancelRun cancels the outstanding branches; a terminated run stays terminated', () => {
    const workflow = loadParallel({
      stages: [
        { name: 'a', agent: noop },
        { name: 'b', agent: noop },
      ],
    });
    const t = done(start(workflow), 'a');
    const cancelled = cancelRun(t.snapshot, 'stop');
    expect(cancelled.terminated).toEqual({ reason: 'user_cancelled', message: 'stop' });
    expect(cancelled.envelope.branches).toEqual({
      a: { step: 1, status: 'completed' },
      b: { step: 2, status: 'cancelled' },
    });
    expect(outstandingSteps(workflow, cancelled.envelope)).toEqual([]);
    expect(advance(workflow, cancelled, opts()).effect).toMatchObject({ reason: 'user_cancelled' });
  });

  it('outstandingSteps of a sequential run is its pending agent step', () => {
    const workflow = buildWorkflow({
      name: 'seq',
      stages: [{ name: 'only', agent: noop }],
    }).workflow;
    const t = advance(workflow, freshSnapshot(workflow), opts());
    expect(outstandingSteps(workflow, t.snapshot.envelope)).toEqual([{ step: 1, stage: 'only' }]);
    expect(outstandingStep(t.snapshot.envelope, 1)).toEqual({ step: 1, stage: 'only' });
    expect(t.snapshot.envelope.branches).toBeUndefined();
  });
});
