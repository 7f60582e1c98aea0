/**
 * What a lease reclaim of a workflow step means for its run (DESIGN.md §6), plugged into the
 * queue's one reclaim path (queue/lease-reaper.ts) as the `agent_step` hook:
 *
 * - the step goes back to the queue (attempts left): a `running` run returns to `ready` with a
 *   `stage.failed {will_retry: true}` event;
 * - the step is dead (out of attempts): the step fails, and the run routes on (`error_next`) or
 *   terminates, exactly as a failed step would.
 *
 * Both commit with the task's fenced settle in one transaction; a run that moved on meanwhile
 * makes the commit fail with CONFLICT and the next reclaim pass looks again.
 */
import { failStep, isTerminalProcessState, outstandingStep } from '../core/index.ts';
import {
  isDeadLocalOwner,
  type ReclaimDecision,
  reclaimExpiredLeases,
  registerReclaimHook,
} from '../queue/index.ts';
import type { ProcessRecord, StoreOp, TaskRecord } from '../store/index.ts';
import { processEvent } from './events.ts';
import type { Orchestrator } from './orchestrator.ts';
import {
  anyBranchRunning,
  type KernelContext,
  liveStepTasks,
  planEffect,
  snapshotOf,
  stateChangeOps,
  stepLost,
} from './process-ops.ts';

export class Recovery {
  readonly #ctx: KernelContext;
  readonly #orchestrator: Orchestrator;
  readonly isDeadOwner: (owner: string) => boolean;
  readonly #unregister: () => void;

  constructor(
    ctx: KernelContext,
    orchestrator: Orchestrator,
    isDeadOwner: (owner: string) => boolean = isDeadLocalOwner,
  ) {
    this.#ctx = ctx;
    this.#orchestrator = orchestrator;
    this.isDeadOwner = isDeadOwner;
    this.#unregister = registerReclaimHook(ctx.store, 'agent_step', (task, decision, now) =>
      this.#stepReclaimed(task, decision, now),
    );
  }

  /** Reclaims expired leases and leases of dead local owners now. Returns how many. */
  reclaimLeases(random: () => number = Math.random): Promise<number> {
    return reclaimExpiredLeases(this.#ctx.store, this.#ctx.clock.now(), {
      isDeadOwner: this.isDeadOwner,
      agingMs: this.#ctx.agingMs,
      random,
    });
  }

  /** Stops handling step reclaims for this store (the kernel is closing). */
  close(): void {
    this.#unregister();
  }

  async #stepReclaimed(
    task: TaskRecord,
    decision: ReclaimDecision,
    now: number,
  ): Promise<StoreOp[]> {
    const process = task.process_id ? await this.#ctx.store.getProcess(task.process_id) : undefined;
    if (!process || isTerminalProcessState(process.state)) return [];
    const payload = task.payload as { step?: number; stage?: string } | null;
    if (decision.state === 'queued')
      return process.state === 'running' ? this.#toReady(process, payload, now) : [];
    if (payload?.step === undefined || !outstandingStep(process.envelope, payload.step)) return [];
    const lost = stepLost(process.envelope, now, payload.step);
    const transitioned = failStep(
      process.workflow,
      { ...snapshotOf(process), envelope: lost },
      {
        step: payload.step,
        stage: payload.stage ?? process.current_stage,
        code: 'LEASE_EXPIRED',
        message: `the step's worker was lost ${task.attempts} times`,
      },
      this.#orchestrator.machineOptions(process),
    );
    const tasks = transitioned.cancelled?.length ? await liveStepTasks(this.#ctx, process.pid) : [];
    return planEffect(this.#ctx, process, process.state, transitioned, tasks).ops;
  }

  /**
   * The step goes back to the queue: the run is `ready` again, unless other branches of a
   * parallel run are still running.
   */
  #toReady(
    p: ProcessRecord,
    payload: { step?: number; stage?: string } | null,
    now: number,
  ): StoreOp[] {
    const parallel = p.envelope.branches !== undefined && payload?.step !== undefined;
    const envelope = parallel ? stepLost(p.envelope, now, payload.step!) : p.envelope;
    const state = anyBranchRunning(envelope) ? 'running' : 'ready';
    return [
      {
        op: 'process.update',
        expectVersion: p.version,
        row: { ...p, state, envelope, version: p.version + 1, updated_at: now },
      },
      ...stateChangeOps(p, p.state, state, 'step lease reclaimed'),
      processEvent(p, 'stage.failed', {
        stage: parallel ? payload.stage : p.envelope.pending?.stage,
        step: parallel ? payload.step : p.envelope.pending?.step,
        error: { code: 'LEASE_EXPIRED' },
        will_retry: true,
      }),
    ];
  }
}
