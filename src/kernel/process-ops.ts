/**
 * Translates a decision of the pure orchestration machine into store operations: the process
 * row (compare-and-set on its version), the next task, an interrupt, and the events that
 * describe each change, all for ONE `store.commit`.
 */
import type { Envelope, IdGenerator } from '../core/index.ts';
import {
  afterOf,
  canTransition,
  type Clock,
  type Effect,
  interruptExpiresAt,
  isWardenError,
  joinOf,
  limitForReason,
  outstandingStep,
  type ProcessState,
  requiresOf,
  type RunSnapshot,
  stageByName,
  type Transitioned,
} from '../core/index.ts';
import type { ProcessRecord, Store, StoreOp, TaskRecord } from '../store/index.ts';
import { processEvent, taskEvent } from './events.ts';
import { sortKey } from './scheduler.ts';

export interface KernelContext {
  readonly store: Store;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  /** Lane that agent steps are queued in. */
  readonly agentLane: string;
  /** Lane that steps of `external` stages wait in for a client. */
  readonly externalLane: string;
  readonly agingMs: number;
}

export function snapshotOf(p: ProcessRecord): RunSnapshot {
  return {
    envelope: p.envelope,
    usage: p.usage,
    quota: p.quota,
    terminated: p.terminal_reason
      ? { reason: p.terminal_reason, message: p.terminal_message ?? '' }
      : null,
  };
}

/**
 * Run time the run has used against `bounds.timeout`: the finished attempts' running time plus
 * the current attempt's so far. Time queued, waiting for a person (bounded by the interrupt's
 * TTL instead) or lost with a dead worker does not count: an attempt whose worker died never
 * finishes, and the next attempt restarts the clock of the step.
 */
export function elapsedMs(p: ProcessRecord, now: number): number {
  const since = p.state === 'running' ? p.envelope.step_started_at : null;
  return (p.envelope.active_ms ?? 0) + (since == null ? 0 : Math.max(0, now - since));
}

/*
 * Run time of parallel runs: `step_started_at` opens an interval during which the same set of
 * branches runs (at least one); every branch start, end or loss closes it (adding its time to
 * `active_ms`) and opens the next one if a branch still runs. So time is counted once however
 * many branches run, and an interval in which only a lost (dead) branch ran is dropped, as the
 * sequential run drops the time of a dead attempt.
 */

/** The envelope of a run whose step (attempt) begins running at `now`. */
export function stepStarted<E extends Envelope>(envelope: E, now: number, step?: number): E {
  const stage = branchOf(envelope, step);
  if (!stage) return { ...envelope, step_started_at: now };
  const next = withBranch(closeInterval(envelope, now), stage, now);
  return { ...next, step_started_at: now };
}

/** The envelope of a run whose running attempt ended (finished or failed) at `now`. */
export function stepEnded<E extends Envelope>(envelope: E, now: number, step?: number): E {
  const stage = branchOf(envelope, step);
  if (stage) {
    if (envelope.branches![stage]!.started_at == null) return envelope;
    const next = withBranch(closeInterval(envelope, now), stage, null);
    return { ...next, step_started_at: anyBranchRunning(next) ? now : null };
  }
  const since = envelope.step_started_at;
  if (since == null) return envelope;
  return {
    ...envelope,
    active_ms: (envelope.active_ms ?? 0) + Math.max(0, now - since),
    step_started_at: null,
  };
}

/**
 * The envelope of a parallel run whose branch `step` lost its worker (its lease was reclaimed
 * at `now`). Sequential runs need nothing: their next attempt restarts the clock.
 */
export function stepLost<E extends Envelope>(envelope: E, now: number, step: number): E {
  const stage = branchOf(envelope, step);
  if (!stage || envelope.branches![stage]!.started_at == null) return envelope;
  const others = withBranch(envelope, stage, null);
  if (!anyBranchRunning(others)) return { ...others, step_started_at: null };
  return { ...withBranch(closeInterval(envelope, now), stage, null), step_started_at: now };
}

