/** The steps benchmark's markdown report. */
import type { MachineInfo } from '../shared/machine.ts';
import { wardenLine } from '../shared/machine.ts';
import { fmtMs, fmtRatio, type Spread } from '../shared/stats.ts';
import type { RoundResult } from './child.ts';
import type { ResumeResult } from './resume-test.ts';

export interface StepsSystemResult {
  readonly key: string;
  name: string;
  durability: string;
  synchronous: string;
  settings: string;
  readonly rounds: RoundResult[];
  readonly resume: ResumeResult[];
  readonly errors: string[];
  perStep?: Spread;
  graphRunP50?: number;
  graphRunP99?: number;
  pairedWith?: string;
  /** This system's median per-step overhead ÷ that of the Warden mode with the same durability. */
  ratioVsPaired?: number;
  resumeWallMs?: number;
  resumeInProcessMs?: number;
  resumeOpenMs?: number;
  resumeLoadMs?: number;
}

export interface StepsReport {
  readonly generatedAt: string;
  readonly command: string;
  readonly machine: MachineInfo;
  readonly warden: { commit: string; dirty: string[] };
  readonly versions: Record<string, string>;
  readonly params: {
    stages: number;
    killAt: number;
    runs: number;
    graphRuns: number;
    warmup: number;
    resumeReps: number;
    quick: boolean;
  };
  readonly systems: StepsSystemResult[];
  readonly totalSeconds: number;
}

const esc = (s: string) => s.replace(/\|/g, '\\|');

export function renderSteps(r: StepsReport): string {
  const p = r.params;
  const m = r.machine;
  const L: string[] = [];
  L.push('# Workflow step benchmark: durable linear graph, no-op nodes');
  L.push('');
  L.push(
    `Generated ${r.generatedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}${p.quick ? ' — **quick smoke run, not for comparison**' : ''}, in ${Math.round(r.totalSeconds)} s.`,
  );
  L.push('');
  L.push(
    `- **Machine:** ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}; Node ${m.node}`,
  );
  L.push(`- **Load average** at start: ${m.loadStart}; at end: ${m.loadEnd}`);
  L.push(`- **Warden:** ${wardenLine(r.warden)}`);
  L.push(`- **Command:** \`${r.command}\``);
  L.push(
    `- **Workload:** a graph of ${p.stages} nodes in a line (s0 → … → s${p.stages - 1} → end); each node calls a no-op function and returns a tiny output, so the time is orchestration and persistence. Every step is durable before the next starts (Warden: the step is claimed, run and settled through the store; LangGraph: \`durability: 'sync'\`).`,
  );
  L.push(
    `- **Per-step overhead** = wall time of ${p.graphRuns} graph runs one after the other ÷ (${p.graphRuns} × ${p.stages}); one value per round, ${p.warmup} warm-up round (excluded) + ${p.runs} measured rounds per system, each on a fresh database, systems interleaved in a rotating order, each in its own process. Median, IQR (p25–p75) and min–max over the rounds; graph-run p50 / p99 over every measured graph run.`,
  );
  L.push(
    '- **Equal durability:** the ratio compares each LangGraph variant with the Warden mode whose SQLite `synchronous` setting is the same (read back from the connection: see the durability column).',
  );
  L.push('');
  L.push(
    '| System | Durability | Per-step overhead, median (ms) | IQR (ms) | Min – max (ms) | Graph run p50 / p99 (ms) | vs Warden, same durability | Rounds |',
  );
  L.push('|---|---|--:|--:|--:|--:|--:|--:|');
  for (const s of r.systems) {
    const ps = s.perStep;
    const ok = s.rounds.filter((x) => !x.warmup && x.ok).length;
    L.push(
      `| **${esc(s.name)}** | ${esc(s.durability || '–')} | ${ps ? fmtMs(ps.median) : '**failed**'} | ${ps ? `${fmtMs(ps.p25)} – ${fmtMs(ps.p75)}` : '–'} | ${ps ? `${fmtMs(ps.min)} – ${fmtMs(ps.max)}` : '–'} | ${fmtMs(s.graphRunP50)} / ${fmtMs(s.graphRunP99)} | ${s.ratioVsPaired === undefined ? '–' : `${fmtRatio(s.ratioVsPaired)} ${esc(s.pairedWith ?? '')}`} | ${ok}/${p.runs} |`,
    );
  }
  L.push('');
  L.push('## Resume after SIGKILL');
  L.push('');
  L.push(
    `A graph run is started in a child process, which is SIGKILLed while node s${p.killAt} is executing (after the node's side effect, before its step is recorded). A fresh process then opens the same database and drives the run to completion. Every node execution appends a line to a counter file; re-executed = executions − ${p.stages}. ${p.resumeReps} repetition${p.resumeReps === 1 ? '' : 's'} per system, medians.`,
  );
  L.push('');
  L.push(
    '| System | Resume process, spawn → exit (ms) | Loading modules (ms) | Open → finished (ms) | of which opening (ms) | Nodes re-executed | Passed |',
  );
  L.push('|---|--:|--:|--:|--:|--:|--:|');
  for (const s of r.systems) {
    const ok = s.resume.filter((x) => x.ok);
    const re = [
      ...new Set(
        s.resume.map(
          (x) =>
            `${x.reexecuted}${x.reexecutedNodes.length ? ` (s${x.reexecutedNodes.join(', s')})` : ''}`,
        ),
      ),
    ];
    L.push(
      `| **${esc(s.name)}** | ${fmtMs(s.resumeWallMs)} | ${fmtMs(s.resumeLoadMs)} | ${fmtMs(s.resumeInProcessMs)} | ${fmtMs(s.resumeOpenMs)} | ${re.join('; ') || '–'} | ${ok.length}/${s.resume.length} |`,
    );
  }
  L.push('');
  L.push(
    "The resume process's wall time includes starting Node and loading the system's modules (shown apart; Warden's TypeScript sources are type-stripped as they load). \"Open → finished\" starts after loading: opening is the store, kernel, lease recovery and worker start for Warden, the connection and checkpointer (and compiling the graph) for LangGraph; then the re-executed node and the nine after it.",
  );
  L.push('');
  L.push('## Settings');
  L.push('');
  for (const s of r.systems) L.push(`- **${s.name}**: ${s.settings || '–'}`);
  L.push('');
  L.push(
    `Versions: ${Object.entries(r.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(' · ')}`,
  );
  L.push('');
  const problems = r.systems.filter(
    (s) => s.errors.length || s.rounds.some((x) => !x.ok) || s.resume.some((x) => !x.ok),
  );
  L.push('## Failures');
  L.push('');
  if (!problems.length) L.push('None: every round and every resume test passed its checks.');
  for (const s of problems) {
    L.push(`- **${s.name}**`);
    for (const e of s.errors) L.push(`  - ${esc(e)}`);
    for (const x of s.rounds)
      if (!x.ok) L.push(`  - ${x.warmup ? 'warm-up' : 'round'}: ${esc(x.error ?? '?')}`);
    for (const x of s.resume) if (!x.ok) L.push(`  - resume: ${esc(x.error ?? '?')}`);
  }
  L.push('');
  L.push('Raw numbers: `steps.json`. How to run and read this: `bench/README.md`.');
  L.push('');
  return L.join('\n');
}
