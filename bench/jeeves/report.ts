/** The jeeves benchmark's markdown report (results/jeeves.md). */
import type { MachineInfo } from '../shared/machine.ts';
import { wardenLine } from '../shared/machine.ts';
import {
  fmtInt,
  fmtIntSpread,
  fmtMs,
  fmtRatio,
  median,
  percentile,
  type Spread,
  spread,
} from '../shared/stats.ts';
import type { ProfileRow, ProfileSummary } from './profile.ts';

export const VARIANTS = [
  'grpc-original',
  'grpc-follow',
  'acp-queued',
  'acp-chain',
  'daemon-workflow',
] as const;
export type Variant = (typeof VARIANTS)[number];

/** What each variant is, for the table. */
const ABOUT: Record<Variant, { name: string; calls: string; what: string }> = {
  'grpc-original': {
    name: 'gRPC, original loop',
    calls: '2 (ReportAgentResult, GetNextInstruction)',
    what: "jeeves `PipelineWorker` as the original client runs it: ReportAgentResult's reply discarded, GetNextInstruction after every report",
  },
  'grpc-follow': {
    name: 'gRPC, reply-following loop',
    calls: '1 (ReportAgentResult)',
    what: "the next instruction taken from ReportAgentResult's reply",
  },
  'acp-queued': {
    name: 'ACP remote worker, jobs queued ahead',
    calls: '2 (task.complete, task.claim)',
    what: '`runRemoteWorker` (warden/client), concurrency 1, running jobs that were all submitted before the clock',
  },
  'acp-chain': {
    name: 'ACP remote worker, each job submits the next',
    calls: '3 (task.submit, task.complete, task.claim)',
    what: 'the same worker; each handler submits the next job before it returns, so every step creates the next durable step',
  },
  'daemon-workflow': {
    name: 'Daemon-run workflow (noop stages)',
    calls: '0 per step (run.start, run.wait once)',
    what: 'the same two-stage loop as `noop` stages, run by the daemon’s own step workers',
  },
};

export type VariantRound =
  | {
      readonly ok: true;
      readonly steps: number;
      readonly seconds: number;
      readonly stepsPerSecond: number;
      /** Per measured step, ms (empty for daemon-workflow, which has no client per step). */
      readonly stepMs: number[];
      /** gRPC only: per-RPC latency, ms. */
      readonly reportMs?: number[];
      readonly nextMs?: number[];
      readonly clientCpuMsPerStep: number;
      readonly serverCpuMsPerStep: number;
      readonly envelopeBytes?: number;
      readonly checked: string;
    }
  | { readonly ok: false; readonly error: string };

export interface LiveTasksProbe {
  /** Step tasks of the run (= steps it has taken). */
  readonly tasks: number;
  /** ms per `listTasks({processId, states: [queued, running]})` query (the old lookup, now the fallback). */
  readonly ms: number;
  /** ms per point read of the run's last step task by its derived id (`stepTaskId`). */
  readonly pointMs: number;
}

export interface StoreCalls {
  readonly perStep: Record<string, number>;
  /** Calls of methods that only read, per step. */
  readonly reads: number;
  /** Calls of methods that take the write lock (a transaction each), per step. */
  readonly writes: number;
}

export interface JeevesReport {
  readonly generatedAt: string;
  readonly command: string;
  readonly machine: MachineInfo & { loadStart: string; loadEnd: string };
  readonly warden: { commit: string; dirty: string[] };
  readonly params: {
    rounds: number;
    steps: number;
    warmup: number;
    variants: readonly Variant[];
    quick: boolean;
  };
  config: string;
  readonly rounds: Array<{
    order: readonly Variant[];
    results: Partial<Record<Variant, VariantRound>>;
  }>;
  readonly failures: string[];
  liveTasks: LiveTasksProbe[];
  /** SQLite's EXPLAIN QUERY PLAN of the lookup. */
  liveTasksPlan: string[];
  /** Store calls per timed step, by method (count-host.ts). */
  storeCalls: Partial<Record<Variant, StoreCalls>>;
  profile?: {
    steps: number;
    stepsPerSecond: number;
    main: ProfileSummary;
    otherThreadsBusyMs: number;
    otherThreadsTop: ProfileRow[];
  };
  seconds: number;
}

