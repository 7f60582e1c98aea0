/**
 * Interrupts (DESIGN.md §5): resolving one continues its run from the configured resume point,
 * with the response available to routing and the next agent; expiry applies the kind's default
 * (a confirmation that times out is a denial). Pending interrupts live in the store, so they
 * survive restarts; expiry is re-armed at start by {@link InterruptManager.expireDue}.
 */
import {
  errors,
  type InterruptResponse,
  isTerminalProcessState,
  resumeAfterInterrupt,
  type TerminalReason,
  WardenError,
} from '../core/index.ts';
import type { InterruptRecord, ProcessRecord, StoreOp } from '../store/index.ts';
import { isCallApproval } from './approvals.ts';
import { processEvent } from './events.ts';
import type { Orchestrator } from './orchestrator.ts';
import { type KernelContext, planEffect, snapshotOf, withCasRetry } from './process-ops.ts';

export class InterruptManager {
  readonly #ctx: KernelContext;
  readonly #orchestrator: Orchestrator;

  constructor(ctx: KernelContext, orchestrator: Orchestrator) {
    this.#ctx = ctx;
    this.#orchestrator = orchestrator;
  }

  /** Resolves a pending interrupt and continues its run. INVALID_STATE if it is not pending. */
  async resolve(
    id: string,
    response: InterruptResponse,
    resolver = 'local',
  ): Promise<{ interrupt: InterruptRecord; process: ProcessRecord | null }> {
    return this.#settle(id, 'resolved', response, resolver);
  }

  /** Cancels a pending interrupt; its run (if any) is cancelled too. */
  async cancel(id: string, resolver = 'local'): Promise<InterruptRecord> {
    const interrupt = await this.#mustGet(id);
    if (interrupt.process_id) {
      await this.#orchestrator.cancel(
        interrupt.process_id,
        `interrupt ${id} cancelled by ${resolver}`,
      );
      return (await this.#ctx.store.getInterrupt(id))!;
    }
    await this.#ctx.store.commit([
      {
        op: 'interrupt.settle',
        id,
        status: 'cancelled',
        response: null,
        resolver,
        now: this.#ctx.clock.now(),
      },
      {
        op: 'event',
        event: {
          session_id: interrupt.session_id,
          type: 'interrupt.cancelled',
          trace_id: interrupt.trace_id,
          data: { id },
        },
      },
    ]);
    return (await this.#ctx.store.getInterrupt(id))!;
  }

  /**
   * Expires one interrupt if it is still pending and past its TTL (its default applies);
   * answers whether it did. An interrupt answered meanwhile is left as it is.
   */
  async expireOne(id: string): Promise<boolean> {
    const interrupt = await this.#mustGet(id);
    if (interrupt.status !== 'pending') return false;
    if (interrupt.expires_at === null || interrupt.expires_at > this.#ctx.clock.now()) return false;
    try {
      await this.#settle(id, 'expired', undefined, 'kernel');
      return true;
    } catch (error) {
      if (error instanceof WardenError && error.code === 'INVALID_STATE') return false;
      throw error;
    }
  }

  /** Expires every pending interrupt past its TTL. Returns how many expired. */
  async expireDue(): Promise<number> {
    let count = 0;
    for (const interrupt of await this.#ctx.store.findExpiredInterrupts(this.#ctx.clock.now())) {
      try {
        await this.#settle(interrupt.id, 'expired', undefined, 'kernel');
        count += 1;
      } catch (error) {
        // Resolved concurrently by a person: that answer wins.
        if (!(error instanceof WardenError && error.code === 'INVALID_STATE')) throw error;
      }
    }
    return count;
  }

  async #settle(
    id: string,
    status: 'resolved' | 'expired',
    response: InterruptResponse | undefined,
    resolver: string,
  ): Promise<{ interrupt: InterruptRecord; process: ProcessRecord | null }> {
    return withCasRetry(async () => {
      const interrupt = await this.#mustGet(id);
      if (interrupt.status !== 'pending') {
        throw errors.invalidState(
          `interrupt ${id} is already ${interrupt.status}; nothing changed`,
          { id, status: interrupt.status },
        );
      }
      const now = this.#ctx.clock.now();
      if (status === 'resolved' && interrupt.expires_at !== null && interrupt.expires_at <= now) {
        // Too late: apply the expiry (its default answer) instead, then tell the caller.
        await this.#settle(id, 'expired', undefined, 'kernel');
        throw errors.invalidState(
          `interrupt ${id} expired at ${new Date(interrupt.expires_at).toISOString()} before it was answered; its default applied`,
          { id, status: 'expired' },
        );
      }
      const settleOp: StoreOp = {
        op: 'interrupt.settle',
        id,
        status,
        response: response ?? null,
        resolver,
        now,
      };
      const eventData = {
        id,
        kind: interrupt.kind,
        stage: interrupt.stage,
        ...(response ? { response } : {}),
        resolver,
      };
      const process = interrupt.process_id
        ? await this.#ctx.store.getProcess(interrupt.process_id)
        : undefined;
      // A run that ended, or a question about one tool call (the step waiting on it reads the
      // answer itself, kernel/approvals.ts): record the answer, move nothing.
      if (!process || isTerminalProcessState(process.state) || isCallApproval(interrupt)) {
        await this.#ctx.store.commit([
          settleOp,
          ...approvalAudit(interrupt, status, response, resolver, now),
          {
            op: 'event',
            event: {
              session_id: interrupt.session_id,
              type: status === 'resolved' ? 'interrupt.resolved' : 'interrupt.expired',
              trace_id: interrupt.trace_id,
              process_id: interrupt.process_id,
              data: eventData,
            },
          },
        ]);
        return { interrupt: (await this.#ctx.store.getInterrupt(id))!, process: process ?? null };
      }
      const transitioned = resumeAfterInterrupt(
        process.workflow,
        snapshotOf(process),
        {
          id,
          kind: interrupt.kind,
          stage: interrupt.stage ?? process.current_stage,
          response,
          ...(typeof interrupt.data.reason === 'string'
            ? { reason: interrupt.data.reason as TerminalReason }
            : {}),
        },
        this.#orchestrator.machineOptions(process),
      );
      const plan = planEffect(this.#ctx, process, process.state, transitioned);
      const grantOps: StoreOp[] =
        interrupt.kind === 'resource_exhausted' &&
        transitioned.snapshot.quota !== process.quota &&
        response?.approved !== false
          ? [
              processEvent(process, 'budget.granted', {
                before: process.quota,
                after: transitioned.snapshot.quota,
              }),
            ]
          : [];
      await this.#ctx.store.commit([
        settleOp,
        processEvent(
          process,
          status === 'resolved' ? 'interrupt.resolved' : 'interrupt.expired',
          eventData,
        ),
        ...grantOps,
        ...plan.ops,
      ]);
      return { interrupt: (await this.#ctx.store.getInterrupt(id))!, process: plan.next };
    });
  }

  async #mustGet(id: string): Promise<InterruptRecord> {
    const interrupt = await this.#ctx.store.getInterrupt(id);
    if (!interrupt) throw errors.notFound('interrupt', id);
    return interrupt;
  }
}

