/**
 * Prometheus metrics for the daemon (`GET /metrics`, DESIGN.md §10, §12), on a dedicated
 * prom-client Registry (never the global one, so two daemons in one process — tests — do not
 * collide).
 *
 * Three kinds of series:
 * - **Scrape-time gauges** (queue depth per lane, tasks and processes per state, running, DLQ,
 *   pending interrupts) are read from the store when Prometheus scrapes: they count every
 *   process's work on the database. One scrape makes ONE set of store reads, shared by every
 *   gauge's `collect()`. A failing store answers 503 with one line; it never crashes the daemon.
 * - **Event counters** count the events committed by THIS process (`store.onCommit`); commits by
 *   other processes on the same database (a `warden run` CLI, another worker) are not counted.
 *   They start at 0 when the daemon starts, as Prometheus counters do.
 * - **Connection metrics** the ACP server updates (connections, subscriptions, backpressure
 *   closes) and the event fan-out lag histogram it observes into.
 *
 * Label cardinality is bounded: `type` is one of the closed list of event types (anything else
 * is `other`), `state` one of the closed task/process states, `lane` a declared lane. No label
 * ever carries a task, session, process or connection id.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';

import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { z } from 'zod';

import { checkParams, EVENT_TYPES, PROCESS_STATES, TASK_STATES } from '../../core/index.ts';
import type { Kernel } from '../../kernel/index.ts';
import type { JobQueue } from '../../queue/index.ts';
import type { EventRecord, Store } from '../../store/index.ts';

export interface MetricsOptions {
  readonly kernel: Kernel;
  /** The store to read gauges from and hear commits on. @default kernel.store */
  readonly store?: Store;
  /** Its declared lanes are always exported (0 when empty). */
  readonly queue?: JobQueue;
  /** Register into this registry instead of a new one. */
  readonly registry?: Registry;
  /** Process metrics (RSS, CPU, heap, event-loop lag). @default true */
  readonly defaultMetrics?: boolean;
  /** Sampling resolution of the event-loop lag histogram, in ms. @default 10 */
  readonly eventLoopMonitoringPrecisionMs?: number;
}

export interface WardenMetrics {
  readonly registry: Registry;
  /** `GET /metrics`: the exposition text, or 503 with one line when the store cannot answer. */
  handler(req: IncomingMessage, res: ServerResponse): Promise<void>;
  /** An ACP connection opened (+1) or closed (-1). */
  recordConnection(delta: 1 | -1): void;
  /** ACP event subscriptions added (+n) or removed (-n). */
  recordSubscriptions(delta: number): void;
  /** An ACP connection was closed because its outbound buffer passed its high-water mark. */
  recordBackpressureClose(): void;
  /** Seconds from an event's commit (`ts`) to its delivery to a subscriber. */
  observeFanoutLag(seconds: number): void;
  /** The metric objects, for callers that prefer prom-client's own API. */
  readonly acp: {
    readonly connections: Gauge;
    readonly subscriptions: Gauge;
    readonly backpressureCloses: Counter;
    readonly fanoutLag: Histogram;
  };
  /** Stops counting commits; clears the registry when it created it. Idempotent. */
  close(): void;
}

const optionsSchema = z.object({
  kernel: z.custom<Kernel>((v) => typeof v === 'object' && v !== null, 'expected a Kernel'),
  store: z.custom<Store>((v) => typeof v === 'object' && v !== null, 'expected a Store').optional(),
  queue: z.custom<JobQueue>((v) => typeof v === 'object' && v !== null).optional(),
  registry: z.instanceof(Registry).optional(),
  defaultMetrics: z.boolean().optional(),
  eventLoopMonitoringPrecisionMs: z.number().int().min(1).max(1_000).optional(),
});

const KNOWN_TYPES: ReadonlySet<string> = new Set(EVENT_TYPES);
/** The event that marks a reclaimed lease (queue/lease-reaper.ts writes it on every reclaim). */
const LEASE_EXPIRY_EVENT = 'task.lease_expired';

interface ScrapeData {
  readonly depths: Record<string, number>;
  readonly lanes: readonly string[];
  readonly tasks: Record<string, number>;
  readonly processes: Record<string, number>;
  readonly pendingInterrupts: number;
}

