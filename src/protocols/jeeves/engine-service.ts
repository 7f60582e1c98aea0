/**
 * EngineService: envelope utilities (pure: core/jeeves/envelope-message.ts) and ExecutePipeline,
 * which runs a pipeline as an orchestration session and streams its progress from the event
 * log.
 *
 * ExecutePipeline in Warden: the session is the one OrchestrationService serves for the
 * envelope's id (`thread_id` when set), started like InitializeSession if it has no live run,
 * joined if it has one. Its agents are run by whoever takes the session's steps
 * (GetNextInstruction with that process id) — Warden has no in-process jeeves agents, so the
 * stream reports a pipeline that PipelineWorker clients execute. It sends STAGE_STARTED for
 * the current stage, STAGE_COMPLETED/STAGE_FAILED/STAGE_STARTED as the log records them, and
 * ends with exactly one of PIPELINE_COMPLETED, BOUNDS_EXCEEDED, INTERRUPT_RAISED or (any other
 * ending) STAGE_FAILED with `{"error", "terminal_reason"}`; each event carries the envelope.
 * A missing envelope or a bad config is INVALID_ARGUMENT (the original crashed or answered
 * UNKNOWN: defect 18), and each call has its own state (the original shared one runner).
 *
 * ExecuteAgent answers UNIMPLEMENTED: the original's was a placeholder that returned its input.
 */
import { randomBytes } from 'node:crypto';

import { WardenError } from '../../core/errors.ts';
import {
  checkEnvelopeBounds,
  cloneEnvelopeMessage,
  envelopeBounds,
  envelopeMessageOf,
  envelopeMessageOfStateDict,
  newEnvelopeMessage,
  stateDictOfEnvelopeMessage,
  WIRE_EXECUTION_EVENT_TYPE,
} from '../../core/jeeves/index.ts';
import type { JsonObject } from '../../core/json.ts';
import type { TerminalReason } from '../../core/quota.ts';
import type { EventRecord } from '../../store/index.ts';
import { waitForChange } from '../../store/wait-for-change.ts';
import { sessionStateDict, startSession } from './orchestration.ts';
import type { RpcContext, ServiceImpl } from './server.ts';
import { findRun } from './sessions.ts';

const EVENT = WIRE_EXECUTION_EVENT_TYPE.values;

const BOUND_REASONS: ReadonlySet<TerminalReason> = new Set([
  'max_iterations_exceeded',
  'max_llm_calls_exceeded',
  'max_agent_hops_exceeded',
  'max_loop_exceeded',
  'max_tool_calls_exceeded',
  'max_input_tokens_exceeded',
  'max_output_tokens_exceeded',
  'timeout_exceeded',
]);

export function engineServiceImpl(): ServiceImpl {
  return {
    CreateEnvelope: {
      acp: 'run.get',
      unary: async (req, ctx) =>
        Promise.resolve(
          newEnvelopeMessage(req, {
            newId: (prefix) => `${prefix}${randomBytes(8).toString('hex')}`,
            now: ctx.services.kernel.clock.now(),
          }),
        ),
    },
    UpdateEnvelope: {
      acp: 'run.get',
      unary: async (req) => Promise.resolve(envelopeMessageOf(req.envelope)),
    },
    CloneEnvelope: {
      acp: 'run.get',
      unary: async (req) => Promise.resolve(cloneEnvelopeMessage(envelopeMessageOf(req.envelope))),
    },
    CheckBounds: {
      acp: 'run.get',
      // The request IS the envelope: an empty message is an envelope of zeros.
      unary: async (req) => Promise.resolve(checkEnvelopeBounds(envelopeMessageOf(req))),
    },
    ExecutePipeline: { acp: 'run.start', stream: executePipeline },
    ExecuteAgent: {
      acp: 'run.start',
      unimplemented:
        'ExecuteAgent is not served: Warden runs no jeeves agents in process. Run agents with OrchestrationService (GetNextInstruction / ReportAgentResult), or watch a pipeline with ExecutePipeline.',
    },
  };
}

