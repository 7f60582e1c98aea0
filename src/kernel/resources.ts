/**
 * Budgets enforced around every model and tool call (DESIGN.md §5 "Resources"): a prospective
 * check before the call, and a durable record after it (fenced by the step's lease, so a
 * stale worker cannot spend a run's budget). Exceeding throws QUOTA_EXCEEDED with
 * `details.reason`, which ends the process with that terminal reason (or raises a
 * `resource_exhausted` interrupt when the workflow asks).
 */
import {
  modelCallExceeded,
  type TerminalReason,
  toolCallExceeded,
  type Usage,
  usageOverLimit,
  WardenError,
} from '../core/index.ts';
import type { ProcessRecord, StoreOp } from '../store/index.ts';
import { processEvent } from './events.ts';
import type { StepContext } from './orchestrator.ts';
import { elapsedMs, type KernelContext, withCasRetry } from './process-ops.ts';

export interface ModelCallUsage {
  readonly input_tokens: number;
  readonly output_tokens: number;
  readonly model: string;
  readonly duration_ms: number;
}

export class ResourceManager {
  readonly #ctx: KernelContext;

  constructor(ctx: KernelContext) {
    this.#ctx = ctx;
  }

  /** Throws QUOTA_EXCEEDED when a model call with this many input tokens would not fit. */
  async checkModelCall(step: StepContext, estimatedInputTokens: number): Promise<void> {
    const p = await this.#get(step);
    const reason = modelCallExceeded(
      p.quota,
      p.usage,
      estimatedInputTokens,
      elapsedMs(p, this.#ctx.clock.now()),
    );
    if (reason)
      throw quotaExceeded(
        reason,
        p,
        `before a model call (about ${estimatedInputTokens} input tokens)`,
      );
  }

  async checkToolCall(step: StepContext): Promise<void> {
    const p = await this.#get(step);
    const reason = toolCallExceeded(p.quota, p.usage);
    if (reason) throw quotaExceeded(reason, p, 'before a tool call');
  }

  /**
   * Records a model call's usage durably; throws QUOTA_EXCEEDED if it went over a limit.
   * `alongWith` (the effect journal's outcome transition) commits in the same transaction;
   * see {@link ResourceManager.recordToolCall}.
   */
  async recordModelCall(
    step: StepContext,
    call: ModelCallUsage,
    alongWith?: readonly StoreOp[],
  ): Promise<Usage> {
    return this.#record(
      step,
      { llm_calls: 1, input_tokens: call.input_tokens, output_tokens: call.output_tokens },
      'model.called',
      {
        stage: step.stage.name,
        step: step.step,
        model: call.model,
        input_tokens: call.input_tokens,
        output_tokens: call.output_tokens,
        duration_ms: call.duration_ms,
      },
      alongWith,
    );
  }

  /**
   * Records a tool call's usage durably; throws QUOTA_EXCEEDED if it went over a limit.
   *
   * Without `alongWith` the record is fenced by the step's lease. With it — the effect
   * journal's outcome transition, a compare-and-set on the effect's owner — the usage commits
   * in the same transaction as that outcome and is fenced by it instead of the lease: the call
   * did happen (and was billed) even if the lease was lost meanwhile, and counting it together
   * with its journal outcome is what makes it counted exactly once (a replay finds `done` and
   * records nothing; a crash before the commit records neither).
   */
  async recordToolCall(
    step: StepContext,
    tool: string,
    alongWith?: readonly StoreOp[],
  ): Promise<Usage> {
    return this.#record(
      step,
      { tool_calls: 1 },
      'process.usage',
      { stage: step.stage.name, step: step.step, tool },
      alongWith,
    );
  }

  async #record(
    step: StepContext,
    delta: Partial<Usage>,
    type: 'model.called' | 'process.usage',
    data: Record<string, unknown>,
    alongWith?: readonly StoreOp[],
  ): Promise<Usage> {
    const p = await withCasRetry(async () => {
      const current = await this.#get(step);
      const usage: Usage = { ...current.usage };
      for (const [key, value] of Object.entries(delta)) usage[key as keyof Usage] += value;
      const next: ProcessRecord = {
        ...current,
        usage,
        version: current.version + 1,
        updated_at: this.#ctx.clock.now(),
      };
      await this.#ctx.store.commit([
        ...(alongWith ?? [
          { op: 'task.fence', id: step.claim.task.id, leaseToken: step.claim.leaseToken },
        ]),
        { op: 'process.update', expectVersion: current.version, row: next },
        processEvent(
          current,
          type,
          { ...data, usage },
          { task_id: step.claim.task.id, attempt: step.claim.attempt },
        ),
      ]);
      return next;
    });
    const reason = usageOverLimit(p.quota, p.usage, elapsedMs(p, this.#ctx.clock.now()));
    if (reason) throw quotaExceeded(reason, p, 'after recording usage');
    return p.usage;
  }

  /** The run-time budget (`bounds.timeout`) this step may still spend, in ms, from its start. */
  runTimeLeft(step: StepContext): number {
    return step.process.quota.timeout_ms - elapsedMs(step.process, this.#ctx.clock.now());
  }

  /** The error that stops a step which used up the run-time budget while running. */
  runTimeExceeded(step: StepContext): WardenError {
    return quotaExceeded('timeout_exceeded', step.process, 'while a step was running');
  }

  async #get(step: StepContext): Promise<ProcessRecord> {
    const p = await this.#ctx.store.getProcess(step.process.pid);
    if (!p) throw new WardenError('NOT_FOUND', `process ${step.process.pid} does not exist`);
    return p;
  }
}

function quotaExceeded(reason: TerminalReason, p: ProcessRecord, when: string): WardenError {
  return new WardenError('QUOTA_EXCEEDED', `process ${p.pid} budget exhausted ${when}: ${reason}`, {
    details: { reason, pid: p.pid, usage: p.usage, quota: p.quota },
  });
}
