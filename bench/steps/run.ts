/**
 * Workflow step benchmark: the per-step overhead of a durable 20-stage linear graph whose nodes
 * do nothing, on Warden (fast and strict) and on LangGraph JS with its SQLite checkpointer
 * (durability 'sync'; its connection as it comes, and with synchronous=FULL to match Warden strict),
 * then the cost of resuming a run after its process was SIGKILLed mid-node.
 *
 *   node steps/run.ts            (npm run bench:steps)
 *   node steps/run.ts --quick    smoke test → results/quick/
 *
 * Options: --runs R (measured rounds per system, default 10; quick 2), --graph-runs G (graph
 * runs per round, default 50; quick 5), --warmup W (default 1), --resume-reps K (crash/resume
 * repetitions per system, default 5; quick 1), --systems a,b, --out DIR.
 *
 * Each system is measured in its own process; rounds are interleaved across systems in a
 * rotating order, like the queue benchmark. A round opens a fresh database, runs G graphs one
 * after the other (timed), verifies every run completed all 20 stages and each node ran exactly
 * once, and deletes the database.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { parseFlags } from '../shared/cli.ts';
import {
  benchDir,
  loadAverage,
  machineInfo,
  packageVersion,
  wardenInfo,
} from '../shared/machine.ts';
import { median, percentile, spread } from '../shared/stats.ts';
import type { MeasureConfig, RoundResult, StepsCommand, StepsMessage } from './child.ts';
import { KILL_AT, STAGES } from './graph.ts';
import { renderSteps, type StepsReport, type StepsSystemResult } from './report.ts';
import { resumeAfterKill } from './resume-test.ts';
import { STEP_SYSTEMS } from './systems.ts';

const here = dirname(fileURLToPath(import.meta.url));
const log = (line: string) => process.stderr.write(`${line}\n`);

function parseArgs(argv: string[]) {
  const f = parseFlags(argv);
  const known = Object.keys(STEP_SYSTEMS);
  const systems = f.list('systems', known);
  for (const s of systems) if (!known.includes(s)) throw new Error(`unknown system ${s}`);
  return {
    quick: f.quick,
    runs: f.num('runs', f.quick ? 2 : 10),
    graphRuns: Math.max(1, f.num('graph-runs', f.quick ? 5 : 50)),
    warmup: f.num('warmup', 1),
    resumeReps: f.num('resume-reps', f.quick ? 1 : 5),
    systems,
    out: resolve(benchDir, f.str('out', f.quick ? 'results/quick' : 'results')),
  };
}
type Args = ReturnType<typeof parseArgs>;

/** One measuring process per system. */
class Measurer {
  readonly result: StepsSystemResult;
  readonly #child: ChildProcess;
  #next: ((m: StepsMessage) => void) | null = null;
  readonly ready: Promise<void>;
  alive = true;

