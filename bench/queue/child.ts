/**
 * Measures ONE system in its own process (forked by run.ts), so systems cannot disturb each
 * other (timers, heap, native handles) and a hang is ended by killing this process.
 *
 * Command-driven, so the parent can interleave the systems' runs (run 1 of every system, then
 * run 2, …) and background load on the machine spreads evenly over them: it answers `info` and
 * `ready` at start, then one `run` or `latency` message per command. A failed run answers with
 * its error; the process stays usable.
 *
 * Two kinds of run, each on a fresh database / schema / key prefix:
 * - `mixed`: the worker is started and idle, then the producer enqueues N while it consumes
 *   (the clock runs from the first enqueue to the last recorded completion);
 * - `prefilled`: the producer enqueues N with no worker (enqueue-only clock), then the worker
 *   is started on the full queue (consumer-only clock, from the startWorker call to the last
 *   recorded completion).
 */
import os from 'node:os';

import { SYSTEMS } from './adapters/index.ts';
import { cpuMark, type CpuSpent, cpuSince } from './cpu.ts';
import { checkpoint } from './servers.ts';
import {
  type AdapterContext,
  type AdapterFactory,
  makePayload,
  type OnJob,
  type Payload,
  pollUntil,
  type QueueAdapter,
  sleep,
  type SqlitePragmas,
} from './types.ts';

export type RunMode = 'mixed' | 'prefilled';

export interface ChildConfig {
  readonly system: string;
  readonly n: number;
  readonly concurrency: number;
  readonly latencySamples: number;
  readonly latencyWarmup: number;
  readonly latencyGapMs: number;
  readonly runTimeoutMs: number;
  readonly pollMs: number;
  readonly tmpDir: string;
  readonly redisUrl: string;
  readonly pgBase: string;
}

export interface RunResult {
  readonly mode: RunMode;
  readonly warmup: boolean;
  /** 1-minute load average just before the run (other processes on the machine add noise). */
  readonly loadBefore: number;
  readonly n: number;
  readonly ok: boolean;
  readonly error?: string;
  /** The system could not even be set up or started: the remaining phases are skipped. */
  readonly setupFailed?: boolean;
  /** PostgreSQL systems: the CHECKPOINT issued before the clock started, ms. */
  readonly checkpointMs?: number;
  /** SQLite systems: journal_mode and synchronous read back after setup. */
  readonly pragmas?: SqlitePragmas;

  // mixed
  /** First enqueue → last completion recorded by the system. */
  readonly seconds?: number;
  readonly throughput?: number;
  /** First enqueue → last enqueue call resolved. */
  readonly enqueueSeconds?: number;
  /** First enqueue → last handler started. */
  readonly handledSeconds?: number;
  /** CPU over the mixed clock, client and server. */
  readonly cpu?: CpuSpent;

  // prefilled
  /** First enqueue → last enqueue call resolved, no worker running. */
  readonly enqueueOnlySeconds?: number;
  readonly enqueueThroughput?: number;
  readonly enqueueCpu?: CpuSpent;
  /** startWorker call → last completion recorded, on the pre-filled queue. */
  readonly consumeSeconds?: number;
  readonly consumeThroughput?: number;
  /** How long startWorker took to resolve (inside the consumer clock). */
  readonly workerStartSeconds?: number;
  readonly consumeCpu?: CpuSpent;

  readonly delivered: number;
  readonly duplicates: number;
  readonly missing: number;
  readonly foreign: number;
  readonly anomalies: string[];
}

export interface LatencyResult {
  readonly ok: boolean;
  readonly error?: string;
  readonly samples: number;
  /** enqueue call start → handler start, ms, in sample order. */
  readonly startMs: number[];
  /** enqueue call start → enqueue call resolved, ms. */
  readonly enqueueMs: number[];
  readonly duplicates: number;
  readonly anomalies: string[];
}

