/**
 * PostgreSQL queue benchmark: Warden (PostgreSQL store) against graphile-worker and pg-boss on
 * the same PostgreSQL database, each run in its own fresh schema (dropped after), with 1 and
 * with 4 worker nodes (one node = one worker process; the producer is one more process).
 *
 * Per system and node count, each on a fresh schema and fresh processes:
 * - `prefilled`: N jobs enqueued in batches with no worker running (enqueue-only clock), then
 *   every node starts at once on the full queue (drain clock, enqueue excluded: from the start
 *   command to no unfinished job left in the database);
 * - `mixed`: the nodes are started and idle, then the producer enqueues N in batches while they
 *   consume (enqueue included: first enqueue call → no unfinished job left).
 * Then, per system and node count, the idle latency: one job at a time from the producer to
 * idle, listening nodes (enqueue call → handler start, across processes).
 *
 *   node pg/run.ts            full run (npm run bench:pg)
 *   node pg/run.ts --quick    smoke test (npm run bench:pg:quick) → results/quick/
 *
 * Options (each also as --name=value):
 *   --n N                 jobs per run (default 20000; quick 3000)
 *   --runs R              measured runs per system, node count and mode (default 3; quick 1)
 *   --warmup W            warm-up runs per system and node count (default 1; quick 0), excluded
 *   --nodes a,b           worker node counts (default 1,4)
 *   --concurrency C       handlers in flight per node, every system (default 32)
 *   --pool P              connections per process at most, every system (default 10)
 *   --batch B             jobs per enqueue call, every system (default 1000)
 *   --systems a,b         subset of warden,graphile-worker,pg-boss (default all)
 *   --modes m,n           prefilled, mixed (default both)
 *   --latency-samples S   idle-latency samples per system and node count (default 200; quick 50)
 *   --latency-gap-ms G    pause between samples (default 20)
 *   --run-timeout-s T     one clock's limit (default 120)
 *   --out DIR             results directory (default results/; quick results/quick/)
 * Environment: BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/test),
 * BENCH_WARDEN_SRC (see systems/warden.ts), BENCH_WARDEN_PREFETCH, BENCH_GRAPHILE_LOCAL_QUEUE, BENCH_PGBOSS_POLLERS.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import { parseFlags } from '../shared/cli.ts';
import {
  benchDir,
  loadAverage,
  machineInfo,
  type MachineInfo,
  packageVersion,
  wardenInfo,
} from '../shared/machine.ts';
import { median, percentile, type Spread, spread } from '../shared/stats.ts';
import { postgresDurability } from '../queue/durability.ts';
import { type PostgresSettings, readPostgresSettings } from '../queue/servers.ts';
import { cpuMark, type CpuSpent, cpuSince } from './cpu.ts';
import { epochNow, type NodeCommand, type NodeConfig, type NodeMessage } from './protocol.ts';
import { renderMarkdown } from './report.ts';
import type { PgContext } from './system.ts';
import { SYSTEMS } from './systems/index.ts';
import { wardenSource } from './systems/warden.ts';

const here = dirname(fileURLToPath(import.meta.url));
const MODES = ['prefilled', 'mixed'] as const;
export type Mode = (typeof MODES)[number];

export interface RunResult {
  readonly system: string;
  readonly nodes: number;
  readonly mode: Mode;
  readonly warmup: boolean;
  readonly loadBefore: number;
  readonly n: number;
  readonly ok: boolean;
  readonly error?: string;
  readonly checkpointMs?: number;
  /** prefilled: enqueue-only clock; mixed: first → last enqueue call while the nodes consume. */
  readonly enqueueSeconds?: number;
  readonly enqueueThroughput?: number;
  readonly enqueueCpu?: CpuSpent;
  /** prefilled: start command → nothing unfinished (enqueue excluded). */
  readonly drainSeconds?: number;
  readonly drainThroughput?: number;
  /** prefilled: the slowest node's start() (inside the drain clock). */
  readonly workerStartMs?: number;
  /** mixed: first enqueue → nothing unfinished (enqueue included). */
  readonly seconds?: number;
  readonly throughput?: number;
  /** CPU over the throughput clock (drain for prefilled, the whole run for mixed). */
  readonly cpu?: CpuSpent;
  /** Jobs handled per node (balance across nodes). */
  readonly perNode: number[];
  readonly delivered: number;
  readonly duplicates: number;
  readonly missing: number;
  readonly anomalies: string[];
}

