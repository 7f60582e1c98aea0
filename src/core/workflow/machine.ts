/**
 * The orchestration state machine, as pure functions over a {@link RunSnapshot}. The kernel
 * calls these inside one store transaction and persists the returned snapshot together with the
 * effect (enqueue the next step, raise an interrupt, or terminate) and its events.
 *
 * Instruction algorithm (DESIGN.md §5), in order: terminated → terminate; stage `end` →
 * terminate(completed); pending interrupt → wait_interrupt; bounds exceeded →
 * terminate(reason); unknown stage → terminate(failed); else run the stage.
 *
 * Counting rules (fixing jeeves defects #1, #2, #10):
 * - a hop is one entry into a stage (one issued step), counted once when the step is issued;
 *   asking again while the step is outstanding returns the same step and counts nothing;
 * - every transition, including error routes and self-edges, counts against edge limits;
 * - a transition to a stage at or before the current one in stage order is a loop-back and
 *   counts one iteration; `iterations ≥ max_iterations` stops the run.
 *
 * Parallel workflows (`mode: parallel`) take the same entry points and are handled by
 * parallel.ts: several steps may be outstanding at once (`envelope.branches`), and the effect
 * of a transition is `fork` (every outstanding branch step, the new ones `fresh`) or terminate.
 */
import { WardenError } from '../errors.ts';
import { INTERRUPT_EXPIRY, type InterruptKind, type InterruptResponse } from '../interrupt.ts';
import { grantQuota, limitForReason, stepBoundExceeded, type TerminalReason } from '../quota.ts';
import { evaluateCondition, readField, type RoutingContext } from './condition.ts';
import { type Envelope, pushHistory, recordStepFailure } from './envelope.ts';
import type {
  Effect,
  MachineOptions,
  OutstandingStep,
  RaisedInterrupt,
  RoutingFunction,
  RunSnapshot,
  StepFailure,
  StepSuccess,
  Transitioned,
} from './machine-types.ts';
import {
  advanceParallel,
  cancelBranches,
  completeParallel,
  failParallel,
  outstandingBranches,
} from './parallel.ts';
import { isParallel } from './parallel-graph.ts';
import type { StageSpec, Workflow } from './schema.ts';
import { renderTemplate } from './template.ts';
import { END } from './validate.ts';

export type {
  CancelledBranch,
  Effect,
  ForkedStep,
  MachineOptions,
  OutstandingStep,
  RaisedInterrupt,
  RoutingFunction,
  RunSnapshot,
  StepFailure,
  StepSuccess,
  Transitioned,
} from './machine-types.ts';

export function stageByName(workflow: Workflow, name: string): StageSpec | undefined {
  return workflow.stages.find((s) => s.name === name);
}

export function startStage(workflow: Workflow): string {
  return workflow.start ?? workflow.stages[0]!.name;
}

export function outputKey(stage: StageSpec): string {
  return stage.output_key ?? stage.name;
}

/**
 * What to do next, without changing anything. Idempotent: while a step is outstanding it
 * returns that same step.
 */
export function nextInstruction(workflow: Workflow, snap: RunSnapshot, elapsedMs: number): Effect {
  if (isParallel(workflow)) return advanceParallel(workflow, snap, { elapsedMs, now: 0 }).effect;
  return decide(workflow, snap, elapsedMs, false);
}

/** Applies {@link nextInstruction}: issues the next step (counting it) or terminates. */
export function advance(
  workflow: Workflow,
  snapshot: RunSnapshot,
  options: MachineOptions,
): Transitioned {
  if (isParallel(workflow)) return advanceParallel(workflow, snapshot, options);
  const snap = clone(snapshot);
  const effect = decide(workflow, snap, options.elapsedMs, true);
  return { snapshot: snap, effect, routes: [] };
}