export type ChildMessage =
  | {
      type: 'info';
      name: string;
      backend: string;
      server: string | null;
      durabilityNote: string;
      prefetch: string;
      settings: string;
    }
  | { type: 'run'; result: RunResult }
  | { type: 'latency'; result: LatencyResult }
  | { type: 'ready' }
  | { type: 'done' }
  | { type: 'fatal'; error: string };

const send = (m: ChildMessage) =>
  new Promise<void>((resolve) => {
    if (process.send) process.send(m, () => resolve());
    else {
      console.log(JSON.stringify(m));
      resolve();
    }
  });

function describe(error: unknown): string {
  if (error instanceof Error) return `${error.name}: ${error.message}`.slice(0, 500);
  return String(error).slice(0, 500);
}

async function bounded<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** Stops and tears down, never throwing; returns what went wrong. */
async function cleanup(adapter: QueueAdapter, started: boolean): Promise<string[]> {
  const out: string[] = [];
  if (started) {
    try {
      await bounded(adapter.stop(), 30_000, 'stop');
    } catch (error) {
      out.push(`stop: ${describe(error)}`);
    }
  }
  try {
    await bounded(adapter.teardown(), 30_000, 'teardown');
  } catch (error) {
    out.push(`teardown: ${describe(error)}`);
  }
  return out;
}

let runCounter = 0;
function context(cfg: ChildConfig): AdapterContext {
  runCounter += 1;
  return {
    runId: `${process.pid}_${Date.now().toString(36)}_${runCounter}`,
    tmpDir: cfg.tmpDir,
    redisUrl: cfg.redisUrl,
    pgUrl: (db) => `${cfg.pgBase}/${db}`,
    pollMs: cfg.pollMs,
    concurrency: cfg.concurrency,
  };
}

/** Counts every delivered id: each of 0..n-1 must be seen exactly once. */
function deliveryTally(n: number) {
  const counts = new Uint16Array(n);
  const tally = { delivered: 0, duplicates: 0, foreign: 0 };
  const onJob: OnJob = (p) => {
    const i = p?.i;
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      tally.foreign += 1;
      return;
    }
    const seen = counts[i]!;
    counts[i] = seen + 1;
    if (seen === 0) tally.delivered += 1;
    else tally.duplicates += 1;
  };
  return { tally, onJob };
}

/** What one mode's body measured (filled in as it goes); merged into the RunResult. */
type Measured = { -readonly [K in keyof RunResult]?: RunResult[K] };

interface RunContext {
  readonly adapter: QueueAdapter;
  readonly cfg: ChildConfig;
  readonly n: number;
  readonly batches: readonly Payload[][];
  readonly onJob: OnJob;
  readonly delivered: () => number;
  /** Called once the worker runs (so cleanup stops it), or with the error that kept it from running. */
  readonly workerStarted: (error?: unknown) => void;
  readonly out: Measured;
}

async function enqueueAll(r: RunContext, deadline: number): Promise<void> {
  for (const batch of r.batches) {
    await r.adapter.enqueue(batch);
    if (performance.now() > deadline) throw new Error('timed out while enqueueing');
  }
}

async function startWorker(r: RunContext): Promise<void> {
  try {
    await bounded(r.adapter.startWorker(r.cfg.concurrency, r.onJob), 60_000, 'startWorker');
  } catch (error) {
    r.workerStarted(error);
    throw error;
  }
  r.workerStarted();
}

async function mixedBody(r: RunContext): Promise<void> {
  await startWorker(r);
  await sleep(200); // the worker is up and idle before the clock starts
  const server = r.adapter.server;
  const mark = cpuMark(server);
  const t0 = performance.now();
  const deadline = t0 + r.cfg.runTimeoutMs;
  await enqueueAll(r, deadline);
  r.out.enqueueSeconds = (performance.now() - t0) / 1000;
  await pollUntil(() => r.delivered() >= r.n, 1, deadline, `all ${r.n} tasks to reach a handler`);
  r.out.handledSeconds = (performance.now() - t0) / 1000;
  await r.adapter.waitCompleted(r.n, deadline);
  const seconds = (performance.now() - t0) / 1000;
  r.out.cpu = cpuSince(mark, server);
  r.out.seconds = seconds;
  r.out.throughput = r.n / seconds;
}

