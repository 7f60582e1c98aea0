/**
 * Renders the results: a markdown report (table, machine, settings, failures) and a PNG bar chart
 * of median throughput (an SVG drawn here, rasterised by resvg: no browser, no native build).
 */
import { readdirSync } from 'node:fs';

import { Resvg } from '@resvg/resvg-js';

import type { CpuPer1k, Report, SystemResult } from './run.ts';
import { describePostgres, describeRedis } from './servers.ts';
import {
  fmtInt,
  fmtIntSpread,
  fmtMs,
  fmtRatio,
  fmtSmall,
  median,
  type Spread,
} from '../shared/stats.ts';

const esc = (s: string) => s.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function deliveryCell(s: SystemResult): string {
  if (s.deliveryOk) return '✓';
  const bad = s.runs.filter((r) => !r.ok).length;
  const parts: string[] = [];
  if (bad) parts.push(`${bad} run${bad > 1 ? 's' : ''} failed`);
  if (s.latency && !s.latency.ok) parts.push('latency test failed');
  if (s.errors.length) parts.push('error');
  return `✗ (${parts.join(', ') || 'incomplete'})`;
}

const iqr = (x: Spread | undefined) => (x ? `${fmtInt(x.p25)} – ${fmtInt(x.p75)}` : '–');
const range = (x: Spread | undefined) => (x ? `${fmtInt(x.min)} – ${fmtInt(x.max)}` : '–');
const cpuCell = (c: CpuPer1k | undefined, server: string | null) =>
  c
    ? server
      ? `${fmtSmall(c.total)} (${fmtSmall(c.client)} + ${fmtSmall(c.server)} ${server})`
      : `${fmtSmall(c.total)} (in-process)`
    : '–';

function header(r: Report, lines: string[]): void {
  const p = r.params;
  const m = r.machine;
  lines.push(
    `Generated ${r.generatedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}${p.quick ? ' — **quick smoke run, not for comparison**' : ''}, in ${Math.round(r.totalSeconds)} s.`,
  );
  lines.push('');
  lines.push(`- **Machine:** ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}`);
  lines.push(`- **Node:** ${m.node}`);
  lines.push(
    `- **Load average** (1, 5, 15 min) at start: ${m.loadStart}; at end: ${m.loadEnd}. Other processes on the machine add noise; runs are interleaved across systems so it spreads evenly, and each run's load is in \`queue.json\` (\`loadBefore\`).`,
  );
  const sv = r.servers;
  lines.push(
    `- **Servers (settings read from them):** ${sv.redis ? describeRedis(sv.redis) : `Redis unavailable (${sv.redisError ?? '?'})`}; ${sv.postgres ? describePostgres(sv.postgres) : `PostgreSQL unavailable (${sv.postgresError ?? '?'})`}. Processes counted for server CPU: ${r.serverProcesses.redis} redis-server, ${r.serverProcesses.postgres} postgres (at the end).`,
  );
  const f = r.fsync;
  lines.push(
    f.method === 'off'
      ? '- **Disk fsync latency:** not measured.'
      : `- **Disk fsync latency** (${f.method === 'pg_test_fsync' ? 'pg_test_fsync' : 'measured from Node'}, in \`${f.directory}\`): one 8 kB write + fdatasync ${fmtMs(f.fdatasyncMs)} ms (${fmtInt(f.fdatasyncOpsPerSec)} ops/s)${f.openDatasyncOpsPerSec !== undefined ? `, open_datasync ${fmtInt(f.openDatasyncOpsPerSec)} ops/s` : ''}. Every system that waits for durability is bounded by it.`,
  );
  lines.push(
    `- **Warden:** commit \`${r.warden.commit}\`${r.warden.dirty.length ? ` with uncommitted changes in ${r.warden.dirty.map((x) => `\`${x}\``).join(', ')}` : ' (clean src/)'}`,
  );
  lines.push(`- **Command:** \`${r.command}\``);
  lines.push(
    `- **Workload:** N = ${fmtInt(p.n)} no-op tasks per run (unless the N column says otherwise), payload \`{ i, pad: 'x'.repeat(64) }\`, concurrency ${p.concurrency} for every system; per mode ${p.warmup} warm-up run (excluded) + ${p.runs} measured runs; a fresh database / schema / key prefix per run, each system in its own process, one system at a time.`,
  );
  lines.push(
    `- **Statistics:** median of the measured runs, interquartile range p25–p75 (linear interpolation) and min–max. Only runs that passed the delivery check count. Ratios are median ÷ Warden (fast) median.`,
  );
}