function decide(workflow: Workflow, snap: RunSnapshot, elapsedMs: number, apply: boolean): Effect {
  const env = snap.envelope;
  if (snap.terminated) return { kind: 'terminate', ...snap.terminated };
  if (env.current_stage === END) {
    return terminate(snap, 'completed', 'workflow completed', apply);
  }
  if (env.pending?.kind === 'interrupt') return { kind: 'wait_interrupt' };
  if (env.pending?.kind === 'agent') {
    return { kind: 'run_agent', stage: env.pending.stage, step: env.pending.step, fresh: false };
  }
  const exceeded = stepBoundExceeded(snap.quota, snap.usage, elapsedMs);
  if (exceeded) return budgetExhausted(workflow, snap, exceeded, apply);
  const stage = stageByName(workflow, env.current_stage);
  if (!stage) return terminate(snap, 'failed', `unknown stage: ${env.current_stage}`, apply);
  const step = env.step + 1;
  if (apply) {
    env.step = step;
    snap.usage.agent_hops += 1;
    env.visits[stage.name] = (env.visits[stage.name] ?? 0) + 1;
  }
  if (!stage.agent && stage.interrupt) {
    const interrupt: RaisedInterrupt = {
      kind: stage.interrupt.kind,
      stage: stage.name,
      prompt: interruptPrompt(stage, env),
      data: {},
      ...(stage.interrupt.ttl === undefined ? {} : { ttl_ms: stage.interrupt.ttl }),
    };
    if (apply) env.pending = { step, stage: stage.name, kind: 'interrupt' };
    return { kind: 'raise_interrupt', step, interrupt };
  }
  if (apply) env.pending = { step, stage: stage.name, kind: 'agent' };
  return { kind: 'run_agent', stage: stage.name, step, fresh: true };
}

/**
 * The question of a stage's interrupt: its `prompt` rendered as a template against the
 * envelope (the stage's own output is already under `outputs`), or the stage name when there
 * is no prompt or it renders empty.
 */
function interruptPrompt(stage: StageSpec, env: Readonly<Envelope>): string {
  const template = stage.interrupt?.prompt;
  const rendered = template === undefined ? '' : renderTemplate(template, env);
  return rendered === '' ? stage.name : rendered;
}

function terminate(
  snap: RunSnapshot,
  reason: TerminalReason,
  message: string,
  apply: boolean,
): Effect {
  if (apply) {
    snap.terminated = { reason, message };
    snap.envelope.pending = null;
  }
  return { kind: 'terminate', reason, message };
}

function budgetExhausted(
  workflow: Workflow,
  snap: RunSnapshot,
  reason: TerminalReason,
  apply: boolean,
): Effect {
  if (workflow.on_budget_exhausted === 'interrupt' && limitForReason(reason) !== null) {
    const step = snap.envelope.step;
    const limit = limitForReason(reason)!;
    const interrupt: RaisedInterrupt = {
      kind: 'resource_exhausted',
      stage: snap.envelope.current_stage,
      prompt: `budget exhausted (${reason}): grant more ${limit} to continue`,
      data: { reason, limit, quota: { ...snap.quota }, usage: { ...snap.usage } },
    };
    if (apply)
      snap.envelope.pending = { step, stage: snap.envelope.current_stage, kind: 'interrupt' };
    return { kind: 'raise_interrupt', step, interrupt };
  }
  return terminate(snap, reason, reason.replaceAll('_', ' '), apply);
}

/** Context for conditions and routing functions after `stage` produced `output`. */
export function routingContext(env: Envelope, output: unknown, interrupt: unknown): RoutingContext {
  return {
    output,
    outputs: env.outputs,
    state: env.state,
    metadata: env.metadata,
    input: env.input,
    interrupt,
  };
}

