/**
 * The parallel orchestration machine (`mode: parallel`, docs/workflows.md#parallel-stages), as
 * pure functions over a {@link RunSnapshot}; machine.ts calls these for parallel workflows.
 *
 * Every stage runs at most once, as one branch step. `envelope.branches[stage]` records it:
 * absent (not started), `outstanding` (issued, not reported), then `completed`, `failed` or
 * `cancelled`. Definitions, over those statuses:
 *
 * - a *handler* is a stage some stage names as `error_next`; it is *triggered* once one of
 *   those stages failed, and has no `requires`/`after` of its own (validation);
 * - a stage is *dead* (can never start) when it is absent and: it is a handler none of whose
 *   naming stages can still fail (each completed, cancelled or dead); or its `requires` can no
 *   longer be met (`all`: one of them failed, was cancelled or is dead; `any`: all of them);
 * - a stage is *settled* when it is completed, failed, cancelled or dead;
 * - a stage is *ready* when it is absent, not dead, every `after` stage is settled, its
 *   `requires` are met (`all`: every one completed; `any`: one completed), and, for a handler,
 *   it was triggered.
 *
 * Transitions:
 * - start / {@link advanceParallel}: issue every ready stage (at the start: those with no
 *   `requires`/`after` that are not handlers);
 * - {@link completeParallel}: record the output; if the stage is the first of the `requires` of
 *   an `any` join to complete, that join is decided and its other required stages that have
 *   not finished are cancelled (outstanding or not yet started), unless another stage still
 *   waits for them (lists them in `after`, or in the `requires` of a join that is not an
 *   already-decided `any`); then issue what became ready;
 * - {@link failParallel}: with `error_next` (a handler, or `end`) the failure is tolerated and
 *   what became ready is issued; without it, or for CANCELED and QUOTA_EXCEEDED, the run
 *   terminates and every outstanding branch is cancelled.
 *
 * Issuing: ready stages in stage order, at most `max_concurrent_agents` outstanding at once.
 * The bounds are checked before the stages of one transition are issued, all or none: if the
 * run's budget is spent, or issuing them would take more hops than `max_agent_hops`, the run
 * terminates with that reason (cancelling the outstanding branches). Each issued branch counts
 * one hop and one visit; model calls and tokens are the branch's own (recorded by its worker),
 * so a join adds nothing. The run completes when nothing is outstanding and nothing is ready.
 * Iterations stay 0 (a parallel run never loops back); routing is not used.
 */
import { WardenError } from '../errors.ts';
import { stepBoundExceeded, type TerminalReason } from '../quota.ts';
import { END } from './end.ts';
import { type Branch, type Envelope, pushHistory, recordStepFailure } from './envelope.ts';
import type {
  CancelledBranch,
  Effect,
  ForkedStep,
  MachineOptions,
  OutstandingStep,
  RunSnapshot,
  StepFailure,
  StepSuccess,
  Transitioned,
} from './machine-types.ts';
import { afterOf, handlersOf, joinOf, requiresOf } from './parallel-graph.ts';
import type { StageSpec, Workflow } from './schema.ts';

/** Issues what is ready (nothing, while the run is terminated); idempotent when nothing is. */
export function advanceParallel(
  workflow: Workflow,
  snapshot: RunSnapshot,
  options: MachineOptions,
): Transitioned {
  const snap = structuredClone(snapshot);
  if (snap.terminated) return { snapshot: snap, effect: terminated(snap), routes: [] };
  snap.envelope.branches ??= {};
  return issueReady(workflow, snap, options, []);
}

/** Records a completed branch, decides `any` joins, issues what became ready. */
export function completeParallel(
  workflow: Workflow,
  snapshot: RunSnapshot,
  result: StepSuccess,
  options: MachineOptions,
): Transitioned {
  const snap = structuredClone(snapshot);
  const env = snap.envelope;
  const branch = assertOutstanding(snap, result.step, result.stage);
  const stage = stageOf(workflow, result.stage);
  env.outputs[stage.output_key ?? stage.name] = result.output;
  env.stage_calls[stage.name] = (env.stage_calls[stage.name] ?? 0) + result.modelCalls;
  if (result.statePatch) Object.assign(env.state, result.statePatch);
  branch.status = 'completed';
  if (branch.started_at != null) branch.started_at = null;
  pushHistory(env, {
    step: result.step,
    stage: stage.name,
    status: 'ok',
    at: options.now,
    ...(result.attempt ? { attempt: result.attempt } : {}),
  });
  const cancelled = decideAnyJoins(workflow, env, stage.name, options.now);
  return issueReady(workflow, snap, options, cancelled);
}

