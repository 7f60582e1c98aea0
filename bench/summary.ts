/**
 * Combines the four result files of one directory (queue.json, cross-process.json, steps.json,
 * events.json) into summary.md: the issue's targets with the measured values, and the headline
 * rows of each benchmark, the cross-process wake-up included with the queue rows.
 *
 *   node summary.ts [--out DIR]     (default results/; --quick: results/quick/)
 *
 * all.ts calls it after running the benchmarks; run it alone to rebuild the summary.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import type { EventsReport } from './events/report.ts';
import type { Report as QueueReport } from './queue/run.ts';
import { parseFlags } from './shared/cli.ts';
import { benchDir } from './shared/machine.ts';
import { fmtInt, fmtMs, fmtRatio, fmtSmall } from './shared/stats.ts';
import type { StepsReport } from './steps/report.ts';

interface CrossProcess {
  readonly generated_at: string;
  readonly quick?: boolean;
  readonly warden?: { commit: string; dirty: string[] };
  readonly durability: string;
  readonly samples: number;
  readonly idle_write_transactions: number;
  readonly submit_to_start_ms: { p50?: number; p90?: number; p99?: number; max?: number };
}

function load<T>(dir: string, file: string): T | undefined {
  const path = join(dir, file);
  return existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : undefined;
}

const when = (iso: string | undefined) =>
  iso ? iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC') : '–';

/** A target row: what was asked, what was measured, whether it holds. */
function target(
  L: string[],
  what: string,
  measured: number | undefined,
  text: string,
  ok: (x: number) => boolean,
  source: string,
) {
  const verdict = measured === undefined ? 'not measured' : ok(measured) ? '✓ met' : '✗ not met';
  L.push(`| ${what} | ${text} | ${verdict} | ${source} |`);
}

