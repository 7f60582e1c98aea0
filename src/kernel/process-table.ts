/**
 * Bare processes (jeeves KernelService, reference/jeeves-engine-api.md §4.1–§4.4): process
 * control blocks a client creates, schedules, runs and terminates itself, with no workflow
 * steps. Each is a Warden process row in the store, so every node sees the same table, every
 * change is compare-and-set on the row's version and leaves `process.*` events in the log, and
 * `warden ps`/`events`/`ledger verify` show them.
 *
 * Differences from the original, on purpose:
 * - PCBs belong to the authenticated caller (`owner`): another caller's pid is a different
 *   process. Within a caller, the PCB's `user_id` must match the actor's (FORBIDDEN, with a
 *   message that names nobody: defect 15); a duplicate pid from another user is ALREADY_EXISTS.
 * - One accounting record per PCB (its usage), kept after termination (defect 12); elapsed time
 *   is computed on read.
 * - Every termination goes through one path with the `force` rule (defect 17); an illegal
 *   transition, scheduling a non-NEW process and terminating a RUNNING one without force are
 *   INVALID_STATE (FAILED_PRECONDITION), not INTERNAL (defect 16).
 * - The ready queue is the READY rows themselves, ordered FIFO within a priority (defect 5), so
 *   there are no stale heap entries and `ready` counts READY processes (defect 17).
 */
import { createHash } from 'node:crypto';

import {
  assertTransition,
  emptyUsage,
  errors,
  type Priority,
  type ProcessState,
  WardenError,
} from '../core/index.ts';
import {
  type JeevesQuota,
  jeevesUsageOf,
  nextRunnable,
  PCB_META_KEY,
  PCB_WORKFLOW_NAME,
  pcbElapsedSeconds,
  type PcbMeta,
  quotaExceeded,
  type QuotaExceededReason,
  recordUsage,
  type RecordUsageInput,
  wardenQuotaOf,
} from '../core/jeeves/index.ts';
import { newEnvelope } from '../core/workflow/envelope.ts';
import { buildWorkflow, type LoadedWorkflow } from '../core/workflow/load.ts';
import type { SessionDirectory } from '../store/index.ts';
import type { ProcessRecord, StoreOp } from '../store/index.ts';
import { processEvent } from './events.ts';
import { type KernelContext, stateChangeOps, withCasRetry } from './process-ops.ts';

/** Who acts: the authenticated caller and, when the call names one, its user. */
export interface PcbActor {
  readonly owner: string;
  /** null: any user of the caller (listing and scheduling only). */
  readonly userId: string | null;
}

export interface CreatePcbInput {
  readonly owner: string;
  readonly pid: string;
  readonly userId: string;
  readonly sessionId: string;
  readonly requestId: string;
  readonly priority: Priority;
  readonly quota: JeevesQuota;
}

export interface PcbQuotaCheck {
  readonly process: ProcessRecord;
  readonly exceeded: QuotaExceededReason | null;
}

/** Most PCBs one listing or scheduling pass reads. */
const SCAN_LIMIT = 10_000;

let pcbWorkflow: LoadedWorkflow | undefined;

/** The one-stage workflow every PCB row carries (a PCB never runs it: it has no steps). */
function workflowOfPcbs(): LoadedWorkflow {
  pcbWorkflow ??= buildWorkflow({
    name: PCB_WORKFLOW_NAME,
    description: 'A jeeves process control block (KernelService); it has no steps.',
    stages: [{ name: 'process', agent: { kind: 'external' } }],
  });
  return pcbWorkflow;
}

export function pcbMetaOf(p: ProcessRecord): PcbMeta | undefined {
  if (p.workflow_name !== PCB_WORKFLOW_NAME) return undefined;
  const meta = p.envelope.metadata[PCB_META_KEY];
  return meta && typeof meta === 'object' ? (meta as unknown as PcbMeta) : undefined;
}

export class ProcessTable {
  readonly #ctx: KernelContext;
  readonly #sessions: SessionDirectory;

  constructor(ctx: KernelContext, sessions: SessionDirectory) {
    this.#ctx = ctx;
    this.#sessions = sessions;
  }

