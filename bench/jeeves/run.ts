/**
 * jeeves gRPC benchmark: agent-loop round trips per second from one client on loopback against
 * a real `warden serve` (embedded SQLite, the defaults), and the same number of durable steps
 * through ACP for comparison.
 *
 *   node jeeves/run.ts            (npm run bench:jeeves)
 *   node jeeves/run.ts --quick    smoke test → results/quick/
 *
 * Variants (bench/jeeves/grpc.ts and acp.ts say exactly what each does):
 *   grpc-original    GetNextInstruction after every ReportAgentResult, reply discarded
 *   grpc-follow      the next instruction taken from ReportAgentResult's reply
 *   acp-queued       runRemoteWorker: task.claim → task.complete of jobs queued ahead
 *   acp-chain        the same, each job submitting the next (task.submit → complete → claim)
 *   daemon-workflow  the same loop as noop stages run by the daemon itself (run.start → run.wait)
 *
 * Each round starts a fresh home and daemon and runs every variant once, in an order that
 * rotates from round to round; each variant runs `--warmup` steps (outside the clock) then
 * `--steps` timed steps. Then, unless `--profile 0`, one more daemon runs grpc-follow under
 * `node --cpu-prof` (not counted), summarised in the report.
 *
 * Options: --rounds R (default 5; quick 1), --steps N (600; quick 200), --warmup W (200; quick
 * 50), --variants a,b, --profile 0|1 (1; quick 0), --out DIR.
 */
import { fork } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';

import Database from 'better-sqlite3';

import { stepTaskId } from '../../src/kernel/process-ops.ts';
import { procCpuSeconds } from '../acp/daemon.ts';
import { parseFlags } from '../shared/cli.ts';
import { benchDir, loadAverage, machineInfo, wardenInfo } from '../shared/machine.ts';
import { runAcpWorker, runDaemonWorkflow, type StepRun } from './acp.ts';
import type { CountCommand, CountHostReady } from './count-host.ts';
import { initGrpcHome, startGrpcDaemon } from './daemon.ts';
import { connectOrchestration, type GrpcSessionResult, runGrpcSession } from './grpc.ts';
import { summariseProfile } from './profile.ts';
import {
  type JeevesReport,
  type LiveTasksProbe,
  type OkRound,
  renderJeeves,
  type Variant,
  type VariantRound,
  VARIANTS,
} from './report.ts';

const log = (line: string) => process.stderr.write(`${line}\n`);

function parseArgs(argv: string[]) {
  const f = parseFlags(argv);
  const variants = f.list('variants', VARIANTS) as Variant[];
  for (const v of variants) if (!VARIANTS.includes(v)) throw new Error(`unknown variant ${v}`);
  return {
    quick: f.quick,
    rounds: Math.max(1, f.num('rounds', f.quick ? 1 : 5)),
    steps: Math.max(10, f.num('steps', f.quick ? 200 : 600)),
    warmup: f.num('warmup', f.quick ? 50 : 200),
    variants,
    profile: f.num('profile', f.quick ? 0 : 1) > 0,
    out: resolve(benchDir, f.str('out', f.quick ? 'results/quick' : 'results')),
  };
}
type Args = ReturnType<typeof parseArgs>;

/** Step latencies kept in the JSON, rounded to µs. */
const round3 = (xs: readonly number[]) => xs.map((x) => Math.round(x * 1000) / 1000);

function fromGrpc(r: GrpcSessionResult): OkRound {
  return {
    ok: true,
    steps: r.steps,
    seconds: r.seconds,
    stepsPerSecond: r.stepsPerSecond,
    stepMs: round3(r.stepMs),
    reportMs: round3(r.reportMs),
    nextMs: round3(r.nextMs),
    clientCpuMsPerStep: (r.clientCpuSeconds * 1000) / r.steps,
    serverCpuMsPerStep: (r.serverCpuSeconds * 1000) / r.steps,
    envelopeBytes: r.envelopeBytes,
    checked: `every instruction the expected RUN_AGENT; the session counts ${r.hops.toLocaleString('en-US')} hops (one per turn)`,
  };
}

