/**
 * OrchestrationService: the jeeves agent loop (InitializeSession → GetNextInstruction → run the
 * agent → ReportAgentResult) as a thin translation onto a Warden run of `external` stages
 * (src/kernel/external-steps.ts). The run, its events, budget and interrupts are the same as
 * every other face's; nothing about a session lives in this process.
 *
 * - GetNextInstruction is idempotent: while a step is handed out it answers the same RUN_AGENT
 *   and counts nothing (defect #1), so the original client's loop (which discards
 *   ReportAgentResult's reply and asks again) ends a 3-stage pipeline with 3 hops.
 * - ReportAgentResult must name the issued agent (defect #9): FAILED_PRECONDITION otherwise.
 */
import { randomBytes } from 'node:crypto';

import { WardenError } from '../../core/errors.ts';
import {
  decodeJsonObject,
  emptyPassthrough,
  fromStateDict,
  initialStage,
  interruptKindToWire,
  interruptStatusToWire,
  type JeevesIdentity,
  type JeevesInterruptView,
  type JeevesPassthrough,
  loadPipelineWorkflow,
  parsePipelineConfig,
  pipelineStageOrder,
  sessionEdgeTraversals,
  terminalReasonToWire,
  toStateDict,
  WIRE_INSTRUCTION_KIND,
} from '../../core/jeeves/index.ts';
import type { JsonObject } from '../../core/json.ts';
import type { ExternalTake, Kernel } from '../../kernel/index.ts';
import type { InterruptRecord, ProcessRecord } from '../../store/index.ts';
import type { RpcContext, ServiceImpl } from './server.ts';
import { findRun, mustFindRun, required, sessionKeyFor, stepOwner } from './sessions.ts';

/** What InitializeSession keeps on the run (`metadata.jeeves`) to answer with state dicts. */
interface SessionMeta {
  readonly process_id: string;
  readonly identity: JeevesIdentity;
  readonly stage_order: readonly string[];
  readonly passthrough: JeevesPassthrough;
}

/** How long GetNextInstruction waits for a step that is not ready yet (a retry after a lapse). */
const BUSY_WAIT_MS = 30_000;

export function orchestrationImpl(): ServiceImpl {
  return {
    InitializeSession: { acp: 'run.start', unary: initializeSession },
    GetNextInstruction: {
      acp: 'task.claim',
      unary: async (req, ctx) => {
        const processId = required(req.process_id, 'process_id');
        const run = await mustFindRun(ctx.services.kernel, ctx, processId);
        return nextInstruction(ctx, run, processId);
      },
    },
    ReportAgentResult: {
      acp: 'task.claim',
      unary: async (req, ctx) => {
        const processId = required(req.process_id, 'process_id');
        const agent = required(req.agent_name, 'agent_name');
        const kernel = ctx.services.kernel;
        const run = await mustFindRun(kernel, ctx, processId);
        const metrics = (req.metrics ?? null) as Record<string, number> | null;
        let output: JsonObject | undefined;
        try {
          const bytes = req.output as Buffer | undefined;
          output = bytes && bytes.length > 0 ? decodeJsonObject(bytes, 'output') : undefined;
        } catch {
          output = undefined; // not an object: absent, as the original did (§3.3)
        }
        // The result and the next step in one commit (the reply is the next instruction).
        const owner = stepOwner(ctx, processId);
        const { process: after, next } = await kernel.external.reportAndTakeNext(
          run.pid,
          {
            stage: agent,
            success: req.success === true,
            ...(output === undefined ? {} : { output }),
            ...(typeof req.error === 'string' && req.error !== '' ? { error: req.error } : {}),
            ...(metrics
              ? {
                  usage: {
                    llm_calls: nonNegative(metrics.llm_calls),
                    tool_calls: nonNegative(metrics.tool_calls),
                    input_tokens: nonNegative(metrics.tokens_in),
                    output_tokens: nonNegative(metrics.tokens_out),
                  },
                }
              : {}),
          },
          { owner },
          run, // read just now by mustFindRun
        );
        return next ? instructionOf(kernel, next) : nextInstruction(ctx, after, processId);
      },
    },
    GetSessionState: {
      acp: 'run.get',
      unary: async (req, ctx) => {
        const processId = required(req.process_id, 'process_id');
        const run = await mustFindRun(ctx.services.kernel, ctx, processId);
        return sessionState(ctx.services.kernel, run);
      },
    },
  };
}

