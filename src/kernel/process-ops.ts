/**
 * Translates a decision of the pure orchestration machine into store operations: the process
 * row (compare-and-set on its version), the next task, an interrupt, and the events that
 * describe each change, all for ONE `store.commit`.
 */
import type { IdGenerator } from '../core/index.ts';
import {
  canTransition,
  type Clock,
  type Effect,
  interruptExpiresAt,
  isWardenError,
  limitForReason,
  type ProcessState,
  type RunSnapshot,
  stageByName,
  type Transitioned,
} from '../core/index.ts';
import type { ProcessRecord, Store, StoreOp, TaskRecord } from '../store/index.ts';
import { processEvent } from './events.ts';
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

/** The envelope of a run whose step (attempt) begins running at `now`. */
export function stepStarted<E extends ProcessRecord['envelope']>(envelope: E, now: number): E {
  return { ...envelope, step_started_at: now };
}

/** The envelope of a run whose running attempt ended (finished or failed) at `now`. */
export function stepEnded<E extends ProcessRecord['envelope']>(envelope: E, now: number): E {
  const since = envelope.step_started_at;
  if (since == null) return envelope;
  return {
    ...envelope,
    active_ms: (envelope.active_ms ?? 0) + Math.max(0, now - since),
    step_started_at: null,
  };
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
 */
export function planEffect(
  ctx: KernelContext,
  before: ProcessRecord,
  from: ProcessState,
  result: Transitioned,
): PlannedCommit {
  const now = ctx.clock.now();
  const snap = result.snapshot;
  const effect: Effect = result.effect;
  const ops: StoreOp[] = [];
  for (const r of result.routes) ops.push(processEvent(before, 'route.taken', r));

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
    id: ctx.ids.next('t'),
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

/** Re-reads and retries a compare-and-set commit when another writer moved the process on. */
export async function withCasRetry<T>(fn: () => Promise<T>, attempts = 8): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await fn();
    } catch (error) {
      if (i >= attempts || !isWardenError(error, 'CONFLICT')) throw error;
    }
  }
}
