/**
 * Queue benchmark: enqueue → claim → complete of no-op tasks, Warden against its peers, side by
 * side in one run. Each system is measured in its own child process (child.ts), one at a time
 * so they never compete for the machine: first every system's warm-up, then measured run 1 of
 * every system, then run 2, … (interleaved, in a rotating order, so load from other processes on
 * the machine spreads over all systems), then the idle-latency tests.
 *
 *   node queue/run.ts            full run (npm run bench:queue)
 *   node queue/run.ts --quick    smoke test (npm run bench:queue:quick)
 *
 * Options (each also as --name=value):
 *   --n N                 tasks per run (default 20000; quick 2000)
 *   --runs R              measured runs per system (default 5; quick 2)
 *   --warmup W            warm-up runs, excluded (default 1)
 *   --concurrency C       handlers in flight, the same for every system (default 32)
 *   --systems a,b         subset, in table order (default: all)
 *   --n-for sys=N,...     a smaller N for a slow system (stated in the table)
 *   --latency-samples S   idle-latency samples (default 200; quick 50), after 20 warm-up ones
 *   --latency-gap-ms G    pause between latency samples (default 5)
 *   --poll-ms P           poll interval of the poll-only systems, plainjob and liteque (default 10)
 *   --run-timeout-s T     one run's limit (default 120)
 *   --out DIR             results directory (default results/; quick: results/quick/, not committed)
 */
import { type ChildProcess, execFileSync, fork } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

import { LABELS, SYSTEMS } from './adapters/index.ts';
import type { ChildCommand, ChildConfig, ChildMessage, LatencyResult, RunResult } from './child.ts';
import { renderChart, renderMarkdown } from './report.ts';
import { median, percentile } from './stats.ts';

const here = dirname(fileURLToPath(import.meta.url));
const benchDir = resolve(here, '..');
const repoDir = resolve(benchDir, '..');

/** Systems too slow at the default N to fit the time budget, and the N they get instead. */
const DEFAULT_N_FOR: Record<string, number> = {};

export interface SystemResult {
  readonly key: string;
  name: string;
  backend: string;
  durability: string;
  settings: string;
  readonly n: number;
  readonly runs: RunResult[];
  latency?: LatencyResult;
  errors: string[];
  elapsedSeconds: number;
  // Summary (filled in at the end)
  medianThroughput?: number;
  minThroughput?: number;
  maxThroughput?: number;
  ratioVsWardenFast?: number;
  latencyP50?: number;
  latencyP99?: number;
  enqueueAckP50?: number;
  deliveryOk: boolean;
  measuredRuns: number;
}