/** Routing: first matching rule wins, then `default_next`, then `end`. */
export function route(
  stage: StageSpec,
  ctx: RoutingContext,
  routingFunctions?: ReadonlyMap<string, RoutingFunction>,
): { to: string; via: string } {
  for (const [i, rule] of stage.routing.entries()) {
    if ('when' in rule) {
      if (evaluateCondition(rule.when, ctx)) return { to: rule.next, via: `routing[${i}]` };
      continue;
    }
    const fn = routingFunctions?.get(rule.fn);
    if (!fn) {
      throw new WardenError('WORKFLOW_INVALID', `routing function '${rule.fn}' is not registered`, {
        details: { stage: stage.name, fn: rule.fn },
      });
    }
    const target = fn(ctx);
    if (typeof target === 'string') return { to: target, via: `fn:${rule.fn}` };
  }
  if (stage.default_next !== undefined) return { to: stage.default_next, via: 'default_next' };
  return { to: END, via: 'end' };
}

/**
 * Moves the run from `from` to `to`, enforcing edge limits, loop-back iterations and
 * `max_visits`; then advances. `via` names what chose the edge, for the event log.
 */
export function transition(
  workflow: Workflow,
  snap: RunSnapshot,
  from: string,
  to: string,
  via: string,
  options: MachineOptions,
): Transitioned {
  const env = snap.envelope;
  const routes = [{ from, to, via }];
  if (to !== END && !stageByName(workflow, to)) {
    env.pending = null;
    snap.terminated = {
      reason: 'failed',
      message: `stage '${from}' routed to unknown stage '${to}' via ${via}`,
    };
    return { snapshot: snap, effect: { kind: 'terminate', ...snap.terminated }, routes };
  }
  const edge = `${from}->${to}`;
  env.edge_traversals[edge] = (env.edge_traversals[edge] ?? 0) + 1;
  env.current_stage = to;
  if (to !== END) {
    const limit = workflow.edge_limits.find((l) => l.from === from && l.to === to);
    if (limit && env.edge_traversals[edge] > limit.max_count) {
      snap.terminated = {
        reason: 'max_loop_exceeded',
        message: `edge limit exceeded: ${edge} (max ${limit.max_count})`,
      };
      return { snapshot: snap, effect: { kind: 'terminate', ...snap.terminated }, routes };
    }
    const order = workflow.stages.map((s) => s.name);
    const fromIndex = order.indexOf(from);
    if (fromIndex !== -1 && order.indexOf(to) <= fromIndex) snap.usage.iterations += 1;
    const target = stageByName(workflow, to)!;
    if (target.max_visits !== undefined && (env.visits[to] ?? 0) >= target.max_visits) {
      snap.terminated = {
        reason: 'max_visits_exceeded',
        message: `stage '${to}' reached max_visits ${target.max_visits}`,
      };
      return { snapshot: snap, effect: { kind: 'terminate', ...snap.terminated }, routes };
    }
  }
  const next = decide(workflow, snap, options.elapsedMs, true);
  return { snapshot: snap, effect: next, routes };
}

/** Records a finished step and routes on its output. Stale reports throw INVALID_STATE. */
export function completeStep(
  workflow: Workflow,
  snapshot: RunSnapshot,
  result: StepSuccess,
  options: MachineOptions,
): Transitioned {
  if (isParallel(workflow)) return completeParallel(workflow, snapshot, result, options);
  const snap = clone(snapshot);
  const env = snap.envelope;
  assertPending(snap, result.step, result.stage, 'agent');
  const stage = stageByName(workflow, result.stage)!;
  env.outputs[outputKey(stage)] = result.output;
  env.stage_calls[stage.name] = (env.stage_calls[stage.name] ?? 0) + result.modelCalls;
  if (result.statePatch) Object.assign(env.state, result.statePatch);
  env.pending = null;
  pushHistory(env, {
    step: result.step,
    stage: stage.name,
    status: 'ok',
    at: options.now,
    ...(result.attempt ? { attempt: result.attempt } : {}),
  });

  const ask = stage.interrupt;
  if (
    ask &&
    (ask.when === undefined ||
      evaluateCondition(ask.when, routingContext(env, result.output, undefined)))
  ) {
    const fromOutput = ask.prompt_from
      ? readField(routingContext(env, result.output, undefined), ask.prompt_from)
      : undefined;
    const interrupt: RaisedInterrupt = {
      kind: ask.kind,
      stage: stage.name,
      // A prompt taken from the output is data, never a template: it is not rendered.
      prompt:
        typeof fromOutput === 'string' && fromOutput !== ''
          ? fromOutput
          : interruptPrompt(stage, env),
      data: { output: result.output },
      ...(ask.ttl === undefined ? {} : { ttl_ms: ask.ttl }),
    };
    env.pending = { step: result.step, stage: stage.name, kind: 'interrupt' };
    return {
      snapshot: snap,
      effect: { kind: 'raise_interrupt', step: result.step, interrupt },
      routes: [],
    };
  }
  const { to, via } = route(
    stage,
    routingContext(env, result.output, undefined),
    options.routingFunctions,
  );
  return transition(workflow, snap, stage.name, to, via, options);
}

