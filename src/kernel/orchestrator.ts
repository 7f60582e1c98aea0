/**
 * The durable workflow loop (DESIGN.md §5):
 *
 * - start: create the process and enqueue its first step in one transaction;
 * - begin: a worker claimed a step; the process moves ready → running;
 * - complete: in one transaction, settle the task (fenced by its lease token), record the
 *   output, route, and enqueue the next step, raise an interrupt, or terminate;
 * - fail: retry the step with backoff while attempts remain, else `error_next` or terminate.
 *
 * Each step carries `{pid, step, stage}`; a report for a step that is no longer the process's
 * outstanding step is rejected, so a stage's output is never recorded twice. A crash anywhere
 * leaves the last committed state, from which workers simply continue.
 */
import {
  advance,
  assertWithin,
  backoffDelayMs,
  boundedMessage,
  cancelRun,
  coerceError,
  completeStep,
  DEFAULT_LIMITS,
  errors,
  failStep,
  isTerminalProcessState,
  isWardenError,
  type LoadedWorkflow,
  mergeQuota,
  newEnvelope,
  outstandingStep,
  outstandingSteps,
  type Priority,
  type Quota,
  randomToken,
  type RateLimits,
  resolveLimit,
  type RoutingFunction,
  stageByName,
  type StageSpec,
  startStage,
  type TerminalReason,
  WardenError,
  type Workflow,
  type WorkflowInput,
} from '../core/index.ts';
import { addUsage, emptyUsage, type Usage, type UsageDelta } from '../core/quota.ts';
import type {
  ClaimedTask,
  EventRecord,
  ProcessRecord,
  SessionDirectory,
  StoreOp,
  TaskRecord,
} from '../store/index.ts';
import { processEvent, taskEvent } from './events.ts';
import {
  anyBranchRunning,
  elapsedMs,
  type KernelContext,
  liveStepTasks,
  planEffect,
  snapshotOf,
  stateChangeOps,
  stepEnded,
  stepStarted,
  withCasRetry,
} from './process-ops.ts';
import { sortKey } from './scheduler.ts';

export interface StartRunInput {
  /**
   * What to run: the LoadedWorkflow that `buildWorkflow()` or `parseWorkflowText()` returns
   * (used as it is), or a workflow object `{ name, stages, … }` (validated on every start:
   * build it once when you start it often).
   */
  readonly workflow: LoadedWorkflow | WorkflowInput;
  readonly input?: unknown;
  /** Session key (created when missing). @default 'main' */
  readonly sessionKey?: string;
  /** @default 'local' */
  readonly userId?: string;
  readonly priority?: Priority;
  /** Overrides of the workflow's bounds. */
  readonly quota?: Partial<Quota>;
  readonly metadata?: Record<string, unknown>;
  /** Where the workflow came from, for display. */
  readonly source?: string;
  readonly parentPid?: string;
  /**
   * Usage the run starts with (a resumed jeeves envelope keeps its counters): it counts
   * against the bounds as if this run had spent it.
   */
  readonly usage?: Partial<Usage>;
}

/** A {@link StartRunInput} whose workflow the kernel has resolved and validated. */
export interface ResolvedStartRunInput extends Omit<StartRunInput, 'workflow'> {
  readonly workflow: LoadedWorkflow;
}

/** What a worker needs to run one claimed step. */
export interface StepContext {
  readonly claim: ClaimedTask;
  readonly process: ProcessRecord;
  readonly workflow: Workflow;
  readonly stage: StageSpec;
  readonly step: number;
}

export interface StepResult {
  readonly output: unknown;
  /** Model calls made in this step (already recorded one by one). */
  readonly modelCalls?: number;
  /** Tool calls made in this step, when not recorded one by one. */
  readonly toolCalls?: number;
  /** Usage reported by an external client for the whole step (not recorded one by one). */
  readonly usage?: UsageDelta;
  readonly statePatch?: Record<string, unknown>;
}

