/**
 * Lease reclaim and start-up recovery (DESIGN.md §6). A running task whose lease expired (or
 * whose local owner process is dead) goes back to `queued` with backoff, counted as a failed
 * attempt, so a task that kills its worker every time ends in `dead` instead of looping. The
 * reclaim is fenced by the lease token it read: if the worker completes concurrently, exactly
 * one of the two wins.
 */
import { backoffDelayMs, failStep, isTerminalProcessState, isWardenError } from '../core/index.ts';
import { isDeadLocalOwner } from '../queue/index.ts';
import type { ProcessRecord, StoreOp, TaskRecord } from '../store/index.ts';
import { processEvent, taskEvent } from './events.ts';
import type { Orchestrator } from './orchestrator.ts';
import { type KernelContext, planEffect, snapshotOf, stateChangeOps } from './process-ops.ts';
import { sortKey } from './scheduler.ts';

export class Recovery {
  readonly #ctx: KernelContext;
  readonly #orchestrator: Orchestrator;
  readonly #isDeadOwner: (owner: string) => boolean;

  constructor(
    ctx: KernelContext,
    orchestrator: Orchestrator,
    isDeadOwner: (owner: string) => boolean = isDeadLocalOwner,
  ) {
    this.#ctx = ctx;
    this.#orchestrator = orchestrator;
    this.#isDeadOwner = isDeadOwner;
  }

  /** Reclaims expired leases and leases of dead local owners. Returns how many were reclaimed. */
  async reclaimLeases(random: () => number = Math.random): Promise<number> {
    const now = this.#ctx.clock.now();
    const owners = await this.#ctx.store.listLeaseOwners();
    const dead = owners.filter((o) => this.#isDeadOwner(o));
    let count = 0;
    for (const task of await this.#ctx.store.findExpiredLeases(now, dead)) {
      try {
        await this.#reclaim(
          task,
          dead.includes(task.lease_owner ?? '') ? 'owner_dead' : 'lease_expired',
          random,
        );
        count += 1;
      } catch (error) {
        // The worker finished (or heartbeated) first: its lease was valid after all.
        if (!isWardenError(error, 'LEASE_LOST') && !isWardenError(error, 'CONFLICT')) throw error;
      }
    }
    return count;
  }

  async #reclaim(
    task: TaskRecord,
    why: 'owner_dead' | 'lease_expired',
    random: () => number,
  ): Promise<void> {
    const now = this.#ctx.clock.now();
    const token = task.lease_token!;
    const error = {
      code: 'LEASE_EXPIRED',
      message:
        why === 'owner_dead'
          ? `worker ${task.lease_owner} died holding the lease`
          : `lease held by ${task.lease_owner} expired`,
      retryable: true,
      fingerprint: 'lease_expired',
    };
    const ops: StoreOp[] = [
      taskEvent(
        task,
        'task.lease_expired',
        { owner: task.lease_owner, why, attempt: task.attempts },
        task.attempts,
      ),
    ];
    const process = task.process_id ? await this.#ctx.store.getProcess(task.process_id) : undefined;
    const exhausted = task.attempts >= task.max_attempts;
    if (!exhausted) {
      const delay = backoffDelayMs(
        { base_ms: task.options.backoff_ms, max_ms: task.options.max_backoff_ms, jitter: 'full' },
        task.attempts,
        random,
      );
      ops.unshift({
        op: 'task.settle',
        id: task.id,
        leaseToken: token,
        state: 'queued',
        error,
        availableAt: now + delay,
        sortKey: sortKey(now + delay, task.priority, this.#ctx.agingMs),
        attemptOutcome: 'lease_expired',
        now,
      });
      ops.push(
        taskEvent(
          task,
          'task.retry_scheduled',
          { attempt: task.attempts, max_attempts: task.max_attempts, delay_ms: delay, error },
          task.attempts,
        ),
      );
      if (process && process.state === 'running') ops.push(...this.#toReady(process, now));
      await this.#ctx.store.commit(ops);
      return;
    }
    ops.unshift({
      op: 'task.settle',
      id: task.id,
      leaseToken: token,
      state: 'dead',
      error,
      attemptOutcome: 'lease_expired',
      now,
    });
    ops.push(taskEvent(task, 'task.dead', { attempts: task.attempts, error }, task.attempts));
    const payload = task.payload as { step?: number; stage?: string } | null;
    if (
      process &&
      !isTerminalProcessState(process.state) &&
      task.kind === 'agent_step' &&
      process.envelope.pending?.step === payload?.step
    ) {
      const transitioned = failStep(
        process.workflow,
        snapshotOf(process),
        {
          step: payload?.step ?? 0,
          stage: payload?.stage ?? process.current_stage,
          code: 'LEASE_EXPIRED',
          message: `the step's worker was lost ${task.attempts} times`,
        },
        this.#orchestrator.machineOptions(process),
      );
      ops.push(...planEffect(this.#ctx, process, process.state, transitioned).ops);
    }
    await this.#ctx.store.commit(ops);
  }

  #toReady(p: ProcessRecord, now: number): StoreOp[] {
    return [
      {
        op: 'process.update',
        expectVersion: p.version,
        row: { ...p, state: 'ready', version: p.version + 1, updated_at: now },
      },
      ...stateChangeOps(p, p.state, 'ready', 'step lease reclaimed'),
      processEvent(p, 'stage.failed', {
        stage: p.envelope.pending?.stage,
        step: p.envelope.pending?.step,
        error: { code: 'LEASE_EXPIRED' },
        will_retry: true,
      }),
    ];
  }
}
