/**
 * The in-process worker: claims `agent_step` tasks with a lease, runs the stage's agent under
 * the run's budget, and reports the result fenced by its lease token.
 *
 * Liveness rules:
 * - the lease is renewed every `heartbeatMs` by a heartbeat thread (queue/HeartbeatPump), so an
 *   agent that blocks the event loop cannot starve it;
 * - a heartbeat that answers LEASE_LOST (the task was reclaimed or the run was cancelled)
 *   aborts the agent's AbortSignal, and its result is dropped: the kernel would reject it;
 * - a stage `timeout` aborts the agent with TIMEOUT, which is retried like any failure.
 *
 * Wake-ups: a local enqueue wakes the loop at once through the kernel bus; other processes'
 * commits are noticed by polling the store's change token every `pollMs`; delayed retries are
 * picked up by a claim at least every `maxIdleMs`.
 */
import { coerceError, isWardenError, randomToken, WardenError } from '../core/index.ts';
import { type Kernel, localWorkerId, type StepContext, type StepResult } from '../kernel/index.ts';
import { HeartbeatPump } from '../queue/index.ts';
import type { ClaimedTask } from '../store/index.ts';
import { createAgentContext } from './agent-context.ts';
import { type Agent, AgentRegistry } from './agents/agent.ts';
import { runLlm, runNoop } from './agents/builtin.ts';
import { ModelRegistry } from './models/registry.ts';
import { abortError } from './models/scripted.ts';

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
  /** How often to look for other processes' commits. @default 100 */
  readonly pollMs?: number;
  /** Longest time between claim attempts while idle (delayed retries). @default 1_000 */
  readonly maxIdleMs?: number;
  /** @default `<host>/<pid>/<random>` */
  readonly id?: string;
  /** Streamed model text, for live display. */
  readonly onDelta?: (event: { pid: string; stage: string; step: number; text: string }) => void;
  /** Errors the worker handled but could not report (for logging). */
  readonly onError?: (error: WardenError, context: { task_id: string }) => void;
}

export class Worker {
  readonly id: string;
  readonly #kernel: Kernel;
  readonly #agents: AgentRegistry;
  readonly #models: ModelRegistry;
  readonly #concurrency: number;
  readonly #leaseMs: number;
  readonly #pump: HeartbeatPump;
  readonly #pollMs: number;
  readonly #maxIdleMs: number;
  readonly #options: WorkerOptions;
  readonly #active = new Map<string, { promise: Promise<void>; controller: AbortController }>();
  #running = false;
  #loop: Promise<void> | null = null;
  #wake: (() => void) | null = null;
  #unsubscribe: (() => void) | null = null;

  constructor(options: WorkerOptions) {
    this.#options = options;
    this.#kernel = options.kernel;
    this.#agents = options.agents ?? new AgentRegistry();
    this.#models = options.models ?? new ModelRegistry();
    this.#concurrency = options.concurrency ?? 4;
    this.#leaseMs = options.leaseMs ?? 15_000;
    this.#pump = new HeartbeatPump({
      store: options.kernel.store,
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
    this.#pollMs = options.pollMs ?? 100;
    this.#maxIdleMs = options.maxIdleMs ?? 1_000;
    this.id = options.id ?? localWorkerId(randomToken(4));
  }