/** A round that passed its checks. */
export type OkRound = Extract<VariantRound, { ok: true }>;
type Ok = OkRound;

export interface VariantStats {
  readonly variant: Variant;
  readonly ok: number;
  readonly rounds: number;
  readonly stepsPerSecond?: Spread;
  /** Median over the rounds of each round's p50 / p99 step latency. */
  readonly p50?: number;
  readonly p99?: number;
  readonly reportP50?: number;
  readonly reportP99?: number;
  readonly nextP50?: number;
  readonly nextP99?: number;
  readonly serverCpuMs?: number;
  readonly clientCpuMs?: number;
  /** Median step latency of the first and the last tenth of the measured steps (median over rounds). */
  readonly firstTenthP50?: number;
  readonly lastTenthP50?: number;
  readonly envelopeBytes?: number;
}

function medianOf(rounds: readonly Ok[], f: (r: Ok) => number | undefined): number | undefined {
  const xs = rounds.map(f).filter((x): x is number => x !== undefined && Number.isFinite(x));
  return median(xs);
}

export function variantStats(report: JeevesReport, variant: Variant): VariantStats {
  const all = report.rounds.map((r) => r.results[variant]).filter((r) => r !== undefined);
  const ok = all.filter((r): r is Ok => r.ok);
  const p = (xs: readonly number[] | undefined, q: number) =>
    xs && xs.length > 0 ? percentile(xs, q) : undefined;
  const tenth = (xs: readonly number[], last: boolean) => {
    const n = Math.max(1, Math.floor(xs.length / 10));
    return xs.length > 0 ? median(last ? xs.slice(-n) : xs.slice(0, n)) : undefined;
  };
  return {
    variant,
    ok: ok.length,
    rounds: all.length,
    ...(ok.length > 0 ? { stepsPerSecond: spread(ok.map((r) => r.stepsPerSecond)) } : {}),
    p50: medianOf(ok, (r) => p(r.stepMs, 50)),
    p99: medianOf(ok, (r) => p(r.stepMs, 99)),
    reportP50: medianOf(ok, (r) => p(r.reportMs, 50)),
    reportP99: medianOf(ok, (r) => p(r.reportMs, 99)),
    nextP50: medianOf(ok, (r) => p(r.nextMs, 50)),
    nextP99: medianOf(ok, (r) => p(r.nextMs, 99)),
    serverCpuMs: medianOf(ok, (r) => r.serverCpuMsPerStep),
    clientCpuMs: medianOf(ok, (r) => r.clientCpuMsPerStep),
    firstTenthP50: medianOf(ok, (r) => tenth(r.stepMs, false)),
    lastTenthP50: medianOf(ok, (r) => tenth(r.stepMs, true)),
    envelopeBytes: medianOf(ok, (r) => r.envelopeBytes),
  };
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;
/** Calls per step: whole numbers as they are, fractions to 2 decimals. */
const fmtCount = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(2));

function profileTable(title: string, rows: readonly ProfileRow[], perStep: number): string[] {
  return [
    `| ${title} | ms | share of busy time | µs per step |`,
    '|---|--:|--:|--:|',
    ...rows.map(
      (r) =>
        `| \`${r.name.replace(/\|/g, '\\|')}\` | ${fmtInt(r.ms)} | ${pct(r.share)} | ${fmtInt((r.ms * 1000) / perStep)} |`,
    ),
  ];
}