/** Whether outstanding step `step` has begun running (a worker or client holds it). */
export function stepBegun(envelope: Envelope, step: number): boolean {
  if (!envelope.branches) return envelope.step_started_at != null;
  const stage = outstandingStep(envelope, step)?.stage;
  return stage !== undefined && envelope.branches[stage]?.started_at != null;
}

/** Whether a branch of a parallel run is running (not just queued). */
export function anyBranchRunning(envelope: Envelope): boolean {
  return Object.values(envelope.branches ?? {}).some(
    (b) => b.status === 'outstanding' && b.started_at != null,
  );
}

function branchOf(envelope: Envelope, step: number | undefined): string | undefined {
  if (step === undefined || !envelope.branches) return undefined;
  return outstandingStep(envelope, step)?.stage;
}

function withBranch<E extends Envelope>(envelope: E, stage: string, startedAt: number | null): E {
  const branches = envelope.branches!;
  return {
    ...envelope,
    branches: { ...branches, [stage]: { ...branches[stage]!, started_at: startedAt } },
  };
}

function closeInterval<E extends Envelope>(envelope: E, now: number): E {
  const since = envelope.step_started_at;
  if (since == null || !anyBranchRunning(envelope)) return envelope;
  return { ...envelope, active_ms: (envelope.active_ms ?? 0) + Math.max(0, now - since) };
}

/** Legal path from one state to another (a gate interrupt raised from `ready` passes `running`). */
export function statePath(from: ProcessState, to: ProcessState): ProcessState[] {
  if (from === to) return [];
  if (canTransition(from, to, { force: true })) return [to];
  if ((from === 'ready' || from === 'new') && (to === 'waiting' || to === 'blocked')) {
    return from === 'new' ? ['ready', 'running', to] : ['running', to];
  }
  if (from === 'new' && to === 'running') return ['ready', 'running'];
  return [to];
}

export function stateChangeOps(
  p: ProcessRecord,
  from: ProcessState,
  to: ProcessState,
  reason?: string,
): StoreOp[] {
  const ops: StoreOp[] = [];
  let current = from;
  for (const next of statePath(from, to)) {
    ops.push(
      processEvent(p, 'process.state_changed', {
        from: current,
        to: next,
        ...(reason ? { reason } : {}),
      }),
    );
    current = next;
  }
  return ops;
}

export interface PlannedCommit {
  readonly ops: StoreOp[];
  readonly next: ProcessRecord;
}

/**
 * Builds the ops that persist `result` for process `before`, currently in state `from`.
 * The caller prepends its own ops (task settle, interrupt settle) and commits everything.
 * `tasks` are the run's live step tasks ({@link liveStepTasks}): the tasks of branches the
 * transition cancelled are cancelled with it (pass none when the caller cancels them itself).
 */