  /** The Warden pid of `owner`'s PCB `pid`: derived, so two creators race on one row. */
  wardenPid(owner: string, pid: string): string {
    const digest = createHash('sha256').update(owner).update('\u0000').update(pid);
    return `pcb_${digest.digest('base64url').slice(0, 32)}`;
  }

  /**
   * Creates a PCB in NEW. The same pid again from the same user returns the existing PCB
   * unchanged; from another user of the caller it is ALREADY_EXISTS.
   */
  async create(input: CreatePcbInput): Promise<{ process: ProcessRecord; created: boolean }> {
    const pid = this.wardenPid(input.owner, input.pid);
    const existing = await this.#ctx.store.getProcess(pid);
    if (existing) return { process: this.#sameUserOrExists(existing, input), created: false };
    const key = `jeeves:pcb:${createHash('sha256')
      .update(input.owner)
      .update('\u0000')
      .update(input.userId)
      .update('\u0000')
      .update(input.sessionId)
      .digest('base64url')}`;
    const prepared = await this.#sessions.prepare(key);
    const now = this.#ctx.clock.now();
    const loaded = workflowOfPcbs();
    const quota = wardenQuotaOf(input.quota);
    const meta: PcbMeta = {
      pid: input.pid,
      owner: input.owner,
      request_id: input.requestId,
      session_id: input.sessionId,
      quota: input.quota,
      inference_requests: 0,
      inference_input_chars: 0,
      enqueued_at: null,
      last_scheduled_at: null,
    };
    const row: ProcessRecord = {
      pid,
      session_id: prepared.id,
      user_id: input.userId,
      parent_pid: null,
      workflow_name: PCB_WORKFLOW_NAME,
      workflow: loaded.workflow,
      workflow_hash: loaded.hash,
      source: 'grpc:KernelService',
      state: 'new',
      priority: input.priority,
      quota,
      usage: emptyUsage(),
      envelope: newEnvelope(null, 'process', { [PCB_META_KEY]: meta }),
      current_stage: '',
      terminal_reason: null,
      terminal_message: null,
      trace_id: this.#ctx.ids.next('tr'),
      version: 0,
      created_at: now,
      started_at: null,
      updated_at: now,
      completed_at: null,
    };
    try {
      await this.#ctx.store.commit([
        ...this.#sessions.createOps(prepared.create),
        { op: 'process.insert', row },
        processEvent(row, 'process.created', {
          workflow: PCB_WORKFLOW_NAME,
          jeeves_pid: input.pid,
          priority: row.priority,
          quota,
          user_id: row.user_id,
        }),
      ]);
    } catch (error) {
      // Lost a race: another creator inserted the row (or the session) first.
      if (!(error instanceof WardenError) || error.code !== 'CONFLICT') throw error;
      if (error.details?.session_key) this.#sessions.forget(key);
      const raced = await this.#ctx.store.getProcess(pid);
      if (!raced) return this.create(input);
      return { process: this.#sameUserOrExists(raced, input), created: false };
    }
    if (prepared.create) this.#sessions.remember(prepared.create.row);
    return { process: row, created: true };
  }

  /** The actor's PCB `pid`: NOT_FOUND when there is none, FORBIDDEN for another user's. */
  async get(actor: PcbActor, pid: string): Promise<ProcessRecord> {
    const p = await this.#ctx.store.getProcess(this.wardenPid(actor.owner, pid));
    const meta = p && pcbMetaOf(p);
    if (!p || meta?.owner !== actor.owner) throw errors.notFound('process', pid);
    if (actor.userId !== null && p.user_id !== actor.userId)
      throw new WardenError('FORBIDDEN', `process ${pid} belongs to another user`);
    return p;
  }

