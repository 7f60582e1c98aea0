/**
 * The kernel facade: one object that owns the store and the subsystems (lifecycle,
 * orchestrator, interrupts, resources, rate limits, service registry, bus, sessions) and is the
 * only thing protocols and the CLI talk to. The kernel decides; workers only execute.
 */
import {
  type Clock,
  errors,
  IdGenerator,
  type InterruptResponse,
  type RoutingFunction,
  systemClock,
} from '../core/index.ts';
import {
  type InterruptRecord,
  type ProcessRecord,
  SessionDirectory,
  type Store,
} from '../store/index.ts';
import { Bus } from './bus.ts';
import { InterruptManager } from './interrupts.ts';
import { Orchestrator, type StartRunInput } from './orchestrator.ts';
import type { KernelContext } from './process-ops.ts';
import { DEFAULT_RATE_LIMITS, RateLimiter, type RateLimits } from './rate-limiter.ts';
import { Recovery } from './recovery.ts';
import { ResourceManager } from './resources.ts';
import { DEFAULT_AGING_MS } from './scheduler.ts';
import { ServiceRegistry } from './service-registry.ts';

export interface KernelOptions {
  readonly store: Store;
  /** @default systemClock */
  readonly clock?: Clock;
  /** Lane for workflow steps. @default 'agents' */
  readonly agentLane?: string;
  /** @default 10_000 */
  readonly agingMs?: number;
  /** TypeScript routing functions, by the name workflows use in `routing: [{fn: name}]`. */
  readonly routingFunctions?: Readonly<Record<string, RoutingFunction>>;
  /** Per-user limits on starting runs. */
  readonly rateLimits?: RateLimits;
  /** Decides whether a lease owner is dead (default: a local OS process that no longer exists). */
  readonly isDeadOwner?: (owner: string) => boolean;
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
  readonly interrupts: InterruptManager;
  readonly resources: ResourceManager;
  readonly recovery: Recovery;
  readonly agentLane: string;
  readonly #startedAt: number;
  readonly #unsubscribe: () => void;

  constructor(options: KernelOptions) {
    this.store = options.store;
    this.clock = options.clock ?? systemClock;
    this.ids = new IdGenerator(this.clock);
    this.agentLane = options.agentLane ?? 'agents';
    const ctx: KernelContext = {
      store: this.store,
      clock: this.clock,
      ids: this.ids,
      agentLane: this.agentLane,
      agingMs: options.agingMs ?? DEFAULT_AGING_MS,
    };
    this.rateLimiter = new RateLimiter(this.clock, options.rateLimits ?? DEFAULT_RATE_LIMITS);
    this.sessions = new SessionDirectory(this.store, this.ids, this.clock);
    this.orchestrator = new Orchestrator(
      ctx,
      this.sessions,
      new Map(Object.entries(options.routingFunctions ?? {})),
    );
    this.interrupts = new InterruptManager(ctx, this.orchestrator);
    this.resources = new ResourceManager(ctx);
    this.recovery = new Recovery(ctx, this.orchestrator, options.isDeadOwner);
    this.#startedAt = this.clock.now();
    // Committed events fan out on the bus (live progress, wake-ups); the store stays the truth.
    this.#unsubscribe = this.store.onCommit((events) => {
      for (const event of events) this.bus.publish(event.type, event);
    });
  }

  /** Start-up recovery: reclaim dead and expired leases, expire overdue interrupts. */
  async recover(): Promise<{ reclaimed: number; expired: number }> {
    const reclaimed = await this.recovery.reclaimLeases();
    const expired = await this.interrupts.expireDue();
    return { reclaimed, expired };
  }

  /** Starts a workflow run. Rate-limited per user (RATE_LIMITED with retry_after_ms). */
  async startRun(input: StartRunInput): Promise<ProcessRecord> {
    this.rateLimiter.take(`user:${input.userId ?? 'local'}:run.start`);
    return this.orchestrator.startRun(input);
  }

  async getProcess(pid: string): Promise<ProcessRecord> {
    const p = await this.store.getProcess(pid);
    if (!p) throw errors.notFound('process', pid);
    return p;
  }

  cancelRun(pid: string, message?: string): Promise<ProcessRecord> {
    return this.orchestrator.cancel(pid, message);
  }

  async resolveInterrupt(
    id: string,
    response: InterruptResponse,
    resolver?: string,
  ): Promise<{ interrupt: InterruptRecord; process: ProcessRecord | null }> {
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
      services: this.services
        .list()
        .map((s) => ({ name: s.name, type: s.type, health: s.health, load: s.load })),
      rate_limits: this.rateLimiter.usage(),
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
  }
}
