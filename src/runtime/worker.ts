/**
 * The in-process worker: claims `agent_step` tasks with a lease, runs the stage's agent under
 * the run's budget, and reports the result fenced by its lease token.
 *
 * Liveness rules:
 * - the lease is renewed every `heartbeatMs` by a heartbeat thread (queue/HeartbeatPump), so an
 *   agent that blocks the event loop cannot starve it;
 * - a heartbeat that answers LEASE_LOST (the task was reclaimed or the run was cancelled)
 *   aborts the agent's AbortSignal, and its result is dropped: the kernel would reject it;
 * - a stage `timeout` aborts the agent with TIMEOUT, which is retried like any failure; the end
 *   of the run's time budget aborts it with QUOTA_EXCEEDED, which ends the run.
 *
 * Claiming follows queue/claim-loop.ts: no write while nothing is due; woken by any commit (this
 * process or another), a finished step, or the next delayed retry. Expired leases of every kind
 * are reclaimed continuously (queue/lease-reaper.ts; steps through the kernel's hook), so a run
 * never waits on a dead process.
 */
import {
  checkParams,
  coerceError,
  isWardenError,
  randomToken,
  WardenError,
} from '../core/index.ts';
import { type Kernel, localWorkerId, type StepContext, type StepResult } from '../kernel/index.ts';
import { ClaimLoop, HeartbeatPump, LeaseReaper, releaseSettle, RunState } from '../queue/index.ts';
import type { ClaimedTask } from '../store/index.ts';
import { createAgentContext } from './agent-context.ts';
import { type Agent, type AgentContext, AgentRegistry } from './agents/agent.ts';
import { runLlm, runNoop } from './agents/builtin.ts';
import { runShellAgent, runToolAgent } from './agents/tool-agents.ts';
import { ModelRegistry } from './models/registry.ts';
import { abortError } from './models/scripted.ts';
import { stopArgs, workerArgs } from './params.ts';
import { NO_TOOLS, type StepToolsFactory } from './tools/step-tools.ts';

/** The abort reason of {@link Worker.stop} with `release`: hand the step back, unfinished. */
const RELEASE = new WardenError('CANCELED', 'the worker stopped: the step goes back to the queue');

/** setTimeout's largest delay; a longer one would fire at once. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface WorkerOptions {
  readonly kernel: Kernel;
  readonly agents?: AgentRegistry;
  readonly models?: ModelRegistry;
  /** Steps run at once. @default 4 */
  readonly concurrency?: number;
  /** @default 15_000 */
  readonly leaseMs?: number;
  /** @default leaseMs / 3 */
  readonly heartbeatMs?: number;
  /** @default 'auto' (a heartbeat thread when the database is a file) */
  readonly heartbeat?: 'auto' | 'thread' | 'timer';
  /** @default `<host>/<pid>/<random>/<namespace>` */
  readonly id?: string;
  /**
   * Runs this worker works on first (`warden run` passes its own): when it finishes one of their
   * steps it takes the run's next step at once, even if other runs' steps wait in the lane.
   * Other runs' steps are still claimed when a slot is free.
   */
  readonly preferRuns?: ReadonlySet<string>;
  /** Streamed model text, for live display. */
  readonly onDelta?: (event: { pid: string; stage: string; step: number; text: string }) => void;
  /** The tool path for agents' tool calls (security/tool-path.ts); without it every call is denied. */
  readonly tools?: StepToolsFactory;
  /**
   * Errors the worker handled but could not report (for logging). `task_id` names the step's
   * task, or is null for the worker's own claim and reclaim loops (`where` says which).
   */
  readonly onError?: (
    error: WardenError,
    context: { task_id: string | null; where: 'step' | 'claim' | 'reclaim' },
  ) => void;
}

export class Worker {
  readonly id: string;
  readonly #kernel: Kernel;
  readonly #agents: AgentRegistry;
  readonly #models: ModelRegistry;
  readonly #concurrency: number;
  readonly #leaseMs: number;
  readonly #pump: HeartbeatPump;
  readonly #claimLoop: ClaimLoop;
  readonly #reaper: LeaseReaper;
  readonly #options: WorkerOptions;
  readonly #active = new Map<string, { promise: Promise<void>; controller: AbortController }>();
  readonly #state = new RunState();
  #registered = false;
  #unsubscribe: (() => void) | null = null;