export interface LatencyResult {
  readonly system: string;
  readonly nodes: number;
  readonly ok: boolean;
  readonly error?: string;
  /** enqueue call start (producer) → handler start (a node), ms, in sample order. */
  readonly startMs: number[];
  /** enqueue call start → resolved, ms. */
  readonly enqueueMs: number[];
  readonly duplicates: number;
  readonly anomalies: string[];
}

export interface CpuPer1k {
  readonly producer: number;
  readonly workers: number;
  readonly postgres: number;
  /** producer + workers + attributed postgres. */
  readonly total: number;
  /** producer + workers + every postgres process. */
  readonly totalAllPostgres: number;
}

export interface Cell {
  readonly system: string;
  readonly nodes: number;
  drain?: Spread;
  enqueueOnly?: Spread;
  mixed?: Spread;
  workerStartMs?: number;
  cpuDrain?: CpuPer1k;
  cpuMixed?: CpuPer1k;
  cpuEnqueue?: CpuPer1k;
  latencyP50?: number;
  latencyP90?: number;
  latencyP99?: number;
  latencyMax?: number;
  latencySamples: number;
  /** Median ÷ graphile-worker's median at the same node count. */
  drainVsGraphile?: number;
  mixedVsGraphile?: number;
  measured: { prefilled: number; mixed: number };
  deliveryOk: boolean;
}

export interface SystemEntry {
  readonly key: string;
  readonly name: string;
  readonly prefetch: string;
  readonly settings: string;
  readonly unavailable: string | null;
}

export interface Report {
  readonly generatedAt: string;
  readonly command: string;
  readonly machine: MachineInfo;
  readonly postgres: PostgresSettings | { error: string };
  readonly durability: string;
  readonly versions: Record<string, string>;
  readonly warden: { commit: string; dirty: string[]; source: string | null };
  readonly params: {
    n: number;
    runs: number;
    warmup: number;
    nodes: number[];
    concurrency: number;
    pool: number;
    batch: number;
    modes: Mode[];
    latencySamples: number;
    latencyWarmup: number;
    latencyGapMs: number;
    runTimeoutS: number;
    quick: boolean;
    url: string;
  };
  readonly systems: SystemEntry[];
  readonly cells: Cell[];
  readonly runs: RunResult[];
  readonly latency: LatencyResult[];
  readonly totalSeconds: number;
}