  get activeCount(): number {
    return this.#active.size;
  }

  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#pump.start();
    const sub = this.#kernel.bus.subscribe(
      ['task.queued', 'task.retry_scheduled', 'task.canceled'],
      (message) => {
        const event = message.payload as { type: string; task_id: string | null };
        if (event.type === 'task.canceled' && event.task_id) {
          this.#active
            .get(event.task_id)
            ?.controller.abort(new WardenError('CANCELED', 'the run was cancelled'));
        }
        this.#wake?.();
      },
    );
    this.#unsubscribe = () => sub.unsubscribe();
    this.#kernel.services.register({
      name: this.id,
      type: 'worker',
      capabilities: ['agent_step'],
      maxConcurrency: this.#concurrency,
      health: 'healthy',
    });
    this.#loop = this.#run();
  }

  /** Stops claiming; waits for running steps to finish (or aborts them when `abort` is true). */
  async stop(options: { abort?: boolean } = {}): Promise<void> {
    this.#running = false;
    this.#wake?.();
    if (options.abort)
      for (const { controller } of this.#active.values())
        controller.abort(new WardenError('CANCELED', 'worker stopping'));
    await this.#loop;
    await Promise.allSettled([...this.#active.values()].map((a) => a.promise));
    this.#unsubscribe?.();
    await this.#pump.stop();
    this.#kernel.services.unregister(this.id);
  }

  async #run(): Promise<void> {
    let lastToken = -1;
    let lastClaimAt = 0;
    while (this.#running) {
      const room = this.#concurrency - this.#active.size;
      let claimed: ClaimedTask[] = [];
      if (room > 0) {
        try {
          lastClaimAt = Date.now();
          claimed = await this.#kernel.store.claimTasks({
            lanes: [this.#kernel.agentLane],
            kinds: ['agent_step'],
            workerId: this.id,
            limit: room,
            leaseMs: this.#leaseMs,
            now: this.#kernel.clock.now(),
          });
        } catch (error) {
          this.#report(coerceError(error), 'claim');
        }
      }
      for (const claim of claimed) this.#track(claim);
      if (claimed.length > 0 && claimed.length === room) continue;
      // Idle (or full): sleep until woken, a poll notices another process's commit, or maxIdleMs.
      await new Promise<void>((resolve) => {
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          clearInterval(poll);
          this.#wake = null;
          resolve();
        };
        this.#wake = finish;
        const poll = setInterval(() => {
          if (Date.now() - lastClaimAt >= this.#maxIdleMs && this.#active.size < this.#concurrency)
            return finish();
          this.#kernel.store.changeToken().then((token) => {
            if (token !== lastToken) {
              lastToken = token;
              if (this.#active.size < this.#concurrency) finish();
            }
          }, finish);
        }, this.#pollMs);
      });
    }
  }

  #track(claim: ClaimedTask): void {
    const controller = new AbortController();
    const promise = this.#runStep(claim, controller)
      .catch((error: unknown) => this.#report(coerceError(error), claim.task.id))
      .finally(() => {
        this.#active.delete(claim.task.id);
        this.#wake?.();
      });
    this.#active.set(claim.task.id, { promise, controller });
  }

  async #runStep(claim: ClaimedTask, controller: AbortController): Promise<void> {
    const orchestrator = this.#kernel.orchestrator;
    const step = await orchestrator.beginStep(claim);
    if (!step) return;
    this.#pump.track(claim.task.id, claim.leaseToken);
    this.#pump.flush(); // before the agent runs: it may block the event loop
    const timeoutMs = step.stage.timeout;
    const timer = timeoutMs
      ? setTimeout(
          () =>
            controller.abort(
              new WardenError(
                'TIMEOUT',
                `stage '${step.stage.name}' exceeded its timeout of ${timeoutMs} ms`,
                { retryable: true },
              ),
            ),
          timeoutMs,
        )
      : undefined;
    try {
      let result: StepResult;
      try {
        result = await this.#runAgent(step, controller.signal);
        if (controller.signal.aborted) throw abortError(controller.signal);
      } catch (error) {
        const failure = controller.signal.aborted
          ? abortError(controller.signal)
          : coerceError(error);
        if (failure.code === 'LEASE_LOST') return; // someone else owns the step now; drop silently by design
        await orchestrator.failStep(step, failure);
        return;
      }
      await orchestrator.completeStep(step, result);
    } catch (error) {
      // A late report after a reclaim or cancel is rejected by the fence; that is expected.
      if (!isWardenError(error, 'LEASE_LOST') && !isWardenError(error, 'INVALID_STATE'))
        throw error;
    } finally {
      this.#pump.untrack(claim.task.id);
      clearTimeout(timer);
    }
  }

  async #runAgent(step: StepContext, signal: AbortSignal): Promise<StepResult> {
    const spec = step.stage.agent;
    if (!spec) throw new WardenError('INTERNAL', `stage '${step.stage.name}' has no agent`);
    const ctx = createAgentContext(
      { kernel: this.#kernel, models: this.#models, onDelta: this.#options.onDelta },
      step,
      signal,
    );
    switch (spec.kind) {
      case 'noop':
        return runNoop(ctx, spec);
      case 'llm':
        return runLlm(ctx, spec, step.workflow.model);
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
    }
  }

  #report(error: WardenError, taskId: string): void {
    this.#options.onError?.(error, { task_id: taskId });
  }
}