export function renderSummary(dir: string): string {
  const queue = load<QueueReport>(dir, 'queue.json');
  const xproc = load<CrossProcess>(dir, 'cross-process.json');
  const steps = load<StepsReport>(dir, 'steps.json');
  const events = load<EventsReport>(dir, 'events.json');
  const L: string[] = [];
  L.push('# Benchmark summary');
  L.push('');
  L.push(`Built ${when(new Date().toISOString())} from the result files in this directory:`);
  L.push('');
  const commit = (w: { commit: string; dirty: string[] } | undefined) =>
    w ? `, Warden \`${w.commit}\`${w.dirty.length ? ' + uncommitted src/ changes' : ''}` : '';
  for (const [file, at, quick, w] of [
    ['queue.md', queue?.generatedAt, queue?.params.quick, queue?.warden],
    ['cross-process.json', xproc?.generated_at, xproc?.quick, xproc?.warden],
    ['steps.md', steps?.generatedAt, steps?.params.quick, steps?.warden],
    ['events.md', events?.generatedAt, events?.params.quick, events?.warden],
  ] as const)
    L.push(
      `- \`${file}\`: ${at ? `${when(at)}${commit(w)}${quick ? ' (**quick smoke run, not for comparison**)' : ''}` : 'missing'}`,
    );
  const machine = queue?.machine ?? steps?.machine ?? events?.machine;
  if (machine) L.push(`- Machine: ${machine.cpu}, ${machine.cores} cores, Node ${machine.node}`);
  L.push('');

  const sys = (key: string) => queue?.systems.find((s) => s.key === key);
  // Result files from before the mixed/pre-filled split only have medianThroughput.
  const mixed = (s: { mixed?: { median: number }; medianThroughput?: number } | undefined) =>
    s?.mixed?.median ?? s?.medianThroughput;
  const fast = sys('warden-fast');
  const strict = sys('warden-strict');
  const peers = (queue?.systems ?? []).filter(
    (s) => !s.key.startsWith('warden') && mixed(s) !== undefined,
  );
  const best = peers.reduce<(typeof peers)[number] | undefined>(
    (b, s) => (!b || mixed(s)! > mixed(b)! ? s : b),
    undefined,
  );
  const stepFast = steps?.systems.find((s) => s.key === 'warden-fast');
  const lgSame = steps?.systems.find(
    (s) => !s.key.startsWith('warden') && s.pairedWith === stepFast?.name,
  );

  L.push('## Targets');
  L.push('');
  L.push('| Target | Measured | Verdict | Source |');
  L.push('|---|---|:-:|---|');
  target(
    L,
    'Warden `fast` ≥ 50,000 tasks/s',
    mixed(fast),
    `${fmtInt(mixed(fast))} tasks/s mixed (consumer-only ${fmtInt(fast?.consumeOnly?.median)})`,
    (x) => x >= 50_000,
    'queue.md',
  );
  const vsBest = mixed(fast) !== undefined && best ? mixed(fast)! / mixed(best)! : undefined;
  target(
    L,
    'Warden `fast` ≥ 2× the best peer',
    vsBest,
    `${fmtRatio(vsBest)}${best ? ` of ${best.name} (${fmtInt(mixed(best))} tasks/s)` : ''}`,
    (x) => x >= 2,
    'queue.md, mixed medians',
  );
  target(
    L,
    'Warden `strict` ≥ 25,000 tasks/s',
    mixed(strict),
    `${fmtInt(mixed(strict))} tasks/s mixed`,
    (x) => x >= 25_000,
    'queue.md',
  );
  target(
    L,
    'Idle in-process start p99 ≤ 2 ms',
    fast?.latencyP99,
    `${fmtMs(fast?.latencyP99)} ms (fast), ${fmtMs(strict?.latencyP99)} ms (strict)`,
    (x) => x <= 2,
    'queue.md, idle latency',
  );
  target(
    L,
    'Idle cross-process start p99 ≤ 5 ms',
    xproc?.submit_to_start_ms.p99,
    `${fmtMs(xproc?.submit_to_start_ms.p99)} ms`,
    (x) => x <= 5,
    'cross-process.json',
  );
  target(
    L,
    'Workflow step overhead ≤ 0.5 ms',
    stepFast?.perStep?.median,
    `${fmtMs(stepFast?.perStep?.median)} ms per step (fast)`,
    (x) => x <= 0.5,
    'steps.md',
  );
  target(
    L,
    'Step overhead ≥ 5× better than LangGraph',
    lgSame?.ratioVsPaired,
    `${fmtRatio(lgSame?.ratioVsPaired)} (${lgSame?.name ?? 'LangGraph'} ÷ Warden fast, same synchronous)`,
    (x) => x >= 5,
    'steps.md',
  );
  L.push('');

  if (queue) {
    L.push('## Queue (median tasks/s; CPU-s per 1,000 tasks incl. server processes)');
    L.push('');
    L.push(
      '| System | Mixed | Consumer-only | Enqueue-only | CPU-s / 1k (mixed) | Idle start p50 / p99 (ms) | Delivery |',
    );
    L.push('|---|--:|--:|--:|--:|--:|:-:|');
    for (const s of queue.systems)
      L.push(
        `| ${s.name}${s.n !== queue.params.n ? ` ⚠ N=${fmtInt(s.n)}` : ''} | ${fmtInt(mixed(s))} | ${fmtInt(s.consumeOnly?.median)} | ${fmtInt(s.enqueueOnly?.median)} | ${fmtSmall(s.cpu?.mixed?.total)} | ${s.latencyP50 === undefined ? '–' : `${fmtMs(s.latencyP50)} / ${fmtMs(s.latencyP99)}`} | ${s.deliveryOk ? '✓' : '✗'} |`,
      );
    if (xproc)
      L.push(
        `| Warden (${xproc.durability}), cross-process wake-up | | | | | ${fmtMs(xproc.submit_to_start_ms.p50)} / ${fmtMs(xproc.submit_to_start_ms.p99)} | ${xproc.samples} samples, ${xproc.idle_write_transactions} idle writes |`,
      );
    L.push('');
    L.push(
      `N = ${fmtInt(queue.params.n)}, ${queue.params.runs} measured runs per mode, concurrency ${queue.params.concurrency}. Full table, IQR, durability read back and equal-footing rules: \`queue.md\`.`,
    );
    L.push('');
  }
  if (steps) {
    L.push('## Workflow steps (20-stage no-op graph, durable per step)');
    L.push('');
    L.push(
      '| System | Per-step overhead, median (ms) | vs Warden, same durability | Resume after kill: process / in-process (ms) | Nodes re-executed |',
    );
    L.push('|---|--:|--:|--:|--:|');
    for (const s of steps.systems)
      L.push(
        `| ${s.name} | ${fmtMs(s.perStep?.median)} | ${s.ratioVsPaired === undefined ? '–' : `${fmtRatio(s.ratioVsPaired)} ${s.pairedWith ?? ''}`} | ${fmtMs(s.resumeWallMs)} / ${fmtMs(s.resumeInProcessMs)} | ${[...new Set(s.resume.map((x) => x.reexecuted))].join(', ') || '–'} |`,
      );
    L.push('');
  }
  if (events) {
    L.push('## Event log (append events/s, median; ledger verified after each measurement)');
    L.push('');
    L.push('| Durability | Scenario | Batch | Append | Replay | Verify |');
    L.push('|---|---|--:|--:|--:|:-:|');
    for (const c of events.cases)
      L.push(
        `| ${c.durability} | ${c.scenario === 'one-session' ? 'one session' : `${fmtInt(c.sessions)} sessions`} | ${fmtInt(c.batch)}${c.inFlight > 1 ? ` × ${c.inFlight} in flight` : ''} | ${fmtInt(c.append?.median)} | ${fmtInt(c.replay?.median)} | ${c.results.every((x) => x.verifyOk) ? '✓' : '✗'} |`,
      );
    L.push('');
  }
  L.push('');
  return L.join('\n');
}

// Run directly (not imported by all.ts).
if (process.argv[1] && resolve(process.argv[1]) === import.meta.filename) {
  const f = parseFlags(process.argv.slice(2));
  const dir = resolve(benchDir, f.str('out', f.quick ? 'results/quick' : 'results'));
  writeFileSync(join(dir, 'summary.md'), renderSummary(dir));
  process.stderr.write(`wrote ${join(dir, 'summary.md')}\n`);
}
