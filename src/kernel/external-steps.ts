/**
 * Steps of `external` stages: their agent runs in a client outside the daemon (a jeeves
 * `PipelineWorker` over gRPC), which asks for the run's next step and reports its result.
 *
 * The step is still a durable task (in the kernel's external lane, where no in-process worker
 * claims it): {@link ExternalSteps.take} claims it for the client under a lease and begins it;
 * asking again while it is outstanding returns the same step and counts nothing (jeeves defect
 * #1: one hop per issued step). {@link ExternalSteps.report} settles it, fenced by the lease the
 * task row holds, and must name the stage that was issued (defect #9). A client that vanishes
 * lets the lease lapse: the reaper queues the step again and the next `take` hands it out anew.
 * Nothing lives in memory, so a daemon restart changes nothing for the client.
 *
 * A parallel run may have several external steps outstanding at once; a client is handed one
 * at a time: the one it holds already, else the lowest in stage order that is due. Its report
 * names the stage, which picks the branch.
 */
import { WardenError } from '../core/errors.ts';
import { isTerminalProcessState } from '../core/process-state.ts';
import type { UsageDelta } from '../core/quota.ts';
import { type OutstandingStep, outstandingSteps, stageByName } from '../core/workflow/machine.ts';
import type { StageSpec } from '../core/workflow/schema.ts';
import { newLeaseToken } from '../store/task-events.ts';
import type { ClaimedTask, ProcessRecord, TaskRecord } from '../store/types.ts';
import type { Orchestrator, StepContext } from './orchestrator.ts';
import { type KernelContext, stepBegun, stepTaskId } from './process-ops.ts';

/** Lease of a step handed to a client that does not heartbeat (the jeeves client never does). */
export const DEFAULT_EXTERNAL_LEASE_MS = 10 * 60_000;

export type ExternalTake =
  | {
      readonly kind: 'run';
      readonly process: ProcessRecord;
      readonly stage: StageSpec;
      readonly step: number;
      readonly attempt: number;
    }
  | { readonly kind: 'terminated'; readonly process: ProcessRecord }
  | { readonly kind: 'waiting'; readonly process: ProcessRecord }
  /**
   * Nothing for a client now: the pending step is not external, or none is pending yet, or the
   * step waits for a retry (`availableAt`, after its lease lapsed).
   */
  | { readonly kind: 'busy'; readonly process: ProcessRecord; readonly availableAt?: number };

export interface ExternalReport {
  /** The stage the client ran; must be the step issued. */
  readonly stage: string;
  readonly success: boolean;
  readonly output?: unknown;
  readonly error?: string;
  /** Counted on the run's budget (one accounting record per run). */
  readonly usage?: UsageDelta;
}

export interface TakeOptions {
  /** Lease owner; `remote/…` so the reaper never judges it by local process liveness. */
  readonly owner: string;
  readonly leaseMs?: number;
}

export class ExternalSteps {
  readonly #ctx: KernelContext;
  readonly #orchestrator: Orchestrator;

  constructor(ctx: KernelContext, orchestrator: Orchestrator) {
    this.#ctx = ctx;
    this.#orchestrator = orchestrator;
  }