export function planEffect(
  ctx: KernelContext,
  before: ProcessRecord,
  from: ProcessState,
  result: Transitioned,
  tasks: readonly TaskRecord[] = [],
): PlannedCommit {
  const now = ctx.clock.now();
  const snap = result.snapshot;
  const effect: Effect = result.effect;
  const ops: StoreOp[] = [];
  for (const r of result.routes) ops.push(processEvent(before, 'route.taken', r));
  for (const c of result.cancelled ?? []) {
    const { stage, step, reason } = c;
    const lost = c.join === undefined ? {} : { join: c.join, winner: c.winner };
    ops.push(processEvent(before, 'stage.cancelled', { stage, step, reason, ...lost }));
    const task = tasks.find((t) => (t.payload as { step?: number } | null)?.step === step);
    if (step === null || !task) continue;
    ops.push({
      op: 'task.cancel',
      id: task.id,
      expectState: task.state as 'queued' | 'running',
      leaseToken: task.lease_token,
      now,
    });
    ops.push(
      taskEvent(
        task,
        'task.canceled',
        { reason: `branch cancelled (${reason})` },
        task.attempts || null,
      ),
    );
  }

  let state: ProcessState = from;
  let terminal: Pick<ProcessRecord, 'terminal_reason' | 'terminal_message' | 'completed_at'> = {
    terminal_reason: before.terminal_reason,
    terminal_message: before.terminal_message,
    completed_at: before.completed_at,
  };
  switch (effect.kind) {
    case 'run_agent': {
      state = 'ready';
      if (effect.fresh) {
        const stage = stageByName(before.workflow, effect.stage)!;
        const task = agentStepTask(ctx, before, effect.stage, effect.step, stage.retry, now);
        ops.push({ op: 'task.insert', row: task });
        ops.push(
          processEvent(
            before,
            'task.queued',
            { stage: effect.stage, step: effect.step, lane: task.lane },
            { task_id: task.id },
          ),
        );
      }
      break;
    }
    case 'fork': {
      state = anyBranchRunning(snap.envelope) ? 'running' : 'ready';
      for (const s of effect.steps) {
        if (!s.fresh) continue;
        ops.push(...forkOps(ctx, before, snap.envelope, s.stage, s.step, now));
      }
      break;
    }
    case 'raise_interrupt': {
      state = 'waiting';
      const i = effect.interrupt;
      const id = ctx.ids.next('int');
      ops.push({
        op: 'interrupt.insert',
        row: {
          id,
          session_id: before.session_id,
          process_id: before.pid,
          kind: i.kind,
          stage: i.stage,
          step: effect.step,
          prompt: i.prompt,
          data: i.data,
          status: 'pending',
          response: null,
          resolver: null,
          trace_id: before.trace_id,
          created_at: now,
          expires_at: interruptExpiresAt(i.kind, now, i.ttl_ms),
          resolved_at: null,
        },
      });
      ops.push(
        processEvent(before, 'interrupt.raised', {
          id,
          kind: i.kind,
          stage: i.stage,
          step: effect.step,
          prompt: i.prompt,
          expires_at: interruptExpiresAt(i.kind, now, i.ttl_ms),
        }),
      );
      if (i.kind === 'resource_exhausted')
        ops.push(processEvent(before, 'budget.exceeded', i.data));
      break;
    }
    case 'wait_interrupt':
      state = 'waiting';
      break;
    case 'terminate': {
      state = 'terminated';
      terminal = {
        terminal_reason: effect.reason,
        terminal_message: effect.message,
        completed_at: now,
      };
      if (limitForReason(effect.reason) !== null) {
        ops.push(
          processEvent(before, 'budget.exceeded', {
            reason: effect.reason,
            usage: snap.usage,
            quota: snap.quota,
          }),
        );
      }
      break;
    }
  }
  const next: ProcessRecord = {
    ...before,
    state,
    envelope: snap.envelope,
    usage: snap.usage,
    quota: snap.quota,
    current_stage: snap.envelope.current_stage,
    ...terminal,
    version: before.version + 1,
    updated_at: now,
  };
  ops.push(...stateChangeOps(before, from, state));
  if (effect.kind === 'terminate') {
    ops.push(
      processEvent(before, 'process.terminated', {
        reason: effect.reason,
        message: effect.message,
        usage: snap.usage,
        stage: snap.envelope.current_stage,
      }),
    );
  }
  ops.unshift({ op: 'process.update', expectVersion: before.version, row: next });
  return { ops, next };
}

/** Queues a new branch step: `stage.joined` (when it waited for two or more), `stage.forked`. */
function forkOps(
  ctx: KernelContext,
  p: ProcessRecord,
  envelope: Envelope,
  name: string,
  step: number,
  now: number,
): StoreOp[] {
  const stage = stageByName(p.workflow, name)!;
  const requires = requiresOf(stage);
  const after = afterOf(stage);
  const ops: StoreOp[] = [];
  if (requires.length + after.length >= 2) {
    const waited: Record<string, string> = {};
    for (const dep of [...requires, ...after])
      waited[dep] = envelope.branches?.[dep]?.status ?? 'not_started';
    ops.push(
      processEvent(p, 'stage.joined', {
        stage: name,
        step,
        join_strategy: joinOf(stage),
        waited_for: waited,
      }),
    );
  }
  const task = agentStepTask(ctx, p, name, step, stage.retry, now);
  ops.push(
    processEvent(p, 'stage.forked', {
      stage: name,
      step,
      ...(requires.length > 0 ? { requires } : {}),
      ...(after.length > 0 ? { after } : {}),
    }),
    { op: 'task.insert', row: task },
    processEvent(p, 'task.queued', { stage: name, step, lane: task.lane }, { task_id: task.id }),
  );
  return ops;
}