  /** INVALID_PARAMS naming the option for a bad one (`kernel` is required). */
  constructor(options: WorkerOptions) {
    checkParams('new Worker', workerArgs, { options });
    this.#options = options;
    this.#kernel = options.kernel;
    this.#agents = options.agents ?? new AgentRegistry();
    this.#models = options.models ?? new ModelRegistry();
    this.#concurrency = options.concurrency ?? 4;
    this.#leaseMs = options.leaseMs ?? 15_000;
    this.id = options.id ?? localWorkerId(randomToken(4));
    const kernel = options.kernel;
    this.#pump = new HeartbeatPump({
      store: kernel.store,
      clock: kernel.clock,
      leaseMs: this.#leaseMs,
      heartbeatMs: options.heartbeatMs ?? Math.floor(this.#leaseMs / 3),
      stallLimitMs: this.#leaseMs * 4,
      mode: options.heartbeat ?? 'auto',
      onLost: (ids) => {
        for (const id of ids)
          this.#active
            .get(id)
            ?.controller.abort(new WardenError('LEASE_LOST', `lost the lease on task ${id}`));
      },
    });
    this.#claimLoop = new ClaimLoop({
      store: kernel.store,
      clock: kernel.clock,
      workerId: this.id,
      leaseMs: this.#leaseMs,
      kinds: ['agent_step'],
      claimBatch: this.#concurrency,
      room: () => [{ lane: kernel.agentLane, room: this.#concurrency - this.#active.size }],
      onClaimed: (claims) => {
        for (const claim of claims) this.#track(claim);
      },
      onError: (error) => this.#options.onError?.(error, { task_id: null, where: 'claim' }),
    });
    // Reclaims expired leases of every kind while this worker runs (steps through the kernel).
    this.#reaper = new LeaseReaper({
      store: kernel.store,
      clock: kernel.clock,
      isDeadOwner: kernel.recovery.isDeadOwner,
      agingMs: kernel.agingMs,
      maxWaitMs: this.#leaseMs,
      onError: (error) => this.#options.onError?.(error, { task_id: null, where: 'reclaim' }),
    });
  }

  get activeCount(): number {
    return this.#active.size;
  }

  /** Claim transactions this worker has run (empty ones too). */
  get claimTransactions(): number {
    return this.#claimLoop.claims;
  }

  /**
   * Registers the worker as a service, reclaims what expired, and starts claiming. A start that
   * fails undoes what it started, and may be tried again; `stop()` called while starting waits
   * for the start to finish first.
   */
  start(): Promise<void> {
    return this.#state.start(
      () => this.#start(),
      () => this.#teardown(),
    );
  }

  async #start(): Promise<void> {
    this.#pump.start();
    const sub = this.#kernel.bus.subscribe(['task.canceled'], (message) => {
      const event = message.payload as { task_id: string | null };
      if (event.task_id)
        this.#active
          .get(event.task_id)
          ?.controller.abort(new WardenError('CANCELED', 'the run was cancelled'));
    });
    // A step queued by this process in our lane: claim at once, without reading first.
    const lane = this.#kernel.agentLane;
    const unwatch = this.#kernel.store.onCommit((events) => {
      for (const e of events)
        if (e.type === 'task.queued' && (e.data as { lane?: string }).lane === lane) {
          this.#claimLoop.poke(true);
          return;
        }
    });
    this.#unsubscribe = () => {
      sub.unsubscribe();
      unwatch();
    };
    await this.#kernel.registerService({
      name: this.id,
      type: 'worker',
      capabilities: ['agent_step'],
      maxConcurrency: this.#concurrency,
      health: 'healthy',
      owner: this.id,
    });
    this.#registered = true;
    await this.#reaper.start();
    this.#claimLoop.start();
  }

  /** Stops the background parts and withdraws the registration (each a no-op if not started). */
  async #teardown(): Promise<void> {
    await this.#claimLoop.stop();
    this.#unsubscribe?.();
    this.#unsubscribe = null;
    await this.#reaper.stop();
    await this.#pump.stop();
    if (this.#registered) {
      this.#registered = false;
      await this.#kernel.unregisterService(this.id);
    }
  }

  /**
   * Stops claiming and waits for running steps to finish — or, with `abort`, aborts them (they
   * fail with CANCELED and their runs end `user_cancelled`), or, with `release`, aborts their
   * agents and hands the steps back to the queue without spending an attempt, for any worker
   * (or a later `warden resume`) to run again from the start (what Ctrl-C on `warden run` does).
   */
  async stop(options: { abort?: boolean; release?: boolean } = {}): Promise<void> {
    checkParams('Worker.stop', stopArgs, { options });
    if (!(await this.#state.beginStop())) return;
    const reason = options.release
      ? RELEASE
      : options.abort
        ? new WardenError('CANCELED', 'worker stopping')
        : null;
    if (reason) this.#abortAll(reason);
    await this.#claimLoop.stop();
    if (reason) this.#abortAll(reason); // a step claimed while the loop was stopping
    await Promise.allSettled([...this.#active.values()].map((a) => a.promise));
    await this.#teardown();
  }

  #abortAll(reason: WardenError): void {
    for (const { controller } of this.#active.values()) controller.abort(reason);
  }

  /** Runs a claimed step (`begun`: already begun by the commit that handed it over). */
  #track(claim: ClaimedTask, begun?: StepContext): void {
    const controller = new AbortController();
    const promise = this.#runStep(claim, controller, begun)
      .catch((error: unknown) => this.#report(coerceError(error), claim.task.id))
      .finally(() => {
        this.#active.delete(claim.task.id);
        this.#claimLoop.poke(); // a slot is free
      });
    this.#active.set(claim.task.id, { promise, controller });
  }

  async #runStep(
    claim: ClaimedTask,
    controller: AbortController,
    begun?: StepContext,
  ): Promise<void> {
    const orchestrator = this.#kernel.orchestrator;
    const step = begun ?? (await orchestrator.beginStep(claim));
    if (!step) return;
    this.#pump.track(claim.task.id, claim.leaseToken);
    this.#pump.flush(); // before the agent runs: it may block the event loop
    const timer = this.#armDeadline(step, controller);
    try {
      let result: StepResult;
      try {
        result = await this.#runAgent(step, controller.signal);
        if (controller.signal.aborted) throw abortError(controller.signal);
      } catch (error) {
        if (controller.signal.reason === RELEASE) {
          await this.#handBack(claim, 'worker_released');
          return;
        }
        const failure = controller.signal.aborted
          ? abortError(controller.signal)
          : coerceError(error);
        if (failure.code === 'LEASE_LOST') return; // someone else owns the step now; drop silently by design
        await orchestrator.failStep(step, failure);
        return;
      }
      // While running and with room, take the run's next step in the same commit (no claim).
      const { next } = await orchestrator.completeStepAndTakeNext(
        step,
        result,
        this.#state.running
          ? {
              workerId: this.id,
              leaseMs: this.#leaseMs,
              ...(this.#options.preferRuns?.has(step.process.pid) ? { overtake: true } : {}),
            }
          : undefined,
      );
      if (next) {
        if (this.#state.running) this.#track(next.claim, next);
        else await this.#handBack(next.claim); // stopped meanwhile
      }
    } catch (error) {
      // A late report after a reclaim or cancel is rejected by the fence; that is expected.
      if (!isWardenError(error, 'LEASE_LOST') && !isWardenError(error, 'INVALID_STATE'))
        throw error;
    } finally {
      this.#pump.untrack(claim.task.id);
      clearTimeout(timer);
    }
  }

  /**
   * Aborts the step at the earlier of its stage `timeout` (TIMEOUT, retried like any failure)
   * and the end of the run's time budget (QUOTA_EXCEEDED: the run ends with timeout_exceeded).
   */
  #armDeadline(step: StepContext, controller: AbortController): NodeJS.Timeout | undefined {
    const stageMs = step.stage.timeout ?? Infinity;
    const budgetMs = Math.max(0, this.#kernel.resources.runTimeLeft(step));
    const ms = Math.min(stageMs, budgetMs);
    if (ms > MAX_TIMER_MS) return undefined; // longer than a timer can hold: never in practice
    return setTimeout(() => {
      controller.abort(
        stageMs <= budgetMs
          ? new WardenError(
              'TIMEOUT',
              `stage '${step.stage.name}' exceeded its timeout of ${stageMs} ms`,
              { retryable: true },
            )
          : this.#kernel.resources.runTimeExceeded(step),
      );
    }, ms);
  }

  async #runAgent(step: StepContext, signal: AbortSignal): Promise<StepResult> {
    const spec = step.stage.agent;
    if (!spec) throw new WardenError('INTERNAL', `stage '${step.stage.name}' has no agent`);
    const base = createAgentContext(
      { kernel: this.#kernel, models: this.#models, onDelta: this.#options.onDelta },
      step,
      signal,
    );
    const ctx: AgentContext = Object.assign(base, { tools: NO_TOOLS });
    if (this.#options.tools) Object.assign(ctx, { tools: this.#options.tools(step, ctx) });
    try {
      return await this.#dispatchAgent(spec, step, ctx);
    } finally {
      await ctx.tools.close();
    }
  }

  #dispatchAgent(
    spec: NonNullable<StepContext['stage']['agent']>,
    step: StepContext,
    ctx: AgentContext,
  ): Promise<StepResult> {
    switch (spec.kind) {
      case 'noop':
        return runNoop(ctx, spec);
      case 'llm':
        return runLlm(ctx, spec, step.workflow.model);
      case 'tool':
        return runToolAgent(ctx, spec);
      case 'shell':
        return runShellAgent(ctx, spec);
      case 'typescript': {
        const agent: Agent<Record<string, unknown>> | undefined = this.#agents.get(spec.name);
        if (!agent) {
          throw new WardenError(
            'CONFIG_INVALID',
            `no TypeScript agent is registered as '${spec.name}'`,
            { retryable: false },
          );
        }
        return agent.run(ctx, spec.config ?? {});
      }
      case 'external':
        // Its steps wait in the external lane, which no in-process worker serves.
        throw new WardenError(
          'INVALID_STATE',
          `stage '${step.stage.name}' runs in an external client (kind: external), not in this worker`,
          { retryable: false },
        );
    }
  }

  /** Gives a step this worker took but will not run back to the queue (no attempt spent). */
  async #handBack(claim: ClaimedTask, reason = 'worker_stopped'): Promise<void> {
    await this.#kernel.store.settleTasks([releaseSettle(claim, this.#kernel.clock.now(), reason)]);
  }

  #report(error: WardenError, taskId: string): void {
    this.#options.onError?.(error, { task_id: taskId, where: 'step' });
  }
}