  /**
   * The run's outstanding external step, claimed for `owner` and begun if it was queued; the
   * same step (its lease renewed) if it was already handed out.
   */
  async take(pid: string, options: TakeOptions, current?: ProcessRecord): Promise<ExternalTake> {
    const leaseMs = options.leaseMs ?? DEFAULT_EXTERNAL_LEASE_MS;
    for (let round = 0; round < 8; round++) {
      // `current`: the caller's read of the run just now; every later round reads again.
      const process = round === 0 && current?.pid === pid ? current : await this.#mustGet(pid);
      if (isTerminalProcessState(process.state)) return { kind: 'terminated', process };
      if (process.envelope.pending?.kind === 'interrupt') return { kind: 'waiting', process };
      const picked = await this.#pick(process, options.owner);
      if (picked.kind === 'busy') return { kind: 'busy', process, ...picked.at };
      const { pending, task } = picked;
      const stage = stageByName(process.workflow, pending.stage)!;
      if (task.state === 'queued') {
        const claim = await this.#claim(task, options.owner, leaseMs);
        if (!claim) continue; // not due yet, or taken by another client: read again
        const begun = await this.#orchestrator.beginStep(claim);
        if (!begun) continue;
        return {
          kind: 'run',
          process: begun.process,
          stage,
          step: begun.step,
          attempt: claim.attempt,
        };
      }
      // Handed out already: the same step again, counting nothing. Its lease is renewed only
      // once half of it has run out, so a client asking again right away writes nothing.
      const now = this.#ctx.clock.now();
      if ((task.lease_expires_at ?? 0) - now < leaseMs / 2)
        await this.#ctx.store
          .heartbeat(task.id, task.lease_token!, leaseMs, now)
          .catch(() => undefined); // settled in between: the next read shows what happened
      if (!stepBegun(process.envelope, pending.step)) {
        // Claimed, but the crash came before the step began: begin it now.
        const begun = await this.#orchestrator.beginStep(claimOf(task));
        if (!begun) continue;
        return {
          kind: 'run',
          process: begun.process,
          stage,
          step: begun.step,
          attempt: task.attempts,
        };
      }
      return { kind: 'run', process, stage, step: pending.step, attempt: task.attempts };
    }
    throw new WardenError(
      'CONFLICT',
      `run ${pid} kept changing while its next step was taken; try again`,
      {
        retryable: true,
      },
    );
  }

  /**
   * Records the client's result of the outstanding step and moves the run on. INVALID_STATE
   * when no step is outstanding or `stage` is not the one issued (a stale or mistaken report
   * changes nothing).
   */
  async report(pid: string, report: ExternalReport): Promise<ProcessRecord> {
    return (await this.reportAndTakeNext(pid, report)).process;
  }