/** Size limits of workflow data, in bytes of JSON (see KernelOptions.limits). */
export interface KernelLimits {
  /** A run's input, and separately its metadata: a larger one is refused at start. */
  readonly runInputBytes: number;
  /** A step's output: a larger one fails the step, without retrying. */
  readonly stepOutputBytes: number;
  /** A step's state patch: a larger one fails the step, without retrying. */
  readonly statePatchBytes: number;
}

export const DEFAULT_KERNEL_LIMITS: KernelLimits = Object.freeze({
  runInputBytes: DEFAULT_LIMITS.runInputBytes,
  stepOutputBytes: DEFAULT_LIMITS.stepOutputBytes,
  statePatchBytes: DEFAULT_LIMITS.statePatchBytes,
});

/** Resolves user limits (INVALID_PARAMS naming `limits.<key>` for a bad one). */
export function resolveKernelLimits(limits: Partial<KernelLimits> = {}): KernelLimits {
  const resolve = (key: keyof KernelLimits) =>
    resolveLimit(`limits.${key}`, limits[key], DEFAULT_KERNEL_LIMITS[key]);
  return Object.freeze({
    runInputBytes: resolve('runInputBytes'),
    stepOutputBytes: resolve('stepOutputBytes'),
    statePatchBytes: resolve('statePatchBytes'),
  });
}

export class Orchestrator {
  readonly #ctx: KernelContext;
  readonly #sessions: SessionDirectory;
  readonly #routingFunctions: ReadonlyMap<string, RoutingFunction>;
  readonly #limits: KernelLimits;

  constructor(
    ctx: KernelContext,
    sessions: SessionDirectory,
    routingFunctions: ReadonlyMap<string, RoutingFunction>,
    limits: KernelLimits = DEFAULT_KERNEL_LIMITS,
  ) {
    this.#ctx = ctx;
    this.#sessions = sessions;
    this.#routingFunctions = routingFunctions;
    this.#limits = limits;
  }

  get routingFunctions(): ReadonlyMap<string, RoutingFunction> {
    return this.#routingFunctions;
  }