/** A step failed for good (retries exhausted or not retryable): `error_next`, or terminate. */
export function failStep(
  workflow: Workflow,
  snapshot: RunSnapshot,
  failure: StepFailure,
  options: MachineOptions,
): Transitioned {
  if (isParallel(workflow)) return failParallel(workflow, snapshot, failure, options);
  const snap = clone(snapshot);
  const env = snap.envelope;
  assertPending(snap, failure.step, failure.stage, 'agent');
  const stage = stageByName(workflow, failure.stage)!;
  env.pending = null;
  recordStepFailure(env, failure, stage.name, options.now);

  if (failure.code === 'QUOTA_EXCEEDED' && failure.reason) {
    const effect = budgetExhausted(workflow, snap, failure.reason, true);
    return { snapshot: snap, effect, routes: [] };
  }
  if (failure.code === 'CANCELED') {
    snap.terminated = { reason: 'user_cancelled', message: failure.message };
    return { snapshot: snap, effect: { kind: 'terminate', ...snap.terminated }, routes: [] };
  }
  if (stage.error_next !== undefined) {
    return transition(workflow, snap, stage.name, stage.error_next, 'error_next', options);
  }
  const reason: TerminalReason =
    failure.code === 'PROVIDER_ERROR' || stage.agent?.kind === 'llm'
      ? 'llm_failed_fatally'
      : 'tool_failed_fatally';
  snap.terminated = { reason, message: `stage '${stage.name}' failed: ${failure.message}` };
  return { snapshot: snap, effect: { kind: 'terminate', ...snap.terminated }, routes: [] };
}

export interface InterruptOutcome {
  readonly id: string;
  readonly kind: InterruptKind;
  readonly stage: string;
  /** The person's response, or undefined when the interrupt expired. */
  readonly response: InterruptResponse | undefined;
  /** For resource_exhausted: the reason that raised it. */
  readonly reason?: TerminalReason;
}

/**
 * Continues a run after its interrupt was resolved or expired. Expiry applies the kind's
 * default: `deny` kinds continue as a denial; the others terminate.
 */