function fromStepRun(r: StepRun): OkRound {
  return {
    ok: true,
    steps: r.steps,
    seconds: r.seconds,
    stepsPerSecond: r.stepsPerSecond,
    stepMs: round3(r.stepMs),
    clientCpuMsPerStep: (r.clientCpuSeconds * 1000) / r.steps,
    serverCpuMsPerStep: (r.serverCpuSeconds * 1000) / r.steps,
    checked: r.checked,
  };
}

/**
 * How `ExternalSteps.#liveTasks` finds a run's outstanding step: a point read by the derived
 * task id, and the listing it falls back to (`store.listTasks`, src/store/sqlite's `#list`),
 * both timed on the round's database after its daemon stopped, for every run in it.
 */
function probeLiveTasks(dbFile: string): { points: LiveTasksProbe[]; plan: string[] } {
  const db = new Database(dbFile, { readonly: true });
  try {
    const runs = db
      .prepare(
        `SELECT process_id AS pid, count(*) AS tasks FROM tasks
         WHERE process_id IS NOT NULL GROUP BY process_id ORDER BY tasks`,
      )
      .all() as Array<{ pid: string; tasks: number }>;
    const sql = `SELECT * FROM tasks WHERE state IN (?, ?) AND process_id = ? ORDER BY created_at, id LIMIT ?`;
    const plan = runs[0]
      ? (
          db
            .prepare(`EXPLAIN QUERY PLAN ${sql}`)
            .all('queued', 'running', runs[0].pid, 1000) as Array<{ detail: string }>
        ).map((row) => row.detail)
      : [];
    // The fastest of 7 batches of 10 queries: other load on the machine only ever adds time.
    const list = db.prepare(sql);
    const point = db.prepare('SELECT * FROM tasks WHERE id = ?');
    const fastest = (query: () => unknown) => {
      const batches: number[] = [];
      for (let b = 0; b < 7; b++) {
        const t0 = performance.now();
        for (let i = 0; i < 10; i++) query();
        batches.push((performance.now() - t0) / 10);
      }
      return Math.min(...batches.slice(1));
    };
    const points = runs.map(({ pid, tasks }) => {
      const last = stepTaskId(pid, tasks);
      if (!point.get(last)) throw new Error(`no step task ${last}: are step task ids derived?`);
      return {
        tasks,
        ms: fastest(() => list.all('queued', 'running', pid, 1000)),
        pointMs: fastest(() => point.get(last)),
      };
    });
    return { points, plan };
  } finally {
    db.close();
  }
}

/** Where a variant runs: a daemon's gRPC and ACP addresses, and its CPU clock. */
interface Target {
  readonly grpcAddress: string;
  readonly acpUrl: string;
  readonly token: string;
  readonly serverCpu: () => number;
}

function targetOf(g: Awaited<ReturnType<typeof startGrpcDaemon>>): Target {
  return {
    grpcAddress: g.grpcAddress,
    acpUrl: g.daemon.acpUrl,
    token: g.daemon.token,
    serverCpu: () => procCpuSeconds(g.daemon.pid),
  };
}

async function runVariant(
  variant: Variant,
  target: Target,
  sizes: { warmup: number; steps: number },
  tag: string,
  mark?: (at: 'start' | 'end') => Promise<void>,
): Promise<OkRound> {
  const common = { ...sizes, serverCpu: target.serverCpu, ...(mark ? { mark } : {}) };
  const acp = { url: target.acpUrl, token: target.token };
  switch (variant) {
    case 'grpc-original':
    case 'grpc-follow': {
      const client = connectOrchestration(target.grpcAddress);
      try {
        const loop = variant === 'grpc-original' ? 'original' : 'follow';
        return fromGrpc(
          await runGrpcSession(client, { processId: `${tag}-${variant}`, loop, ...common }),
        );
      } finally {
        client.close();
      }
    }
    case 'acp-queued':
    case 'acp-chain':
      return fromStepRun(await runAcpWorker({ ...acp, variant, lane: 'default', ...common }));
    case 'daemon-workflow':
      return fromStepRun(await runDaemonWorkflow({ ...acp, ...common }));
  }
}

