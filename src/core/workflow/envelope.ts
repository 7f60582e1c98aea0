/**
 * The envelope: a process's working memory, persisted with every step. Usage and quota live on
 * the process record (one accounting record, jeeves defect #12), not here.
 */
import type { InterruptKind, InterruptResponse } from '../interrupt.ts';

/** The step issued and not yet reported; a report for any other step is stale. */
export interface PendingStep {
  readonly step: number;
  readonly stage: string;
  readonly kind: 'agent' | 'interrupt';
  readonly interrupt_id?: string;
}

/**
 * Parallel mode: where a stage's branch stands. `outstanding`: issued and not yet reported;
 * the others are final. A stage has at most one branch (each stage runs at most once).
 */
export const BRANCH_STATUSES = ['outstanding', 'completed', 'failed', 'cancelled'] as const;
export type BranchStatus = (typeof BRANCH_STATUSES)[number];

export interface Branch {
  /** The branch's step; null for a stage cancelled before it was issued (a lost `any` join). */
  readonly step: number | null;
  status: BranchStatus;
  /**
   * When the step's current attempt began running (null or absent while it is queued): the
   * kernel's bookkeeping for the process state and the run-time budget.
   */
  started_at?: number | null;
}

export interface HistoryEntry {
  readonly step: number;
  readonly stage: string;
  readonly status: 'ok' | 'error' | 'interrupted' | 'cancelled';
  readonly at: number;
  readonly attempt?: number;
  readonly error?: string;
}

export interface StageError {
  readonly step: number;
  readonly stage: string;
  readonly code: string;
  readonly message: string;
}

export interface Envelope {
  input: unknown;
  /** Stage outputs by output key (default: the stage name). */
  outputs: Record<string, unknown>;
  state: Record<string, unknown>;
  metadata: Record<string, unknown>;
  current_stage: string;
  /** Number of steps issued so far; step numbers start at 1. */
  step: number;
  /** Sequential mode: the outstanding step. Always null in parallel mode (see {@link branches}). */
  pending: PendingStep | null;
  /**
   * Parallel mode only: each started stage's branch, by stage name (absent in sequential mode).
   * Use `outstandingSteps()` for the steps a worker or client may report.
   */
  branches?: Record<string, Branch>;
  visits: Record<string, number>;
  /** `"from->to"` → count. */
  edge_traversals: Record<string, number>;
  /** Model calls made per stage in committed steps (the scripted provider's cursor). */
  stage_calls: Record<string, number>;
  last_interrupt: {
    readonly id: string;
    readonly kind: InterruptKind;
    readonly stage: string;
    readonly response: InterruptResponse;
  } | null;
  errors: StageError[];
  /** The most recent steps (bounded, see {@link MAX_HISTORY}). */
  history: HistoryEntry[];
  /** How many older entries {@link history} has dropped (absent: none). */
  history_dropped?: number;
  soft_timeout_warned: boolean;
  /**
   * Run time used by finished attempts: the `bounds.timeout` budget counts only time a step is
   * running, not time queued, waiting for a person, or lost with a dead worker.
   */
  active_ms?: number;
  /**
   * When the current attempt began running (null or absent between steps). Parallel mode: when
   * the current interval with at least one running branch (and the same set of them) began.
   */
  step_started_at?: number | null;
}

export const MAX_HISTORY = 200;

export function newEnvelope(
  input: unknown,
  startStage: string,
  metadata: Record<string, unknown> = {},
): Envelope {
  return {
    input,
    outputs: {},
    state: {},
    metadata,
    current_stage: startStage,
    step: 0,
    pending: null,
    visits: {},
    edge_traversals: {},
    stage_calls: {},
    last_interrupt: null,
    errors: [],
    history: [],
    soft_timeout_warned: false,
  };
}

export function pushHistory(envelope: Envelope, entry: HistoryEntry): void {
  envelope.history.push(entry);
  const over = envelope.history.length - MAX_HISTORY;
  if (over > 0) {
    envelope.history.splice(0, over);
    envelope.history_dropped = (envelope.history_dropped ?? 0) + over;
  }
}

/** Most step errors an envelope keeps (oldest dropped first). */
export const MAX_ERRORS = 100;

/** Records a failed step in `errors` and `history` (both bounded). */
export function recordStepFailure(
  envelope: Envelope,
  failure: {
    readonly step: number;
    readonly code: string;
    readonly message: string;
    readonly attempt?: number;
  },
  stage: string,
  now: number,
): void {
  envelope.errors.push({ step: failure.step, stage, code: failure.code, message: failure.message });
  if (envelope.errors.length > MAX_ERRORS)
    envelope.errors.splice(0, envelope.errors.length - MAX_ERRORS);
  pushHistory(envelope, {
    step: failure.step,
    stage,
    status: 'error',
    at: now,
    error: failure.message,
    ...(failure.attempt ? { attempt: failure.attempt } : {}),
  });
}