export function resumeAfterInterrupt(
  workflow: Workflow,
  snapshot: RunSnapshot,
  outcome: InterruptOutcome,
  options: MachineOptions,
): Transitioned {
  const snap = clone(snapshot);
  const env = snap.envelope;
  if (env.pending?.kind !== 'interrupt') {
    throw new WardenError('INVALID_STATE', 'the process is not waiting for an interrupt', {
      details: { stage: outcome.stage },
    });
  }
  const step = env.pending.step;
  env.pending = null;
  let response = outcome.response;
  if (response === undefined) {
    if (INTERRUPT_EXPIRY[outcome.kind] === 'deny') response = { approved: false, expired: true };
    else {
      const reason =
        outcome.kind === 'resource_exhausted' && outcome.reason
          ? outcome.reason
          : 'interrupt_expired';
      snap.terminated = { reason, message: `${outcome.kind} interrupt ${outcome.id} expired` };
      return { snapshot: snap, effect: { kind: 'terminate', ...snap.terminated }, routes: [] };
    }
  }
  env.last_interrupt = { id: outcome.id, kind: outcome.kind, stage: outcome.stage, response };
  pushHistory(env, { step, stage: outcome.stage, status: 'interrupted', at: options.now });

  if (outcome.kind === 'resource_exhausted') {
    if (response.approved === false) {
      const reason = outcome.reason ?? 'failed';
      snap.terminated = { reason, message: `budget not extended (${reason})` };
      return { snapshot: snap, effect: { kind: 'terminate', ...snap.terminated }, routes: [] };
    }
    const limit = outcome.reason ? limitForReason(outcome.reason) : null;
    const grant = response.grant ?? (limit ? { [limit]: snap.quota[limit] } : {});
    snap.quota = grantQuota(snap.quota, grant);
    return { snapshot: snap, effect: decide(workflow, snap, options.elapsedMs, true), routes: [] };
  }

  const stage = stageByName(workflow, outcome.stage);
  if (!stage) {
    snap.terminated = { reason: 'failed', message: `unknown stage: ${outcome.stage}` };
    return { snapshot: snap, effect: { kind: 'terminate', ...snap.terminated }, routes: [] };
  }
  if (!stage.agent) env.outputs[outputKey(stage)] = response;
  if (stage.resume_next !== undefined) {
    return transition(workflow, snap, stage.name, stage.resume_next, 'resume_next', options);
  }
  const output = stage.agent ? env.outputs[outputKey(stage)] : response;
  const { to, via } = route(stage, routingContext(env, output, response), options.routingFunctions);
  return transition(workflow, snap, stage.name, to, via, options);
}

/** Ends a run on request (cancel): every outstanding step becomes stale. */
export function cancelRun(snapshot: RunSnapshot, message: string): RunSnapshot {
  const snap = clone(snapshot);
  snap.envelope.pending = null;
  cancelBranches(snap.envelope);
  snap.terminated = { reason: 'user_cancelled', message };
  return snap;
}

/**
 * Every step issued and not yet reported that a worker or client may report, in stage order:
 * the sequential run's pending agent step (none while it waits for an interrupt), or a
 * parallel run's outstanding branches.
 */
export function outstandingSteps(workflow: Workflow, envelope: Envelope): OutstandingStep[] {
  if (envelope.branches) return outstandingBranches(workflow, envelope);
  const pending = envelope.pending;
  return pending?.kind === 'agent' ? [{ step: pending.step, stage: pending.stage }] : [];
}

/** The outstanding step numbered `step` (see {@link outstandingSteps}), if there is one. */
export function outstandingStep(envelope: Envelope, step: number): OutstandingStep | undefined {
  if (envelope.branches) {
    for (const [stage, branch] of Object.entries(envelope.branches))
      if (branch.status === 'outstanding' && branch.step === step) return { step, stage };
    return undefined;
  }
  const pending = envelope.pending;
  return pending?.kind === 'agent' && pending.step === step
    ? { step, stage: pending.stage }
    : undefined;
}

function assertPending(
  snap: RunSnapshot,
  step: number,
  stage: string,
  kind: 'agent' | 'interrupt',
): void {
  const pending = snap.envelope.pending;
  if (
    snap.terminated ||
    !pending ||
    pending.step !== step ||
    pending.stage !== stage ||
    pending.kind !== kind
  ) {
    throw new WardenError(
      'INVALID_STATE',
      `stale report for step ${step} (${stage}): the process ${snap.terminated ? 'has terminated' : pending ? `expects step ${pending.step} (${pending.stage})` : 'has no outstanding step'}`,
      { details: { step, stage, pending } },
    );
  }
}

/**
 * A copy the machine may change freely. History and error entries are never changed once
 * written (only appended and dropped), so the copies share them: a long run's 200 history
 * entries were most of what each step cloned.
 */
function clone(snap: RunSnapshot): RunSnapshot {
  const { history, errors, ...envelope } = snap.envelope;
  const copy = structuredClone({ ...snap, envelope });
  return { ...copy, envelope: { ...copy.envelope, history: [...history], errors: [...errors] } };
}