/**
 * A person's answer to a tool call's approval is a decision too (DESIGN.md §8: every
 * resolution is audited): recorded in the audit log with the settle, in one transaction.
 */
function approvalAudit(
  interrupt: InterruptRecord,
  status: 'resolved' | 'expired',
  response: InterruptResponse | undefined,
  resolver: string,
  now: number,
): StoreOp[] {
  if (!isCallApproval(interrupt)) return [];
  const approved = status === 'resolved' && response?.approved === true;
  const data = interrupt.data as { tool?: string; policy_version?: string; call?: unknown };
  return [
    {
      op: 'audit.append',
      records: [
        {
          ts: now,
          trace_id: interrupt.trace_id,
          // An expiry is the kernel applying the default, not a person's answer.
          principal: resolver === 'kernel' ? 'kernel' : `user:${resolver}`,
          action: 'approval.resolve',
          resource: `interrupt:${interrupt.id}`,
          decision: approved ? 'allow' : 'deny',
          decided: approved ? 'allow' : 'deny',
          reasons: [
            status === 'expired'
              ? 'the approval expired unanswered (timeout means deny)'
              : approved
                ? `${resolver} approved ${data.tool ?? 'the call'}`
                : `${resolver} denied ${data.tool ?? 'the call'}`,
          ],
          policy_version: data.policy_version ?? '',
          context: {
            process_id: interrupt.process_id,
            session_id: interrupt.session_id,
            tool: data.tool ?? null,
            call: data.call ?? null,
          },
        },
      ],
    },
  ];
}
