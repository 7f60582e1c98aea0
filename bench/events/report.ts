/** The events benchmark's markdown report. */
import type { MachineInfo } from '../shared/machine.ts';
import { wardenLine } from '../shared/machine.ts';
import { fmtInt, fmtIntSpread, type Spread } from '../shared/stats.ts';
import type { MeasureResult, Scenario } from './measure.ts';

export interface EventsCase {
  readonly durability: 'fast' | 'strict';
  readonly scenario: Scenario;
  readonly sessions: number;
  readonly batch: number;
  readonly inFlight: number;
  readonly events: number;
  readonly results: MeasureResult[];
  append?: Spread;
  replay?: Spread;
  verifyPerSecond?: Spread;
}

export interface EventsReport {
  readonly generatedAt: string;
  readonly command: string;
  readonly machine: MachineInfo;
  readonly warden: { commit: string; dirty: string[] };
  readonly params: {
    quick: boolean;
    runs: number;
    sessions: number;
    events: number;
    maxCommits: number;
    batches: number[];
    inFlight: number[];
    durabilities: string[];
  };
  readonly cases: EventsCase[];
  readonly totalSeconds: number;
}

export function renderEvents(r: EventsReport): string {
  const p = r.params;
  const m = r.machine;
  const L: string[] = [];
  L.push('# Event append benchmark: the hash-chained session log');
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
    `- **Append:** \`Store.commit\` with \`event\` ops (type \`task.progress\`, data \`{ k, pad: 'x'.repeat(64) }\`): each event gets its session's next seq and hash-chain link inside the commit. B events per commit (the batch column), K commits outstanding at once (in-flight). E events per measurement: ${fmtInt(p.events)}, capped at B × ${fmtInt(p.maxCommits)} commits. Sessions are created beforehand through \`kernel.sessions.ensure\`, outside the clock.`,
  );
  L.push(
    `- **Scenarios:** *one session* — every event into the same session; *${fmtInt(p.sessions)} sessions* — event k goes to session k mod ${fmtInt(p.sessions)}, so a commit of B events touches min(B, ${fmtInt(p.sessions)}) sessions.`,
  );
  L.push(
    "- **Replay** = every session's log read back from its start with `Store.readEvents`, in pages of 10,000 (the largest page it allows), session after session; events (including each session's `session.created`) per second. With many sessions each log is short, so the per-call cost weighs more. **Verify** = `verifyLedger(store)` (what `warden ledger verify` runs) over every session of the database, events checked per second.",
  );
  L.push(
    `- Every measurement opens a fresh database and deletes it afterwards; ${p.runs} run${p.runs === 1 ? '' : 's'} per case, interleaved over the cases; median (IQR p25–p75).`,
  );
  L.push('');
  L.push(
    '| Durability | Scenario | Batch (events / commit) | In flight | Events | Append events/s, median (IQR) | Replay events/s, median (IQR) | Verify events/s, median | Ledger verify | Runs |',
  );
  L.push('|---|---|--:|--:|--:|--:|--:|--:|:-:|--:|');
  for (const c of r.cases) {
    const ok = c.results.filter((x) => x.ok).length;
    const verified = c.results.every((x) => x.verifyOk);
    L.push(
      `| ${c.durability} | ${c.scenario === 'one-session' ? 'one session' : `${fmtInt(c.sessions)} sessions`} | ${fmtInt(c.batch)} | ${c.inFlight} | ${fmtInt(c.events)} | ${fmtIntSpread(c.append)} | ${fmtIntSpread(c.replay)} | ${fmtInt(c.verifyPerSecond?.median)} | ${verified ? '✓ passed' : '✗ FAILED'} | ${ok}/${c.results.length} |`,
    );
  }
  L.push('');
  const failed = r.cases.flatMap((c) =>
    c.results
      .filter((x) => !x.ok)
      .map((x) => `${c.durability} ${c.scenario} batch ${c.batch}: ${x.error ?? '?'}`),
  );
  L.push('## Failures');
  L.push('');
  L.push(
    failed.length
      ? failed.map((f) => `- ${f}`).join('\n')
      : 'None: every measurement appended, replayed and verified.',
  );
  L.push('');
  L.push('Raw numbers: `events.json`. How to run and read this: `bench/README.md`.');
  L.push('');
  return L.join('\n');
}