/** Store methods that take the write lock (bench copy of test/helpers/store-spy.ts's list). */
const WRITE_METHODS = new Set([
  'commit',
  'claimTasks',
  'heartbeat',
  'heartbeatTasks',
  'submitTasks',
  'settleTasks',
  'settleAndClaim',
  'fireSchedule',
  'deferSchedule',
  'prune',
  'deleteSession',
]);

/**
 * Methods that neither read nor write rows: listener registrations (a long-polling claim
 * registers one per call) and the WAL checkpoint.
 */
const NOT_QUERIES = new Set(['onCommit', 'watchChanges', 'checkpoint']);

function callKind(method: string): 'read' | 'write' | 'other' {
  if (WRITE_METHODS.has(method)) return 'write';
  return NOT_QUERIES.has(method) ? 'other' : 'read';
}

/**
 * Store calls per step of each variant, counted inside a daemon run by count-host.ts (no
 * timing: the counts do not depend on the machine's load). `steps` timed steps after `warmup`.
 */
async function countStoreCalls(
  args: Args,
  tmp: string,
  report: JeevesReport,
  sizes: { warmup: number; steps: number },
): Promise<void> {
  const home = join(tmp, 'count');
  initGrpcHome(home);
  const child = fork(join(benchDir, 'jeeves/count-host.ts'), [], {
    env: { ...process.env, WARDEN_HOME: home, NO_COLOR: '1' },
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  const next = <T>() =>
    new Promise<T>((resolve, reject) => {
      const onExit = (code: number | null) => reject(new Error(`count-host exited (${code})`));
      child.once('exit', onExit);
      child.once('message', (m) => {
        child.off('exit', onExit);
        resolve(m as T);
      });
    });
  const ready = await next<CountHostReady>();
  const target: Target = {
    grpcAddress: `127.0.0.1:${ready.grpcPort}`,
    acpUrl: `${ready.ready.replace(/^http/, 'ws')}/acp`,
    token: ready.token,
    serverCpu: () => 0,
  };
  const snapshot = async () => {
    const reply = next<{ counts: Record<string, number> }>();
    child.send({ cmd: 'counts' } satisfies CountCommand);
    return (await reply).counts;
  };
  try {
    for (const variant of args.variants) {
      let before: Record<string, number> = {};
      let after: Record<string, number> = {};
      await runVariant(variant, target, sizes, 'count', async (at) => {
        if (at === 'start') before = await snapshot();
        else after = await snapshot();
      });
      const perStep: Record<string, number> = {};
      for (const [method, n] of Object.entries(after)) {
        const d = n - (before[method] ?? 0);
        if (d > 0) perStep[method] = d / sizes.steps;
      }
      const sum = (kind: 'read' | 'write') =>
        Object.entries(perStep)
          .filter(([m]) => callKind(m) === kind)
          .reduce((acc, [, n]) => acc + n, 0);
      report.storeCalls[variant] = { perStep, reads: sum('read'), writes: sum('write') };
      log(
        `  store calls per step, ${variant}: ${sum('read').toFixed(1)} reads, ${sum('write').toFixed(1)} write transactions`,
      );
    }
  } finally {
    child.send({ cmd: 'stop' } satisfies CountCommand);
    await new Promise((resolve) => child.once('exit', resolve));
  }
}

async function profileRound(args: Args, tmp: string, report: JeevesReport): Promise<void> {
  const dir = join(tmp, 'cpu-prof');
  const g = await startGrpcDaemon(join(tmp, 'profile'), {
    nodeOptions: `--cpu-prof --cpu-prof-dir=${dir}`,
  });
  let run: GrpcSessionResult;
  const client = connectOrchestration(g.grpcAddress);
  try {
    run = await runGrpcSession(client, {
      processId: 'profile',
      loop: 'follow',
      warmup: args.warmup,
      steps: args.steps,
      serverCpu: () => procCpuSeconds(g.daemon.pid),
    });
  } finally {
    client.close();
    await g.daemon.stop(); // the profile is written at exit
  }
  // One file per thread: the main thread's is the large one (the other is the heartbeat
  // thread, which also checkpoints the WAL). Only the timed steps count: not start-up, not
  // the warm-up.
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => join(dir, f));
  const summaries = files
    .map((f) => summariseProfile(f, { top: 15, window: run.windowUs }))
    .sort((a, b) => b.busyMs - a.busyMs);
  const [main, ...others] = summaries;
  if (!main) throw new Error('no .cpuprofile was written');
  report.profile = {
    steps: run.steps,
    stepsPerSecond: run.stepsPerSecond,
    main,
    otherThreadsBusyMs: others.reduce((s, o) => s + o.busyMs, 0),
    otherThreadsTop: others.flatMap((o) => o.topSelf.slice(0, 3)),
  };
  log(
    `  profile: main thread busy ${main.busyMs.toFixed(0)} ms for ${run.steps} steps; top: ${main.byCaller
      .slice(0, 3)
      .map((r) => `${r.name} ${(r.share * 100).toFixed(0)}%`)
      .join(', ')}`,
  );
}

/** The npm command that reproduces this run (`--quick` is in the script's name). */
function commandLine(quick: boolean): string {
  const extra = process.argv.slice(2).filter((a) => a !== '--quick');
  return `cd bench && npm run bench:jeeves${quick ? ':quick' : ''}${extra.length ? ` -- ${extra.join(' ')}` : ''}`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const started = Date.now();
  const tmp = mkdtempSync(join(tmpdir(), 'warden-bench-jeeves-'));
  const report: JeevesReport = {
    generatedAt: new Date().toISOString(),
    command: commandLine(args.quick),
    machine: { ...machineInfo(), loadStart: loadAverage(), loadEnd: '' },
    warden: wardenInfo(),
    params: {
      rounds: args.rounds,
      steps: args.steps,
      warmup: args.warmup,
      variants: args.variants,
      quick: args.quick,
    },
    config: '',
    rounds: [],
    failures: [],
    liveTasks: [],
    liveTasksPlan: [],
    storeCalls: {},
    seconds: 0,
  };
  log(
    `jeeves: ${args.rounds} round(s) × ${args.variants.length} variants × ${args.steps} steps (+${args.warmup} warm-up); load ${report.machine.loadStart}`,
  );
  try {
    for (let r = 0; r < args.rounds; r++) {
      const home = join(tmp, `round-${r}`);
      const g = await startGrpcDaemon(home);
      report.config = g.config;
      const order = args.variants.map((_, k) => args.variants[(k + r) % args.variants.length]!);
      const round: Partial<Record<Variant, VariantRound>> = {};
      try {
        for (const variant of order) {
          try {
            const v = await runVariant(variant, targetOf(g), args, `r${r}`);
            round[variant] = v;
            log(
              `  round ${r + 1}/${args.rounds} ${variant}: ${v.stepsPerSecond.toFixed(0)} steps/s, server CPU ${v.serverCpuMsPerStep.toFixed(2)} ms/step`,
            );
          } catch (error) {
            const message = error instanceof Error ? error.message : String(error);
            report.failures.push(`round ${r + 1}, ${variant}: ${message}`);
            round[variant] = { ok: false, error: message };
            log(`  round ${r + 1}/${args.rounds} ${variant}: FAILED ${message}`);
          }
        }
      } finally {
        await g.daemon.stop();
      }
      report.rounds.push({ order, results: round });
      if (r === args.rounds - 1) {
        const probe = probeLiveTasks(join(home, 'warden.db'));
        report.liveTasks = probe.points;
        report.liveTasksPlan = probe.plan;
      }
      rmSync(home, { recursive: true, force: true });
    }
    await countStoreCalls(args, tmp, report, { warmup: 20, steps: 100 });
    if (args.profile) await profileRound(args, tmp, report);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  report.machine.loadEnd = loadAverage();
  report.seconds = (Date.now() - started) / 1000;
  mkdirSync(args.out, { recursive: true });
  writeFileSync(join(args.out, 'jeeves.json'), `${JSON.stringify(report, null, 2)}\n`);
  const md = renderJeeves(report);
  writeFileSync(join(args.out, 'jeeves.md'), md);
  process.stdout.write(md);
  log(
    `wrote ${relative(benchDir, join(args.out, 'jeeves.md'))} and jeeves.json in ${report.seconds.toFixed(0)} s`,
  );
  if (report.failures.length > 0) process.exitCode = 1;
}

await main();
