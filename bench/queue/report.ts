/**
 * Renders the results: a markdown report (table, machine, settings, failures) and a PNG bar chart
 * of median throughput (an SVG drawn here, rasterised by resvg: no browser, no native build).
 */
import { readdirSync } from 'node:fs';

import { Resvg } from '@resvg/resvg-js';

import type { Report, SystemResult } from './run.ts';
import { fmtInt, fmtMs, fmtRatio } from './stats.ts';

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

export function renderMarkdown(r: Report): string {
  const p = r.params;
  const lines: string[] = [];
  lines.push('# Queue benchmark: enqueue → claim → complete');
  lines.push('');
  lines.push(
    `Generated ${r.generatedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}${p.quick ? ' — **quick smoke run, not for comparison**' : ''}, in ${Math.round(r.totalSeconds)} s.`,
  );
  lines.push('');
  lines.push(
    `- **Machine:** ${r.machine.cpu}, ${r.machine.cores} cores, ${r.machine.memoryGiB} GiB RAM, ${r.machine.os}`,
  );
  lines.push(`- **Node:** ${r.machine.node}`);
  lines.push(
    `- **Load average** (1, 5, 15 min) at start: ${r.machine.loadStart}; at end: ${r.machine.loadEnd}. Other processes on the machine add noise; runs are interleaved across systems so it spreads evenly, and each run's load is in \`queue.json\` (\`loadBefore\`).`,
  );
  lines.push(`- **Services:** ${r.services.redis}; ${r.services.postgres}`);
  lines.push(
    `- **Warden:** commit \`${r.warden.commit}\`${r.warden.dirty.length ? ` with uncommitted changes in ${r.warden.dirty.map((f) => `\`${f}\``).join(', ')}` : ' (clean src/)'}`,
  );
  lines.push(`- **Command:** \`${r.command}\``);
  lines.push(
    `- **Workload:** N = ${fmtInt(p.n)} no-op tasks per run (unless the N column says otherwise), payload \`{ i, pad: 'x'.repeat(64) }\`, concurrency ${p.concurrency} for every system, ${p.warmup} warm-up run (excluded) + ${p.runs} measured runs, a fresh database / schema / key prefix per run, each system in its own process, one system at a time.`,
  );
  lines.push(
    `- **Throughput** = N ÷ (first enqueue call → last completion recorded by the system); the worker is started and idle before the clock starts, and the producer enqueues in the system's batch API (1,000 per call) while the worker runs. Median of the measured runs; min–max across them; ratio = median ÷ Warden (fast) median.`,
  );
  lines.push(
    `- **Idle latency** = enqueue call start → handler start (\`performance.now()\`, same process), ${p.latencySamples} samples after ${p.latencyWarmup} warm-up ones, one task at a time with the worker idle (each sample waits for the previous completion, then ${p.latencyGapMs} ms).`,
  );
  lines.push(
    '- **Order:** each system in its own process; all warm-ups first, then measured run 1 of every system, run 2 of every system, … (rotating order), then the idle-latency tests, one system at a time.',
  );
  lines.push(
    '- **Delivery check:** the handler counts every id; a run passes when each of the N ids was seen exactly once (none missing, no duplicates, nothing unknown), also after a 300 ms grace period and the worker stop. ✓ = every run, the warm-up and the latency test passed.',
  );
  lines.push('');
  lines.push(
    '| System | Backend | Durability | Median tasks/s | Min – max tasks/s | vs Warden fast | Idle latency p50 / p99 (ms) | Delivery | Runs | N | Concurrency |',
  );
  lines.push('|---|---|---|--:|--:|--:|--:|:-:|--:|--:|--:|');
  for (const s of r.systems) {
    const failed = s.medianThroughput === undefined;
    lines.push(
      `| **${esc(s.name)}** | ${esc(s.backend || '–')} | ${esc(s.durability || '–')} | ${failed ? '**failed**' : fmtInt(s.medianThroughput)} | ${failed ? '–' : `${fmtInt(s.minThroughput)} – ${fmtInt(s.maxThroughput)}`} | ${fmtRatio(s.ratioVsWardenFast)} | ${s.latencyP50 === undefined ? '–' : `${fmtMs(s.latencyP50)} / ${fmtMs(s.latencyP99)}`} | ${deliveryCell(s)} | ${s.measuredRuns}/${p.runs} | ${fmtInt(s.n)}${s.n !== p.n ? ' ⚠' : ''} | ${p.concurrency} |`,
    );
  }
  lines.push('');
  const reduced = r.systems.filter((s) => s.n !== p.n);
  if (reduced.length)
    lines.push(
      `⚠ Reduced N: ${reduced.map((s) => `${s.name} ran ${fmtInt(s.n)} tasks per run instead of ${fmtInt(p.n)}`).join('; ')}, to keep the whole benchmark within its time budget (see the notes below). Its throughput is therefore measured on a smaller backlog.`,
    );
  lines.push('');
  lines.push('![Median throughput](queue.png)');
  lines.push('');
  lines.push('## Settings per system');
  lines.push('');
  for (const s of r.systems) lines.push(`- **${s.name}**: ${s.settings || '–'}`);
  lines.push('');
  lines.push('## Phases (median seconds of the measured runs)');
  lines.push('');
  lines.push(
    '| System | All enqueued | All handlers started | All completions recorded | Enqueue call p50 (latency test, ms) |',
  );
  lines.push('|---|--:|--:|--:|--:|');
  for (const s of r.systems) {
    const m = s.runs.filter((x) => !x.warmup);
    const med = (f: (x: (typeof m)[number]) => number | undefined) => {
      const xs = m
        .map(f)
        .filter((x): x is number => x !== undefined)
        .sort((a, b) => a - b);
      if (!xs.length) return '–';
      const mid = xs.length >> 1;
      return (xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2).toFixed(2);
    };
    lines.push(
      `| ${esc(s.name)} | ${med((x) => x.enqueueSeconds)} | ${med((x) => x.handledSeconds)} | ${med((x) => x.seconds)} | ${fmtMs(s.enqueueAckP50)} |`,
    );
  }
  lines.push('');
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
    s.runs.forEach((x, i) => {
      const label = x.warmup ? 'warm-up' : `run ${i + 1 - r.params.warmup}`;
      if (!x.ok)
        lines.push(
          `  - ${label}: ${esc(x.error ?? 'failed')} (delivered ${fmtInt(x.delivered)}/${fmtInt(x.n)}, ${x.duplicates} duplicates, ${x.missing} missing)`,
        );
      for (const a of x.anomalies) lines.push(`  - ${label}: ${esc(a)}`);
    });
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
    `<text x="24" y="58" font-size="13" fill="#444">${xml(`median tasks/s of ${r.params.runs} runs (warm-up excluded), whiskers = min–max · N = ${fmtInt(r.params.n)} · concurrency ${r.params.concurrency} · ${r.machine.cores} cores, ${r.machine.cpu} · Node ${r.machine.node}`)}</text>`,
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
