/**
 * The envelope *state dict* (reference/jeeves-engine-api.md §3.2): the JSON in
 * `Instruction.envelope` and `SessionState.envelope`, built from a Warden run.
 *
 * Warden keeps what it owns (outputs, stage, counters, errors, the interrupt) in its own
 * envelope and usage record; the keys only jeeves clients use (goals, the parallel runner's
 * sets, prior plans, loop feedback, earlier errors) travel as {@link JeevesPassthrough}, read
 * from the envelope the client sent (state-dict-input.ts) and written back unchanged; except
 * that a parallel run writes the parallel runner's sets from its own branches.
 */
import type { InterruptKind, InterruptResponse, InterruptStatus } from '../interrupt.ts';
import { isJsonObject, type JsonObject } from '../json.ts';
import type { TerminalReason, Usage } from '../quota.ts';
import type { Envelope } from '../workflow/envelope.ts';
import { END } from '../workflow/validate.ts';
import { jeevesReasonString } from './enums.ts';
import { formatRfc3339 } from './rfc3339.ts';

/** Who and what a session is about; times in epoch ms. */
export interface JeevesIdentity {
  readonly envelope_id: string;
  readonly request_id: string;
  readonly user_id: string;
  readonly session_id: string;
  readonly raw_input: string;
  readonly received_at: number;
}

/**
 * State dict keys Warden does not interpret, carried from the client's envelope and back (in a
 * parallel run, Warden writes the four parallel-runner keys itself).
 */
export interface JeevesPassthrough {
  readonly active_stages: Readonly<Record<string, boolean>>;
  readonly completed_stage_set: Readonly<Record<string, boolean>>;
  /** Failures the client's envelope already had; Warden's own are added on output. */
  readonly failed_stages: Readonly<Record<string, string>>;
  readonly parallel_mode: boolean;
  readonly completed_stages: readonly JsonObject[];
  readonly current_stage_number: number;
  readonly all_goals: readonly string[];
  readonly remaining_goals: readonly string[];
  readonly goal_completion_status: Readonly<Record<string, string>>;
  readonly prior_plans: readonly JsonObject[];
  readonly loop_feedback: readonly string[];
  /** Errors the client's envelope already had; Warden's own are appended on output. */
  readonly errors: readonly JsonObject[];
}

/** A new envelope's passthrough values (Go's `NewEnvelope`). */
export function emptyPassthrough(): JeevesPassthrough {
  return {
    active_stages: {},
    completed_stage_set: {},
    failed_stages: {},
    parallel_mode: false,
    completed_stages: [],
    current_stage_number: 1,
    all_goals: [],
    remaining_goals: [],
    goal_completion_status: {},
    prior_plans: [],
    loop_feedback: [],
    errors: [],
  };
}

/** The session's interrupt as the state dict shows it (pending, or the last one answered). */
export interface JeevesInterruptView {
  readonly id: string;
  /** Null when the client's envelope named no kind (written as `''`, as Go does). */
  readonly kind: InterruptKind | null;
  /** The question; written to both `question` and `message` (clients read one per kind). */
  readonly prompt: string;
  readonly data: JsonObject | null;
  readonly status?: InterruptStatus;
  readonly created_at: number;
  readonly expires_at: number | null;
  /** The person's answer; `approved: false` stays an explicit denial (defect 14). */
  readonly response: (InterruptResponse & { readonly received_at?: number }) | null;
}

export interface StateDictView {
  readonly identity: JeevesIdentity;
  /** The pipeline's agents in stage order (`pipelineStageOrder`). */
  readonly stageOrder: readonly string[];
  readonly envelope: Readonly<Envelope>;
  readonly usage: Readonly<Usage>;
  readonly terminated: { readonly reason: TerminalReason; readonly message: string } | null;
  /** When the run terminated (epoch ms), or null. */
  readonly completedAt: number | null;
  readonly interrupt: JeevesInterruptView | null;
  readonly passthrough: JeevesPassthrough;
}

/** What Go writes as `termination_reason` when a pipeline completes. */
export const COMPLETED_TEXT = 'Pipeline completed';

/**
 * The state dict of a run: every key Go's `ToStateDict` writes, in its order. Counters come
 * from Warden's usage (`iteration` = iterations, `llm_call_count` = llm_calls,
 * `agent_hop_count` = agent_hops); `outputs` holds object outputs only; `failed_stages` and
 * `errors` include the run's failed steps (defect 4); a parallel run (`mode: parallel`) writes
 * `parallel_mode: true` and its branches as `active_stages`, `completed_stage_set` and
 * `failed_stages` ({@link parallelSets}); `terminal_reason` is the lowercase
 * reason (enums.ts `jeevesReasonString`), `termination_reason` Warden's message (Go's text for
 * a completed run).
 */
