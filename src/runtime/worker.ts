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
import {
  coerceError,
  estimateTokens,
  isWardenError,
  randomToken,
  WardenError,
} from '../core/index.ts';
import { type Kernel, localWorkerId, type StepContext, type StepResult } from '../kernel/index.ts';
import { HeartbeatPump } from '../queue/index.ts';
import type { ClaimedTask } from '../store/index.ts';
import {
  type Agent,
  type AgentContext,
  AgentRegistry,
  type ModelCallOptions,
} from './agents/agent.ts';
import { runLlm, runNoop } from './agents/builtin.ts';
import type { ChatMessage, ModelReply } from './models/provider.ts';
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

const DELTA_FLUSH_MS = 250;
const DELTA_FLUSH_CHARS = 1_024;

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
    const ctx = this.#agentContext(step, signal);
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

  #agentContext(step: StepContext, signal: AbortSignal): AgentContext {
    let callsThisStep = 0;
    const kernel = this.#kernel;
    const script = step.stage.agent?.kind === 'llm' ? step.stage.agent.script : undefined;
    return {
      pid: step.process.pid,
      stage: step.stage,
      step: step.step,
      attempt: step.claim.attempt,
      envelope: step.process.envelope,
      signal,
      model: async (
        messages: readonly ChatMessage[],
        options: ModelCallOptions = {},
      ): Promise<ModelReply> => {
        const { provider, model, spec } = this.#models.resolve(
          options.model ?? step.workflow.model,
        );
        await kernel.resources.checkModelCall(
          step,
          estimateTokens(messages.map((m) => m.content).join('\n')),
        );
        const index = (step.process.envelope.stage_calls[step.stage.name] ?? 0) + callsThisStep;
        callsThisStep += 1;
        const stream = new DeltaStream(kernel, step, this.#options.onDelta);
        const started = Date.now();
        let reply: ModelReply;
        try {
          reply = await provider.complete(
            {
              model,
              messages,
              ...(options.maxOutputTokens ? { maxOutputTokens: options.maxOutputTokens } : {}),
              ...(options.temperature === undefined ? {} : { temperature: options.temperature }),
              ...(script ? { script: { responses: script, index } } : {}),
            },
            signal,
            (text) => stream.push(text),
          );
        } finally {
          await stream.close();
        }
        await kernel.resources.recordModelCall(step, {
          ...reply.usage,
          model: spec,
          duration_ms: Date.now() - started,
        });
        return reply;
      },
      toolCall: async (tool: string) => {
        await kernel.resources.checkToolCall(step);
        await kernel.resources.recordToolCall(step, tool);
      },
    };
  }

  #report(error: WardenError, taskId: string): void {
    this.#options.onError?.(error, { task_id: taskId });
  }
}

/** Coalesces streamed text into `model.delta` events (every 250 ms or 1 KiB) and live callbacks. */
class DeltaStream {
  readonly #kernel: Kernel;
  readonly #step: StepContext;
  readonly #onDelta: WorkerOptions['onDelta'];
  #buffer = '';
  #timer: NodeJS.Timeout | undefined;
  #chain: Promise<void> = Promise.resolve();

  constructor(kernel: Kernel, step: StepContext, onDelta: WorkerOptions['onDelta']) {
    this.#kernel = kernel;
    this.#step = step;
    this.#onDelta = onDelta;
  }

  push(text: string): void {
    this.#onDelta?.({
      pid: this.#step.process.pid,
      stage: this.#step.stage.name,
      step: this.#step.step,
      text,
    });
    this.#buffer += text;
    if (this.#buffer.length >= DELTA_FLUSH_CHARS) this.#flush();
    else this.#timer ??= setTimeout(() => this.#flush(), DELTA_FLUSH_MS);
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#buffer === '') return;
    const text = this.#buffer;
    this.#buffer = '';
    // Best effort by design and said so: a delta that loses its lease is dropped with the step.
    this.#chain = this.#chain
      .then(() => this.#kernel.orchestrator.emitStepEvent(this.#step, 'model.delta', { text }))
      .catch(() => undefined);
  }

  async close(): Promise<void> {
    this.#flush();
    await this.#chain;
  }
}
