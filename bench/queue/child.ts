/**
 * Measures ONE system in its own process (forked by run.ts), so systems cannot disturb each
 * other (timers, heap, native handles) and a hang is ended by killing this process.
 *
 * Command-driven, so the parent can interleave the systems' runs (run 1 of every system, then
 * run 2, …) and background load on the machine spreads evenly over them: it answers `info` and
 * `ready` at start, then one `run` or `latency` message per command. A failed run answers with
 * its error; the process stays usable.
 */
import os from 'node:os';

import { SYSTEMS } from './adapters/index.ts';
import {
  type AdapterContext,
  type AdapterFactory,
  makePayload,
  type OnJob,
  type Payload,
  pollUntil,
  type QueueAdapter,
  sleep,
} from './types.ts';

export interface ChildConfig {
  readonly system: string;
  readonly n: number;
  readonly runs: number;
  readonly warmup: number;
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
  readonly warmup: boolean;
  /** 1-minute load average just before the run (other processes on the machine add noise). */
  readonly loadBefore: number;
  readonly n: number;
  readonly ok: boolean;
  readonly error?: string;
  /** The system could not even be set up or started: the remaining phases are skipped. */
  readonly setupFailed?: boolean;
  /** First enqueue → last completion recorded by the system. */
  readonly seconds?: number;
  readonly throughput?: number;
  /** First enqueue → last enqueue call resolved. */
  readonly enqueueSeconds?: number;
  /** First enqueue → last handler started. */
  readonly handledSeconds?: number;
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
  | { type: 'info'; name: string; backend: string; durability: string; settings: string }
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

async function measureRun(
  factory: AdapterFactory,
  cfg: ChildConfig,
  warmup: boolean,
): Promise<RunResult> {
  const n = cfg.n;
  const loadBefore = Math.round(os.loadavg()[0]! * 100) / 100;
  const adapter = factory(context(cfg));
  const counts = new Uint16Array(n);
  let delivered = 0;
  let duplicates = 0;
  let foreign = 0;
  const onJob: OnJob = (p) => {
    const i = p?.i;
    if (!Number.isInteger(i) || i < 0 || i >= n) {
      foreign += 1;
      return;
    }
    const seen = counts[i]!;
    counts[i] = seen + 1;
    if (seen === 0) delivered += 1;
    else duplicates += 1;
  };
  // Payloads and batches are built before the clock starts; only the system's own calls are timed.
  const payloads: Payload[] = Array.from({ length: n }, (_, i) => makePayload(i));
  const batches: Payload[][] = [];
  for (let i = 0; i < n; i += adapter.enqueueBatch)
    batches.push(payloads.slice(i, i + adapter.enqueueBatch));

  let started = false;
  let ready = false;
  let error: string | undefined;
  let seconds: number | undefined;
  let enqueueSeconds: number | undefined;
  let handledSeconds: number | undefined;
  try {
    await bounded(adapter.setup(), 60_000, 'setup');
    await bounded(adapter.startWorker(cfg.concurrency, onJob), 60_000, 'startWorker');
    started = true;
    ready = true;
    await sleep(200); // the worker is up and idle before the clock starts
    const t0 = performance.now();
    const deadline = t0 + cfg.runTimeoutMs;
    for (const batch of batches) {
      await adapter.enqueue(batch);
      if (performance.now() > deadline) throw new Error('timed out while enqueueing');
    }
    enqueueSeconds = (performance.now() - t0) / 1000;
    await pollUntil(() => delivered >= n, 1, deadline, `all ${n} tasks to reach a handler`);
    handledSeconds = (performance.now() - t0) / 1000;
    await adapter.waitCompleted(n, deadline);
    seconds = (performance.now() - t0) / 1000;
    await sleep(300); // late duplicates would show up here
  } catch (e) {
    error = describe(e);
  }
  const anomalies = [...adapter.anomalies(), ...(await cleanup(adapter, started))];
  const missing = n - delivered;
  const ok = error === undefined && missing === 0 && duplicates === 0 && foreign === 0;
  if (!error && !ok)
    error = `delivery check failed: ${missing} missing, ${duplicates} duplicates, ${foreign} unknown ids`;
  return {
    warmup,
    loadBefore,
    n,
    ok,
    ...(error ? { error } : {}),
    ...(ready ? {} : { setupFailed: true }),
    ...(seconds !== undefined ? { seconds, throughput: n / seconds } : {}),
    ...(enqueueSeconds !== undefined ? { enqueueSeconds } : {}),
    ...(handledSeconds !== undefined ? { handledSeconds } : {}),
    delivered,
    duplicates,
    missing,
    foreign,
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
      await adapter.enqueueOne({ i, pad: 'x'.repeat(64) });
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
export type ChildCommand = { cmd: 'run'; warmup: boolean } | { cmd: 'latency' } | { cmd: 'exit' };

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
    durability: probe.durability,
    settings: probe.settings,
  });
  // Commands are handled strictly one after the other.
  let chain = Promise.resolve();
  process.on('message', (command: ChildCommand) => {
    chain = chain.then(async () => {
      if (command.cmd === 'run') {
        await send({ type: 'run', result: await measureRun(factory, cfg, command.warmup) });
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