export function toStateDict(view: StateDictView): JsonObject {
  const { identity, envelope, usage, terminated, passthrough } = view;
  const outputs: JsonObject = {};
  for (const [key, value] of Object.entries(envelope.outputs)) {
    if (isJsonObject(value)) outputs[key] = value;
  }
  const errors: JsonObject[] = [...passthrough.errors];
  for (const e of envelope.errors) {
    errors.push({ agent: e.stage, stage: e.stage, error: e.message, code: e.code, step: e.step });
  }
  const sets = envelope.branches ? parallelSets(envelope) : sequentialSets(envelope, passthrough);
  return {
    envelope_id: identity.envelope_id,
    request_id: identity.request_id,
    user_id: identity.user_id,
    session_id: identity.session_id,
    raw_input: identity.raw_input,
    received_at: formatRfc3339(identity.received_at),
    outputs,
    current_stage: envelope.current_stage,
    stage_order: [...view.stageOrder],
    iteration: usage.iterations,
    llm_call_count: usage.llm_calls,
    agent_hop_count: usage.agent_hops,
    active_stages: sets.active_stages,
    completed_stage_set: sets.completed_stage_set,
    failed_stages: sets.failed_stages,
    parallel_mode: sets.parallel_mode,
    terminated: terminated !== null,
    termination_reason:
      terminated === null
        ? null
        : terminated.reason === 'completed'
          ? COMPLETED_TEXT
          : terminated.message,
    terminal_reason: terminated === null ? null : jeevesReasonString(terminated.reason),
    interrupt_pending: envelope.pending?.kind === 'interrupt',
    interrupt: view.interrupt === null ? null : interruptDict(view.interrupt),
    completed_stages: [...passthrough.completed_stages],
    current_stage_number: passthrough.current_stage_number,
    all_goals: [...passthrough.all_goals],
    remaining_goals: [...passthrough.remaining_goals],
    goal_completion_status: { ...passthrough.goal_completion_status },
    prior_plans: [...passthrough.prior_plans],
    loop_feedback: [...passthrough.loop_feedback],
    errors,
    completed_at: formatRfc3339(view.completedAt),
    metadata: { ...(envelope.metadata as JsonObject) },
  };
}

/** The state dict's parallel-runner keys. */
interface ParallelSets {
  readonly active_stages: Record<string, boolean>;
  readonly completed_stage_set: Record<string, boolean>;
  readonly failed_stages: Record<string, string>;
  readonly parallel_mode: boolean;
}

/**
 * A sequential run: the client's values, carried unchanged, plus the run's failed steps in
 * `failed_stages` (defect 4).
 */
function sequentialSets(
  envelope: Readonly<Envelope>,
  passthrough: JeevesPassthrough,
): ParallelSets {
  const failed: Record<string, string> = { ...passthrough.failed_stages };
  for (const e of envelope.errors) failed[e.stage] = e.message;
  return {
    active_stages: { ...passthrough.active_stages },
    completed_stage_set: { ...passthrough.completed_stage_set },
    failed_stages: failed,
    parallel_mode: passthrough.parallel_mode,
  };
}

/**
 * A parallel run (the envelope has `branches`): the sets of jeeves' parallel runner, from this
 * run's branches (the client's values describe an earlier run and are not carried). Go's
 * `StartStage`/`CompleteStage`/`FailStage` meanings: `active_stages` the branches issued and
 * not yet reported (handed to a client or waiting for one), `completed_stage_set` those that
 * succeeded, `failed_stages` those that failed, with their error. A cancelled branch (it lost
 * an `any` join, or the run ended first) is in none of them: Go had no cancellation, and
 * counting it as failed would report a failure in a run that completed.
 */
function parallelSets(envelope: Readonly<Envelope>): ParallelSets {
  const active: Record<string, boolean> = {};
  const completed: Record<string, boolean> = {};
  const failed: Record<string, string> = {};
  for (const [stage, branch] of Object.entries(envelope.branches!)) {
    if (branch.status === 'outstanding') active[stage] = true;
    else if (branch.status === 'completed') completed[stage] = true;
    else if (branch.status === 'failed') {
      // `errors` is bounded (oldest dropped first): a branch may have lost its entry.
      const error = envelope.errors.findLast((e) => e.stage === stage);
      failed[stage] = error?.message ?? 'failed';
    }
  }
  return {
    active_stages: active,
    completed_stage_set: completed,
    failed_stages: failed,
    parallel_mode: true,
  };
}

/**
 * `SessionState.edge_traversals`: the run's `"from->to"` counts without edges into `end`,
 * which Go never counted (Warden records them for its own event log).
 */
export function sessionEdgeTraversals(
  traversals: Readonly<Record<string, number>>,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [edge, count] of Object.entries(traversals)) {
    if (!edge.endsWith(`->${END}`)) out[edge] = count;
  }
  return out;
}

function interruptDict(interrupt: JeevesInterruptView): JsonObject {
  const out: JsonObject = {
    kind: interrupt.kind ?? '',
    id: interrupt.id,
    question: interrupt.prompt,
    message: interrupt.prompt,
    data: interrupt.data,
    created_at: formatRfc3339(interrupt.created_at),
  };
  if (interrupt.status !== undefined) out.status = interrupt.status;
  const expires = formatRfc3339(interrupt.expires_at);
  if (expires !== null) out.expires_at = expires;
  const response = interrupt.response;
  if (response) {
    const r: JsonObject = {
      received_at: formatRfc3339(response.received_at ?? interrupt.created_at),
    };
    if (response.text !== undefined) r.text = response.text;
    if (response.approved !== undefined) r.approved = response.approved;
    if (response.decision !== undefined) r.decision = response.decision;
    if (isJsonObject(response.data)) r.data = response.data;
    out.response = r;
  }
  return out;
}
