/**
 * Queue benchmark: enqueue → claim → complete of no-op tasks, Warden against its peers, side by
 * side in one run. Each system is measured in its own child process (child.ts), one at a time
 * so they never compete for the machine: first every system's warm-ups, then measured run 1 of
 * every system, then run 2, … (interleaved, in a rotating order, so load from other processes on
 * the machine spreads over all systems), then the idle-latency tests.
 *
 * Each measured round has two kinds of run (see child.ts): `mixed` (enqueue while the worker
 * consumes) and `prefilled` (enqueue-only with no worker, then consumer-only on the full queue).
 *
 *   node queue/run.ts            full run (npm run bench:queue)
 *   node queue/run.ts --quick    smoke test (npm run bench:queue:quick)
 *
 * Options (each also as --name=value):
 *   --n N                 tasks per run (default 100000; quick 2000)
 *   --runs R              measured runs per system and mode (default 10; quick 2)
 *   --warmup W            warm-up runs per mode, excluded (default 1)
 *   --concurrency C       handlers in flight, the same for every system (default 32)
 *   --systems a,b         subset, in table order (default: all)
 *   --modes m,n           mixed, prefilled or both (default both)
 *   --n-for sys=N,...     a smaller N for a slow system (default liteque=5000; flagged ⚠)
 *   --latency-samples S   idle-latency samples (default 200; quick 50), after 20 warm-up ones
 *   --latency-gap-ms G    pause between latency samples (default 5)
 *   --poll-ms P           poll interval of the poll-only systems, plainjob and liteque (default 10)
 *   --run-timeout-s T     one run's limit (default 300)
 *   --fsync-probe P       pg_test_fsync (default; falls back to node), node (quick default), off
 *   --out DIR             results directory (default results/; quick: results/quick/, not committed)
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseFlags } from '../shared/cli.ts';
import {
  benchDir,
  loadAverage,
  machineInfo,
  type MachineInfo,
  packageVersion,
  repoDir,
  wardenInfo,
} from '../shared/machine.ts';
import { median, percentile, type Spread, spread } from '../shared/stats.ts';
import { LABELS, SYSTEMS } from './adapters/index.ts';
import type {
  ChildCommand,
  ChildConfig,
  ChildMessage,
  LatencyResult,
  RunMode,
  RunResult,
} from './child.ts';
import { type CpuSpent, serverProcessCount } from './cpu.ts';
import { postgresDurability, redisDurability, sqliteDurability } from './durability.ts';
import { type FsyncProbe, probeFsync } from './fsync-probe.ts';
import { renderChart, renderMarkdown } from './report.ts';
import { ensureDatabases, readServerSettings, type ServerSettings } from './servers.ts';
import type { SqlitePragmas } from './types.ts';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * Systems too slow at the default N to fit the time budget, and the N they get instead.
 * liteque's dequeue query slows as its table grows (about 300 tasks/s at N = 20,000): at
 * N = 100,000 its 2 × 11 runs alone would take hours.
 */
const DEFAULT_N_FOR: Record<string, number> = { liteque: 5_000 };

const MODES: readonly RunMode[] = ['mixed', 'prefilled'];

/** CPU seconds per 1,000 tasks (medians over the measured runs). */
export interface CpuPer1k {
  readonly client: number;
  readonly server: number;
  readonly total: number;
}

export interface SystemResult {
  readonly key: string;
  name: string;
  backend: string;
  server: string | null;
  durabilityNote: string;
  prefetch: string;
  settings: string;
  /** What an acknowledged task survives, from settings read back at run time. */
  durability: string;
  pragmas?: SqlitePragmas;
  readonly n: number;
  readonly runs: RunResult[];
  latency?: LatencyResult;
  errors: string[];
  elapsedSeconds: number;
  // Summary (filled in at the end)
  mixed?: Spread;
  enqueueOnly?: Spread;
  consumeOnly?: Spread;
  cpu: { mixed?: CpuPer1k; enqueue?: CpuPer1k; consume?: CpuPer1k };
  /** Median CHECKPOINT time before a run (PostgreSQL systems), ms. */
  checkpointMs?: number;
  /** Kept for the chart: the mixed spread's median, min and max. */
  medianThroughput?: number;
  minThroughput?: number;
  maxThroughput?: number;
  ratioVsWardenFast?: number;
  consumeRatioVsWardenFast?: number;
  latencyP50?: number;
  latencyP99?: number;
  enqueueAckP50?: number;
  deliveryOk: boolean;
  measuredRuns: number;
  measuredPrefilled: number;
}