function equalFooting(r: Report, lines: string[]): void {
  const p = r.params;
  lines.push('## Equal footing');
  lines.push('');
  lines.push(
    `- **Same work and cap:** the same payload, a no-op handler, at most C = ${p.concurrency} handlers in flight for every system (pg-boss: pollers × batchSize = C; plainjob: C workers of one job).`,
  );
  lines.push(
    '- **Claimed-but-unstarted depth** (tasks a worker holds beyond the C it runs), per system:',
  );
  for (const s of r.systems) lines.push(`  - ${s.name}: ${s.prefetch || '–'}`);
  lines.push(
    `- **PostgreSQL:** \`CHECKPOINT\` before every run of a PostgreSQL-backed system, outside the clock (median ${
      r.systems
        .filter((s) => s.checkpointMs !== undefined)
        .map((s) => `${s.name} ${fmtMs(s.checkpointMs)} ms`)
        .join(', ') || 'none ran'
    }); autovacuum is \`${r.servers.postgres?.autovacuum ?? '?'}\` on this server.`,
  );
  lines.push(
    "- **CPU** per 1,000 tasks counts the measuring process (all threads, `process.cpuUsage()`) plus, for a client–server system, every process of its server (`/proc/<pid>/stat` utime+stime+cutime+cstime of every `redis-server` or `postgres` process, sampled at the clock's start and end). Server processes serve anyone: other clients of the same server on this machine would be counted too.",
  );
  lines.push(
    "- **Durability is read back**, not asserted: PostgreSQL `SHOW fsync / synchronous_commit / full_page_writes`, Redis `CONFIG GET appendonly / appendfsync / save`, SQLite `PRAGMA journal_mode / synchronous` from each system's own connection (Warden keeps its connection private: its journal_mode is read from the file, its synchronous is what `openSqliteStore` sets for the durability mode).",
  );
  const notes = r.systems.filter((s) => s.durabilityNote);
  for (const s of notes) lines.push(`  - ${s.name}: ${s.durabilityNote}.`);
  const reduced = r.systems.filter((s) => s.n !== p.n);
  if (reduced.length)
    lines.push(
      `- ⚠ **Reduced N:** ${reduced.map((s) => `${s.name} ran ${fmtInt(s.n)} tasks per run instead of ${fmtInt(p.n)}`).join('; ')}, to keep the whole benchmark within its time budget. Its throughput is therefore measured on a smaller backlog (liteque's dequeue slows as its table grows, so a larger N would only lower it).`,
    );
}

