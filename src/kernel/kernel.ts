/**
 * The kernel facade: one object that owns the store and the subsystems (lifecycle,
 * orchestrator, interrupts, resources, rate limits, service registry, bus, sessions) and is the
 * only thing protocols and the CLI talk to. The kernel decides; workers only execute.
 */
import {
  checkParams,
  type Clock,
  errors,
  IdGenerator,
  type InterruptResponse,
  resolveWorkflow,
  type RoutingFunction,
  systemClock,
} from '../core/index.ts';
import {
  type InterruptRecord,
  type ProcessRecord,
  SessionDirectory,
  type Store,
  type StoreOp,
} from '../store/index.ts';
import { CallApprovals } from './approvals.ts';
import { Bus } from './bus.ts';
import { ExternalSteps } from './external-steps.ts';
import { InterruptManager } from './interrupts.ts';
import {
  type KernelLimits,
  Orchestrator,
  resolveKernelLimits,
  type StartRunInput,
} from './orchestrator.ts';
import {
  cancelRunArgs,
  kernelArgs,
  pidArgs,
  registerServiceArgs,
  resolveInterruptArgs,
  serviceNameArgs,
  startRunArgs,
} from './params.ts';
import type { KernelContext } from './process-ops.ts';
import { ProcessTable } from './process-table.ts';
import { DEFAULT_RATE_LIMITS, RateLimiter, type RateLimits } from './rate-limiter.ts';
import { Recovery } from './recovery.ts';
import { ResourceManager } from './resources.ts';
import { DEFAULT_AGING_MS } from './scheduler.ts';
import { type ServiceCall, ServiceRegistry } from './service-registry.ts';

export interface KernelOptions {
  readonly store: Store;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Lane for workflow steps. @default 'agents' */
  readonly agentLane?: string;
  /** Lane for steps of `external` stages, run by clients (gRPC). @default 'external' */
  readonly externalLane?: string;
  /** @default 10_000 */
  readonly agingMs?: number;
  /** TypeScript routing functions, by the name workflows use in `routing: [{fn: name}]`. */
  readonly routingFunctions?: Readonly<Record<string, RoutingFunction>>;
  /** Per-user limits on starting runs. */
  readonly rateLimits?: RateLimits;
  /** Decides whether a lease owner is dead (default: a local OS process that no longer exists). */
  readonly isDeadOwner?: (owner: string) => boolean;
  /**
   * Size limits of workflow data, in bytes of JSON: `runInputBytes` (a run's input, and its
   * metadata, @default 1 MiB; PAYLOAD_TOO_LARGE at start), `stepOutputBytes` (@default 1 MiB)
   * and `statePatchBytes` (@default 256 KiB): a step whose output or state patch is larger
   * fails, without retrying, with PAYLOAD_TOO_LARGE.
   */
  readonly limits?: Partial<KernelLimits>;
}

export interface SystemStatus {
  readonly uptime_ms: number;
  readonly processes: Record<string, number>;
  readonly tasks: Record<string, number>;
  readonly queue_depth: Record<string, number>;
  readonly dlq_size: number;
  readonly pending_interrupts: number;
  readonly services: ReadonlyArray<{ name: string; type: string; health: string; load: number }>;
  readonly rate_limits: Record<string, number>;
  readonly bus: { subscribers: number; handlers: number; dropped: number };
  readonly store: { kind: string; durability: string; ok: boolean; schema_version: number };
}

export class Kernel {
  readonly store: Store;
  readonly clock: Clock;
  readonly ids: IdGenerator;
  readonly bus = new Bus();
  readonly services = new ServiceRegistry();
  readonly rateLimiter: RateLimiter;
  readonly sessions: SessionDirectory;
  readonly orchestrator: Orchestrator;
  /** Steps of `external` stages, taken and reported by clients (the jeeves gRPC face). */
  readonly external: ExternalSteps;
  /** Bare processes a client schedules itself (jeeves KernelService). */
  readonly processTable: ProcessTable;
  readonly interrupts: InterruptManager;
  /** Approvals of single tool calls (`confirmation` interrupts a step waits on). */
  readonly approvals: CallApprovals;
  readonly resources: ResourceManager;
  readonly recovery: Recovery;
  readonly agentLane: string;
  readonly externalLane: string;
  /** The ageing step per priority rank, in ms. */
  readonly agingMs: number;
  readonly #startedAt: number;
  readonly #unsubscribe: () => void;
  /** Names of the routing functions, for validating workflow objects given to startRun. */
  readonly #routingNames: ReadonlySet<string>;