async function initializeSession(req: Record<string, unknown>, ctx: RpcContext): Promise<unknown> {
  const processId = required(req.process_id, 'process_id');
  const run = await startSession(ctx, {
    processId,
    pipelineConfig: (req.pipeline_config as Buffer | undefined) ?? '',
    envelope: (req.envelope as Buffer | undefined) ?? '',
    force: req.force === true,
  });
  return sessionState(ctx.services.kernel, run);
}

export interface SessionStartRequest {
  readonly processId: string;
  readonly pipelineConfig: Uint8Array | string;
  /** The envelope state dict (JSON bytes, or already parsed). */
  readonly envelope: Uint8Array | string | JsonObject;
  readonly force: boolean;
}

/**
 * InitializeSession's work (ExecutePipeline starts sessions the same way): validates the config
 * and envelope, then starts the session's run at the envelope's stage with its counters.
 *
 * An existing session is ALREADY_EXISTS unless `force`. With `force`, a session waiting on an
 * interrupt that the envelope answers (`interrupt_pending` false, `interrupt.response` set, and
 * the same interrupt id when it names one) is resumed: the interrupt is resolved with that
 * response and the run goes on, keeping its edge counts (defect 21: the original restarted and
 * reset them). Any other forced start cancels the old run and starts anew.
 */
export async function startSession(
  ctx: RpcContext,
  request: SessionStartRequest,
): Promise<ProcessRecord> {
  const { processId } = request;
  const kernel = ctx.services.kernel;
  const config = parsePipelineConfig(request.pipelineConfig);
  const parsed = fromStateDict(request.envelope, {
    newId: (prefix) => `${prefix}${randomBytes(8).toString('hex')}`,
    now: kernel.clock.now(),
  });
  // An empty user id (proto3's unset) is the state dict's default user.
  const start = parsed.identity.user_id
    ? parsed
    : { ...parsed, identity: { ...parsed.identity, user_id: 'anonymous' } };
  const existing = await findRun(kernel, ctx, processId);
  if (existing && !request.force)
    throw new WardenError(
      'ALREADY_EXISTS',
      `orchestration session '${processId}' exists; send force = true to replace it`,
    );
  const answered = start.interrupt?.response != null;
  if (existing && answered && !start.interruptPending) {
    const resumed = await resumeWaiting(ctx, existing, start.interrupt);
    if (resumed) return resumed;
  }
  if (existing && !['terminated', 'zombie'].includes(existing.state))
    await kernel.cancelRun(existing.pid, 'replaced by InitializeSession(force)');
  const stage = initialStage(config, start.currentStage, {
    pending: start.interruptPending,
    answered,
  });
  const loaded = loadPipelineWorkflow(config, stage === 'end' ? {} : { start: stage });
  const meta: SessionMeta = {
    process_id: processId,
    identity: start.identity,
    stage_order: pipelineStageOrder(config),
    passthrough: start.passthrough,
  };
  let run = await kernel.startRun({
    workflow: loaded,
    input: start.identity.raw_input,
    sessionKey: sessionKeyFor(ctx, processId),
    userId: start.identity.user_id,
    metadata: { ...start.metadata, jeeves: meta as unknown as JsonObject },
    source: `grpc:${processId}`,
    // A resumed envelope keeps its counters (§3.2): they count against this run's bounds.
    usage: {
      iterations: start.counters.iteration,
      llm_calls: start.counters.llm_call_count,
      agent_hops: start.counters.agent_hop_count,
    },
  });
  if ((start.terminated || stage === 'end') && !['terminated', 'zombie'].includes(run.state))
    run = await kernel.cancelRun(run.pid, start.terminated?.message ?? 'already at end');
  return run;
}