/** Records a failed branch: tolerated with `error_next`, else the run terminates. */
export function failParallel(
  workflow: Workflow,
  snapshot: RunSnapshot,
  failure: StepFailure,
  options: MachineOptions,
): Transitioned {
  const snap = structuredClone(snapshot);
  const env = snap.envelope;
  const branch = assertOutstanding(snap, failure.step, failure.stage);
  const stage = stageOf(workflow, failure.stage);
  branch.status = 'failed';
  if (branch.started_at != null) branch.started_at = null;
  recordStepFailure(env, failure, stage.name, options.now);
  if (failure.code === 'QUOTA_EXCEEDED' && failure.reason)
    return end(workflow, snap, failure.reason, failure.reason.replaceAll('_', ' '), options, []);
  if (failure.code === 'CANCELED')
    return end(workflow, snap, 'user_cancelled', failure.message, options, []);
  if (stage.error_next === undefined) {
    const reason: TerminalReason =
      failure.code === 'PROVIDER_ERROR' || stage.agent?.kind === 'llm'
        ? 'llm_failed_fatally'
        : 'tool_failed_fatally';
    return end(
      workflow,
      snap,
      reason,
      `stage '${stage.name}' failed: ${failure.message}`,
      options,
      [],
    );
  }
  const issued = issueReady(workflow, snap, options, []);
  return { ...issued, routes: [{ from: stage.name, to: stage.error_next, via: 'error_next' }] };
}

/** Marks every outstanding branch cancelled (the run is being cancelled as a whole). */
export function cancelBranches(envelope: Envelope): void {
  for (const branch of Object.values(envelope.branches ?? {})) {
    if (branch.status !== 'outstanding') continue;
    branch.status = 'cancelled';
    if (branch.started_at != null) branch.started_at = null;
  }
}

/** The outstanding branch steps, in stage order. */
export function outstandingBranches(workflow: Workflow, envelope: Envelope): OutstandingStep[] {
  const branches = envelope.branches ?? {};
  const out: OutstandingStep[] = [];
  for (const stage of workflow.stages) {
    const branch = branches[stage.name];
    if (branch?.status === 'outstanding' && branch.step !== null)
      out.push({ step: branch.step, stage: stage.name });
  }
  return out;
}

function terminated(snap: RunSnapshot): Effect {
  return { kind: 'terminate', ...snap.terminated! };
}

/** Issues the ready stages (bounds permitting), or completes the run when nothing is left. */
function issueReady(
  workflow: Workflow,
  snap: RunSnapshot,
  options: MachineOptions,
  cancelled: CancelledBranch[],
): Transitioned {
  const env = snap.envelope;
  const branches = env.branches!;
  const outstanding = Object.values(branches).filter((b) => b.status === 'outstanding').length;
  const room = (workflow.max_concurrent_agents ?? Infinity) - outstanding;
  const ready = room > 0 ? readyStages(workflow, env).slice(0, room) : [];
  if (ready.length > 0) {
    // All or none: the hop bound as if every one of them were issued.
    const usage = { ...snap.usage, agent_hops: snap.usage.agent_hops + ready.length - 1 };
    const exceeded = stepBoundExceeded(snap.quota, usage, options.elapsedMs);
    if (exceeded)
      return end(workflow, snap, exceeded, exceeded.replaceAll('_', ' '), options, cancelled);
  }
  const fresh = new Set<string>();
  for (const name of ready) {
    env.step += 1;
    snap.usage.agent_hops += 1;
    env.visits[name] = (env.visits[name] ?? 0) + 1;
    branches[name] = { step: env.step, status: 'outstanding' };
    fresh.add(name);
  }
  const steps: ForkedStep[] = outstandingBranches(workflow, env).map((s) => ({
    ...s,
    fresh: fresh.has(s.stage),
  }));
  if (steps.length === 0) {
    env.current_stage = END;
    snap.terminated = { reason: 'completed', message: 'workflow completed' };
    return { snapshot: snap, effect: terminated(snap), routes: [], cancelled };
  }
  env.current_stage = steps[0]!.stage;
  return { snapshot: snap, effect: { kind: 'fork', steps }, routes: [], cancelled };
}

/** Terminates the run, cancelling every outstanding branch. */
function end(
  workflow: Workflow,
  snap: RunSnapshot,
  reason: TerminalReason,
  message: string,
  options: MachineOptions,
  cancelled: CancelledBranch[],
): Transitioned {
  const all = [...cancelled];
  for (const { stage, step } of outstandingBranches(workflow, snap.envelope)) {
    cancel(snap.envelope, stage, step, options.now);
    all.push({ stage, step, reason: 'run_ended' });
  }
  snap.terminated = { reason, message };
  return { snapshot: snap, effect: terminated(snap), routes: [], cancelled: all };
}

function cancel(env: Envelope, stage: string, step: number | null, now: number): void {
  const branch = env.branches![stage];
  if (branch) {
    branch.status = 'cancelled';
    if (branch.started_at != null) branch.started_at = null;
  } else env.branches![stage] = { step, status: 'cancelled' };
  if (step !== null) pushHistory(env, { step, stage, status: 'cancelled', at: now });
}

/**
 * The `any` joins that `winner` (just completed) decided, and the branches that lost them:
 * cancelled unless another stage still waits for them. Whether one waits is judged on the
 * state before any of these cancellations, so the result does not depend on stage order.
 */