export interface Report {
  readonly generatedAt: string;
  readonly command: string;
  readonly machine: Record<string, string | number>;
  readonly services: Record<string, string>;
  readonly versions: Record<string, string>;
  readonly warden: { commit: string; dirty: string[] };
  readonly params: {
    n: number;
    runs: number;
    warmup: number;
    concurrency: number;
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
  const flags = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new Error(`unexpected argument ${a}`);
    const eq = a.indexOf('=');
    if (eq > 0) flags.set(a.slice(2, eq), a.slice(eq + 1));
    else if (a === '--quick') flags.set('quick', 'true');
    else flags.set(a.slice(2), argv[++i] ?? '');
  }
  const quick = flags.get('quick') === 'true';
  const num = (k: string, d: number) => {
    const v = flags.get(k);
    if (v === undefined) return d;
    const x = Number(v);
    if (!Number.isFinite(x) || x < 0) throw new Error(`--${k} expects a number`);
    return x;
  };
  const known = Object.keys(SYSTEMS);
  const systems = (flags.get('systems') ?? known.join(','))
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const s of systems)
    if (!known.includes(s)) throw new Error(`unknown system ${s} (known: ${known.join(', ')})`);
  const nFor: Record<string, number> = quick ? {} : { ...DEFAULT_N_FOR };
  for (const pair of (flags.get('n-for') ?? '').split(',').filter(Boolean)) {
    const [k, v] = pair.split('=');
    if (!k || !known.includes(k) || !Number(v)) throw new Error(`bad --n-for ${pair}`);
    nFor[k] = Number(v);
  }
  return {
    quick,
    n: num('n', quick ? 2_000 : 20_000),
    runs: num('runs', quick ? 2 : 5),
    warmup: num('warmup', 1),
    concurrency: num('concurrency', 32),
    latencySamples: num('latency-samples', quick ? 50 : 200),
    latencyWarmup: 20,
    latencyGapMs: num('latency-gap-ms', 5),
    pollMs: num('poll-ms', 10),
    runTimeoutS: num('run-timeout-s', 120),
    out: resolve(benchDir, flags.get('out') ?? (quick ? 'results/quick' : 'results')),
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

function sh(cmd: string, args: string[], cwd = repoDir): string {
  try {
    return execFileSync(cmd, args, {
      cwd,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return '';
  }
}

function machineInfo(): Record<string, string | number> {
  const cpuinfo = (() => {
    try {
      return readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return '';
    }
  })();
  const model = /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? '?';
  return {
    cpu: model,
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    node: process.version,
  };
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
  ]) {
    try {
      out[pkg] = (
        JSON.parse(readFileSync(join(benchDir, 'node_modules', pkg, 'package.json'), 'utf8')) as {
          version: string;
        }
      ).version;
    } catch {
      out[pkg] = 'not installed';
    }
  }
  try {
    out['better-sqlite3 (Warden)'] = (
      JSON.parse(
        readFileSync(join(repoDir, 'node_modules', 'better-sqlite3', 'package.json'), 'utf8'),
      ) as { version: string }
    ).version;
  } catch {
    /* not installed */
  }
  return out;
}

async function servicesInfo(args: Args): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  try {
    const { Redis } = await import('ioredis');
    const url = new URL(args.redisUrl);
    const redis = new Redis({
      host: url.hostname,
      port: Number(url.port || 6379),
      lazyConnect: true,
      maxRetriesPerRequest: 1,
      retryStrategy: () => null,
    });
    redis.on('error', () => {});
    try {
      await redis.connect();
      const info = await redis.info('server');
      const aof = (await redis.config('GET', 'appendonly')) as string[];
      const save = (await redis.config('GET', 'save')) as string[];
      out.redis = `Redis ${/redis_version:(\S+)/.exec(info)?.[1] ?? '?'} at ${url.host} (appendonly ${aof[1] ?? '?'}, save "${save[1] ?? ''}")`;
    } finally {
      redis.disconnect();
    }
  } catch (error) {
    out.redis = `unavailable: ${(error as Error).message}`;
  }
  const client = new pg.Client({ connectionString: `${args.pgBase}/test` });
  try {
    await client.connect();
    const v = await client.query('show server_version');
    const fsync = await client.query('show fsync');
    const sc = await client.query('show synchronous_commit');
    out.postgres = `PostgreSQL ${(v.rows[0] as { server_version: string }).server_version} at ${new URL(args.pgBase).host} (fsync ${(fsync.rows[0] as { fsync: string }).fsync}, synchronous_commit ${(sc.rows[0] as { synchronous_commit: string }).synchronous_commit})`;
    for (const db of ['bench_graphile', 'bench_pgboss']) {
      const exists = await client.query('select 1 from pg_database where datname = $1', [db]);
      if (exists.rowCount === 0) await client.query(`create database ${db}`);
    }
  } catch (error) {
    out.postgres = `unavailable: ${(error as Error).message}`;
  } finally {
    await client.end().catch(() => {});
  }
  return out;
}

function wardenInfo() {
  const commit = sh('git', ['rev-parse', '--short=12', 'HEAD']) || 'unknown';
  const dirty = sh('git', ['status', '--porcelain', '--', 'src'])
    .split('\n')
    .filter(Boolean)
    .map((l) => l.slice(3));
  return { commit, dirty };
}

/** The local service each peer needs; checked once before the peer is started. */
const NEEDS: Record<string, 'redis' | 'postgres'> = {
  bullmq: 'redis',
  'graphile-worker': 'postgres',
  'pg-boss': 'postgres',
};

function skipped(key: string, args: Args, why: string): SystemResult {
  const result = emptyResult(key, args);
  result.errors.push(`not run: ${why}`);
  return result;
}