async function prefilledBody(r: RunContext): Promise<void> {
  const server = r.adapter.server;
  // 1. Enqueue-only: nothing consumes.
  let mark = cpuMark(server);
  let t0 = performance.now();
  await enqueueAll(r, t0 + r.cfg.runTimeoutMs);
  const enqueueOnlySeconds = (performance.now() - t0) / 1000;
  r.out.enqueueCpu = cpuSince(mark, server);
  r.out.enqueueOnlySeconds = enqueueOnlySeconds;
  r.out.enqueueThroughput = r.n / enqueueOnlySeconds;
  if (r.delivered() > 0) throw new Error('a task was delivered before any worker was started');
  await sleep(200); // background work the enqueue triggered (WAL writer, fsyncs) settles first
  // 2. Consumer-only: start the worker on the full queue.
  mark = cpuMark(server);
  t0 = performance.now();
  const deadline = t0 + r.cfg.runTimeoutMs;
  await startWorker(r);
  r.out.workerStartSeconds = (performance.now() - t0) / 1000;
  await pollUntil(() => r.delivered() >= r.n, 1, deadline, `all ${r.n} tasks to reach a handler`);
  await r.adapter.waitCompleted(r.n, deadline);
  const consumeSeconds = (performance.now() - t0) / 1000;
  r.out.consumeCpu = cpuSince(mark, server);
  r.out.consumeSeconds = consumeSeconds;
  r.out.consumeThroughput = r.n / consumeSeconds;
}

async function measureRun(
  factory: AdapterFactory,
  cfg: ChildConfig,
  mode: RunMode,
  warmup: boolean,
): Promise<RunResult> {
  const n = cfg.n;
  const loadBefore = Math.round(os.loadavg()[0]! * 100) / 100;
  const adapter = factory(context(cfg));
  const { tally, onJob } = deliveryTally(n);
  // Payloads and batches are built before the clock starts; only the system's own calls are timed.
  const payloads: Payload[] = Array.from({ length: n }, (_, i) => makePayload(i));
  const batches: Payload[][] = [];
  for (let i = 0; i < n; i += adapter.enqueueBatch)
    batches.push(payloads.slice(i, i + adapter.enqueueBatch));

  let started = false;
  let ready = false; // set up, and the worker did not fail to start
  let error: string | undefined;
  const out: Measured = {};
  try {
    await bounded(adapter.setup(), 60_000, 'setup');
    if (adapter.readPragmas) out.pragmas = adapter.readPragmas();
    // Flush what setup (migrations, schema) and earlier runs dirtied, outside the clock.
    if (adapter.server === 'postgres') out.checkpointMs = await checkpoint(cfg.pgBase);
    ready = true;
    const r: RunContext = {
      adapter,
      cfg,
      n,
      batches,
      onJob,
      delivered: () => tally.delivered,
      workerStarted: (failure) => {
        if (failure === undefined) started = true;
        else ready = false;
      },
      out,
    };
    await (mode === 'mixed' ? mixedBody(r) : prefilledBody(r));
    await sleep(300); // late duplicates would show up here
  } catch (e) {
    error = describe(e);
  }
  const anomalies = [...adapter.anomalies(), ...(await cleanup(adapter, started))];
  const missing = n - tally.delivered;
  const ok = error === undefined && missing === 0 && tally.duplicates === 0 && tally.foreign === 0;
  if (!error && !ok)
    error = `delivery check failed: ${missing} missing, ${tally.duplicates} duplicates, ${tally.foreign} unknown ids`;
  return {
    mode,
    warmup,
    loadBefore,
    n,
    ok,
    ...(error ? { error } : {}),
    ...(ready ? {} : { setupFailed: true }),
    ...out,
    delivered: tally.delivered,
    duplicates: tally.duplicates,
    missing,
    foreign: tally.foreign,
    anomalies: anomalies.slice(0, 20),
  };
}