/** Least-squares slope of lookup ms over the run's steps (undefined with fewer than two sizes). */
function slopeMsPerStep(
  points: readonly LiveTasksProbe[],
  ms: (p: LiveTasksProbe) => number,
): number | undefined {
  const n = points.length;
  const mx = points.reduce((a, p) => a + p.tasks, 0) / n;
  const my = points.reduce((a, p) => a + ms(p), 0) / n;
  const sxx = points.reduce((a, p) => a + (p.tasks - mx) ** 2, 0);
  if (n < 2 || sxx === 0) return undefined;
  return points.reduce((a, p) => a + (p.tasks - mx) * (ms(p) - my), 0) / sxx;
}

/**
 * Why the gRPC loop costs what it costs: the measured numbers of this run (store calls, CPU)
 * read against the code paths they come from. The suggestions are what the numbers point at,
 * not measured changes.
 */
function findings(r: JeevesReport, stats: Partial<Record<Variant, VariantStats>>): string[] {
  const c = r.storeCalls;
  const f = c['grpc-follow'];
  const o = c['grpc-original'];
  const d = c['daemon-workflow'];
  const q = c['acp-queued'];
  if (!f) return [];
  const n = (calls: StoreCalls | undefined, m: string) => calls?.perStep[m] ?? 0;
  const background = (calls: StoreCalls) =>
    n(calls, 'nextDue') + n(calls, 'nextInterruptExpiry') + n(calls, 'nextLeaseExpiry');
  const cpu = (v: Variant) => stats[v]?.serverCpuMs;
  const places = r.profile?.main.byPlace ?? [];
  const wireShare = places
    .filter((p) => ['@grpc/grpc-js', 'protobufjs', '@protobufjs/codegen'].includes(p.name))
    .reduce((acc, p) => acc + p.share, 0);
  const wire = r.profile
    ? `Little of it is the wire: in the profile below, \`@grpc/grpc-js\` and \`protobufjs\` take ${pct(wireShare)} of the daemon's main thread during the timed steps; the state dict each instruction carries is about ${fmtInt(stats['grpc-follow']?.envelopeBytes ?? stats['grpc-original']?.envelopeBytes)} bytes. The time is in what each RPC asks of the store.`
    : 'Run with `--profile 1` to see how much of it is the wire.';
  const L = ['## Why a gRPC step costs what it costs', ''];
  L.push(
    `- **Daemon CPU per step** (medians): ${(
      ['grpc-original', 'grpc-follow', 'acp-queued', 'acp-chain', 'daemon-workflow'] as const
    )
      .filter((v) => stats[v])
      .map((v) => `${ABOUT[v].name} ${fmtMs(cpu(v))} ms`)
      .join(', ')}. ${wire}`,
    `- **Write transactions**: a reply-following step makes ${fmtCount(f.writes)} (\`commit\` ×${fmtCount(n(f, 'commit'))}): \`ReportAgentResult\` records the result and, in the same commit, hands the run's next external step to the reporting client and begins it (\`ExternalSteps.reportAndTakeNext\` → the orchestrator's \`StepTaker\` naming the external lane)${d ? `, as the daemon's own step worker does (${fmtCount(d.writes)} per step of the same workflow)` : ''}.`,
  );
  if (o)
    L.push(
      `- **The original loop's GetNextInstruction costs reads only**: asking again for a step already handed out writes nothing while more than half of its lease (10 min) is left, but repeats the lookups, so the original loop makes ${fmtCount(o.writes)} write transactions and ${fmtCount(o.reads)} reads per step against ${fmtCount(f.writes)} and ${fmtCount(f.reads)} when the client follows the replies.`,
    );
  L.push(
    `- **Reads**: ${fmtCount(f.reads)} per reply-following step: \`getSessionByKey\` + \`listProcesses\` ×${fmtCount(n(f, 'listProcesses'))} (\`findRun\`: \`process_id\` → session → its newest run; that read of the run's row is the one the report and the commit start from, so \`getProcess\` ×${fmtCount(n(f, 'getProcess'))}), and \`getTask\` ×${fmtCount(n(f, 'getTask'))} (the outstanding step's task by its derived id, a point read; \`listTasks\` ×${fmtCount(n(f, 'listTasks'))}). Parsing the run's row (\`json\` in \`src/store/rows.ts\`: the envelope keeps the last 200 history entries) is still among the hottest functions${r.profile ? ' in the profile below' : ''}.`,
    `- **Commits wake the daemon's idle machinery**: ${fmtCount(background(f))} of those reads per step are not the request's own but the daemon's idle step and job workers (\`nextDue\` ×${fmtCount(n(f, 'nextDue'))}), the interrupt-expiry timer (\`nextInterruptExpiry\` ×${fmtCount(n(f, 'nextInterruptExpiry'))}) and the lease reaper (\`nextLeaseExpiry\` ×${fmtCount(n(f, 'nextLeaseExpiry'))}) looking again after each commit${q ? ` (ACP remote worker: ${fmtCount(background(q))} of ${fmtCount(q.reads)})` : ''}.`,
    `- **What is left against ACP**: a jeeves step commits more than a job does — the step's settle and its \`task.succeeded\`, \`stage.completed\`, the run's row (envelope, usage, routes), the next step's task with \`task.queued\`, \`task.claimed\` and \`stage.started\` — each event hashed into the session's chain; and each RPC parses the run's row once. The ACP baseline settles one job row and claims the next.`,
    '',
  );
  return L;
}

