/**
 * Event append benchmark: how fast Warden appends events to its hash-chained, per-session log,
 * into one session and spread over many sessions, at several batch sizes (events per commit);
 * then how fast a session's log reads back, and a full ledger verification of what was written.
 *
 *   node events/run.ts            (npm run bench:events)
 *   node events/run.ts --quick    smoke test → results/quick/
 *
 * Options: --durability fast,strict (default both), --batches 1,100,1000, --sessions 1000
 * (the many-sessions scenario), --events E (per measurement, default 100000; quick 5000),
 * --max-commits M (caps E at B × M so batch 1 stays short, default 10000; quick 1000),
 * --in-flight 1 (commits outstanding at once; a list measures each), --runs R (default 5;
 * quick 1), --out DIR.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

import { parseFlags } from '../shared/cli.ts';
import { benchDir, loadAverage, machineInfo, wardenInfo } from '../shared/machine.ts';
import { spread } from '../shared/stats.ts';
import { measure, type MeasureResult, type Scenario } from './measure.ts';
import { type EventsCase, type EventsReport, renderEvents } from './report.ts';

const log = (line: string) => process.stderr.write(`${line}\n`);

function parseArgs(argv: string[]) {
  const f = parseFlags(argv);
  const nums = (name: string, fallback: number[]) =>
    f.list(name, fallback.map(String)).map((v) => {
      const x = Number(v);
      if (!Number.isInteger(x) || x < 1) throw new Error(`--${name} expects positive integers`);
      return x;
    });
  const durabilities = f.list('durability', ['fast', 'strict']);
  for (const d of durabilities)
    if (d !== 'fast' && d !== 'strict') throw new Error('--durability expects fast and/or strict');
  return {
    quick: f.quick,
    durabilities: durabilities as Array<'fast' | 'strict'>,
    batches: nums('batches', [1, 100, 1000]),
    sessions: f.num('sessions', 1000),
    events: f.num('events', f.quick ? 5_000 : 100_000),
    maxCommits: f.num('max-commits', f.quick ? 1_000 : 10_000),
    inFlight: nums('in-flight', [1]),
    runs: Math.max(1, f.num('runs', f.quick ? 1 : 5)),
    out: resolve(benchDir, f.str('out', f.quick ? 'results/quick' : 'results')),
  };
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const loadStart = loadAverage();
  const tmpDir = join(benchDir, '.tmp', 'events');
  mkdirSync(tmpDir, { recursive: true });
  mkdirSync(args.out, { recursive: true });
  const cases: EventsCase[] = [];
  for (const durability of args.durabilities)
    for (const scenario of ['one-session', 'many-sessions'] as Scenario[])
      for (const batch of args.batches)
        for (const inFlight of args.inFlight)
          cases.push({
            durability,
            scenario,
            sessions: scenario === 'one-session' ? 1 : args.sessions,
            batch,
            inFlight,
            events: Math.min(args.events, batch * args.maxCommits),
            results: [],
          });
  log(`events benchmark${args.quick ? ' (quick)' : ''}: ${cases.length} cases × ${args.runs} runs`);
  // Runs interleaved over the cases, so background load spreads over all of them.
  for (let r = 0; r < args.runs; r++) {
    log(`run ${r + 1}/${args.runs}`);
    for (const c of cases) {
      const result: MeasureResult = await measure({ ...c, tmpDir });
      c.results.push(result);
      log(
        `  ${c.durability} ${c.scenario} batch ${c.batch} in-flight ${c.inFlight}: ${result.ok ? `${Math.round(result.appendPerSecond!).toLocaleString('en-US')} events/s appended, replay ${Math.round(result.replayPerSecond!).toLocaleString('en-US')}/s, verify ok` : `✗ ${result.error}`}`,
      );
    }
  }
  for (const c of cases) {
    const ok = c.results.filter((x) => x.ok);
    c.append = spread(ok.map((x) => x.appendPerSecond!));
    c.replay = spread(ok.map((x) => x.replayPerSecond!));
    c.verifyPerSecond = spread(ok.map((x) => x.verifyEvents! / x.verifySeconds!));
  }
  const passthrough = process.argv.slice(2).join(' ');
  const report: EventsReport = {
    generatedAt: new Date().toISOString(),
    command: `cd bench && npm run bench:events${passthrough ? ` -- ${passthrough}` : ''}`,
    machine: { ...machineInfo(), loadStart, loadEnd: loadAverage() },
    warden: wardenInfo(),
    params: {
      quick: args.quick,
      runs: args.runs,
      sessions: args.sessions,
      events: args.events,
      maxCommits: args.maxCommits,
      batches: args.batches,
      inFlight: args.inFlight,
      durabilities: args.durabilities,
    },
    cases,
    totalSeconds: (performance.now() - t0) / 1000,
  };
  writeFileSync(join(args.out, 'events.json'), `${JSON.stringify(report, null, 2)}\n`);
  const md = renderEvents(report);
  writeFileSync(join(args.out, 'events.md'), md);
  process.stdout.write(md);
  log(
    `\nwrote ${relative(process.cwd(), join(args.out, 'events.md'))} and events.json in ${Math.round(report.totalSeconds)} s`,
  );
}

main().catch((error: unknown) => {
  log(String((error as Error)?.stack ?? error));
  process.exit(1);
});