async function executePipeline(
  req: Record<string, unknown>,
  ctx: RpcContext,
  write: (message: unknown) => boolean,
): Promise<void> {
  const envelope = envelopeMessageOf(req.envelope);
  const config = req.pipeline_config as Buffer | undefined;
  if (!config || config.length === 0)
    throw new WardenError('INVALID_PARAMS', 'pipeline_config is required (PipelineConfig JSON)');
  const threadId = typeof req.thread_id === 'string' ? req.thread_id : '';
  const processId = threadId || envelope.envelope_id;
  if (!processId)
    throw new WardenError('INVALID_PARAMS', 'envelope.envelope_id (or thread_id) is required');
  const kernel = ctx.services.kernel;
  const live = await findRun(kernel, ctx, processId);
  const run =
    live && !['terminated', 'zombie'].includes(live.state)
      ? live
      : await startSession(ctx, {
          processId,
          pipelineConfig: config,
          envelope: stateDictOfEnvelopeMessage(envelope),
          force: live !== undefined,
        });
  const bounds = envelopeBounds({
    ...envelope,
    max_iterations: run.quota.max_iterations,
    max_llm_calls: run.quota.max_llm_calls,
    max_agent_hops: run.quota.max_agent_hops,
  });
  const send = async (type: number, stage: string, payload: JsonObject | null) => {
    const current = await kernel.getProcess(run.pid);
    const message = envelopeMessageOfStateDict(await sessionStateDict(kernel, current), {
      bounds,
      createdAt: current.created_at,
    });
    if (
      !write({
        type,
        stage,
        timestamp_ms: kernel.clock.now(),
        payload: Buffer.from(payload === null ? '' : JSON.stringify(payload), 'utf8'),
        envelope: message,
      })
    )
      await new Promise((resolve) => setTimeout(resolve, 10)); // let the stream drain
  };
  await send(EVENT.STAGE_STARTED, run.envelope.current_stage, null);
  let cursor = 0;
  let firstStart = true;
  for (;;) {
    const events = await waitForChange(
      kernel.store,
      async () => {
        const page = await kernel.store.readEvents({
          sessionId: run.session_id,
          afterSeq: cursor,
          processId: run.pid,
          limit: 500,
        });
        return page.length > 0 ? page : undefined;
      },
      { deadline: ctx.deadline, now: Date.now, signal: ctx.signal },
    );
    if (!events) {
      if (ctx.signal.aborted) return;
      throw new WardenError('TIMEOUT', 'the pipeline did not finish before the call deadline');
    }
    for (const event of events) {
      cursor = event.seq;
      const ended = await translate(event);
      if (ended) return;
    }
  }

  /** Sends what `event` means on the stream; true once the stream has ended. */
  async function translate(event: EventRecord): Promise<boolean> {
    const data = (event.data ?? {}) as Record<string, unknown>;
    const stage = typeof data.stage === 'string' ? data.stage : '';
    switch (event.type) {
      case 'stage.started':
        // The first start is the STAGE_STARTED already sent for the current stage.
        if (firstStart && stage === run.envelope.current_stage) firstStart = false;
        else await send(EVENT.STAGE_STARTED, stage, null);
        return false;
      case 'stage.completed':
        await send(EVENT.STAGE_COMPLETED, stage, outputOf(data.output));
        return false;
      case 'stage.failed':
        await send(EVENT.STAGE_FAILED, stage, { error: errorText(data.error) });
        return false;
      case 'interrupt.raised':
        await send(EVENT.INTERRUPT_RAISED, stage, {
          kind: typeof data.kind === 'string' ? data.kind : '',
        });
        return true;
      case 'process.terminated':
        await ending(data);
        return true;
      default:
        return false;
    }
  }

  async function ending(data: Record<string, unknown>): Promise<void> {
    const reason = (data.reason ?? 'completed') as TerminalReason;
    const stage = typeof data.stage === 'string' ? data.stage : '';
    if (reason === 'completed') await send(EVENT.PIPELINE_COMPLETED, stage, null);
    else if (BOUND_REASONS.has(reason))
      await send(EVENT.BOUNDS_EXCEEDED, stage, { terminal_reason: reason });
    else
      await send(EVENT.STAGE_FAILED, stage, {
        error: typeof data.message === 'string' ? data.message : reason,
        terminal_reason: reason,
      });
  }
}

function outputOf(value: unknown): JsonObject | null {
  return value !== null && typeof value === 'object' && !Array.isArray(value)
    ? (value as JsonObject)
    : null;
}

function errorText(error: unknown): string {
  if (typeof error === 'string') return error;
  if (
    error &&
    typeof error === 'object' &&
    typeof (error as { message?: unknown }).message === 'string'
  )
    return (error as { message: string }).message;
  return 'the stage failed';
}