/**
 * Resolves the interrupt `existing` waits on with the envelope's response; null when the run is
 * not waiting on an interrupt, or the envelope answers another one (then it is restarted).
 */
async function resumeWaiting(
  ctx: RpcContext,
  existing: ProcessRecord,
  interrupt: JeevesInterruptView,
): Promise<ProcessRecord | null> {
  const pending = await pendingInterrupt(ctx.services.kernel, existing);
  if (existing.state !== 'waiting' || !pending) return null;
  if (interrupt.id && interrupt.id !== pending.id) return null;
  const pendingId = pending.id;
  const { text, approved, decision, data } = interrupt.response!;
  const resolved = await ctx.services.kernel.resolveInterrupt(
    pendingId,
    {
      ...(text !== undefined ? { text } : {}),
      ...(approved !== undefined ? { approved } : {}),
      ...(decision !== undefined ? { decision } : {}),
      ...(data !== undefined ? { data } : {}),
    },
    `grpc:${ctx.caller.name}`,
  );
  return resolved.process ?? (await ctx.services.kernel.getProcess(existing.pid));
}

/**
 * The instruction for the run's state now; waits a little for a step that is not ready. `run`
 * is the run as read (or written) just now: the first look starts from it.
 */
async function nextInstruction(
  ctx: RpcContext,
  run: ProcessRecord,
  processId: string,
): Promise<unknown> {
  const kernel = ctx.services.kernel;
  const deadline = Math.min(ctx.deadline, Date.now() + BUSY_WAIT_MS);
  let current: ProcessRecord | undefined = run;
  for (;;) {
    const owner = stepOwner(ctx, processId);
    const taken = await kernel.external.take(run.pid, { owner }, current);
    current = undefined;
    if (taken.kind === 'run') return instructionOf(kernel, taken);
    if (taken.kind === 'terminated') {
      const reason = taken.process.terminal_reason ?? 'completed';
      return {
        kind: WIRE_INSTRUCTION_KIND.values.TERMINATE,
        terminal_reason: terminalReasonToWire(reason),
        termination_message:
          reason === 'completed'
            ? 'Pipeline completed successfully'
            : (taken.process.terminal_message ?? reason),
        envelope: jsonBytes(await sessionStateDict(kernel, taken.process)),
      };
    }
    if (taken.kind === 'waiting') {
      const record = await pendingInterrupt(kernel, taken.process);
      return {
        kind: WIRE_INSTRUCTION_KIND.values.WAIT_INTERRUPT,
        interrupt_pending: true,
        ...(record ? { interrupt: flowInterrupt(record, taken.process) } : {}),
        envelope: jsonBytes(await sessionStateDict(kernel, taken.process)),
      };
    }
    const wait = Math.min(deadline, taken.availableAt ?? Date.now() + 200) - Date.now();
    if (wait <= 0 || ctx.signal.aborted)
      throw new WardenError(
        'INVALID_STATE',
        `run of '${processId}' has no step for a client right now (${taken.process.state}); ask again shortly`,
        { retryable: true },
      );
    await new Promise((resolve) => setTimeout(resolve, Math.min(wait, 200)));
  }
}

/** RUN_AGENT for a step handed to the client. */
async function instructionOf(
  kernel: Kernel,
  taken: Extract<ExternalTake, { kind: 'run' }>,
): Promise<unknown> {
  return {
    kind: WIRE_INSTRUCTION_KIND.values.RUN_AGENT,
    agent_name: taken.stage.name,
    agent_config: jsonBytes(
      taken.stage.agent?.kind === 'external' ? (taken.stage.agent.config ?? {}) : {},
    ),
    envelope: jsonBytes(await sessionStateDict(kernel, taken.process)),
  };
}