function emptyResult(key: string, args: Args): SystemResult {
  return {
    key,
    name: LABELS[key] ?? key,
    backend: '',
    durability: '',
    settings: '',
    n: args.nFor[key] ?? args.n,
    runs: [],
    errors: [],
    elapsedSeconds: 0,
    deliveryOk: false,
    measuredRuns: 0,
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
      runs: args.runs,
      warmup: args.warmup,
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
          durability: m.durability,
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

async function measureAll(keys: string[], args: Args, tmpDir: string): Promise<SystemProcess[]> {
  const procs = keys.map((key) => new SystemProcess(key, args, tmpDir));
  await Promise.all(procs.map((p) => p.ready(120_000)));
  const commandLimit = args.runTimeoutS * 1000 + 150_000;
  const doRun = async (p: SystemProcess, warmup: boolean, label: string) => {
    if (!p.alive) return;
    const m = await p.request({ cmd: 'run', warmup }, commandLimit);
    if (m.type !== 'run') return;
    const r = m.result;
    p.result.runs.push(r);
    log(
      `  ${p.result.name} ${label}: ${r.throughput ? `${Math.round(r.throughput).toLocaleString('en-US')} tasks/s` : 'no throughput'}` +
        ` ${r.ok ? '✓' : `✗ ${r.error ?? ''}`}${r.anomalies.length ? ` [${r.anomalies.length} anomalies]` : ''} (load ${r.loadBefore})`,
    );
    if (r.setupFailed) p.kill(`cannot set up or start: ${r.error ?? '?'}`);
  };
  log(`warm-up (${args.warmup} run${args.warmup === 1 ? '' : 's'} each, excluded)`);
  for (const p of procs) for (let w = 0; w < args.warmup; w++) await doRun(p, true, 'warm-up');
  for (let r = 0; r < args.runs; r++) {
    log(`measured run ${r + 1}/${args.runs}`);
    // Interleaved, and the order rotates each round, so no system always runs first or last.
    for (let k = 0; k < procs.length; k++) {
      const p = procs[(k + r) % procs.length]!;
      await doRun(p, false, `run ${r + 1}/${args.runs}`);
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

function summarise(systems: SystemResult[], args: Args): void {
  for (const s of systems) {
    const measured = s.runs.filter((r) => !r.warmup);
    const tp = measured.map((r) => r.throughput).filter((x): x is number => x !== undefined);
    s.measuredRuns = tp.length;
    s.medianThroughput = median(tp);
    s.minThroughput = tp.length ? Math.min(...tp) : undefined;
    s.maxThroughput = tp.length ? Math.max(...tp) : undefined;
    if (s.latency && s.latency.samples > 0) {
      s.latencyP50 = percentile(s.latency.startMs, 50);
      s.latencyP99 = percentile(s.latency.startMs, 99);
      s.enqueueAckP50 = percentile(s.latency.enqueueMs, 50);
    }
    s.deliveryOk =
      s.errors.length === 0 &&
      s.runs.length === args.warmup + args.runs &&
      s.runs.every((r) => r.ok) &&
      (args.latencySamples === 0 || (s.latency?.ok ?? false));
  }
  const base = systems.find((s) => s.key === 'warden-fast')?.medianThroughput;
  for (const s of systems)
    if (base && s.medianThroughput !== undefined) s.ratioVsWardenFast = s.medianThroughput / base;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const loadStart = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  const tmpDir = join(benchDir, '.tmp', 'db');
  mkdirSync(tmpDir, { recursive: true });
  mkdirSync(args.out, { recursive: true });
  log(
    `queue benchmark${args.quick ? ' (quick)' : ''}: N=${args.n}, ${args.warmup} warm-up + ${args.runs} runs, concurrency ${args.concurrency}, ${args.latencySamples} latency samples`,
  );
  const services = await servicesInfo(args);
  log(`  ${services.redis}\n  ${services.postgres}`);
  const runnable: string[] = [];
  const notRun = new Map<string, SystemResult>();
  for (const key of args.systems) {
    const service = NEEDS[key];
    if (service && services[service]?.startsWith('unavailable')) {
      log(`${LABELS[key] ?? key}: skipped, ${service} is ${services[service]}`);
      notRun.set(key, skipped(key, args, `${service} ${services[service]}`));
    } else runnable.push(key);
  }
  const procs = await measureAll(runnable, args, tmpDir);
  const systems = args.systems.map(
    (key) => notRun.get(key) ?? procs.find((p) => p.result.key === key)!.result,
  );
  summarise(systems, args);
  const passthrough = process.argv.slice(2).join(' ');
  const report: Report = {
    generatedAt: new Date().toISOString(),
    command: `cd bench && npm run bench:queue${args.quick ? ':quick' : ''}  (node queue/run.ts${passthrough ? ` ${passthrough}` : ''})`,
    machine: {
      ...machineInfo(),
      loadStart,
      loadEnd: os
        .loadavg()
        .map((x) => x.toFixed(2))
        .join(' '),
    },
    services,
    versions: peerVersions(),
    warden: wardenInfo(),
    params: {
      n: args.n,
      runs: args.runs,
      warmup: args.warmup,
      concurrency: args.concurrency,
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
    `\nwrote ${relative(process.cwd(), join(args.out, 'queue.md'))}, queue.json and queue.png in ${Math.round(report.totalSeconds)} s`,
  );
}

main().catch((error: unknown) => {
  log(String((error as Error)?.stack ?? error));
  process.exit(1);
});