export interface Report {
  readonly generatedAt: string;
  readonly command: string;
  readonly machine: MachineInfo;
  readonly servers: ServerSettings;
  readonly serverProcesses: Record<string, number>;
  readonly fsync: FsyncProbe;
  readonly versions: Record<string, string>;
  readonly warden: { commit: string; dirty: string[] };
  readonly params: {
    n: number;
    runs: number;
    warmup: number;
    concurrency: number;
    modes: RunMode[];
    latencySamples: number;
    latencyWarmup: number;
    latencyGapMs: number;
    pollMs: number;
    runTimeoutS: number;
    quick: boolean;
    nFor: Record<string, number>;
  };
  readonly systems: SystemResult[];
  readonly totalSeconds: number;
}

function parseArgs(argv: string[]) {
  const f = parseFlags(argv);
  const quick = f.quick;
  const known = Object.keys(SYSTEMS);
  const systems = f.list('systems', known);
  for (const s of systems)
    if (!known.includes(s)) throw new Error(`unknown system ${s} (known: ${known.join(', ')})`);
  const modes = f.list('modes', MODES) as RunMode[];
  for (const m of modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m}`);
  const nFor: Record<string, number> = quick ? {} : { ...DEFAULT_N_FOR };
  for (const pair of f.list('n-for', [])) {
    const [k, v] = pair.split('=');
    if (!k || !known.includes(k) || !Number(v)) throw new Error(`bad --n-for ${pair}`);
    nFor[k] = Number(v);
  }
  const n = f.num('n', quick ? 2_000 : 100_000);
  // A reduced N never exceeds the N asked for (a small --n applies to every system).
  for (const k of Object.keys(nFor)) if (nFor[k]! >= n) delete nFor[k];
  const fsyncProbe = f.str('fsync-probe', quick ? 'node' : 'pg_test_fsync');
  if (!['pg_test_fsync', 'node', 'off'].includes(fsyncProbe))
    throw new Error('--fsync-probe expects pg_test_fsync, node or off');
  return {
    quick,
    n,
    runs: f.num('runs', quick ? 2 : 10),
    warmup: f.num('warmup', 1),
    concurrency: f.num('concurrency', 32),
    modes,
    latencySamples: f.num('latency-samples', quick ? 50 : 200),
    latencyWarmup: 20,
    latencyGapMs: f.num('latency-gap-ms', 5),
    pollMs: f.num('poll-ms', 10),
    runTimeoutS: f.num('run-timeout-s', 300),
    fsyncProbe: fsyncProbe as 'pg_test_fsync' | 'node' | 'off',
    out: resolve(benchDir, f.str('out', quick ? 'results/quick' : 'results')),
    systems,
    nFor,
    redisUrl: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
    pgBase: process.env.BENCH_PG_BASE ?? 'postgres://postgres@127.0.0.1:5432',
  };
}

type Args = ReturnType<typeof parseArgs>;

function log(line: string) {
  process.stderr.write(`${line}\n`);
}

function peerVersions(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pkg of [
    'bullmq',
    'ioredis',
    'graphile-worker',
    'pg-boss',
    'pg',
    'plainjob',
    'liteque',
    'better-sqlite3',
    'drizzle-orm',
  ])
    out[pkg] = packageVersion(pkg);
  out['better-sqlite3 (Warden)'] = packageVersion('better-sqlite3', repoDir);
  return out;
}

/** The local service each peer needs; checked once before the peer is started. */
const NEEDS: Record<string, 'redis' | 'postgres'> = {
  bullmq: 'redis',
  'graphile-worker': 'postgres',
  'pg-boss': 'postgres',
};
const PG_DATABASES = ['bench_graphile', 'bench_pgboss'];

function emptyResult(key: string, args: Args): SystemResult {
  return {
    key,
    name: LABELS[key] ?? key,
    backend: '',
    server: null,
    durabilityNote: '',
    prefetch: '',
    settings: '',
    durability: '',
    n: args.nFor[key] ?? args.n,
    runs: [],
    errors: [],
    elapsedSeconds: 0,
    cpu: {},
    deliveryOk: false,
    measuredRuns: 0,
    measuredPrefilled: 0,
  };
}

/** One measuring process (child.ts) per system, driven one command at a time. */
class SystemProcess {
  readonly result: SystemResult;
  alive = true;
  readonly #child: ChildProcess;
  #waiter: ((m: ChildMessage) => void) | null = null;
  #ready: Promise<void>;

  constructor(key: string, args: Args, tmpDir: string) {
    this.result = emptyResult(key, args);
    const cfg: ChildConfig = {
      system: key,
      n: this.result.n,
      concurrency: args.concurrency,
      latencySamples: args.latencySamples,
      latencyWarmup: args.latencyWarmup,
      latencyGapMs: args.latencyGapMs,
      runTimeoutMs: args.runTimeoutS * 1000,
      pollMs: args.pollMs,
      tmpDir,
      redisUrl: args.redisUrl,
      pgBase: args.pgBase,
    };
    this.#child = fork(join(here, 'child.ts'), [JSON.stringify(cfg)], {
      cwd: benchDir,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let readyResolve: () => void = () => {};
    this.#ready = new Promise((r) => (readyResolve = r));
    this.#child.on('message', (m: ChildMessage) => {
      if (m.type === 'info') {
        Object.assign(this.result, {
          name: m.name,
          backend: m.backend,
          server: m.server,
          durabilityNote: m.durabilityNote,
          prefetch: m.prefetch,
          settings: m.settings,
        });
      } else if (m.type === 'ready') {
        readyResolve();
      } else if (m.type === 'fatal') {
        this.#fail(m.error);
        readyResolve();
      } else {
        const w = this.#waiter;
        this.#waiter = null;
        w?.(m);
      }
    });
    this.#child.on('exit', (code, signal) => {
      if (this.alive) this.#fail(`the measuring process exited (code ${code}, signal ${signal})`);
      readyResolve();
    });
  }

  #fail(error: string): void {
    if (!this.alive) return;
    this.alive = false;
    this.result.errors.push(error);
    log(`  ${this.result.name} failed: ${error}`);
    const w = this.#waiter;
    this.#waiter = null;
    w?.({ type: 'fatal', error });
  }

  async ready(timeoutMs: number): Promise<void> {
    const timer = setTimeout(() => this.kill(`not ready after ${timeoutMs / 1000} s`), timeoutMs);
    await this.#ready;
    clearTimeout(timer);
  }

  kill(why: string): void {
    this.#fail(why);
    this.#child.kill('SIGKILL');
  }

  /** Sends one command and waits for its answer (or kills the process after `timeoutMs`). */
  async request(command: ChildCommand, timeoutMs: number): Promise<ChildMessage> {
    if (!this.alive) return { type: 'fatal', error: 'not running' };
    const started = performance.now();
    const answer = new Promise<ChildMessage>((resolve) => (this.#waiter = resolve));
    const timer = setTimeout(
      () => this.kill(`${command.cmd} took longer than ${Math.round(timeoutMs / 1000)} s: killed`),
      timeoutMs,
    );
    this.#child.send(command);
    const m = await answer;
    clearTimeout(timer);
    this.result.elapsedSeconds += (performance.now() - started) / 1000;
    return m;
  }

  async exit(): Promise<void> {
    if (!this.alive) return;
    await this.request({ cmd: 'exit' }, 10_000);
    this.alive = false;
  }
}

const tps = (x: number | undefined) =>
  x === undefined ? '–' : `${Math.round(x).toLocaleString('en-US')}/s`;

function runLine(r: RunResult): string {
  const what =
    r.mode === 'mixed'
      ? `mixed ${tps(r.throughput)}`
      : `enqueue-only ${tps(r.enqueueThroughput)}, consumer-only ${tps(r.consumeThroughput)}`;
  return `${what} ${r.ok ? '✓' : `✗ ${r.error ?? ''}`}${r.anomalies.length ? ` [${r.anomalies.length} anomalies]` : ''} (load ${r.loadBefore})`;
}

async function measureAll(keys: string[], args: Args, tmpDir: string): Promise<SystemProcess[]> {
  const procs = keys.map((key) => new SystemProcess(key, args, tmpDir));
  await Promise.all(procs.map((p) => p.ready(120_000)));
  // Time for setup + a prefilled run's two clocks + stop and teardown.
  const commandLimit = 2 * args.runTimeoutS * 1000 + 150_000;
  const doRun = async (p: SystemProcess, mode: RunMode, warmup: boolean, label: string) => {
    if (!p.alive) return;
    const m = await p.request({ cmd: 'run', mode, warmup }, commandLimit);
    if (m.type !== 'run') return;
    const r = m.result;
    p.result.runs.push(r);
    log(`  ${p.result.name} ${label}: ${runLine(r)}`);
    if (r.setupFailed) p.kill(`cannot set up or start: ${r.error ?? '?'}`);
  };
  log(`warm-up (${args.warmup} run${args.warmup === 1 ? '' : 's'} per mode, excluded)`);
  for (const p of procs)
    for (const mode of args.modes)
      for (let w = 0; w < args.warmup; w++) await doRun(p, mode, true, 'warm-up');
  for (let r = 0; r < args.runs; r++) {
    log(`measured run ${r + 1}/${args.runs}`);
    // Interleaved, and the order rotates each round, so no system always runs first or last.
    for (const mode of args.modes)
      for (let k = 0; k < procs.length; k++) {
        const p = procs[(k + r) % procs.length]!;
        await doRun(p, mode, false, `run ${r + 1}/${args.runs}`);
      }
  }
  if (args.latencySamples > 0) {
    log('idle latency');
    for (const p of procs) {
      if (!p.alive) continue;
      const m = await p.request({ cmd: 'latency' }, commandLimit);
      if (m.type !== 'latency') continue;
      p.result.latency = m.result;
      const l = m.result;
      log(
        `  ${p.result.name}: p50 ${percentile(l.startMs, 50)?.toFixed(2) ?? '–'} ms, p99 ${percentile(l.startMs, 99)?.toFixed(2) ?? '–'} ms over ${l.samples} samples ${l.ok ? '✓' : `✗ ${l.error ?? ''}`}`,
      );
    }
  }
  await Promise.all(procs.map((p) => p.exit()));
  return procs;
}

/** Median CPU seconds per 1,000 tasks over the runs that measured it. */
function cpuPer1k(runs: RunResult[], pick: (r: RunResult) => CpuSpent | undefined) {
  const rows = runs
    .map((r) => ({ cpu: pick(r), n: r.n }))
    .filter((x): x is { cpu: CpuSpent; n: number } => x.cpu !== undefined);
  if (!rows.length) return undefined;
  const per = (f: (c: CpuSpent) => number) => median(rows.map((x) => (f(x.cpu) / x.n) * 1000))!;
  return {
    client: per((c) => c.clientSeconds),
    server: per((c) => c.serverSeconds),
    total: per((c) => c.clientSeconds + c.serverSeconds),
  };
}

function durabilityOf(s: SystemResult, servers: ServerSettings): string {
  if (s.server === 'postgres')
    return servers.postgres ? postgresDurability(servers.postgres) : 'PostgreSQL unreachable';
  if (s.server === 'redis')
    return servers.redis ? redisDurability(servers.redis) : 'Redis unreachable';
  return s.pragmas ? sqliteDurability(s.pragmas) : 'not read (no run set up)';
}

function summarise(systems: SystemResult[], args: Args, servers: ServerSettings): void {
  for (const s of systems) {
    const measured = s.runs.filter((r) => !r.warmup && r.ok);
    const mixed = measured.filter((r) => r.mode === 'mixed');
    const prefilled = measured.filter((r) => r.mode === 'prefilled');
    s.pragmas = s.runs.find((r) => r.pragmas)?.pragmas;
    s.durability = durabilityOf(s, servers);
    s.mixed = spread(mixed.map((r) => r.throughput!));
    s.enqueueOnly = spread(prefilled.map((r) => r.enqueueThroughput!));
    s.consumeOnly = spread(prefilled.map((r) => r.consumeThroughput!));
    s.measuredRuns = mixed.length;
    s.measuredPrefilled = prefilled.length;
    s.cpu = {
      mixed: cpuPer1k(mixed, (r) => r.cpu),
      enqueue: cpuPer1k(prefilled, (r) => r.enqueueCpu),
      consume: cpuPer1k(prefilled, (r) => r.consumeCpu),
    };
    s.checkpointMs = median(
      s.runs.map((r) => r.checkpointMs).filter((x): x is number => x !== undefined),
    );
    s.medianThroughput = s.mixed?.median;
    s.minThroughput = s.mixed?.min;
    s.maxThroughput = s.mixed?.max;
    if (s.latency && s.latency.samples > 0) {
      s.latencyP50 = percentile(s.latency.startMs, 50);
      s.latencyP99 = percentile(s.latency.startMs, 99);
      s.enqueueAckP50 = percentile(s.latency.enqueueMs, 50);
    }
    s.deliveryOk =
      s.errors.length === 0 &&
      s.runs.length === (args.warmup + args.runs) * args.modes.length &&
      s.runs.every((r) => r.ok) &&
      (args.latencySamples === 0 || (s.latency?.ok ?? false));
  }
  const base = systems.find((s) => s.key === 'warden-fast');
  for (const s of systems) {
    if (base?.mixed && s.mixed) s.ratioVsWardenFast = s.mixed.median / base.mixed.median;
    if (base?.consumeOnly && s.consumeOnly)
      s.consumeRatioVsWardenFast = s.consumeOnly.median / base.consumeOnly.median;
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const loadStart = loadAverage();
  const tmpDir = join(benchDir, '.tmp', 'db');
  mkdirSync(tmpDir, { recursive: true });
  mkdirSync(args.out, { recursive: true });
  log(
    `queue benchmark${args.quick ? ' (quick)' : ''}: N=${args.n}, modes ${args.modes.join('+')}, ${args.warmup} warm-up + ${args.runs} runs each, concurrency ${args.concurrency}, ${args.latencySamples} latency samples`,
  );
  const servers = await readServerSettings(args.redisUrl, args.pgBase);
  log(`  Redis: ${servers.redis ? JSON.stringify(servers.redis) : servers.redisError}`);
  log(
    `  PostgreSQL: ${servers.postgres ? JSON.stringify(servers.postgres) : servers.postgresError}`,
  );
  if (servers.postgres) await ensureDatabases(args.pgBase, PG_DATABASES);
  log(`fsync probe (${args.fsyncProbe}) in ${relative(process.cwd(), tmpDir)}`);
  const fsync = probeFsync(tmpDir, args.fsyncProbe);
  log(`  ${fsync.method}: fdatasync ${fsync.fdatasyncMs?.toFixed(3) ?? '–'} ms`);
  const runnable: string[] = [];
  const notRun = new Map<string, SystemResult>();
  for (const key of args.systems) {
    const service = NEEDS[key];
    const unavailable =
      service === 'redis'
        ? servers.redisError
        : service === 'postgres'
          ? servers.postgresError
          : undefined;
    if (unavailable) {
      log(`${LABELS[key] ?? key}: skipped, ${service} is unavailable: ${unavailable}`);
      const skipped = emptyResult(key, args);
      skipped.errors.push(`not run: ${service} unavailable: ${unavailable}`);
      notRun.set(key, skipped);
    } else runnable.push(key);
  }
  const procs = await measureAll(runnable, args, tmpDir);
  const systems = args.systems.map(
    (key) => notRun.get(key) ?? procs.find((p) => p.result.key === key)!.result,
  );
  summarise(systems, args, servers);
  const passthrough = process.argv.slice(2).join(' ');
  const report: Report = {
    generatedAt: new Date().toISOString(),
    command: `cd bench && npm run bench:queue${args.quick ? ':quick' : ''}  (node queue/run.ts${passthrough ? ` ${passthrough}` : ''})`,
    machine: { ...machineInfo(), loadStart, loadEnd: loadAverage() },
    servers,
    serverProcesses: {
      redis: serverProcessCount('redis'),
      postgres: serverProcessCount('postgres'),
    },
    fsync,
    versions: peerVersions(),
    warden: wardenInfo(),
    params: {
      n: args.n,
      runs: args.runs,
      warmup: args.warmup,
      concurrency: args.concurrency,
      modes: args.modes,
      latencySamples: args.latencySamples,
      latencyWarmup: args.latencyWarmup,
      latencyGapMs: args.latencyGapMs,
      pollMs: args.pollMs,
      runTimeoutS: args.runTimeoutS,
      quick: args.quick,
      nFor: args.nFor,
    },
    systems,
    totalSeconds: (performance.now() - t0) / 1000,
  };
  writeFileSync(join(args.out, 'queue.json'), `${JSON.stringify(report, null, 2)}\n`);
  writeFileSync(join(args.out, 'queue.md'), renderMarkdown(report));
  writeFileSync(join(args.out, 'queue.png'), renderChart(report));
  process.stdout.write(renderMarkdown(report));
  log(
    `\nwrote ${relative(process.cwd(), join(args.out, 'queue.md'))}, queue.json and queue.png in ${Math.round(report.totalSeconds)} s (load ${os.loadavg()[0]!.toFixed(2)})`,
  );
}

main().catch((error: unknown) => {
  log(String((error as Error)?.stack ?? error));
  process.exit(1);
});
