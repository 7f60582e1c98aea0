/**
 * Approvals of single tool calls (DESIGN.md §8): when the policy answers `ask`, the step raises
 * a `confirmation` interrupt showing the exact call and waits for a person. The interrupt is
 * found again by the call's key, so a step retried after a crash (or handed back by a stopped
 * `warden run`) waits on the same question, or proceeds on the answer already given — the call
 * itself is journaled, so an approved effect still runs at most once.
 *
 * Unlike a stage's interrupt, a call approval does not move the run: the step holds its lease
 * while it waits (its stage timeout and the run's time budget still apply), and settling it
 * (InterruptManager) only records the answer. Expiry is a denial.
 */
import { interruptExpiresAt, WardenError } from '../core/index.ts';
import type { InterruptRecord } from '../store/index.ts';
import { waitForChange } from '../store/index.ts';
import { processEvent } from './events.ts';
import type { InterruptManager } from './interrupts.ts';
import type { StepContext } from './orchestrator.ts';
import type { KernelContext } from './process-ops.ts';

export interface CallApprovalRequest {
  /** The call's key within the step (stable across retries). */
  readonly key: string;
  readonly tool: string;
  /** What the person is asked, e.g. "allow shell.exec: rm -rf build?". */
  readonly prompt: string;
  /** The exact call as shown (arguments redacted, secret references unresolved). */
  readonly call: Readonly<Record<string, unknown>>;
  readonly reasons: readonly string[];
  readonly policy_version: string;
  /** @default the confirmation kind's TTL (1 h) */
  readonly ttlMs?: number;
}

/** True for an interrupt that asks about one tool call (not a stage's question). */
export function isCallApproval(interrupt: Pick<InterruptRecord, 'data'>): boolean {
  return typeof interrupt.data.call_key === 'string';
}

export class CallApprovals {
  readonly #ctx: KernelContext;
  readonly #interrupts: InterruptManager;

  constructor(ctx: KernelContext, interrupts: InterruptManager) {
    this.#ctx = ctx;
    this.#interrupts = interrupts;
  }

  /** The approval asked for this call in this step, whatever its status, or undefined. */
  async find(step: StepContext, key: string): Promise<InterruptRecord | undefined> {
    const fullKey = callKey(step, key);
    const all = await this.#ctx.store.listInterrupts({ processId: step.process.pid });
    return all.find((i) => i.data.call_key === fullKey);
  }

  /**
   * The approval for this call: the one asked before, or a new pending `confirmation` (with its
   * `interrupt.raised` event, fenced by the step's lease: LEASE_LOST if the step moved on).
   */
  async request(step: StepContext, request: CallApprovalRequest): Promise<InterruptRecord> {
    const existing = await this.find(step, request.key);
    if (existing) return existing;
    const now = this.#ctx.clock.now();
    const id = this.#ctx.ids.next('int');
    const expiresAt = interruptExpiresAt('confirmation', now, request.ttlMs);
    const data = {
      call_key: callKey(step, request.key),
      tool: request.tool,
      call: request.call,
      reasons: request.reasons,
      policy_version: request.policy_version,
      task_id: step.claim.task.id,
    };
    await this.#ctx.store.commit([
      { op: 'task.fence', id: step.claim.task.id, leaseToken: step.claim.leaseToken },
      {
        op: 'interrupt.insert',
        row: {
          id,
          session_id: step.process.session_id,
          process_id: step.process.pid,
          kind: 'confirmation',
          stage: step.stage.name,
          step: step.step,
          prompt: request.prompt,
          data,
          status: 'pending',
          response: null,
          resolver: null,
          trace_id: step.process.trace_id,
          created_at: now,
          expires_at: expiresAt,
          resolved_at: null,
        },
      },
      processEvent(
        step.process,
        'interrupt.raised',
        {
          id,
          kind: 'confirmation',
          stage: step.stage.name,
          step: step.step,
          prompt: request.prompt,
          expires_at: expiresAt,
          tool: request.tool,
          call: request.call,
        },
        { task_id: step.claim.task.id, attempt: step.claim.attempt },
      ),
    ]);
    return (await this.#ctx.store.getInterrupt(id))!;
  }

  /**
   * Waits until the approval is settled (resolved, expired or cancelled) and returns it. At its
   * expiry the approval is expired here (a denial), so nothing else has to be running. Throws
   * the abort reason when `signal` aborts (cancel, stage timeout, lease loss).
   */
  async wait(id: string, signal: AbortSignal): Promise<InterruptRecord> {
    for (;;) {
      const current = await this.#mustGet(id);
      if (current.status !== 'pending') return current;
      const deadline = current.expires_at ?? Number.MAX_SAFE_INTEGER;
      const settled = await waitForChange(
        this.#ctx.store,
        async () => {
          const i = await this.#mustGet(id);
          return i.status === 'pending' ? undefined : i;
        },
        { deadline, now: () => this.#ctx.clock.now(), signal },
      );
      if (settled) return settled;
      if (signal.aborted) throw abortReason(signal);
      await this.#interrupts.expireOne(id);
    }
  }

  async #mustGet(id: string): Promise<InterruptRecord> {
    const found = await this.#ctx.store.getInterrupt(id);
    if (!found) throw new WardenError('NOT_FOUND', `interrupt ${id} does not exist`);
    return found;
  }
}

function callKey(step: StepContext, key: string): string {
  return `${step.process.pid}:${step.step}:${key}`;
}

function abortReason(signal: AbortSignal): WardenError {
  const reason: unknown = signal.reason;
  return reason instanceof WardenError
    ? reason
    : new WardenError('CANCELED', 'the wait for an approval was aborted', { cause: reason });
}