/** The run's queued and running step tasks (what {@link planEffect} may have to cancel). */
export async function liveStepTasks(ctx: KernelContext, pid: string): Promise<TaskRecord[]> {
  const tasks = await ctx.store.listTasks({
    processId: pid,
    states: ['queued', 'running'],
    limit: 1_000,
  });
  return tasks.filter((t) => t.kind === 'agent_step');
}

/**
 * The id of the task of a run's step: one task per step (a retry re-queues the same task), so
 * the id is derived, and a client asking for its step reads that one row instead of listing
 * the run's tasks, which grow with every step. Zero-padded to keep a run's tasks in step order.
 * Runs started before this rule have random task ids: readers fall back to listing.
 */
export function stepTaskId(pid: string, step: number): string {
  return `t_${pid}_${String(step).padStart(10, '0')}`;
}

export function agentStepTask(
  ctx: KernelContext,
  p: ProcessRecord,
  stage: string,
  step: number,
  retry: { max_attempts: number; backoff: number; max_backoff: number } | undefined,
  now: number,
): TaskRecord {
  const rank = ['realtime', 'high', 'normal', 'low', 'idle'].indexOf(p.priority);
  const external = stageByName(p.workflow, stage)?.agent?.kind === 'external';
  return {
    id: stepTaskId(p.pid, step),
    kind: 'agent_step',
    name: stage,
    lane: external ? ctx.externalLane : ctx.agentLane,
    session_id: p.session_id,
    process_id: p.pid,
    payload: { pid: p.pid, step, stage },
    state: 'queued',
    priority: rank,
    sort_key: sortKey(now, rank, ctx.agingMs),
    available_at: now,
    attempts: 0,
    max_attempts: retry?.max_attempts ?? 3,
    lease_owner: null,
    lease_token: null,
    lease_expires_at: null,
    idempotency_key: null,
    last_error: null,
    result: null,
    trace_id: p.trace_id,
    options: {
      backoff_ms: retry?.backoff ?? 1_000,
      max_backoff_ms: retry?.max_backoff ?? 60_000,
      timeout_ms: stageByName(p.workflow, stage)?.timeout ?? null,
      poison_threshold: 3,
      consecutive_fingerprint: null,
    },
    created_at: now,
    updated_at: now,
  };
}

/**
 * Re-reads and retries a compare-and-set commit when another writer moved the process on. The
 * first retry is immediate; later ones wait a random 0–2^(n−1) ms (at most 256 ms), so the
 * branches of a wide parallel run, which all write the same process row, spread out instead of
 * colliding again. Giving up is the worst outcome for a worker's step (it waits ~15 s for its
 * lease to lapse and runs again), so the budget is generous: up to 64 attempts, ~7 s of waits.
 * Measured (test/parallel.int.test.ts, wide fan-out: 3 runs × 41 branches on 2 workers × 16
 * slots): on SQLite 8 immediate retries gave up 48 times; on PostgreSQL, where a commit takes
 * ~15–30 ms under this load, 16 attempts with waits of at most 64 ms gave up ~30 times (the
 * slowest successful commit needed 34 attempts with two such files at once); this gives up none.
 */
export async function withCasRetry<T>(fn: () => Promise<T>, attempts = 64): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (error) {
      if (i >= attempts || !isWardenError(error, 'CONFLICT')) throw error;
      if (i > 1) await sleep(Math.floor(Math.random() * Math.min(256, 2 ** (i - 1))));
    }
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
