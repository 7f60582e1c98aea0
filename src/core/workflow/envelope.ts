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

export interface HistoryEntry {
  readonly step: number;
  readonly stage: string;
  readonly status: 'ok' | 'error' | 'interrupted';
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
  pending: PendingStep | null;
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
  /** When the current attempt began running (null or absent between steps). */
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