  /**
   * {@link report}, and when `taker` is given and the commit that records the result queues
   * the run's next external step, the same commit hands that step to `taker.owner` and begins
   * it — what {@link take} would do next, without two more commits. `next` is that step, or
   * null (a failure, a fork, the end, an interrupt, a step of another lane, or another step
   * due ahead of it: then {@link take} finds the right answer).
   */
  async reportAndTakeNext(
    pid: string,
    report: ExternalReport,
    taker?: TakeOptions,
    current?: ProcessRecord,
  ): Promise<{ process: ProcessRecord; next: Extract<ExternalTake, { kind: 'run' }> | null }> {
    // `current`: the caller's read of the run just now (the commit below is a compare-and-set).
    const process = current?.pid === pid ? current : await this.#mustGet(pid);
    if (isTerminalProcessState(process.state)) return { process, next: null };
    const outstanding = outstandingSteps(process.workflow, process.envelope);
    const pending = outstanding.find((s) => s.stage === report.stage);
    if (!pending) {
      const expected = outstanding.map((s) => `'${s.stage}'`).join(' or ');
      throw new WardenError(
        'INVALID_STATE',
        outstanding.length > 0
          ? `run ${pid} is waiting for a result of stage ${expected}, not '${report.stage}'`
          : `run ${pid} has no step of stage '${report.stage}' outstanding`,
        {
          details: {
            pid,
            stage: report.stage,
            expected: outstanding[0]?.stage ?? null,
            outstanding: outstanding.map((s) => s.stage),
          },
        },
      );
    }
    const task = (await this.#liveTasks(process, [pending])).find(
      (t) => stepOf(t) === pending.step,
    );
    if (task?.state !== 'running' || !stepBegun(process.envelope, pending.step)) {
      throw new WardenError(
        'INVALID_STATE',
        `stage '${report.stage}' of run ${pid} was not handed out (ask for the next instruction first)`,
        { details: { pid, stage: report.stage } },
      );
    }
    const step: StepContext = {
      claim: claimOf(task),
      process,
      workflow: process.workflow,
      stage: stageByName(process.workflow, pending.stage)!,
      step: pending.step,
    };
    if (report.success) {
      const done = await this.#orchestrator.completeStepAndTakeNext(
        step,
        {
          output: report.output ?? null,
          modelCalls: report.usage?.llm_calls ?? 0,
          ...(report.usage ? { usage: report.usage } : {}),
        },
        taker && {
          workerId: taker.owner,
          leaseMs: taker.leaseMs ?? DEFAULT_EXTERNAL_LEASE_MS,
          lane: this.#ctx.externalLane,
          overtake: true, // the run's own next step: other runs' steps in the lane are not ahead
        },
        process,
      );
      const next = done.next;
      return {
        process: done.process,
        next: next && {
          kind: 'run',
          process: next.process,
          stage: next.stage,
          step: next.step,
          attempt: next.claim.attempt,
        },
      };
    }
    const failed = await this.#orchestrator.failStep(
      step,
      new WardenError('JOB_FAILED', report.error || 'the agent failed', {
        retryable: false,
        details: { reason: 'tool_failed_fatally' },
      }),
      undefined,
      report.usage,
    );
    return { process: failed, next: null };
  }

  async #mustGet(pid: string): Promise<ProcessRecord> {
    const p = await this.#ctx.store.getProcess(pid);
    if (!p) throw new WardenError('NOT_FOUND', `no run ${pid}`, { details: { pid } });
    return p;
  }

  /**
   * The external step to hand out to `owner`: the one it holds already, else the lowest in
   * stage order that is due; `busy` (with the earliest retry time, if one waits for it) when
   * none is. A step another owner holds is never handed out again (a parallel run's branches
   * go to different owners at once); one owner asking again gets its step again.
   */
  async #pick(
    process: ProcessRecord,
    owner: string,
  ): Promise<
    | { kind: 'step'; pending: OutstandingStep; task: TaskRecord }
    | { kind: 'busy'; at: { availableAt?: number } }
  > {
    const external = outstandingSteps(process.workflow, process.envelope).filter(
      (s) => stageByName(process.workflow, s.stage)?.agent?.kind === 'external',
    );
    if (external.length === 0) return { kind: 'busy', at: {} };
    const tasks = await this.#liveTasks(process, external);
    const withTask = external.flatMap((pending) => {
      const task = tasks.find((t) => stepOf(t) === pending.step);
      return task ? [{ kind: 'step' as const, pending, task }] : []; // none: settled a moment ago
    });
    const held = withTask.find((c) => c.task.state === 'running' && c.task.lease_owner === owner);
    if (held) return held;
    const now = this.#ctx.clock.now();
    const queued = withTask.filter((c) => c.task.state === 'queued');
    const due = queued.find((c) => c.task.available_at <= now);
    if (due) return due;
    const waits = queued.map((c) => c.task.available_at);
    return { kind: 'busy', at: waits.length > 0 ? { availableAt: Math.min(...waits) } : {} };
  }

  /**
   * The live (queued or running) tasks of the run's outstanding `steps`: point reads by their
   * derived ids; a listing of the run's live tasks when one is missing (a run started before
   * step task ids were derived, or a step settled a moment ago).
   */
  async #liveTasks(
    process: ProcessRecord,
    steps: readonly OutstandingStep[],
  ): Promise<TaskRecord[]> {
    const read = await Promise.all(
      steps.map((s) => this.#ctx.store.getTask(stepTaskId(process.pid, s.step))),
    );
    if (read.every((t) => t !== undefined))
      return read.filter((t) => t.state === 'queued' || t.state === 'running');
    const tasks = await this.#ctx.store.listTasks({
      processId: process.pid,
      states: ['queued', 'running'],
      limit: 1_000,
    });
    return tasks.filter((t) => t.kind === 'agent_step');
  }

  /** Claims this one queued task (ahead of any others in the lane: it is the run's own step). */
  async #claim(task: TaskRecord, owner: string, leaseMs: number): Promise<ClaimedTask | null> {
    const leaseToken = newLeaseToken();
    try {
      await this.#ctx.store.commit([
        {
          op: 'task.handoff',
          id: task.id,
          lane: task.lane,
          workerId: owner,
          leaseToken,
          leaseMs,
          now: this.#ctx.clock.now(),
          required: true,
          overtake: true,
        },
      ]);
    } catch (error) {
      if (error instanceof WardenError && error.code === 'CONFLICT') return null;
      throw error;
    }
    const claimed = await this.#ctx.store.getTask(task.id);
    if (claimed?.state !== 'running' || claimed.lease_token !== leaseToken) return null;
    return { task: claimed, attempt: claimed.attempts, leaseToken };
  }
}

function stepOf(task: TaskRecord): number | undefined {
  return (task.payload as { step?: number } | null)?.step;
}

function claimOf(task: TaskRecord): ClaimedTask {
  return { task, attempt: task.attempts, leaseToken: task.lease_token! };
}