  constructor(key: string, cfg: MeasureConfig) {
    this.result = {
      key,
      name: key,
      durability: '',
      synchronous: '',
      settings: '',
      rounds: [],
      resume: [],
      errors: [],
    };
    this.#child = fork(join(here, 'child.ts'), ['measure', key, JSON.stringify(cfg)], {
      cwd: benchDir,
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    let markReady: () => void = () => {};
    this.ready = new Promise((r) => (markReady = r));
    this.#child.on('message', (m: StepsMessage) => {
      if (m.type === 'info') {
        const { name, durability, synchronous, settings } = m;
        Object.assign(this.result, { name, durability, synchronous, settings });
      } else if (m.type === 'ready') markReady();
      else if (m.type === 'fatal') {
        this.#fail(m.error);
        markReady();
      } else {
        const w = this.#next;
        this.#next = null;
        w?.(m);
      }
    });
    this.#child.on('exit', (code, signal) => {
      if (this.alive) this.#fail(`the measuring process exited (code ${code}, signal ${signal})`);
      markReady();
    });
  }

  #fail(error: string) {
    if (!this.alive) return;
    this.alive = false;
    this.result.errors.push(error);
    log(`  ${this.result.name} failed: ${error}`);
    const w = this.#next;
    this.#next = null;
    w?.({ type: 'fatal', error });
  }

  async round(warmup: boolean, timeoutMs: number): Promise<RoundResult | undefined> {
    if (!this.alive) return undefined;
    const answer = new Promise<StepsMessage>((r) => (this.#next = r));
    const timer = setTimeout(() => {
      this.#fail(`round took longer than ${timeoutMs / 1000} s: killed`);
      this.#child.kill('SIGKILL');
    }, timeoutMs);
    this.#child.send({ cmd: 'round', warmup } satisfies StepsCommand);
    const m = await answer;
    clearTimeout(timer);
    return m.type === 'round' ? m.result : undefined;
  }

  exit() {
    if (this.alive) this.#child.send({ cmd: 'exit' } satisfies StepsCommand);
    this.alive = false;
  }
}

async function measureOverhead(args: Args, tmpDir: string): Promise<StepsSystemResult[]> {
  const cfg: MeasureConfig = { graphRuns: args.graphRuns, tmpDir };
  const procs = args.systems.map((key) => new Measurer(key, cfg));
  await Promise.all(procs.map((p) => p.ready));
  const timeoutMs = 600_000;
  const doRound = async (p: Measurer, warmup: boolean, label: string) => {
    const r = await p.round(warmup, timeoutMs);
    if (!r) return;
    p.result.rounds.push(r);
    log(
      `  ${p.result.name} ${label}: ${r.ok ? `${r.perStepMs!.toFixed(3)} ms/step (${args.graphRuns} graph runs in ${r.seconds!.toFixed(2)} s) ✓` : `✗ ${r.error}`}`,
    );
  };
  log(`warm-up (${args.warmup} round${args.warmup === 1 ? '' : 's'} each, excluded)`);
  for (const p of procs) for (let w = 0; w < args.warmup; w++) await doRound(p, true, 'warm-up');
  for (let r = 0; r < args.runs; r++) {
    log(`round ${r + 1}/${args.runs}`);
    for (let k = 0; k < procs.length; k++)
      await doRound(procs[(k + r) % procs.length]!, false, `round ${r + 1}`);
  }
  for (const p of procs) p.exit();
  return procs.map((p) => p.result);
}

function summarise(systems: StepsSystemResult[]): void {
  for (const s of systems) {
    const measured = s.rounds.filter((r) => !r.warmup && r.ok);
    s.perStep = spread(measured.map((r) => r.perStepMs!));
    const runMs = measured.flatMap((r) => r.runMs ?? []);
    s.graphRunP50 = percentile(runMs, 50);
    s.graphRunP99 = percentile(runMs, 99);
    const resumed = s.resume.filter((r) => r.ok);
    s.resumeWallMs = median(resumed.map((r) => r.wallMs!));
    s.resumeInProcessMs = median(resumed.map((r) => r.inProcessMs!));
    s.resumeOpenMs = median(resumed.map((r) => r.openMs!));
    s.resumeLoadMs = median(resumed.map((r) => r.loadMs!));
  }
  // Each peer is compared with the Warden mode of the same SQLite synchronous setting.
  for (const s of systems) {
    if (s.key.startsWith('warden')) continue;
    const warden = systems.find(
      (x) => x.key.startsWith('warden') && x.synchronous === s.synchronous,
    );
    if (warden?.perStep && s.perStep) {
      s.pairedWith = warden.name;
      s.ratioVsPaired = s.perStep.median / warden.perStep.median;
    }
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const loadStart = loadAverage();
  const tmpDir = join(benchDir, '.tmp', 'steps');
  mkdirSync(tmpDir, { recursive: true });
  mkdirSync(args.out, { recursive: true });
  log(
    `steps benchmark${args.quick ? ' (quick)' : ''}: ${STAGES} no-op stages, ${args.warmup} warm-up + ${args.runs} rounds × ${args.graphRuns} graph runs, ${args.resumeReps} resume-after-kill repetitions`,
  );
  const systems = await measureOverhead(args, tmpDir);
  if (args.resumeReps > 0) {
    log(`resume after SIGKILL at node ${KILL_AT}`);
    for (let rep = 0; rep < args.resumeReps; rep++)
      for (const s of systems) {
        const r = await resumeAfterKill(s.key, tmpDir, rep);
        s.resume.push(r);
        log(
          `  ${s.name} #${rep + 1}: ${r.ok ? `resume process ${r.wallMs!.toFixed(0)} ms (in-process ${r.inProcessMs!.toFixed(1)} ms), ${r.reexecuted} node(s) re-executed${r.reexecutedNodes.length ? ` [${r.reexecutedNodes.join(', ')}]` : ''} ✓` : `✗ ${r.error}`}`,
        );
      }
  }
  summarise(systems);
  const passthrough = process.argv.slice(2).join(' ');
  const report: StepsReport = {
    generatedAt: new Date().toISOString(),
    command: `cd bench && npm run bench:steps${passthrough ? ` -- ${passthrough}` : ''}`,
    machine: { ...machineInfo(), loadStart, loadEnd: loadAverage() },
    warden: wardenInfo(),
    versions: {
      '@langchain/langgraph': packageVersion('@langchain/langgraph'),
      '@langchain/langgraph-checkpoint-sqlite': packageVersion(
        '@langchain/langgraph-checkpoint-sqlite',
      ),
      '@langchain/core': packageVersion('@langchain/core'),
      'better-sqlite3': packageVersion('better-sqlite3'),
    },
    params: {
      stages: STAGES,
      killAt: KILL_AT,
      runs: args.runs,
      graphRuns: args.graphRuns,
      warmup: args.warmup,
      resumeReps: args.resumeReps,
      quick: args.quick,
    },
    systems,
    totalSeconds: (performance.now() - t0) / 1000,
  };
  writeFileSync(join(args.out, 'steps.json'), `${JSON.stringify(report, null, 2)}\n`);
  const md = renderSteps(report);
  writeFileSync(join(args.out, 'steps.md'), md);
  process.stdout.write(md);
  log(
    `\nwrote ${relative(process.cwd(), join(args.out, 'steps.md'))} and steps.json in ${Math.round(report.totalSeconds)} s`,
  );
}

main().catch((error: unknown) => {
  log(String((error as Error)?.stack ?? error));
  process.exit(1);
});
