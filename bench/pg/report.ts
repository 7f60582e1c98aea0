/** pg.md: the PostgreSQL benchmark's tables, targets and settings, from the Report. */
import { wardenLine } from '../shared/machine.ts';
import { fmtInt, fmtIntSpread, fmtMs, fmtRatio, fmtSmall, type Spread } from '../shared/stats.ts';
import { describePostgres } from '../queue/servers.ts';
import type { Cell, CpuPer1k, Report } from './run.ts';

const range = (s: Spread | undefined) => (s ? `${fmtInt(s.min)} – ${fmtInt(s.max)}` : '–');

function cpu(c: CpuPer1k | undefined): string {
  if (!c) return '–';
  return `${fmtSmall(c.total)} (${fmtSmall(c.producer)} + ${fmtSmall(c.workers)} + ${fmtSmall(c.postgres)} pg)`;
}

const cpuAll = (c: CpuPer1k | undefined) => (c ? fmtSmall(c.totalAllPostgres) : '–');

function targetRow(what: string, target: string, value: string, met: boolean | undefined): string {
  const verdict = met === undefined ? 'not measured' : met ? '**met**' : '**not met**';
  return `| ${what} | ${target} | ${value} | ${verdict} |`;
}

export function renderMarkdown(r: Report): string {
  const p = r.params;
  const name = (key: string) => r.systems.find((s) => s.key === key)?.name ?? key;
  const cellsOf = (nodes: number) => r.cells.filter((c) => c.nodes === nodes);
  const L: string[] = [];
  L.push('# PostgreSQL queue benchmark: Warden vs graphile-worker vs pg-boss');
  L.push('');
  L.push(
    `Generated ${r.generatedAt.replace('T', ' ').replace(/\..*/, '')} UTC, in ${Math.round(r.totalSeconds)} s.${p.quick ? ' **Quick smoke run: not for comparison.**' : ''}`,
  );
  L.push('');
  const m = r.machine;
  L.push(`- **Machine:** ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}`);
  L.push(`- **Node:** ${m.node}`);
  L.push(
    `- **Load average** (1, 5, 15 min) at start: ${String(m.loadStart)}; at end: ${String(m.loadEnd)}. The benchmark, its worker nodes and PostgreSQL share these cores with anything else running; each run's load is in \`pg.json\` (\`loadBefore\`).`,
  );
  L.push(
    `- **PostgreSQL (settings read from the server):** ${'error' in r.postgres ? `unreachable: ${r.postgres.error}` : describePostgres(r.postgres)} → ${r.durability}. Every system uses the same database (\`${p.url.replace(/:[^:@/]*@/, '@')}\`), each run in its own fresh schema, dropped after it.`,
  );
  L.push(
    `- **Warden:** ${wardenLine(r.warden)}${r.warden.source ? `; measured source: \`${r.warden.source}\` (BENCH_WARDEN_SRC)` : ''}`,
  );
  L.push(
    `- **Versions:** ${Object.entries(r.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}`,
  );
  L.push(`- **Command:** \`${r.command}\``);
  L.push(
    `- **Workload:** N = ${fmtInt(p.n)} no-op jobs per run, payload \`{ i, pad: 'x'.repeat(64) }\`; ${p.nodes.map((w) => `${w} node${w > 1 ? 's' : ''}`).join(' and ')} (one node = one worker process; the producer is one more process); per node ${p.concurrency} handlers in flight at most and ${p.pool} connections at most (the producer too); ${fmtInt(p.batch)} jobs per enqueue call; per system, node count and mode ${p.warmup} warm-up run${p.warmup === 1 ? '' : 's'} (excluded) + ${p.runs} measured, interleaved across systems in a rotating order, on fresh schemas and fresh processes.`,
  );
  L.push(
    '- **Statistics:** median of the measured runs and min – max; only runs that passed the delivery check (every id handled exactly once, across all nodes) count. Ratios are median ÷ graphile-worker median at the same node count.',
  );
  const unavailable = r.systems.filter((s) => s.unavailable);
  for (const s of unavailable) L.push(`- **${s.name} not run:** ${s.unavailable}`);
  L.push('');

  L.push('## Throughput');
  L.push('');
  L.push(
    "**Drain (enqueue excluded):** N jobs enqueued first with no worker running, then every node is told to start at once; tasks/s = N ÷ (start command → the database shows no unfinished job). Node start-up (`run()` / `work()` / `JobWorker.start()`) is inside this clock, its median shown apart; connections were opened before it. **Mixed (enqueue included):** the nodes are started and idle, then the producer enqueues N in batches while they consume; tasks/s = N ÷ (first enqueue call → no unfinished job). **Enqueue-only:** the pre-filled run's enqueue clock.",
  );
  L.push('');
  L.push(
    '| System | Nodes | Drain tasks/s, median (min – max) | vs graphile-worker | Mixed tasks/s, median (min – max) | vs graphile-worker | Enqueue-only tasks/s | Node start (ms) | CPU-s / 1k, drain (producer + nodes + pg) | CPU-s / 1k, mixed | Mixed, with every postgres process | Delivery | Runs (drain / mixed) |',
  );
  L.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|--:|');
  for (const nodes of p.nodes)
    for (const c of cellsOf(nodes))
      L.push(
        `| **${name(c.system)}** | ${nodes} | ${fmtInt(c.drain?.median)} (${range(c.drain)}) | ${fmtRatio(c.drainVsGraphile)} | ${fmtInt(c.mixed?.median)} (${range(c.mixed)}) | ${fmtRatio(c.mixedVsGraphile)} | ${fmtIntSpread(c.enqueueOnly)} | ${fmtMs(c.workerStartMs)} | ${cpu(c.cpuDrain)} | ${cpu(c.cpuMixed)} | ${cpuAll(c.cpuMixed)} | ${c.deliveryOk ? '✓' : '✗'} | ${c.measured.prefilled}/${p.runs} · ${c.measured.mixed}/${p.runs} |`,
      );
  L.push('');
  L.push(
    'Scaling from 1 to 4 nodes on this machine says little about a real deployment: all nodes, the producer and PostgreSQL share the same cores, so more nodes mostly add contention here.',
  );
  L.push('');

  L.push('## Idle start latency (LISTEN/NOTIFY)');
  L.push('');
  L.push(
    `The nodes are started and idle; the producer (another process) enqueues one job at a time with the system's single-job API (\`submit\` / \`addJob\` / \`send\`), ${p.latencySamples} samples after ${p.latencyWarmup} warm-up ones, ${p.latencyGapMs} ms apart, each after the previous completion is recorded. Latency = enqueue call start (producer) → handler start (a node), both stamped \`performance.timeOrigin + performance.now()\`. With several nodes every idle node is notified.`,
  );
  L.push('');
  L.push('| System | Nodes | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | Samples |');
  L.push('|---|--:|--:|--:|--:|--:|--:|');
  for (const nodes of p.nodes)
    for (const c of cellsOf(nodes))
      L.push(
        `| **${name(c.system)}** | ${nodes} | ${fmtMs(c.latencyP50)} | ${fmtMs(c.latencyP90)} | ${fmtMs(c.latencyP99)} | ${fmtMs(c.latencyMax)} | ${c.latencySamples} |`,
      );
  L.push('');

  L.push('## Targets (the issue)');
  L.push('');
  const w1 = r.cells.find((c) => c.system === 'warden' && c.nodes === 1);
  const w4 = r.cells.find((c) => c.system === 'warden' && c.nodes === 4);
  const best = (c: Cell | undefined) =>
    c ? Math.max(c.drain?.median ?? 0, c.mixed?.median ?? 0) || undefined : undefined;
  L.push('| Target | Threshold | Measured (best of drain / mixed medians) | Verdict |');
  L.push('|---|--:|--:|---|');
  const v1 = best(w1);
  const v4 = best(w4);
  L.push(
    targetRow(
      'Warden, 1 node, batched',
      '≥ 20,000 tasks/s',
      fmtInt(v1),
      v1 === undefined ? undefined : v1 >= 20_000,
    ),
  );
  L.push(
    targetRow(
      'Warden, 4 nodes, batched',
      '≥ 100,000 tasks/s',
      fmtInt(v4),
      v4 === undefined ? undefined : v4 >= 100_000,
    ),
  );
  for (const c of [w1, w4].filter((x): x is Cell => x !== undefined)) {
    const ratio = Math.min(c.drainVsGraphile ?? Infinity, c.mixedVsGraphile ?? Infinity);
    L.push(
      targetRow(
        `Warden ÷ graphile-worker, ${c.nodes} node${c.nodes > 1 ? 's' : ''} (drain ${fmtRatio(c.drainVsGraphile)}, mixed ${fmtRatio(c.mixedVsGraphile)})`,
        '≥ 2×',
        `${fmtRatio(Number.isFinite(ratio) ? ratio : undefined)} (the lower)`,
        Number.isFinite(ratio) ? ratio >= 2 : undefined,
      ),
    );
  }
  if (!w1) L.push('| Warden | – | not run (see above) | not measured |');
  L.push('');

  L.push('## Equal footing');
  L.push('');
  L.push(
    `- **Same work, same caps:** the same payload and no-op handler; per node at most ${p.concurrency} handlers in flight and ${p.pool} connections per process; ${fmtInt(p.batch)} jobs per bulk enqueue call. Each system otherwise runs with the throughput settings its documentation recommends:`,
  );
  for (const s of r.systems) L.push(`  - **${s.name}:** ${s.settings}.`);
  L.push('- **Claimed-but-unstarted depth** per node (jobs held beyond the running ones):');
  for (const s of r.systems) L.push(`  - ${s.name}: ${s.prefetch}`);
  const ck = r.runs.map((x) => x.checkpointMs).filter((x): x is number => x !== undefined);
  ck.sort((a, b) => a - b);
  L.push(
    `- **PostgreSQL starts clean:** a \`CHECKPOINT\` before every run, after the schema is created and outside the clock (median ${fmtMs(ck[Math.floor(ck.length / 2)])} ms).`,
  );
  L.push(
    "- **Same clock end:** every system's clock stops when a query on its own tables shows no unfinished job (graphile-worker: `_private_jobs` empty, completed jobs are deleted; pg-boss: no `job` row below `completed`; Warden: no `tasks` row `queued` or `running`), polled every 2 ms by the producer once the nodes reported every job handled.",
  );
  L.push(
    '- **CPU, PostgreSQL included:** utime + stime from `/proc/<pid>/stat` of the producer and every node process, plus PostgreSQL, sampled at the clock\'s start and end. PostgreSQL is counted as **our backends** (client port in the backend\'s process title = a local port of a socket our processes hold) **plus the server\'s auxiliary processes** (WAL writer, checkpointer, background writer, …) — "pg" in the tables; a backend whose connection closes during the clock is missed, so this is a lower bound. "With every postgres process" also counts every other backend and the postmaster\'s children fields (other clients of this shared server included): an upper bound.',
  );
  L.push(
    '- **Delivery checked:** every node counts each id it handled; the counts of all nodes are added up after each run, and each of the N ids must appear exactly once.',
  );
  const failed = r.runs.filter((x) => !x.ok || x.anomalies.length);
  const latFailed = r.latency.filter((x) => !x.ok || x.anomalies.length);
  if (failed.length || latFailed.length) {
    L.push('');
    L.push('## Failures and anomalies');
    L.push('');
    for (const x of failed)
      L.push(
        `- ${name(x.system)} ×${x.nodes} ${x.mode}${x.warmup ? ' (warm-up)' : ''}: ${x.ok ? 'ok' : x.error}${x.anomalies.length ? `; ${x.anomalies.join('; ')}` : ''}`,
      );
    for (const x of latFailed)
      L.push(
        `- ${name(x.system)} ×${x.nodes} latency: ${x.ok ? 'ok' : x.error}${x.anomalies.length ? `; ${x.anomalies.join('; ')}` : ''}`,
      );
  }
  L.push('');
  return L.join('\n');
}