export function renderMarkdown(r: Report): string {
  const p = r.params;
  const lines: string[] = [];
  lines.push('# Queue benchmark: enqueue → claim → complete');
  lines.push('');
  header(r, lines);
  lines.push('');
  if (p.modes.includes('mixed')) {
    lines.push('## Mixed: enqueue while the worker consumes');
    lines.push('');
    lines.push(
      "Tasks/s = N ÷ (first enqueue call → last completion recorded by the system); the worker is started and idle before the clock starts, and the producer enqueues in the system's batch API (1,000 per call) while the worker runs. Idle latency = enqueue call start → handler start, one task at a time with the worker idle.",
    );
    lines.push('');
    lines.push(
      '| System | Backend | Durability (read back) | Claimed-but-unstarted | Median tasks/s | IQR (p25 – p75) | Min – max | vs Warden fast | CPU-s / 1k tasks (client + server) | Idle latency p50 / p99 (ms) | Delivery | Runs | N |',
    );
    lines.push('|---|---|---|---|--:|--:|--:|--:|--:|--:|:-:|--:|--:|');
    for (const s of r.systems) {
      const failed = s.mixed === undefined;
      lines.push(
        `| **${esc(s.name)}** | ${esc(s.backend || '–')} | ${esc(s.durability || '–')} | ${esc(s.prefetch || '–')} | ${failed ? '**failed**' : fmtInt(s.mixed!.median)} | ${iqr(s.mixed)} | ${range(s.mixed)} | ${fmtRatio(s.ratioVsWardenFast)} | ${cpuCell(s.cpu.mixed, s.server)} | ${s.latencyP50 === undefined ? '–' : `${fmtMs(s.latencyP50)} / ${fmtMs(s.latencyP99)}`} | ${deliveryCell(s)} | ${s.measuredRuns}/${p.runs} | ${fmtInt(s.n)}${s.n !== p.n ? ' ⚠' : ''} |`,
      );
    }
    lines.push('');
    lines.push('![Median throughput, mixed](queue.png)');
    lines.push('');
  }
  if (p.modes.includes('prefilled')) {
    lines.push('## Pre-filled queue: enqueue-only, then consumer-only');
    lines.push('');
    lines.push(
      'Enqueue-only = N ÷ (first enqueue call → last enqueue call resolved) with no worker running. Consumer-only = N ÷ (startWorker call → last completion recorded) on the queue those N tasks filled: worker start-up is inside this clock, and its median is shown apart. Same run, same fresh database.',
    );
    lines.push('');
    lines.push(
      '| System | Enqueue-only tasks/s, median (IQR) | Consumer-only tasks/s, median (IQR) | Consumer-only min – max | Consumer vs Warden fast | Worker start (ms, median) | CPU-s / 1k, enqueue-only | CPU-s / 1k, consumer-only | Runs |',
    );
    lines.push('|---|--:|--:|--:|--:|--:|--:|--:|--:|');
    for (const s of r.systems) {
      const pre = s.runs.filter((x) => !x.warmup && x.ok && x.mode === 'prefilled');
      const start = median(pre.map((x) => x.workerStartSeconds! * 1000));
      lines.push(
        `| **${esc(s.name)}**${s.n !== p.n ? ' ⚠' : ''} | ${fmtIntSpread(s.enqueueOnly)} | ${fmtIntSpread(s.consumeOnly)} | ${range(s.consumeOnly)} | ${fmtRatio(s.consumeRatioVsWardenFast)} | ${fmtMs(start)} | ${cpuCell(s.cpu.enqueue, s.server)} | ${cpuCell(s.cpu.consume, s.server)} | ${s.measuredPrefilled}/${p.runs} |`,
      );
    }
    lines.push('');
  }
  equalFooting(r, lines);
  lines.push('');
  lines.push('## Settings per system');
  lines.push('');
  for (const s of r.systems) lines.push(`- **${s.name}**: ${s.settings || '–'}`);
  lines.push('');
  if (p.modes.includes('mixed')) {
    lines.push('## Phases of the mixed runs (median seconds)');
    lines.push('');
    lines.push(
      '| System | All enqueued | All handlers started | All completions recorded | Enqueue call p50 (latency test, ms) |',
    );
    lines.push('|---|--:|--:|--:|--:|');
    for (const s of r.systems) {
      const m = s.runs.filter((x) => !x.warmup && x.mode === 'mixed');
      const med = (f: (x: (typeof m)[number]) => number | undefined) => {
        const v = median(m.map(f).filter((x): x is number => x !== undefined));
        return v === undefined ? '–' : v.toFixed(2);
      };
      lines.push(
        `| ${esc(s.name)} | ${med((x) => x.enqueueSeconds)} | ${med((x) => x.handledSeconds)} | ${med((x) => x.seconds)} | ${fmtMs(s.enqueueAckP50)} |`,
      );
    }
    lines.push('');
  }
  lines.push('## Versions');
  lines.push('');
  lines.push(
    Object.entries(r.versions)
      .map(([k, v]) => `${k} ${v}`)
      .join(' · '),
  );
  lines.push('');
  const problems = r.systems.filter(
    (s) =>
      s.errors.length ||
      s.runs.some((x) => !x.ok || x.anomalies.length) ||
      (s.latency && (!s.latency.ok || s.latency.anomalies.length)),
  );
  lines.push('## Failures and anomalies');
  lines.push('');
  if (!problems.length)
    lines.push('None: every run of every system completed and passed the delivery check.');
  for (const s of problems) {
    lines.push(`- **${s.name}**`);
    for (const e of s.errors) lines.push(`  - ${esc(e)}`);
    const seen: Record<string, number> = {};
    for (const x of s.runs) {
      const k = `${x.mode}${x.warmup ? '-warmup' : ''}`;
      seen[k] = (seen[k] ?? 0) + 1;
      const label = x.warmup ? `${x.mode} warm-up` : `${x.mode} run ${seen[k]}`;
      if (!x.ok)
        lines.push(
          `  - ${label}: ${esc(x.error ?? 'failed')} (delivered ${fmtInt(x.delivered)}/${fmtInt(x.n)}, ${x.duplicates} duplicates, ${x.missing} missing)`,
        );
      for (const a of x.anomalies) lines.push(`  - ${label}: ${esc(a)}`);
    }
    if (s.latency && !s.latency.ok)
      lines.push(`  - latency test: ${esc(s.latency.error ?? 'failed')}`);
    for (const a of s.latency?.anomalies ?? []) lines.push(`  - latency test: ${esc(a)}`);
  }
  lines.push('');
  lines.push(
    'Raw numbers (every run, every latency sample): `queue.json`. How to run and read this: `bench/README.md`.',
  );
  lines.push('');
  return lines.join('\n');
}

const xml = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