  /** The actor's PCB, or undefined when it has none by that pid (no other errors). */
  async find(actor: PcbActor, pid: string): Promise<ProcessRecord | undefined> {
    try {
      return await this.get(actor, pid);
    } catch (error) {
      if (error instanceof WardenError && error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }

  /**
   * NEW → READY, enqueued now. INVALID_STATE unless NEW; QUOTA_EXCEEDED (nothing changes) when
   * the PCB's usage is already over its quota (the original's pre-flight).
   */
  async schedule(actor: PcbActor, pid: string): Promise<ProcessRecord> {
    return withCasRetry(async () => {
      const p = await this.get(actor, pid);
      if (p.state !== 'new')
        throw new WardenError(
          'INVALID_STATE',
          `process ${pid} is ${p.state}: only a NEW process can be scheduled`,
          { details: { pid, state: p.state } },
        );
      const exceeded = this.#exceeded(p);
      if (exceeded)
        throw new WardenError('QUOTA_EXCEEDED', `quota limit exceeded: ${exceeded}`, {
          details: { pid, reason: exceeded },
        });
      return this.#move(p, 'ready', 'scheduled');
    });
  }

  /**
   * Pops the best READY PCB of the actor (FIFO within a priority) into RUNNING. NOT_FOUND "no
   * runnable process" when none is READY. Two nodes popping at once each get a different one:
   * the move is compare-and-set, and a loser takes the next.
   */
  async nextRunnable(actor: PcbActor): Promise<ProcessRecord> {
    for (let attempt = 0; attempt < 16; attempt++) {
      const ready = (await this.#mine(actor, ['ready'])).map((p) => ({
        p,
        pid: p.pid,
        priority: p.priority,
        enqueuedAt: pcbMetaOf(p)!.enqueued_at ?? p.created_at,
      }));
      const best = nextRunnable(ready);
      if (!best) break;
      try {
        return await this.#move(best.p, 'running', 'scheduled to run');
      } catch (error) {
        if (!(error instanceof WardenError) || error.code !== 'CONFLICT') throw error;
      }
    }
    throw new WardenError('NOT_FOUND', 'no runnable process');
  }

  /**
   * A move along the lifecycle table (core/process-state.ts). → TERMINATED goes through
   * {@link terminate} without force, so a RUNNING process is refused there too.
   */
  async transition(
    actor: PcbActor,
    pid: string,
    to: ProcessState,
    reason: string,
  ): Promise<ProcessRecord> {
    if (to === 'terminated') return this.terminate(actor, pid, { reason, force: false });
    return withCasRetry(async () => {
      const p = await this.get(actor, pid);
      assertTransition(p.state, to, { pid });
      return this.#move(p, to, reason);
    });
  }

  /**
   * Ends a PCB (`user_cancelled`, with `reason` as the message). A terminal PCB is returned
   * unchanged; a RUNNING one needs `force` (INVALID_STATE otherwise). Its usage is kept.
   */
  async terminate(
    actor: PcbActor,
    pid: string,
    options: { reason: string; force: boolean },
  ): Promise<ProcessRecord> {
    return withCasRetry(async () => {
      const p = await this.get(actor, pid);
      if (p.state === 'terminated' || p.state === 'zombie') return p;
      assertTransition(p.state, 'terminated', { pid, force: options.force });
      return this.#move(p, 'terminated', options.reason || 'terminated');
    });
  }