function parseArgs(argv: string[]) {
  const f = parseFlags(argv);
  const quick = f.quick;
  const known = Object.keys(SYSTEMS);
  const systems = f.list('systems', known);
  for (const s of systems)
    if (!known.includes(s)) throw new Error(`unknown system ${s} (known: ${known.join(', ')})`);
  const modes = f.list('modes', MODES) as Mode[];
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m}`);
  const nodes = f.list('nodes', ['1', '4']).map(Number);
  for (const w of nodes)
    if (!Number.isInteger(w) || w < 1 || w > 16) throw new Error('--nodes expects 1..16');
  return {
    quick,
    n: f.num('n', quick ? 3_000 : 20_000),
    runs: f.num('runs', quick ? 1 : 3),
    warmup: f.num('warmup', quick ? 0 : 1),
    nodes,
    concurrency: f.num('concurrency', 32),
    pool: f.num('pool', 10),
    batch: f.num('batch', 1_000),
    modes,
    latencySamples: f.num('latency-samples', quick ? 50 : 200),
    latencyWarmup: quick ? 5 : 20,
    latencyGapMs: f.num('latency-gap-ms', 20),
    runTimeoutS: f.num('run-timeout-s', 120),
    out: resolve(benchDir, f.str('out', quick ? 'results/quick' : 'results')),
    systems,
    url: process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
  };
}
type Args = ReturnType<typeof parseArgs>;

const log = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** One forked node.ts process, one command at a time. */
class NodeProcess {
  readonly child: ChildProcess;
  readonly pid: number;
  #waiter: ((m: NodeMessage) => void) | null = null;
  #exited = false;
  handled = 0;
  onHandled: ((i: number, at: number) => void) | null = null;

  constructor(cfg: NodeConfig) {
    this.child = fork(join(here, 'node.ts'), [JSON.stringify(cfg)], {
      cwd: benchDir,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.pid = this.child.pid!;
    this.child.on('message', (m: NodeMessage) => {
      if (m.type === 'progress') this.handled = Math.max(this.handled, m.handled);
      else if (m.type === 'handled') {
        this.handled += 1;
        this.onHandled?.(m.i, m.at);
      } else {
        const w = this.#waiter;
        this.#waiter = null;
        w?.(m);
      }
    });
    this.child.on('exit', (code, signal) => {
      this.#exited = true;
      const w = this.#waiter;
      this.#waiter = null;
      w?.({ type: 'error', error: `process exited (code ${code}, signal ${signal})` });
    });
  }

  /** The next answer (the first one is the process's `ok` once loaded). */
  next(timeoutMs: number, what: string): Promise<NodeMessage> {
    if (this.#exited) return Promise.resolve({ type: 'error', error: 'process not running' });
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = null;
        resolve({ type: 'error', error: `${what} took longer than ${timeoutMs} ms` });
      }, timeoutMs);
      this.#waiter = (m) => {
        clearTimeout(timer);
        resolve(m);
      };
    });
  }

  async request(c: NodeCommand, timeoutMs: number): Promise<NodeMessage> {
    const answer = this.next(timeoutMs, c.cmd);
    if (!this.#exited) this.child.send(c);
    const m = await answer;
    if (m.type === 'error') throw new Error(`${c.cmd}: ${m.error}`);
    return m;
  }

  kill(): void {
    if (!this.#exited) this.child.kill('SIGKILL');
  }
}

let schemaCounter = 0;
function freshContext(args: Args, key: string): PgContext {
  schemaCounter += 1;
  return {
    url: args.url,
    schema: `bench_${key.replace(/\W/g, '')}_${process.pid}_${Date.now().toString(36)}_${schemaCounter}`,
    concurrency: args.concurrency,
    poolSize: args.pool,
    batchSize: args.batch,
  };
}

async function withAdmin<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, application_name: 'bench-pg-admin' });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => {});
  }
}

interface Procs {
  producer?: NodeProcess;
  workers: NodeProcess[];
}

/**
 * Forks the producer and `nodes` workers into `procs` (so a failure part-way still cleans up
 * what was started), waits until each is loaded, and sets them up.
 */
async function startProcesses(
  procs: Procs,
  key: string,
  ctx: PgContext,
  nodes: number,
  n: number,
  latency: boolean,
): Promise<{ producer: NodeProcess; workers: NodeProcess[] }> {
  const producer = new NodeProcess({ system: key, role: 'producer', ctx, n, latency });
  procs.producer = producer;
  const m = await producer.next(60_000, 'producer start');
  if (m.type === 'error') throw new Error(`producer: ${m.error}`);
  await producer.request({ cmd: 'setup' }, 60_000);
  for (let k = 0; k < nodes; k++)
    procs.workers.push(new NodeProcess({ system: key, role: 'worker', ctx, n, latency }));
  const workers = procs.workers;
  const first = await Promise.all(workers.map((w) => w.next(60_000, 'worker start')));
  for (const a of first) if (a.type === 'error') throw new Error(`worker: ${a.error}`);
  await Promise.all(workers.map((w) => w.request({ cmd: 'connect' }, 60_000)));
  return { producer, workers };
}

async function waitHandled(workers: NodeProcess[], n: number, deadline: number): Promise<void> {
  while (workers.reduce((s, w) => s + w.handled, 0) < n) {
    if (performance.now() > deadline)
      throw new Error(`not all ${n} jobs reached a handler in time`);
    await sleep(1);
  }
}

/** Stops the workers (their counts back), closes the producer, drops the schema. */
async function finish(args: Args, ctx: PgContext, procs: Procs, n: number) {
  const { producer, workers } = procs;
  const totals = new Uint32Array(n);
  const perNode: number[] = [];
  const anomalies: string[] = [];
  for (const w of workers) {
    try {
      const m = await w.request({ cmd: 'stop' }, 30_000);
      if (m.type === 'stopped') {
        const counts = Buffer.from(m.counts, 'base64');
        let handled = 0;
        for (let i = 0; i < n; i++) {
          totals[i] = totals[i]! + counts[i]!;
          handled += counts[i]!;
        }
        perNode.push(handled);
        anomalies.push(...m.anomalies);
      }
    } catch (error) {
      anomalies.push(`stop: ${(error as Error).message}`);
    }
    w.kill();
  }
  if (producer) {
    await producer.request({ cmd: 'close' }, 30_000).catch((error: unknown) => {
      anomalies.push(`producer close: ${(error as Error).message}`);
    });
    producer.kill();
  }
  await withAdmin(args.url, (c) => c.query(`drop schema if exists "${ctx.schema}" cascade`)).catch(
    (error: unknown) => anomalies.push(`drop schema: ${(error as Error).message}`),
  );
  let delivered = 0;
  let duplicates = 0;
  for (let i = 0; i < n; i++) {
    if (totals[i]! > 0) delivered += 1;
    if (totals[i]! > 1) duplicates += totals[i]! - 1;
  }
  return { perNode, anomalies, delivered, duplicates, missing: n - delivered };
}

async function measureRun(
  args: Args,
  key: string,
  nodes: number,
  mode: Mode,
  warmup: boolean,
): Promise<RunResult> {
  const n = args.n;
  const loadBefore = Math.round(os.loadavg()[0]! * 100) / 100;
  const ctx = freshContext(args, key);
  const out: { -readonly [K in keyof RunResult]?: RunResult[K] } = {};
  const procs: Procs = { workers: [] };
  let error: string | undefined;
  const timeout = args.runTimeoutS * 1000;
  try {
    const { producer, workers } = await startProcesses(procs, key, ctx, nodes, n, false);
    const pids = workers.map((w) => w.pid);
    // Flush what setup (migrations) and earlier runs dirtied, outside the clock.
    out.checkpointMs = await withAdmin(args.url, async (c) => {
      const t = performance.now();
      await c.query('checkpoint');
      return performance.now() - t;
    });
    const deadline = () => performance.now() + timeout;
    if (mode === 'prefilled') {
      let mark = cpuMark([producer.pid, ...pids]);
      const e = await producer.request({ cmd: 'enqueueAll' }, timeout);
      if (e.type !== 'enqueued') throw new Error('unexpected answer to enqueueAll');
      out.enqueueCpu = cpuSince(mark, producer.pid, pids);
      out.enqueueSeconds = (e.t1 - e.t0) / 1000;
      out.enqueueThroughput = n / out.enqueueSeconds;
      await sleep(200); // background writes the enqueue caused settle first
      mark = cpuMark([producer.pid, ...pids]);
      const t0 = epochNow();
      const started = await Promise.all(workers.map((w) => w.request({ cmd: 'start' }, 60_000)));
      out.workerStartMs = Math.max(...started.map((m) => (m.type === 'ok' ? m.at - t0 : NaN)));
      await waitHandled(workers, n, deadline());
      const d = await producer.request({ cmd: 'waitDone', timeoutMs: timeout }, timeout + 5_000);
      if (d.type !== 'done') throw new Error('unexpected answer to waitDone');
      out.cpu = cpuSince(mark, producer.pid, pids);
      out.drainSeconds = (d.at - t0) / 1000;
      out.drainThroughput = n / out.drainSeconds;
    } else {
      await Promise.all(workers.map((w) => w.request({ cmd: 'start' }, 60_000)));
      await sleep(300); // the nodes are up and idle before the clock starts
      const mark = cpuMark([producer.pid, ...pids]);
      const e = await producer.request({ cmd: 'enqueueAll' }, timeout);
      if (e.type !== 'enqueued') throw new Error('unexpected answer to enqueueAll');
      out.enqueueSeconds = (e.t1 - e.t0) / 1000;
      out.enqueueThroughput = n / out.enqueueSeconds;
      await waitHandled(workers, n, deadline());
      const d = await producer.request({ cmd: 'waitDone', timeoutMs: timeout }, timeout + 5_000);
      if (d.type !== 'done') throw new Error('unexpected answer to waitDone');
      out.cpu = cpuSince(mark, producer.pid, pids);
      out.seconds = (d.at - e.t0) / 1000;
      out.throughput = n / out.seconds;
    }
    await sleep(300); // late duplicates would show up here
  } catch (e) {
    error = (e as Error).message.slice(0, 500);
  }
  const f = await finish(args, ctx, procs, n);
  const ok = error === undefined && f.missing === 0 && f.duplicates === 0;
  if (!error && !ok)
    error = `delivery check failed: ${f.missing} missing, ${f.duplicates} duplicates`;
  return {
    system: key,
    nodes,
    mode,
    warmup,
    loadBefore,
    n,
    ok,
    ...(error ? { error } : {}),
    ...out,
    perNode: f.perNode,
    delivered: f.delivered,
    duplicates: f.duplicates,
    missing: f.missing,
    anomalies: f.anomalies.slice(0, 20),
  };
}

async function measureLatency(args: Args, key: string, nodes: number): Promise<LatencyResult> {
  const total = args.latencyWarmup + args.latencySamples;
  const ctx = freshContext(args, key);
  const startAt = new Float64Array(total).fill(Number.NaN);
  let duplicates = 0;
  let waiting: { i: number; resolve: () => void } | null = null;
  const startMs: number[] = [];
  const enqueueMs: number[] = [];
  const procs: Procs = { workers: [] };
  let error: string | undefined;
  try {
    const { producer, workers } = await startProcesses(procs, key, ctx, nodes, total, true);
    for (const w of workers)
      w.onHandled = (i, at) => {
        if (i < 0 || i >= total) return;
        if (!Number.isNaN(startAt[i]!)) duplicates += 1;
        else startAt[i] = at;
        if (waiting?.i === i) waiting.resolve();
      };
    await Promise.all(workers.map((w) => w.request({ cmd: 'start' }, 60_000)));
    await sleep(500); // idle, listening
    for (let i = 0; i < total; i++) {
      const seen = new Promise<void>((r) => (waiting = { i, resolve: r }));
      const e = await producer.request({ cmd: 'one', i }, 10_000);
      if (e.type !== 'enqueued') throw new Error('unexpected answer to one');
      if (Number.isNaN(startAt[i]!)) {
        const late = await Promise.race([seen.then(() => false), sleep(10_000).then(() => true)]);
        if (late) throw new Error(`sample ${i} did not reach a handler within 10 s`);
      }
      waiting = null;
      if (i >= args.latencyWarmup) {
        startMs.push(startAt[i]! - e.t0);
        enqueueMs.push(e.t1 - e.t0);
      }
      // The completion is recorded before the next sample: the nodes are idle again.
      await producer.request({ cmd: 'waitDone', timeoutMs: 10_000 }, 15_000);
      await sleep(args.latencyGapMs);
    }
  } catch (e) {
    error = (e as Error).message.slice(0, 500);
  }
  const f = await finish(args, ctx, procs, total);
  duplicates = Math.max(duplicates, f.duplicates);
  return {
    system: key,
    nodes,
    ok: error === undefined && duplicates === 0,
    ...(error ? { error } : duplicates ? { error: `${duplicates} duplicate deliveries` } : {}),
    startMs,
    enqueueMs,
    duplicates,
    anomalies: f.anomalies.slice(0, 20),
  };
}

function cpuPer1k(runs: RunResult[], pick: (r: RunResult) => CpuSpent | undefined) {
  const rows = runs
    .map((r) => ({ c: pick(r), n: r.n }))
    .filter((x): x is { c: CpuSpent; n: number } => x.c !== undefined);
  if (!rows.length) return undefined;
  const per = (f: (c: CpuSpent) => number) => median(rows.map((x) => (f(x.c) / x.n) * 1000))!;
  return {
    producer: per((c) => c.producerSeconds),
    workers: per((c) => c.workerSeconds),
    postgres: per((c) => c.postgresSeconds),
    total: per((c) => c.producerSeconds + c.workerSeconds + c.postgresSeconds),
    totalAllPostgres: per((c) => c.producerSeconds + c.workerSeconds + c.allPostgresSeconds),
  };
}

function summarise(args: Args, keys: string[], runs: RunResult[], lat: LatencyResult[]): Cell[] {
  const cells: Cell[] = [];
  for (const key of keys)
    for (const nodes of args.nodes) {
      const mine = runs.filter((r) => r.system === key && r.nodes === nodes);
      const measured = mine.filter((r) => !r.warmup && r.ok);
      const pre = measured.filter((r) => r.mode === 'prefilled');
      const mix = measured.filter((r) => r.mode === 'mixed');
      const l = lat.find((x) => x.system === key && x.nodes === nodes);
      const expected = (args.runs + args.warmup) * args.modes.length;
      cells.push({
        system: key,
        nodes,
        drain: spread(pre.map((r) => r.drainThroughput!)),
        enqueueOnly: spread(pre.map((r) => r.enqueueThroughput!)),
        mixed: spread(mix.map((r) => r.throughput!)),
        workerStartMs: median(pre.map((r) => r.workerStartMs!).filter(Number.isFinite)),
        cpuDrain: cpuPer1k(pre, (r) => r.cpu),
        cpuMixed: cpuPer1k(mix, (r) => r.cpu),
        cpuEnqueue: cpuPer1k(pre, (r) => r.enqueueCpu),
        ...(l && l.startMs.length
          ? {
              latencyP50: percentile(l.startMs, 50),
              latencyP90: percentile(l.startMs, 90),
              latencyP99: percentile(l.startMs, 99),
              latencyMax: Math.max(...l.startMs),
            }
          : {}),
        latencySamples: l?.startMs.length ?? 0,
        measured: { prefilled: pre.length, mixed: mix.length },
        deliveryOk:
          mine.length === expected &&
          mine.every((r) => r.ok) &&
          (args.latencySamples === 0 || (l?.ok ?? false)),
      });
    }
  for (const c of cells) {
    const g = cells.find((x) => x.system === 'graphile-worker' && x.nodes === c.nodes);
    if (g?.drain && c.drain) c.drainVsGraphile = c.drain.median / g.drain.median;
    if (g?.mixed && c.mixed) c.mixedVsGraphile = c.mixed.median / g.mixed.median;
  }
  return cells;
}

const tps = (x: number | undefined) =>
  x === undefined ? '–' : `${Math.round(x).toLocaleString('en-US')}/s`;

function runLine(r: RunResult): string {
  const what =
    r.mode === 'prefilled'
      ? `enqueue-only ${tps(r.enqueueThroughput)}, drain ${tps(r.drainThroughput)}`
      : `mixed ${tps(r.throughput)}`;
  const cpu = r.cpu
    ? `, CPU ${(((r.cpu.producerSeconds + r.cpu.workerSeconds + r.cpu.postgresSeconds) / r.n) * 1000).toFixed(3)} s/1k`
    : '';
  return `${what}${cpu} ${r.ok ? '✓' : `✗ ${r.error ?? ''}`}${r.anomalies.length ? ` [${r.anomalies.length} anomalies: ${r.anomalies[0]}]` : ''} per node ${r.perNode.join('/')} (load ${r.loadBefore})`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const loadStart = loadAverage();
  mkdirSync(args.out, { recursive: true });
  log(
    `PostgreSQL queue benchmark${args.quick ? ' (quick)' : ''}: N=${args.n}, nodes ${args.nodes.join(',')}, modes ${args.modes.join('+')}, ${args.warmup} warm-up + ${args.runs} runs each, concurrency ${args.concurrency}/node, pool ${args.pool}/process, batch ${args.batch}`,
  );
  const base = args.url.replace(/\/[^/]*$/, '');
  let postgres: PostgresSettings | { error: string };
  try {
    postgres = await readPostgresSettings(base);
    log(`  PostgreSQL: ${JSON.stringify(postgres)}`);
  } catch (error) {
    postgres = { error: (error as Error).message };
    log(`  PostgreSQL unreachable: ${postgres.error}`);
  }
  const systems: SystemEntry[] = [];
  const probeCtx = freshContext(args, 'probe');
  for (const key of args.systems) {
    const s = SYSTEMS[key]!;
    const unavailable = 'error' in postgres ? postgres.error : await s.unavailable();
    const info = s.info(probeCtx);
    systems.push({ key, ...info, unavailable });
    if (unavailable) log(`${info.name}: not run: ${unavailable}`);
  }
  const keys = systems.filter((s) => !s.unavailable).map((s) => s.key);
  const runs: RunResult[] = [];
  const doRun = async (key: string, nodes: number, mode: Mode, warmup: boolean, label: string) => {
    const r = await measureRun(args, key, nodes, mode, warmup);
    runs.push(r);
    log(`  ${key} ×${nodes} ${label}: ${runLine(r)}`);
  };
  for (const nodes of args.nodes) {
    if (args.warmup > 0) log(`${nodes} node(s): warm-up (excluded)`);
    for (const key of keys)
      for (const mode of args.modes)
        for (let w = 0; w < args.warmup; w++) await doRun(key, nodes, mode, true, 'warm-up');
    for (let r = 0; r < args.runs; r++) {
      log(`${nodes} node(s): measured run ${r + 1}/${args.runs}`);
      // Interleaved, in an order that rotates each round, so load spreads over the systems.
      for (const mode of args.modes)
        for (let k = 0; k < keys.length; k++)
          await doRun(keys[(k + r) % keys.length]!, nodes, mode, false, `run ${r + 1}`);
    }
  }
  const latency: LatencyResult[] = [];
  if (args.latencySamples > 0) {
    log('idle latency (enqueue → handler start, across processes)');
    for (const nodes of args.nodes)
      for (const key of keys) {
        const l = await measureLatency(args, key, nodes);
        latency.push(l);
        log(
          `  ${key} ×${nodes}: p50 ${percentile(l.startMs, 50)?.toFixed(2) ?? '–'} ms, p99 ${percentile(l.startMs, 99)?.toFixed(2) ?? '–'} ms over ${l.startMs.length} samples ${l.ok ? '✓' : `✗ ${l.error ?? ''}`}`,
        );
      }
  }
  const cells = summarise(args, keys, runs, latency);
  const versions: Record<string, string> = {};
  for (const pkg of ['graphile-worker', 'pg-boss', 'pg']) versions[pkg] = packageVersion(pkg);
  const passthrough = process.argv.slice(2).join(' ');
  const report: Report = {
    generatedAt: new Date().toISOString(),
    command: `cd bench && npm run bench:pg${args.quick ? ':quick' : ''}  (node pg/run.ts${passthrough ? ` ${passthrough}` : ''})`,
    machine: { ...machineInfo(), loadStart, loadEnd: loadAverage() },
    postgres,
    durability: 'error' in postgres ? 'unknown' : postgresDurability(postgres),
    versions,
    warden: { ...wardenInfo(), source: wardenSource() },
    params: {
      n: args.n,
      runs: args.runs,
      warmup: args.warmup,
      nodes: args.nodes,
      concurrency: args.concurrency,
      pool: args.pool,
      batch: args.batch,
      modes: args.modes,
      latencySamples: args.latencySamples,
      latencyWarmup: args.latencyWarmup,
      latencyGapMs: args.latencyGapMs,
      runTimeoutS: args.runTimeoutS,
      quick: args.quick,
      url: args.url,
    },
    systems,
    cells,
    runs,
    latency,
    totalSeconds: (performance.now() - t0) / 1000,
  };
  writeFileSync(join(args.out, 'pg.json'), `${JSON.stringify(report, null, 2)}\n`);
  const md = renderMarkdown(report);
  writeFileSync(join(args.out, 'pg.md'), md);
  process.stdout.write(md);
  log(
    `\nwrote ${relative(process.cwd(), join(args.out, 'pg.md'))} and pg.json in ${Math.round(report.totalSeconds)} s (load ${os.loadavg()[0]!.toFixed(2)})`,
  );
}

main().catch((error: unknown) => {
  log(String((error as Error)?.stack ?? error));
  process.exit(1);
});