async function measureLatency(factory: AdapterFactory, cfg: ChildConfig): Promise<LatencyResult> {
  const adapter = factory(context(cfg));
  const total = cfg.latencyWarmup + cfg.latencySamples;
  const startAt = new Float64Array(total).fill(Number.NaN);
  let duplicates = 0;
  let waiting: { i: number; resolve: () => void } | null = null;
  const onJob: OnJob = (p) => {
    const now = performance.now();
    const i = p?.i;
    if (!Number.isInteger(i) || i < 0 || i >= total) return;
    if (!Number.isNaN(startAt[i]!)) {
      duplicates += 1;
      return;
    }
    startAt[i] = now;
    if (waiting?.i === i) waiting.resolve();
  };
  const startMs: number[] = [];
  const enqueueMs: number[] = [];
  let started = false;
  let error: string | undefined;
  try {
    await bounded(adapter.setup(), 60_000, 'setup');
    await bounded(adapter.startWorker(cfg.concurrency, onJob), 60_000, 'startWorker');
    started = true;
    await sleep(500); // idle
    const phaseDeadline = performance.now() + cfg.runTimeoutMs;
    for (let i = 0; i < total; i++) {
      const seen = new Promise<void>((resolve) => {
        waiting = { i, resolve };
      });
      const t0 = performance.now();
      await adapter.enqueueOne(makePayload(i));
      const t1 = performance.now();
      if (Number.isNaN(startAt[i]!))
        await bounded(seen, 10_000, `sample ${i} to reach its handler`);
      waiting = null;
      if (i >= cfg.latencyWarmup) {
        startMs.push(startAt[i]! - t0);
        enqueueMs.push(t1 - t0);
      }
      // Wait until the system recorded the completion: the worker is idle again.
      await adapter.waitCompleted(i + 1, performance.now() + 10_000);
      if (performance.now() > phaseDeadline) throw new Error('latency test timed out');
      await sleep(cfg.latencyGapMs);
    }
  } catch (e) {
    error = describe(e);
  }
  const anomalies = [...adapter.anomalies(), ...(await cleanup(adapter, started))];
  return {
    ok: error === undefined && duplicates === 0,
    ...(error ? { error } : duplicates ? { error: `${duplicates} duplicate deliveries` } : {}),
    samples: startMs.length,
    startMs,
    enqueueMs,
    duplicates,
    anomalies: anomalies.slice(0, 20),
  };
}

/** What the parent asks for, one command at a time. */
export type ChildCommand =
  { cmd: 'run'; mode: RunMode; warmup: boolean } | { cmd: 'latency' } | { cmd: 'exit' };

async function main(): Promise<void> {
  const cfg = JSON.parse(process.argv[2]!) as ChildConfig;
  const load = SYSTEMS[cfg.system];
  if (!load) throw new Error(`unknown system ${cfg.system}`);
  const factory = await load();
  const probe = factory(context(cfg));
  await send({
    type: 'info',
    name: probe.name,
    backend: probe.backend,
    server: probe.server,
    durabilityNote: probe.durabilityNote ?? '',
    prefetch: probe.prefetch,
    settings: probe.settings,
  });
  // Commands are handled strictly one after the other.
  let chain = Promise.resolve();
  process.on('message', (command: ChildCommand) => {
    chain = chain.then(async () => {
      if (command.cmd === 'run') {
        const result = await measureRun(factory, cfg, command.mode, command.warmup);
        await send({ type: 'run', result });
      } else if (command.cmd === 'latency') {
        await send({ type: 'latency', result: await measureLatency(factory, cfg) });
      } else {
        await send({ type: 'done' });
        process.exit(0);
      }
    });
  });
  await send({ type: 'ready' });
}

main().catch(async (error: unknown) => {
  await send({ type: 'fatal', error: describe(error) });
  process.exit(1);
});