  /** Adds usage (every counter by the value sent: defect 13). Never checks the quota. */
  async recordUsage(actor: PcbActor, pid: string, delta: RecordUsageInput): Promise<ProcessRecord> {
    return withCasRetry(async () => {
      const p = await this.get(actor, pid);
      const meta = pcbMetaOf(p)!;
      const next = recordUsage(jeevesUsageOf(p.usage, meta), delta);
      const now = this.#ctx.clock.now();
      const row: ProcessRecord = {
        ...p,
        usage: {
          ...p.usage,
          llm_calls: next.llm_calls,
          tool_calls: next.tool_calls,
          agent_hops: next.agent_hops,
          input_tokens: next.tokens_in,
          output_tokens: next.tokens_out,
        },
        envelope: this.#withMeta(p, {
          inference_requests: next.inference_requests,
          inference_input_chars: next.inference_input_chars,
        }),
        version: p.version + 1,
        updated_at: now,
      };
      await this.#ctx.store.commit([
        { op: 'process.update', expectVersion: p.version, row },
        processEvent(row, 'process.usage', { source: 'RecordUsage', delta, usage: row.usage }),
      ]);
      return row;
    });
  }

  /** The PCB and the first limit its usage is over (§4.4's order), or undefined for no PCB. */
  async checkQuota(actor: PcbActor, pid: string): Promise<PcbQuotaCheck | undefined> {
    const p = await this.find(actor, pid);
    return p ? { process: p, exceeded: this.#exceeded(p) } : undefined;
  }

  /**
   * The actor's PCBs, oldest first, optionally in one state and of one user (`userId` is
   * narrowed further by the actor's own user, when it has one).
   */
  async list(
    actor: PcbActor,
    filter: { state?: ProcessState; userId?: string } = {},
  ): Promise<ProcessRecord[]> {
    const rows = await this.#mine(actor, filter.state ? [filter.state] : undefined);
    return rows
      .filter((p) => !filter.userId || p.user_id === filter.userId)
      .sort((a, b) => a.created_at - b.created_at || (a.pid < b.pid ? -1 : 1));
  }

  /** Counts of the actor's PCBs by state (only states that have some), total, and READY. */
  async counts(
    actor: PcbActor,
  ): Promise<{ byState: Record<string, number>; total: number; ready: number }> {
    const byState: Record<string, number> = {};
    const rows = await this.#mine(actor);
    for (const p of rows) byState[p.state] = (byState[p.state] ?? 0) + 1;
    return { byState, total: rows.length, ready: byState.ready ?? 0 };
  }

  /** Elapsed seconds of a PCB at `now` (to its end once terminated). */
  elapsedSeconds(p: ProcessRecord): number {
    return pcbElapsedSeconds(p.created_at, p.completed_at, this.#ctx.clock.now());
  }

  #exceeded(p: ProcessRecord): QuotaExceededReason | null {
    const meta = pcbMetaOf(p)!;
    return quotaExceeded(meta.quota, jeevesUsageOf(p.usage, meta), this.elapsedSeconds(p));
  }

  async #mine(actor: PcbActor, states?: readonly ProcessState[]): Promise<ProcessRecord[]> {
    const rows = await this.#ctx.store.listProcesses({
      ...(states ? { states } : {}),
      limit: SCAN_LIMIT,
    });
    return rows.filter(
      (p) =>
        pcbMetaOf(p)?.owner === actor.owner &&
        (actor.userId === null || p.user_id === actor.userId),
    );
  }

  /** Moves `p` to `to` (legality checked by the caller), compare-and-set on its version. */
  async #move(p: ProcessRecord, to: ProcessState, reason: string): Promise<ProcessRecord> {
    const now = this.#ctx.clock.now();
    const terminal = to === 'terminated';
    const row: ProcessRecord = {
      ...p,
      state: to,
      envelope: this.#withMeta(p, {
        ...(to === 'ready' ? { enqueued_at: now } : {}),
        ...(to === 'running' ? { last_scheduled_at: now } : {}),
      }),
      ...(to === 'running' && p.started_at === null ? { started_at: now } : {}),
      ...(terminal
        ? {
            terminal_reason: 'user_cancelled' as const,
            terminal_message: reason,
            completed_at: now,
          }
        : {}),
      version: p.version + 1,
      updated_at: now,
    };
    const ops: StoreOp[] = [
      { op: 'process.update', expectVersion: p.version, row },
      ...stateChangeOps(p, p.state, to, reason),
    ];
    if (terminal)
      ops.push(
        processEvent(row, 'process.terminated', {
          reason: 'user_cancelled',
          message: reason,
          usage: row.usage,
          stage: '',
        }),
      );
    await this.#ctx.store.commit(ops);
    return row;
  }

  #withMeta(p: ProcessRecord, patch: Partial<PcbMeta>): ProcessRecord['envelope'] {
    const meta = pcbMetaOf(p)!;
    return {
      ...p.envelope,
      metadata: { ...p.envelope.metadata, [PCB_META_KEY]: { ...meta, ...patch } },
    };
  }

  #sameUserOrExists(existing: ProcessRecord, input: CreatePcbInput): ProcessRecord {
    if (existing.user_id === input.userId) return existing;
    throw new WardenError('ALREADY_EXISTS', `process ${input.pid} exists (another user's)`);
  }
}