export function renderSvg(r: Report): string {
  const rows = r.systems;
  const W = 1100;
  const left = 250;
  const right = 230;
  const top = 92;
  const rowH = 46;
  const barH = 26;
  const H = top + rows.length * rowH + 56;
  const plotW = W - left - right;
  const max = Math.max(1, ...rows.map((s) => s.maxThroughput ?? s.medianThroughput ?? 0));
  // A "nice" axis maximum.
  const mag = 10 ** Math.floor(Math.log10(max));
  const axisMax =
    [1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10].map((k) => k * mag).find((v) => v >= max) ?? max;
  const x = (v: number) => left + (v / axisMax) * plotW;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif">`,
  );
  out.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(
    `<text x="24" y="34" font-size="20" font-weight="bold" fill="#111">Queue throughput: enqueue → claim → complete of no-op tasks</text>`,
  );
  out.push(
    `<text x="24" y="58" font-size="13" fill="#444">${xml(`mixed mode: median tasks/s of ${r.params.runs} runs (warm-up excluded), whiskers = min–max · N = ${fmtInt(r.params.n)} · concurrency ${r.params.concurrency} · ${r.machine.cores} cores, ${r.machine.cpu} · Node ${r.machine.node}`)}</text>`,
  );
  // Grid.
  for (let i = 0; i <= 5; i++) {
    const v = (axisMax / 5) * i;
    const gx = x(v);
    out.push(
      `<line x1="${gx}" y1="${top - 8}" x2="${gx}" y2="${top + rows.length * rowH}" stroke="#e5e5e5"/>`,
    );
    out.push(
      `<text x="${gx}" y="${top + rows.length * rowH + 18}" font-size="12" fill="#666" text-anchor="middle">${fmtInt(v)}</text>`,
    );
  }
  out.push(
    `<text x="${left + plotW / 2}" y="${top + rows.length * rowH + 40}" font-size="13" fill="#444" text-anchor="middle">tasks per second (higher is better)</text>`,
  );
  rows.forEach((s, i) => {
    const y = top + i * rowH;
    const cy = y + rowH / 2;
    const warden = s.key.startsWith('warden');
    out.push(
      `<text x="${left - 12}" y="${cy - 2}" font-size="15" font-weight="bold" fill="#111" text-anchor="end">${xml(s.name)}</text>`,
    );
    out.push(
      `<text x="${left - 12}" y="${cy + 14}" font-size="11" fill="#666" text-anchor="end">${xml(s.backend.replace(', in-process', ''))}${s.n !== r.params.n ? xml(` · N=${fmtInt(s.n)}`) : ''}</text>`,
    );
    if (s.medianThroughput === undefined) {
      out.push(
        `<text x="${left + 8}" y="${cy + 5}" font-size="13" fill="#b00020">${xml(`failed: ${(s.errors[0] ?? s.runs.find((x) => x.error)?.error ?? 'no completed run').slice(0, 90)}`)}</text>`,
      );
      return;
    }
    const color = warden ? (s.key === 'warden-fast' ? '#1f6feb' : '#5a9bf5') : '#9aa4b2';
    out.push(
      `<rect x="${left}" y="${cy - barH / 2}" width="${Math.max(1, x(s.medianThroughput) - left)}" height="${barH}" fill="${color}" rx="2"/>`,
    );
    if (s.minThroughput !== undefined && s.maxThroughput !== undefined) {
      const x1 = x(s.minThroughput);
      const x2 = x(s.maxThroughput);
      out.push(
        `<line x1="${x1}" y1="${cy}" x2="${x2}" y2="${cy}" stroke="#222" stroke-width="1.5"/>`,
      );
      out.push(
        `<line x1="${x1}" y1="${cy - 6}" x2="${x1}" y2="${cy + 6}" stroke="#222" stroke-width="1.5"/>`,
      );
      out.push(
        `<line x1="${x2}" y1="${cy - 6}" x2="${x2}" y2="${cy + 6}" stroke="#222" stroke-width="1.5"/>`,
      );
    }
    const labelX = Math.max(x(s.medianThroughput), x(s.maxThroughput ?? 0)) + 10;
    const ratio = s.ratioVsWardenFast === undefined ? '' : ` (${fmtRatio(s.ratioVsWardenFast)})`;
    const mark = s.deliveryOk ? '' : '  ✗ delivery';
    out.push(
      `<text x="${labelX}" y="${cy + 5}" font-size="13" fill="${s.deliveryOk ? '#111' : '#b00020'}">${xml(`${fmtInt(s.medianThroughput)}/s${ratio}${mark}`)}</text>`,
    );
  });
  out.push('</svg>');
  return out.join('\n');
}

function fontFiles(): string[] {
  const dir = '/usr/share/fonts/truetype/dejavu';
  try {
    return readdirSync(dir)
      .filter((f) => /^DejaVuSans(-Bold)?\.ttf$/.test(f))
      .map((f) => `${dir}/${f}`);
  } catch {
    return [];
  }
}

export function renderChart(r: Report): Buffer {
  const svg = renderSvg(r);
  const resvg = new Resvg(svg, {
    background: '#ffffff',
    fitTo: { mode: 'zoom', value: 1.5 },
    font: { loadSystemFonts: true, fontFiles: fontFiles(), defaultFontFamily: 'DejaVu Sans' },
  });
  return resvg.render().asPng();
}