function decideAnyJoins(
  workflow: Workflow,
  env: Envelope,
  winner: string,
  now: number,
): CancelledBranch[] {
  const status = statusOf(env);
  const dead = deadStages(workflow, env);
  const open = (name: string) => status(name) === undefined && !dead.has(name);
  const decided = (s: StageSpec) =>
    joinOf(s) === 'any' && requiresOf(s).some((r) => status(r) === 'completed');
  /** Whether a stage other than `join` may still start and waits for `name`. */
  const needed = (name: string, join: string) =>
    workflow.stages.some(
      (s) =>
        s.name !== join &&
        open(s.name) &&
        (afterOf(s).includes(name) || (requiresOf(s).includes(name) && !decided(s))),
    );
  const losers = new Map<string, string>(); // loser → the join it lost
  for (const join of workflow.stages) {
    const required = requiresOf(join);
    if (joinOf(join) !== 'any' || !required.includes(winner) || !open(join.name)) continue;
    if (required.filter((r) => status(r) === 'completed').length !== 1) continue; // decided before
    for (const name of required) {
      if (name === winner || losers.has(name)) continue;
      if (status(name) !== 'outstanding' && !open(name)) continue;
      if (!needed(name, join.name)) losers.set(name, join.name);
    }
  }
  const out: CancelledBranch[] = [];
  for (const { name } of workflow.stages) {
    const join = losers.get(name);
    if (join === undefined) continue;
    const step = env.branches![name]?.step ?? null;
    cancel(env, name, step, now);
    out.push({ stage: name, step, reason: 'join', join, winner });
  }
  return out;
}

/** The ready stages, in stage order (see the module comment). */
function readyStages(workflow: Workflow, env: Envelope): string[] {
  const status = statusOf(env);
  const dead = deadStages(workflow, env);
  const handlers = handlersOf(workflow);
  const settled = (name: string) => status(name) !== 'outstanding' && !isOpen(name);
  const isOpen = (name: string) => status(name) === undefined && !dead.has(name);
  return workflow.stages
    .filter((stage) => {
      if (!isOpen(stage.name)) return false;
      if (!afterOf(stage).every(settled)) return false;
      const required = requiresOf(stage);
      const completed = (r: string) => status(r) === 'completed';
      const met = joinOf(stage) === 'any' ? required.some(completed) : required.every(completed);
      if (required.length > 0 && !met) return false;
      const namedBy = handlers.get(stage.name);
      return namedBy === undefined || namedBy.some((t) => status(t) === 'failed');
    })
    .map((s) => s.name);
}

/** The stages that can never start (see the module comment). The graph is acyclic. */
function deadStages(workflow: Workflow, env: Envelope): Set<string> {
  const status = statusOf(env);
  const handlers = handlersOf(workflow);
  const byName = new Map(workflow.stages.map((s) => [s.name, s]));
  const memo = new Map<string, boolean>();
  const isDead = (name: string): boolean => {
    const known = memo.get(name);
    if (known !== undefined) return known;
    memo.set(name, false); // only reached again through a cycle, which validation rejects
    const result = computeDead(name);
    memo.set(name, result);
    return result;
  };
  const gone = (name: string) => {
    const s = status(name);
    return s === 'failed' || s === 'cancelled' || (s === undefined && isDead(name));
  };
  const computeDead = (name: string): boolean => {
    const stage = byName.get(name);
    if (!stage || status(name) !== undefined) return false;
    const namedBy = handlers.get(name);
    const cannotFail = (t: string) => {
      const s = status(t);
      return s === 'completed' || s === 'cancelled' || (s === undefined && isDead(t));
    };
    if (namedBy?.every(cannotFail)) return true;
    const required = requiresOf(stage);
    if (required.length === 0) return false;
    return joinOf(stage) === 'any' ? required.every(gone) : required.some(gone);
  };
  const out = new Set<string>();
  for (const stage of workflow.stages) if (isDead(stage.name)) out.add(stage.name);
  return out;
}

function statusOf(env: Envelope): (name: string) => Branch['status'] | undefined {
  return (name) => env.branches?.[name]?.status;
}

function stageOf(workflow: Workflow, name: string): StageSpec {
  return workflow.stages.find((s) => s.name === name)!;
}

function assertOutstanding(snap: RunSnapshot, step: number, stage: string): Branch {
  const branch = snap.envelope.branches?.[stage];
  if (!snap.terminated && branch?.status === 'outstanding' && branch.step === step) return branch;
  const outstanding = Object.entries(snap.envelope.branches ?? {})
    .filter(([, b]) => b.status === 'outstanding')
    .map(([name, b]) => `${b.step} (${name})`);
  throw new WardenError(
    'INVALID_STATE',
    `stale report for step ${step} (${stage}): the process ${snap.terminated ? 'has terminated' : outstanding.length > 0 ? `expects step ${outstanding.join(' or ')}` : 'has no outstanding step'}`,
    { details: { step, stage, outstanding } },
  );
}