/** Builds the metrics of one daemon. */
export function createMetrics(options: MetricsOptions): WardenMetrics {
  checkParams('createMetrics', optionsSchema, options);
  const store = options.store ?? options.kernel.store;
  const ownRegistry = options.registry === undefined;
  const registry = options.registry ?? new Registry();
  const registers = [registry];
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({
      register: registry,
      eventLoopMonitoringPrecision: options.eventLoopMonitoringPrecisionMs ?? 10,
    });
  }

  // One set of reads per scrape: prom-client runs every metric's collect() at once
  // (Promise.all), so the first one starts the reads and the others share them.
  let inflight: Promise<ScrapeData> | null = null;
  const scrape = (): Promise<ScrapeData> =>
    (inflight ??= readScrapeData(store, options).finally(() => {
      inflight = null;
    }));

  const queueDepth = new Gauge({
    name: 'warden_queue_depth',
    help: 'Queued tasks per lane (every process on the database).',
    labelNames: ['lane'],
    registers,
    async collect() {
      const data = await scrape();
      queueDepth.reset();
      for (const lane of data.lanes) queueDepth.set({ lane }, data.depths[lane] ?? 0);
    },
  });
  const tasks = new Gauge({
    name: 'warden_tasks',
    help: 'Tasks per state.',
    labelNames: ['state'],
    registers,
    async collect() {
      const data = await scrape();
      for (const state of TASK_STATES) tasks.set({ state }, data.tasks[state] ?? 0);
    },
  });
  const processes = new Gauge({
    name: 'warden_processes',
    help: 'Processes (runs) per state.',
    labelNames: ['state'],
    registers,
    async collect() {
      const data = await scrape();
      for (const state of PROCESS_STATES) processes.set({ state }, data.processes[state] ?? 0);
    },
  });
  const running = new Gauge({
    name: 'warden_running_tasks',
    help: 'Tasks running under a lease.',
    registers,
    async collect() {
      running.set((await scrape()).tasks.running ?? 0);
    },
  });
  const dlq = new Gauge({
    name: 'warden_dlq_size',
    help: 'Dead-lettered tasks (state dead).',
    registers,
    async collect() {
      dlq.set((await scrape()).tasks.dead ?? 0);
    },
  });
  const interrupts = new Gauge({
    name: 'warden_interrupts_pending',
    help: 'Interrupts waiting for a person.',
    registers,
    async collect() {
      interrupts.set((await scrape()).pendingInterrupts);
    },
  });

  const counter = (name: string, help: string) => new Counter({ name, help, registers });
  const leaseExpiries = counter(
    'warden_lease_expiries_total',
    'Leases reclaimed after they expired or their owner died (task.lease_expired events).',
  );
  const retries = counter(
    'warden_task_retries_total',
    'Retries scheduled (task.retry_scheduled events).',
  );
  const dead = counter('warden_tasks_dead_total', 'Tasks dead-lettered (task.dead events).');
  const succeeded = counter('warden_tasks_succeeded_total', 'Tasks succeeded.');
  const failed = counter('warden_tasks_failed_total', 'Tasks failed for good (task.failed).');
  const eventsTotal = new Counter({
    name: 'warden_events_total',
    help: 'Events committed by this process, per type.',
    labelNames: ['type'],
    registers,
  });
  for (const type of EVENT_TYPES) eventsTotal.inc({ type }, 0);
  const byType: Readonly<Record<string, Counter>> = {
    [LEASE_EXPIRY_EVENT]: leaseExpiries,
    'task.retry_scheduled': retries,
    'task.dead': dead,
    'task.succeeded': succeeded,
    'task.failed': failed,
  };
  const onCommit = (events: readonly EventRecord[]) => {
    for (const event of events) {
      eventsTotal.inc({ type: KNOWN_TYPES.has(event.type) ? event.type : 'other' });
      byType[event.type]?.inc();
    }
  };
  let unsubscribe: (() => void) | null = store.onCommit(onCommit);

  const connections = new Gauge({
    name: 'warden_acp_connections',
    help: 'Open ACP connections.',
    registers,
  });
  const subscriptions = new Gauge({
    name: 'warden_acp_subscriptions',
    help: 'Active ACP event subscriptions.',
    registers,
  });
  const backpressureCloses = counter(
    'warden_acp_backpressure_closes_total',
    'ACP connections closed because their outbound buffer passed its high-water mark.',
  );
  const fanoutLag = new Histogram({
    name: 'warden_event_fanout_lag_seconds',
    help: 'Time from an event commit to its delivery to a subscriber.',
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
    registers,
  });

  return {
    registry,
    async handler(_req, res) {
      let body: string;
      try {
        body = await registry.metrics();
      } catch (error) {
        const reason = error instanceof Error ? error.message : String(error);
        res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`metrics unavailable: ${reason.replace(/\s+/g, ' ').slice(0, 300)}\n`);
        return;
      }
      res.writeHead(200, { 'content-type': registry.contentType });
      res.end(body);
    },
    recordConnection: (delta) => connections.inc(delta),
    recordSubscriptions: (delta) => subscriptions.inc(delta),
    recordBackpressureClose: () => backpressureCloses.inc(),
    observeFanoutLag: (seconds) => fanoutLag.observe(Math.max(0, seconds)),
    acp: { connections, subscriptions, backpressureCloses, fanoutLag },
    close() {
      unsubscribe?.();
      unsubscribe = null;
      if (ownRegistry) registry.clear();
    },
  };
}

async function readScrapeData(store: Store, options: MetricsOptions): Promise<ScrapeData> {
  const [depths, declared, counts, pendingInterrupts] = await Promise.all([
    store.queueDepths(),
    store.listLanes(),
    store.countByState(),
    store.countPendingInterrupts(),
  ]);
  // Declared lanes (store and queue), the kernel's agent lane, and any lane with queued work.
  const lanes = new Set<string>([
    options.kernel.agentLane,
    ...declared.map((l) => l.name),
    ...(options.queue ? options.queue.lanes.keys() : []),
    ...Object.keys(depths),
  ]);
  return {
    depths,
    lanes: [...lanes].sort(),
    tasks: counts.tasks,
    processes: counts.processes,
    pendingInterrupts,
  };
}