export function renderJeeves(r: JeevesReport): string {
  const L: string[] = [];
  const stats = Object.fromEntries(
    r.params.variants.map((v) => [v, variantStats(r, v)]),
  ) as Partial<Record<Variant, VariantStats>>;
  const sps = (v: Variant) => stats[v]?.stepsPerSecond?.median;
  const ratio = (a: Variant, b: Variant) => {
    const x = sps(a);
    const y = sps(b);
    return x !== undefined && y !== undefined ? x / y : undefined;
  };
  const base: Variant = 'acp-queued';

  L.push('# jeeves gRPC agent loop vs ACP: round trips per second, one client on loopback', '');
  L.push(
    `Generated ${r.generatedAt.replace('T', ' ').slice(0, 19)} UTC, in ${fmtInt(r.seconds)} s.`,
    '',
  );
  L.push(
    `- **Machine:** ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB RAM, ${r.machine.os}; **Node ${r.machine.node}**`,
    `- **Load average** at start: ${r.machine.loadStart}; at end: ${r.machine.loadEnd}${r.params.quick ? ' — **a `--quick` smoke run: not a result**' : ''}`,
    `- **Warden:** ${wardenLine(r.warden)}, run from the sources (type stripping)`,
    `- **Command:** \`${r.command}\``,
    `- **N:** ${fmtInt(r.params.steps)} timed steps per variant per round, after ${fmtInt(r.params.warmup)} warm-up steps in the same session / worker; ${r.params.rounds} rounds, each on a fresh \`warden serve\` (fresh home, embedded SQLite, \`durability: fast\` = WAL + synchronous=NORMAL, every other setting \`warden init\`'s default), variants in an order rotating from round to round, one at a time.`,
    `- **Server:** \`warden serve --listen 127.0.0.1:0\` with \`server.grpc.listen: 127.0.0.1:0\` and \`server.grpc.anonymous\` (token-less loopback calls, as the original Python client makes); ACP clients use the admin token. Client and daemon share the machine's ${r.machine.cores} cores.`,
    '',
  );

  L.push('## Results', '');
  L.push(
    '| Variant | Calls per step | Steps/s, median (IQR) | Min – max | Step p50 / p99 (ms) | Daemon CPU per step (ms) | Client CPU per step (ms) | vs ACP remote worker (queued) | Rounds |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|',
  );
  for (const v of r.params.variants) {
    const s = stats[v]!;
    const spr = s.stepsPerSecond;
    L.push(
      `| **${ABOUT[v].name}** | ${ABOUT[v].calls} | ${fmtIntSpread(spr)} | ${spr ? `${fmtInt(spr.min)} – ${fmtInt(spr.max)}` : '–'} | ${v === 'daemon-workflow' ? '– (no client per step)' : `${fmtMs(s.p50)} / ${fmtMs(s.p99)}`} | ${fmtMs(s.serverCpuMs)} | ${fmtMs(s.clientCpuMs)} | ${v === base ? '1 (baseline)' : fmtRatio(ratio(v, base))} | ${s.ok}/${s.rounds} |`,
    );
  }
  L.push(
    '',
    '- **Steps/s** = timed steps ÷ (start of the first timed step → start of the step after the last), one value per round; median, interquartile range (p25–p75, linear interpolation) and min–max over the rounds.',
    '- **Step p50 / p99**: every timed step of a round (for gRPC: one `RUN_AGENT` received → the next `RUN_AGENT` received, i.e. report + ask; for ACP: one handler start → the next), nearest-rank percentiles per round, then the median over the rounds.',
    '- **CPU per step**: the daemon process (all its threads, from `/proc/<pid>/stat`) and the benchmark process (`process.cpuUsage()`) over the timed steps. On 2 cores a client and a daemon that both want a core compete: the daemon CPU per step is the cost that does not depend on the client.',
    '',
  );

  const orig = stats['grpc-original'];
  const follow = stats['grpc-follow'];
  if (orig || follow) {
    L.push('### Per RPC (gRPC)', '');
    L.push(
      '| Loop | ReportAgentResult p50 / p99 (ms) | GetNextInstruction p50 / p99 (ms) | Step, first tenth → last tenth, p50 (ms) | State dict per instruction (bytes) |',
      '|---|--:|--:|--:|--:|',
    );
    for (const s of [orig, follow]) {
      if (!s) continue;
      L.push(
        `| ${ABOUT[s.variant].name} | ${fmtMs(s.reportP50)} / ${fmtMs(s.reportP99)} | ${s.variant === 'grpc-original' ? `${fmtMs(s.nextP50)} / ${fmtMs(s.nextP99)}` : '– (not called)'} | ${fmtMs(s.firstTenthP50)} → ${fmtMs(s.lastTenthP50)} | ${fmtInt(s.envelopeBytes)} |`,
      );
    }
    L.push(
      '',
      'ReportAgentResult does the report **and** takes the next step (its reply is that step’s instruction), so in the original loop the GetNextInstruction after it is a second, idempotent read of the same instruction.',
      '',
    );
  }

  const counted = r.params.variants.filter((v) => r.storeCalls[v]);
  if (counted.length > 0) {
    L.push('### Store calls per step', '');
    L.push(
      'Counted, not timed: a separate daemon (`bench/jeeves/count-host.ts`: `Daemon.start` with `warden serve`’s settings, every method of its store wrapped with a counter) ran each variant for 100 steps after 20 warm-up; calls of the daemon’s store object between the first and the last timed step ÷ 100 (the daemon-run workflow: run.start → run.wait, so its one-time start and end are in it). Every call, by whichever layer made it: the protocol handlers, the kernel, and the daemon’s timers and idle workers that look again after each commit (`nextDue`, `nextInterruptExpiry`, `nextLeaseExpiry`). Reads are the calls that query rows; \`onCommit\`, \`watchChanges\` (listener registrations: each long-polling \`task.claim\` registers one) and \`checkpoint\` count as neither. The counts do not depend on the machine’s load.',
      '',
      '| Variant | Reads per step | Write transactions per step | Calls per step, by store method |',
      '|---|--:|--:|---|',
      ...counted.map((v) => {
        const c = r.storeCalls[v]!;
        const methods = Object.entries(c.perStep)
          .sort((a, b) => b[1] - a[1])
          .map(([m, n]) => `${m} ${fmtCount(n)}`)
          .join(', ');
        return `| ${ABOUT[v].name} | ${fmtCount(c.reads)} | ${fmtCount(c.writes)} | ${methods} |`;
      }),
      '',
    );
  }

  L.push('### gRPC ÷ ACP', '');
  const grpcs = (['grpc-original', 'grpc-follow'] as const).filter((v) => stats[v]);
  const acps = (['acp-queued', 'acp-chain', 'daemon-workflow'] as const).filter((v) => stats[v]);
  if (grpcs.length > 0 && acps.length > 0) {
    L.push(
      `| steps/s ratio | ${acps.map((v) => ABOUT[v].name).join(' | ')} |`,
      `|---|${acps.map(() => '--:').join('|')}|`,
      ...grpcs.map(
        (g) => `| ${ABOUT[g].name} | ${acps.map((a) => fmtRatio(ratio(g, a))).join(' | ')} |`,
      ),
      '',
      'Below 1: the gRPC loop does fewer steps per second than that ACP path.',
      '',
    );
  }

  L.push('## What is compared, and why this comparison', '');
  L.push(
    'The work: a two-agent loop, `plan` → `critic` → `plan` → … (`critic` routes back to `plan` on `verdict: again`), every agent a no-op, so the time is the protocol, the orchestration and the durable writes. Over gRPC it is a jeeves pipeline config whose `max_iterations`, `max_llm_calls` and `max_agent_hops` are all 2,147,483,647 (int32’s largest: the original’s bounds are int32, and Warden takes them from the JSON config) with no edge limit, so the session cannot end inside the benchmark; the client runs the trivial agent (`critic` answers `{"verdict":"again"}`, metrics `llm_calls: 1`) and stops after warm-up + N turns. At the end the session’s state dict must count exactly one hop per turn.',
    '',
    '**There is no ACP path that runs the same workflow with a remote worker**: ACP’s `task.claim` hands out `job` tasks only (workflow steps are run by the daemon’s own step workers, `src/queue/remote-work.ts`), and the `external` stages the gRPC face uses are reachable over gRPC only. The three closest things that exist, each measured:',
    '',
    ...r.params.variants.map((v) => `- **${ABOUT[v].name}** (\`${v}\`): ${ABOUT[v].what}.`),
    '',
    `The **baseline for the ratio is the ACP remote worker with jobs queued ahead**: like the original jeeves loop it is one client running a trivial agent, one durable step at a time, two calls per step (settle this step, get the next), each step claimed under a lease and settled through the store. It does less than a jeeves step — no workflow state machine, routing, budget or envelope — so the ratio is an upper bound on what the protocol alone costs; the chain variant adds the durable creation of each next step, and the daemon-run workflow shows the same state machine with no client in the loop.`,
    '',
  );

  L.push(...findings(r, stats));

  if (r.liveTasks.length > 0) {
    L.push('## Run length: finding the outstanding step', '');
    L.push(
      "Every `GetNextInstruction` and `ReportAgentResult` finds the run's outstanding step task. A step's task id is derived from the run and the step (`stepTaskId` in `src/kernel/process-ops.ts`), so that is a point read (`ExternalSteps.#liveTasks` → `store.getTask`); runs whose tasks predate derived ids fall back to listing the run's live tasks (`store.listTasks({processId, states: ['queued', 'running']})`), which on SQLite walks the `task_data_process` index over every step task the run ever had. Both timed on the last round's database after the daemon stopped, for every run in it (the fastest of 6 batches of 10 queries, after one unmeasured batch):",
      '',
      ...(r.liveTasksPlan.length
        ? [
            `SQLite's plan for the listing: ${r.liveTasksPlan.map((d) => `\`${d}\``).join(' → ')}.`,
            '',
          ]
        : []),
      '| Steps the run has taken | Point read, ms | Listing (fallback), ms |',
      '|--:|--:|--:|',
      ...r.liveTasks.map((p) => `| ${fmtInt(p.tasks)} | ${fmtMs(p.pointMs)} | ${fmtMs(p.ms)} |`),
      '',
    );
    const slope = slopeMsPerStep(r.liveTasks, (p) => p.ms);
    const pointSlope = slopeMsPerStep(r.liveTasks, (p) => p.pointMs);
    if (slope !== undefined && pointSlope !== undefined) {
      L.push(
        `Least-squares slopes, ms more per lookup for every 1,000 steps the run has taken: point read ${fmtMs(pointSlope * 1000)}, listing ${fmtMs(slope * 1000)}.`,
        '',
      );
    }
  }

  if (r.profile) {
    const p = r.profile;
    const m = p.main;
    L.push('## Where the daemon’s time goes (gRPC, reply-following loop)', '');
    L.push(
      `One more daemon, not counted above, ran the reply-following loop with \`node --cpu-prof\`; the profile is cut to its ${fmtInt(p.steps)} timed steps (${fmtInt(p.stepsPerSecond)} steps/s under the profiler; start-up and warm-up left out, by the samples' monotonic timestamps). Main thread: ${fmtInt(m.busyMs)} ms busy (${fmtInt((m.busyMs * 1000) / p.steps)} µs per step), ${fmtInt(m.idleMs)} ms idle. Other threads (the heartbeat thread, which also runs \`wal_checkpoint(PASSIVE)\` every 100 ms): ${fmtInt(p.otherThreadsBusyMs)} ms busy${p.otherThreadsTop.length ? `, mostly ${p.otherThreadsTop.map((t) => `\`${t.name}\` ${pct(t.share)}`).join(', ')}` : ''}.`,
      '',
      '**By the Warden function that asked for the work** (each sample charged to the nearest frame on its stack that is Warden code outside `src/store/`; the store’s SQL, row parsing and statement preparation are inside these):',
      '',
      ...profileTable('Caller', m.byCaller.slice(0, 12), p.steps),
      '',
      '**By place** (self time):',
      '',
      ...profileTable('Place', m.byPlace.slice(0, 10), p.steps),
      '',
      '**Hottest functions** (self time):',
      '',
      ...profileTable('Function', m.topSelf.slice(0, 12), p.steps),
      '',
    );
  }

  L.push('## Checks', '');
  const checks = new Map<string, string>();
  for (const round of r.rounds)
    for (const [v, res] of Object.entries(round.results))
      if (res?.ok && !checks.has(v)) checks.set(v, res.checked);
  for (const [v, c] of checks) L.push(`- \`${v}\`: ${c} (every round).`);
  L.push('');
  L.push('## Failures', '');
  L.push(r.failures.length === 0 ? 'None.' : r.failures.map((f) => `- ${f}`).join('\n'), '');

  L.push('## How to reproduce', '');
  L.push(
    '```sh',
    'source scripts/use-node.sh      # from the repository root: Node 24',
    'cd bench',
    'npm install                     # once (not `npm ci`)',
    'npm run bench:jeeves            # → results/jeeves.md, results/jeeves.json (about 2–3 min on 2 cores)',
    'npm run bench:jeeves:quick      # smoke test → results/quick/',
    '```',
    '',
    'Options after `--`: `--rounds` (5), `--steps` (600), `--warmup` (200), `--variants grpc-original,grpc-follow,acp-queued,acp-chain,daemon-workflow`, `--profile 0|1` (1), `--out DIR`. Run it on a quiet machine: every other process on the 2 cores shows up in the numbers (see the load average above).',
    '',
    'Daemon config (after `warden init`’s):',
    '',
    '```yaml',
    ...r.config.split('\n').filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#')),
    '```',
    '',
    'Raw numbers, every step’s latency included: `jeeves.json`. Code: `bench/jeeves/`.',
    '',
  );
  return `${L.join('\n')}\n`;
}