  machineOptions(p: ProcessRecord): {
    now: number;
    elapsedMs: number;
    routingFunctions: ReadonlyMap<string, RoutingFunction>;
  } {
    const now = this.#ctx.clock.now();
    return { now, elapsedMs: elapsedMs(p, now), routingFunctions: this.#routingFunctions };
  }

  /**
   * Creates the process (and its session when new) and enqueues its first step in ONE
   * transaction (PAYLOAD_TOO_LARGE for input or metadata over `runInputBytes`, before anything
   * is written); with `rateLimit`, the shared rate window is taken in that transaction too, so
   * a refused start (RATE_LIMITED) changes nothing.
   */
  async startRun(
    input: ResolvedStartRunInput,
    rateLimit?: { readonly key: string; readonly limits: RateLimits },
  ): Promise<ProcessRecord> {
    try {
      return await this.#startRun(input, rateLimit);
    } catch (error) {
      // Another process created the same session key first: use theirs.
      if (!isWardenError(error, 'CONFLICT') || !error.details?.session_key) throw error;
      this.#sessions.forget(input.sessionKey ?? 'main');
      return this.#startRun(input, rateLimit);
    }
  }

  async #startRun(
    input: ResolvedStartRunInput,
    rateLimit: { readonly key: string; readonly limits: RateLimits } | undefined,
  ): Promise<ProcessRecord> {
    const ctx = this.#ctx;
    const workflow = input.workflow.workflow;
    const advice = 'pass a reference to large data instead, or raise limits.runInputBytes';
    assertWithin('the run input', input.input, this.#limits.runInputBytes, advice);
    assertWithin('the run metadata', input.metadata, this.#limits.runInputBytes, advice);
    const prepared = await this.#sessions.prepare(input.sessionKey ?? 'main');
    const session = { id: prepared.id };
    const sessionOps = this.#sessions.createOps(prepared.create);
    const now = ctx.clock.now();
    const bounds = workflow.bounds;
    const quota = mergeQuota({
      max_iterations: bounds.max_iterations,
      max_llm_calls: bounds.max_llm_calls,
      max_agent_hops: bounds.max_agent_hops,
      max_tool_calls: bounds.max_tool_calls,
      max_input_tokens: bounds.max_input_tokens,
      max_output_tokens: bounds.max_output_tokens,
      timeout_ms: bounds.timeout,
      soft_timeout_ms: bounds.soft_timeout,
      ...input.quota,
    });
    if (quota.soft_timeout_ms >= quota.timeout_ms) {
      // A soft limit at or past the hard one would never warn: warn at 80 % instead.
      (quota as { soft_timeout_ms: number }).soft_timeout_ms = Math.floor(quota.timeout_ms * 0.8);
    }
    const pid = ctx.ids.next('p');
    const created: ProcessRecord = {
      pid,
      session_id: session.id,
      user_id: input.userId ?? 'local',
      parent_pid: input.parentPid ?? null,
      workflow_name: workflow.name,
      workflow,
      workflow_hash: input.workflow.hash,
      source: input.source ?? null,
      state: 'new',
      priority: input.priority ?? workflow.priority,
      quota,
      usage: { ...emptyUsage(), ...input.usage },
      envelope: newEnvelope(input.input ?? null, startStage(workflow), input.metadata ?? {}),
      current_stage: startStage(workflow),
      terminal_reason: null,
      terminal_message: null,
      trace_id: ctx.ids.next('tr'),
      version: 0,
      created_at: now,
      started_at: now,
      updated_at: now,
      completed_at: null,
    };
    const result = advance(workflow, snapshotOf(created), this.machineOptions(created));
    const plan = planEffect(ctx, created, 'new', result);
    const [update, ...rest] = plan.ops;
    if (update?.op !== 'process.update')
      throw new WardenError('INTERNAL', 'planEffect must start with the process update');
    await ctx.store.commit([
      ...(rateLimit ? [{ op: 'rate.take' as const, ...rateLimit, now }] : []),
      ...sessionOps,
      { op: 'process.insert', row: update.row },
      processEvent(created, 'process.created', {
        workflow: workflow.name,
        workflow_hash: input.workflow.hash,
        source: input.source ?? null,
        priority: created.priority,
        quota,
        user_id: created.user_id,
      }),
      ...rest,
    ]);
    if (prepared.create) this.#sessions.remember(prepared.create.row);
    return update.row;
  }

  /**
   * Called by a worker right after claiming an agent step. Returns null when the step is stale
   * (the run ended or moved on); the task is then settled as canceled and must be dropped.
   */
  async beginStep(claim: ClaimedTask): Promise<StepContext | null> {
    const payload = claim.task.payload as { pid: string; step: number; stage: string };
    return withCasRetry(async () => {
      const p = await this.#ctx.store.getProcess(payload.pid);
      if (
        !p ||
        isTerminalProcessState(p.state) ||
        outstandingStep(p.envelope, payload.step)?.stage !== payload.stage
      ) {
        await this.#ctx.store.commit([
          {
            op: 'task.settle',
            id: claim.task.id,
            leaseToken: claim.leaseToken,
            state: 'canceled',
            attemptOutcome: 'canceled',
            now: this.#ctx.clock.now(),
          },
          taskEvent(
            claim.task,
            'task.canceled',
            { reason: 'stale step: the run ended or moved on' },
            claim.attempt,
          ),
        ]);
        return null;
      }
      const now = this.#ctx.clock.now();
      const next: ProcessRecord = {
        ...p,
        state: 'running',
        envelope: stepStarted(p.envelope, now, payload.step),
        version: p.version + 1,
        updated_at: now,
      };
      await this.#ctx.store.commit([
        { op: 'task.fence', id: claim.task.id, leaseToken: claim.leaseToken },
        { op: 'process.update', expectVersion: p.version, row: next },
        ...stateChangeOps(p, p.state, 'running'),
        processEvent(
          p,
          'stage.started',
          { stage: payload.stage, step: payload.step, attempt: claim.attempt },
          { task_id: claim.task.id, attempt: claim.attempt },
        ),
      ]);
      return {
        claim,
        process: next,
        workflow: p.workflow,
        stage: stageByName(p.workflow, payload.stage)!,
        step: payload.step,
      };
    });
  }

  /**
   * Records a finished step and moves the run on, in one transaction fenced by the lease. An
   * output or state patch over its limit (or not JSON) is not recorded: the step fails instead,
   * without retrying, with PAYLOAD_TOO_LARGE (INVALID_PARAMS), and the run takes `error_next`
   * or terminates.
   */
  async completeStep(step: StepContext, result: StepResult): Promise<ProcessRecord> {
    return (await this.completeStepAndTakeNext(step, result)).process;
  }

  /**
   * {@link completeStep}, and when `taker` is given and the run's next step is queued by this
   * commit, the same commit claims it for the taker and begins it (what {@link beginStep} would
   * do): one commit per step. Only when no other due step waits ahead of it in its lane (the
   * `task.handoff` op); otherwise the step goes to the queue as usual. `next` is the begun step,
   * to run at once, or null.
   *
   * `current`: the caller read the run's row just now, so the first try uses it instead of
   * reading it again (a stale one only costs a retry: the commit is a compare-and-set).
   */
  async completeStepAndTakeNext(
    step: StepContext,
    result: StepResult,
    taker?: StepTaker,
    current?: ProcessRecord,
  ): Promise<{ process: ProcessRecord; next: StepContext | null }> {
    const oversized = this.#checkStepResult(step, result);
    if (oversized) return { process: await this.failStep(step, oversized), next: null };
    let offer = taker;
    let known = current?.pid === step.process.pid ? current : undefined;
    return withCasRetry(async () => {
      const p = known ?? (await this.#mustGet(step.process.pid));
      known = undefined;
      const now = this.#ctx.clock.now();
      // A run that ended or moved past this step has no use for the report: the lease is lost.
      if (isTerminalProcessState(p.state) || !outstandingStep(p.envelope, step.step)) {
        throw errors.leaseLost(step.claim.task.id, step.claim.attempt);
      }
      const snapshot = snapshotOf(p);
      snapshot.envelope = stepEnded(snapshot.envelope, now, step.step);
      if (result.toolCalls)
        snapshot.usage = {
          ...snapshot.usage,
          tool_calls: snapshot.usage.tool_calls + result.toolCalls,
        };
      if (result.usage) snapshot.usage = addUsage(snapshot.usage, result.usage);
      const transitioned = completeStep(
        p.workflow,
        snapshot,
        {
          step: step.step,
          stage: step.stage.name,
          output: result.output,
          modelCalls: result.modelCalls ?? 0,
          ...(result.statePatch ? { statePatch: result.statePatch } : {}),
          attempt: step.claim.attempt,
        },
        this.machineOptions(p),
      );
      const softOps = this.#softTimeoutOps(p, transitioned.snapshot.envelope, now);
      const tasks = transitioned.cancelled?.length ? await liveStepTasks(this.#ctx, p.pid) : [];
      const plan = planEffect(this.#ctx, p, p.state, transitioned, tasks);
      const ops: StoreOp[] = [
        {
          op: 'task.settle',
          id: step.claim.task.id,
          leaseToken: step.claim.leaseToken,
          state: 'succeeded',
          result: { step: step.step },
          attemptOutcome: 'succeeded',
          now,
        },
        taskEvent(
          step.claim.task,
          'task.succeeded',
          { stage: step.stage.name, step: step.step },
          step.claim.attempt,
        ),
        ...plan.ops.slice(0, 1),
        processEvent(
          p,
          'stage.completed',
          {
            stage: step.stage.name,
            step: step.step,
            output: result.output,
            attempt: step.claim.attempt,
          },
          { task_id: step.claim.task.id, attempt: step.claim.attempt },
        ),
        ...softOps,
        ...plan.ops.slice(1),
      ];
      const queued = offer ? handoffCandidate(ops, offer.lane ?? this.#ctx.agentLane) : undefined;
      // `running`: other branches of a parallel run are running; this one joins them.
      if (!queued || (plan.next.state !== 'ready' && plan.next.state !== 'running')) {
        await this.#ctx.store.commit(ops);
        return { process: plan.next, next: null };
      }
      // Take the next step in this commit and begin it: the handoff is required, so if another
      // due step waits ahead of it the whole commit aborts and is retried without the offer.
      const leaseToken = `lt_${randomToken(12)}`;
      const payload = queued.payload as { pid: string; step: number; stage: string };
      const ready = plan.next;
      // The run goes straight to running: the plan's own update writes that state (one write
      // of the run's row per step), and the events still say ready → running.
      const running: ProcessRecord = {
        ...ready,
        state: 'running',
        envelope: stepStarted(ready.envelope, now, payload.step),
        updated_at: now,
      };
      const at = ops.findIndex((op) => op.op === 'process.update' && op.row.pid === ready.pid);
      const planned = ops[at] as Extract<StoreOp, { op: 'process.update' }>;
      ops[at] = { ...planned, row: running };
      ops.push(
        {
          op: 'task.handoff',
          id: queued.id,
          lane: queued.lane,
          workerId: offer!.workerId,
          leaseToken,
          leaseMs: offer!.leaseMs,
          // Read the clock again: the plan stamped the new step's available_at after `now`
          // was taken, and a step is only taken once it is due.
          now: this.#ctx.clock.now(),
          required: true,
          ...(offer!.overtake ? { overtake: true } : {}),
        },
        ...stateChangeOps(ready, ready.state, 'running'),
        processEvent(
          ready,
          'stage.started',
          { stage: payload.stage, step: payload.step, attempt: 1 },
          { task_id: queued.id, attempt: 1 },
        ),
      );
      let events: readonly EventRecord[];
      try {
        events = await this.#ctx.store.commit(ops);
      } catch (error) {
        if (isWardenError(error, 'CONFLICT') && error.details?.handoff === 'refused')
          offer = undefined;
        throw error; // CONFLICT: withCasRetry runs it again (without the offer if it was refused)
      }
      const claimed = events.find((e) => e.type === 'task.claimed' && e.task_id === queued.id)!;
      const data = claimed.data as { lease_expires_at: number };
      const claim: ClaimedTask = {
        task: {
          ...queued,
          state: 'running',
          attempts: 1,
          lease_owner: offer!.workerId,
          lease_token: leaseToken,
          lease_expires_at: data.lease_expires_at,
          claimed_at: now,
          updated_at: now,
        },
        attempt: 1,
        leaseToken,
      };
      return {
        process: running,
        next: {
          claim,
          process: running,
          workflow: running.workflow,
          stage: stageByName(running.workflow, payload.stage)!,
          step: payload.step,
        },
      };
    });
  }

  /**
   * A step failed. Retryable failures with attempts left go back to the queue with backoff;
   * otherwise the run takes `error_next` or terminates.
   */
  async failStep(
    step: StepContext,
    failure: unknown,
    random: () => number = Math.random,
    usage?: UsageDelta,
  ): Promise<ProcessRecord> {
    const error = coerceError(failure);
    const message = boundedMessage(error.message); // a failure is always recorded, cut if need be
    const reason = (error.details?.reason as TerminalReason | undefined) ?? undefined;
    return withCasRetry(async () => {
      const p = await this.#mustGet(step.process.pid);
      const now = this.#ctx.clock.now();
      if (isTerminalProcessState(p.state) || !outstandingStep(p.envelope, step.step)) {
        throw errors.leaseLost(step.claim.task.id, step.claim.attempt);
      }
      const task = step.claim.task;
      const taskError = { code: error.code, message, retryable: error.retryable };
      const retryable =
        error.retryable && error.code !== 'QUOTA_EXCEEDED' && error.code !== 'CANCELED';
      if (retryable && step.claim.attempt < task.max_attempts) {
        const delay = backoffDelayMs(
          { base_ms: task.options.backoff_ms, max_ms: task.options.max_backoff_ms, jitter: 'full' },
          step.claim.attempt,
          random,
        );
        const envelope = stepEnded(p.envelope, now, step.step);
        // Other branches of a parallel run may still be running.
        const state = anyBranchRunning(envelope) ? 'running' : 'ready';
        const next: ProcessRecord = {
          ...p,
          state,
          envelope,
          usage: usage ? addUsage(p.usage, usage) : p.usage,
          version: p.version + 1,
          updated_at: now,
        };
        await this.#ctx.store.commit([
          {
            op: 'task.settle',
            id: task.id,
            leaseToken: step.claim.leaseToken,
            state: 'queued',
            error: taskError,
            availableAt: now + delay,
            sortKey: sortKey(now + delay, task.priority, this.#ctx.agingMs),
            attemptOutcome: 'failed',
            now,
          },
          taskEvent(
            task,
            'task.retry_scheduled',
            {
              attempt: step.claim.attempt,
              max_attempts: task.max_attempts,
              delay_ms: delay,
              error: taskError,
            },
            step.claim.attempt,
          ),
          { op: 'process.update', expectVersion: p.version, row: next },
          processEvent(p, 'stage.failed', {
            stage: step.stage.name,
            step: step.step,
            error: taskError,
            will_retry: true,
            attempt: step.claim.attempt,
          }),
          ...stateChangeOps(p, p.state, state),
        ]);
        return next;
      }
      const snapshot = { ...snapshotOf(p), envelope: stepEnded(p.envelope, now, step.step) };
      if (usage) snapshot.usage = addUsage(snapshot.usage, usage);
      const transitioned = failStep(
        p.workflow,
        snapshot,
        {
          step: step.step,
          stage: step.stage.name,
          code: error.code,
          message,
          ...(reason ? { reason } : {}),
          attempt: step.claim.attempt,
        },
        this.machineOptions(p),
      );
      const tasks = transitioned.cancelled?.length ? await liveStepTasks(this.#ctx, p.pid) : [];
      const plan = planEffect(this.#ctx, p, p.state, transitioned, tasks);
      await this.#ctx.store.commit([
        {
          op: 'task.settle',
          id: task.id,
          leaseToken: step.claim.leaseToken,
          state: 'failed',
          error: taskError,
          attemptOutcome: 'failed',
          now,
        },
        taskEvent(
          task,
          'task.failed',
          { error: taskError, attempts: step.claim.attempt },
          step.claim.attempt,
        ),
        ...plan.ops.slice(0, 1),
        processEvent(p, 'stage.failed', {
          stage: step.stage.name,
          step: step.step,
          error: taskError,
          will_retry: false,
          attempt: step.claim.attempt,
        }),
        ...plan.ops.slice(1),
      ]);
      return plan.next;
    });
  }

  /** Cancels a run: its queued or running step is canceled (the worker sees LEASE_LOST), pending interrupts too. */
  async cancel(pid: string, message = 'cancelled by user'): Promise<ProcessRecord> {
    return withCasRetry(async () => {
      const p = await this.#mustGet(pid);
      if (isTerminalProcessState(p.state)) return p;
      const now = this.#ctx.clock.now();
      const snap = cancelRun(snapshotOf(p), message);
      const ops: StoreOp[] = [];
      for (const t of await this.#ctx.store.listTasks({
        processId: pid,
        states: ['queued', 'running'],
      })) {
        ops.push({
          op: 'task.cancel',
          id: t.id,
          expectState: t.state as 'queued' | 'running',
          leaseToken: t.lease_token,
          now,
        });
        ops.push(taskEvent(t, 'task.canceled', { reason: message }, t.attempts || null));
      }
      for (const i of await this.#ctx.store.listInterrupts({ processId: pid, status: 'pending' })) {
        ops.push({
          op: 'interrupt.settle',
          id: i.id,
          status: 'cancelled',
          response: null,
          resolver: null,
          now,
        });
        ops.push(
          processEvent(p, 'interrupt.cancelled', { id: i.id, kind: i.kind, reason: message }),
        );
      }
      // Parallel branches get their stage.cancelled events; their tasks are cancelled above.
      const cancelled = p.envelope.branches
        ? outstandingSteps(p.workflow, p.envelope).map((s) => ({
            ...s,
            reason: 'run_ended' as const,
          }))
        : [];
      const plan = planEffect(this.#ctx, p, p.state, {
        snapshot: snap,
        effect: { kind: 'terminate', reason: 'user_cancelled', message },
        routes: [],
        cancelled,
      });
      await this.#ctx.store.commit([...ops, ...plan.ops]);
      return plan.next;
    });
  }

  /** Appends an event about a running step (e.g. streamed model output), fenced by its lease. */
  async emitStepEvent(
    step: StepContext,
    type: 'model.delta' | 'tool.called' | 'tool.denied' | 'security.decision' | 'quarantine.added',
    data: Record<string, unknown>,
    extraOps: readonly StoreOp[] = [],
  ): Promise<void> {
    await this.#ctx.store.commit([
      ...extraOps,
      { op: 'task.fence', id: step.claim.task.id, leaseToken: step.claim.leaseToken },
      processEvent(
        step.process,
        type,
        { stage: step.stage.name, step: step.step, ...data },
        { task_id: step.claim.task.id, attempt: step.claim.attempt },
      ),
    ]);
  }

  /** Why a step's result cannot be recorded (size or JSON), or undefined. */
  #checkStepResult(step: StepContext, result: StepResult): WardenError | undefined {
    const stage = step.stage.name;
    try {
      assertWithin(
        `the output of stage '${stage}'`,
        result.output,
        this.#limits.stepOutputBytes,
        'return a reference to large data instead, or raise limits.stepOutputBytes',
      );
      if (result.statePatch !== undefined)
        assertWithin(
          `the state patch of stage '${stage}'`,
          result.statePatch,
          this.#limits.statePatchBytes,
          'keep large data out of the run state, or raise limits.statePatchBytes',
        );
      return undefined;
    } catch (error) {
      return coerceError(error); // PAYLOAD_TOO_LARGE or INVALID_PARAMS: neither is retryable
    }
  }

  #softTimeoutOps(p: ProcessRecord, envelope: ProcessRecord['envelope'], now: number): StoreOp[] {
    if (envelope.soft_timeout_warned || elapsedMs(p, now) < p.quota.soft_timeout_ms) return [];
    envelope.soft_timeout_warned = true;
    return [
      processEvent(p, 'budget.soft_timeout', {
        elapsed_ms: elapsedMs(p, now),
        soft_timeout_ms: p.quota.soft_timeout_ms,
      }),
    ];
  }

  async #mustGet(pid: string): Promise<ProcessRecord> {
    const p = await this.#ctx.store.getProcess(pid);
    if (!p) throw errors.notFound('process', pid);
    return p;
  }
}

/** Who takes a run's next step in the commit that finishes the current one. */
export interface StepTaker {
  readonly workerId: string;
  readonly leaseMs: number;
  /** Take the run's next step even when other due steps wait ahead of it in the lane. */
  readonly overtake?: boolean;
  /**
   * The lane whose steps the taker runs (default: the agent lane). A client of `external`
   * stages names the external lane: its report takes the run's next external step.
   */
  readonly lane?: string;
}

/**
 * The agent step a commit queues, if it queues exactly one and in the taker's lane (a step of
 * an `external` stage waits for a client, never for the in-process worker that finished the
 * step before; and the other way round).
 */
function handoffCandidate(ops: readonly StoreOp[], lane: string): TaskRecord | undefined {
  let found: TaskRecord | undefined;
  for (const op of ops) {
    if (op.op !== 'task.insert' || op.row.kind !== 'agent_step') continue;
    if (found) return undefined;
    found = op.row;
  }
  return found?.lane === lane ? found : undefined;
}