async function sessionState(kernel: Kernel, run: ProcessRecord): Promise<unknown> {
  const meta = sessionMeta(run);
  const terminated = run.terminal_reason !== null && run.terminal_reason !== undefined;
  return {
    process_id: meta?.process_id ?? run.pid,
    current_stage: run.envelope.current_stage,
    stage_order: [...(meta?.stage_order ?? run.workflow.stages.map((s) => s.name))],
    envelope: jsonBytes(await sessionStateDict(kernel, run)),
    edge_traversals: sessionEdgeTraversals(run.envelope.edge_traversals),
    terminated,
    terminal_reason: terminated ? terminalReasonToWire(run.terminal_reason) : 0,
  };
}

/** The state dict of a session's run (§3.2). */
export async function sessionStateDict(kernel: Kernel, run: ProcessRecord): Promise<JsonObject> {
  const meta = sessionMeta(run);
  const record = await pendingInterrupt(kernel, run);
  const interrupt: JeevesInterruptView | null = record
    ? {
        id: record.id,
        kind: record.kind,
        prompt: record.prompt,
        data: record.data as JsonObject,
        status: record.status,
        created_at: record.created_at,
        expires_at: record.expires_at,
        response: record.response,
      }
    : null;
  return toStateDict({
    identity: meta?.identity ?? {
      envelope_id: run.pid,
      request_id: run.trace_id,
      user_id: run.user_id ?? 'anonymous',
      session_id: run.session_id,
      raw_input: typeof run.envelope.input === 'string' ? run.envelope.input : '',
      received_at: run.created_at,
    },
    stageOrder: meta?.stage_order ?? run.workflow.stages.map((s) => s.name),
    envelope: run.envelope,
    usage: run.usage,
    terminated: run.terminal_reason
      ? { reason: run.terminal_reason, message: run.terminal_message ?? '' }
      : null,
    completedAt: run.completed_at ?? null,
    interrupt,
    passthrough: meta?.passthrough ?? emptyPassthrough(),
  });
}

/** The interrupt the run waits on (its newest pending one), or undefined. */
async function pendingInterrupt(
  kernel: Kernel,
  run: ProcessRecord,
): Promise<InterruptRecord | undefined> {
  if (run.envelope.pending?.kind !== 'interrupt') return undefined;
  const pending = await kernel.store.listInterrupts({
    processId: run.pid,
    status: 'pending',
    limit: 100,
  });
  return pending.reduce<InterruptRecord | undefined>(
    (newest, i) => (!newest || i.created_at >= newest.created_at ? i : newest),
    undefined,
  );
}

function flowInterrupt(record: InterruptRecord, run: ProcessRecord): unknown {
  const meta = sessionMeta(run);
  const response = record.response;
  return {
    id: record.id,
    kind: interruptKindToWire(record.kind),
    request_id: meta?.identity.request_id ?? '',
    user_id: meta?.identity.user_id ?? '',
    session_id: meta?.identity.session_id ?? '',
    envelope_id: meta?.identity.envelope_id ?? '',
    question: record.prompt,
    message: record.prompt,
    data: jsonBytes(record.data),
    ...(response
      ? {
          response: {
            text: response.text ?? '',
            approved: response.approved === true,
            decision: response.decision ?? '',
            data: jsonBytes(response.data ?? {}),
            resolved_at_ms: record.resolved_at ?? 0,
          },
        }
      : {}),
    status: interruptStatusToWire(record.status),
    created_at_ms: record.created_at,
    expires_at_ms: record.expires_at ?? 0,
    resolved_at_ms: record.resolved_at ?? 0,
    trace_id: record.trace_id,
    span_id: '',
  };
}

function sessionMeta(run: ProcessRecord): SessionMeta | undefined {
  const jeeves = run.envelope.metadata.jeeves;
  return jeeves && typeof jeeves === 'object' ? (jeeves as SessionMeta) : undefined;
}

function jsonBytes(value: unknown): Buffer {
  return Buffer.from(JSON.stringify(value ?? null), 'utf8');
}

function nonNegative(value: unknown): number {
  return typeof value === 'number' && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}