  /** INVALID_PARAMS naming the option for a bad one (`store` is required). */
  constructor(options: KernelOptions) {
    checkParams('new Kernel', kernelArgs, { options });
    this.store = options.store;
    this.clock = options.clock ?? options.store.clock ?? systemClock;
    this.ids = new IdGenerator(this.clock);
    this.agentLane = options.agentLane ?? 'agents';
    this.externalLane = options.externalLane ?? 'external';
    this.agingMs = options.agingMs ?? DEFAULT_AGING_MS;
    const ctx: KernelContext = {
      store: this.store,
      clock: this.clock,
      ids: this.ids,
      agentLane: this.agentLane,
      externalLane: this.externalLane,
      agingMs: this.agingMs,
    };
    this.#routingNames = new Set(Object.keys(options.routingFunctions ?? {}));
    this.rateLimiter = new RateLimiter(this.clock, options.rateLimits ?? DEFAULT_RATE_LIMITS);
    this.sessions = new SessionDirectory(this.store, this.ids, this.clock);
    this.orchestrator = new Orchestrator(
      ctx,
      this.sessions,
      new Map(Object.entries(options.routingFunctions ?? {})),
      resolveKernelLimits(options.limits),
    );
    this.external = new ExternalSteps(ctx, this.orchestrator);
    this.processTable = new ProcessTable(ctx, this.sessions);
    this.interrupts = new InterruptManager(ctx, this.orchestrator);
    this.approvals = new CallApprovals(ctx, this.interrupts);
    this.resources = new ResourceManager(ctx);
    this.recovery = new Recovery(ctx, this.orchestrator, options.isDeadOwner);
    this.#startedAt = this.clock.now();
    // Committed events fan out on the bus (live progress, wake-ups); the store stays the truth.
    this.#unsubscribe = this.store.onCommit((events) => {
      for (const event of events) this.bus.publish(event.type, event);
    });
  }

  /**
   * Registers a service (a worker) here and in the store, where every process sees it
   * (`service.registered` event). `call` makes it dispatchable from this process.
   */
  async registerService(
    info: Parameters<ServiceRegistry['register']>[0] & { readonly owner: string },
    call: ServiceCall | null = null,
  ): Promise<void> {
    checkParams('Kernel.registerService', registerServiceArgs, { info, call });
    this.services.register(info, call);
    const now = this.clock.now();
    const system = await this.sessions.system();
    // Registrations of workers that died without withdrawing them go now (one write, with the
    // start's own): the table stays bounded by the workers that exist.
    const gone = (await this.store.listServices()).filter(
      (row) => row.name !== info.name && this.recovery.isDeadOwner(row.owner),
    );
    await this.store.commit([
      ...gone.flatMap((row): StoreOp[] => [
        { op: 'service.delete', name: row.name },
        {
          op: 'event',
          event: {
            session_id: system.id,
            type: 'service.unregistered',
            trace_id: this.ids.next('tr'),
            data: { name: row.name, reason: 'owner_dead' },
          },
        },
      ]),
      {
        op: 'service.upsert',
        row: {
          name: info.name,
          type: info.type,
          capabilities: info.capabilities,
          max_concurrency: info.maxConcurrency,
          owner: info.owner,
          health: info.health ?? 'unknown',
          registered_at: now,
          updated_at: now,
        },
      },
      {
        op: 'event',
        event: {
          session_id: system.id,
          type: 'service.registered',
          trace_id: this.ids.next('tr'),
          data: { name: info.name, type: info.type, capabilities: info.capabilities },
        },
      },
    ]);
  }

  async unregisterService(name: string): Promise<void> {
    checkParams('Kernel.unregisterService', serviceNameArgs, { name });
    this.services.unregister(name);
    const system = await this.sessions.system();
    await this.store.commit([
      { op: 'service.delete', name },
      {
        op: 'event',
        event: {
          session_id: system.id,
          type: 'service.unregistered',
          trace_id: this.ids.next('tr'),
          data: { name },
        },
      },
    ]);
  }

  /**
   * Services of every process: this process's with their live load and health; others' as
   * registered, `unhealthy` when their owner is a dead local process (killed without
   * unregistering).
   */
  async listServices(): Promise<
    Array<{ name: string; type: string; health: string; load: number; owner: string }>
  > {
    const local = new Map(this.services.list().map((s) => [s.name, s]));
    return (await this.store.listServices()).map((row) => {
      const mine = local.get(row.name);
      const health =
        mine?.health ?? (this.recovery.isDeadOwner(row.owner) ? 'unhealthy' : row.health);
      return { name: row.name, type: row.type, health, load: mine?.load ?? 0, owner: row.owner };
    });
  }

  /** Start-up recovery: reclaim dead and expired leases, expire overdue interrupts. */
  async recover(): Promise<{ reclaimed: number; expired: number }> {
    const reclaimed = await this.recovery.reclaimLeases();
    const expired = await this.interrupts.expireDue();
    return { reclaimed, expired };
  }

  /**
   * Starts a workflow run. `workflow` is the LoadedWorkflow that buildWorkflow() or
   * parseWorkflowText() returns, or a workflow object (validated here, against this kernel's
   * routing functions too: WORKFLOW_INVALID listing every problem). Rate-limited per user
   * across every process on the database (RATE_LIMITED with retry_after_ms; a refused start
   * changes nothing). INVALID_PARAMS for a bad field, PAYLOAD_TOO_LARGE for an input or
   * metadata over `limits.runInputBytes`.
   */
  async startRun(input: StartRunInput): Promise<ProcessRecord> {
    checkParams('Kernel.startRun', startRunArgs, input);
    const workflow = resolveWorkflow(input.workflow, 'Kernel.startRun', {
      routingFunctions: this.#routingNames,
      ...(input.source === undefined ? {} : { fileName: input.source }),
    });
    const key = `user:${input.userId ?? 'local'}:run.start`;
    return this.orchestrator.startRun(
      { ...input, workflow },
      { key, limits: this.rateLimiter.limitsFor(key) },
    );
  }

  /** The run's current record; NOT_FOUND when there is none. */
  async getProcess(pid: string): Promise<ProcessRecord> {
    checkParams('Kernel.getProcess', pidArgs, { pid });
    const p = await this.store.getProcess(pid);
    if (!p) throw errors.notFound('process', pid);
    return p;
  }

  /** Ends the run with `user_cancelled` (its step and pending interrupts are cancelled). */
  async cancelRun(pid: string, message?: string): Promise<ProcessRecord> {
    checkParams('Kernel.cancelRun', cancelRunArgs, { pid, message });
    return this.orchestrator.cancel(pid, message);
  }

  async resolveInterrupt(
    id: string,
    response: InterruptResponse,
    resolver?: string,
  ): Promise<{ interrupt: InterruptRecord; process: ProcessRecord | null }> {
    checkParams('Kernel.resolveInterrupt', resolveInterruptArgs, { id, response, resolver });
    return this.interrupts.resolve(id, response, resolver);
  }

  /** The earliest time a timer-driven change is due (interrupt expiry), or null. */
  async nextDeadline(): Promise<number | null> {
    return this.store.nextInterruptExpiry();
  }

  async status(): Promise<SystemStatus> {
    const counts = await this.store.countByState();
    const depth = await this.store.queueDepths();
    const health = await this.store.health();
    const pending = await this.store.countPendingInterrupts();
    return {
      uptime_ms: this.clock.now() - this.#startedAt,
      processes: counts.processes,
      tasks: counts.tasks,
      queue_depth: depth,
      dlq_size: counts.tasks.dead ?? 0,
      pending_interrupts: pending,
      services: (await this.listServices()).map(({ name, type, health, load }) => ({
        name,
        type,
        health,
        load,
      })),
      // Shared windows (run starts, every process) and this process's in-memory ones.
      rate_limits: {
        ...(await this.store.rateUsage(this.clock.now())),
        ...this.rateLimiter.usage(),
      },
      bus: this.bus.stats(),
      store: {
        kind: this.store.kind,
        durability: this.store.durability,
        ok: health.ok,
        schema_version: health.schemaVersion,
      },
    };
  }

  /** Detaches from the store. The store itself is closed by whoever opened it. */
  close(): void {
    this.#unsubscribe();
    this.recovery.close();
  }
}
