/** The daemon / ACP benchmark's markdown report. */
import type { MachineInfo } from '../shared/machine.ts';
import { wardenLine } from '../shared/machine.ts';
import {
  fmtInt,
  fmtIntSpread,
  fmtMs,
  fmtRatio,
  fmtSmall,
  type Spread,
  spread,
} from '../shared/stats.ts';

export interface StreamRun {
  readonly ok: boolean;
  readonly received: number;
  readonly expected: number;
  readonly gaps: number;
  readonly duplicates: number;
  /** Events ÷ (first event → last event). */
  readonly perSecond: number;
  /** Events ÷ (subscribe sent → last event). */
  readonly fromSubscribePerSecond: number;
  readonly firstEventMs: number;
  readonly seconds: number;
  /** Mean frame size, bytes. */
  readonly frameBytes: number;
  readonly backpressure: boolean;
  readonly timedOut: boolean;
  readonly closed?: { code: number; reason: string };
  /** CPU µs per delivered event of the server process (in-process: the producer's too). */
  readonly serverCpuUsPerEvent?: number;
  readonly serverCpuIncludesProducer?: boolean;
  /** CPU µs per event of the subscriber's process. */
  readonly clientCpuUsPerEvent?: number;
  /** How fast the producer appended (live runs). */
  readonly producerPerSecond?: number;
}

interface Rss {
  vmRss: number;
  rssAnon: number;
  rssFile: number;
}

interface ImportRow {
  name: string;
  ms: number;
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
}

export interface AcpReport {
  readonly generatedAt: string;
  readonly command: string;
  readonly machine: MachineInfo & { loadStart: string; loadEnd: string };
  readonly warden: { commit: string; dirty: string[] };
  readonly params: {
    quick: boolean;
    runs: number;
    liveEvents: number;
    replayEvents: number;
    batch: number;
    latencySamples: number;
    latencyWarmup: number;
    latencyGapMs: number;
    coldRuns: number;
    idleS: number;
    idleClients: number;
    entries: string[];
    out: string;
  };
  durability: string;
  limits: { replay_page_size: number; outbound_high_water_bytes: number };
  readonly liveInProcess: StreamRun[];
  readonly liveCrossProcess: StreamRun[];
  readonly replay: StreamRun[];
  readonly ceiling: StreamRun[];
  readonly ceilingCorked: StreamRun[];
  latency: {
    samples: number[];
    p50: number;
    p90: number;
    p99: number;
    max: number;
    completed: number;
  } | null;
  readonly coldStart: Array<{
    entry: string;
    home: 'fresh' | 'existing';
    runs: Array<{
      readyLogMs: number;
      readyzMs: number;
      firstLogMs: number;
      startPhasesMs: number;
    }>;
    readyLog: Spread;
    readyz: Spread;
    firstLog: Spread;
    startPhases: Spread;
  }>;
  readonly rss: Array<{
    entry: string;
    home: 'fresh' | 'existing';
    idle: Rss;
    withClients: Rss;
    clients: number;
    threads: number;
  }>;
  hostMemory: (NodeJS.MemoryUsage & { vmRss: number }) | null;
  readonly imports: Record<string, ImportRow[]>;
  totalSeconds: number;
}

const met = (ok: boolean | undefined) => (ok === undefined ? '–' : ok ? '✓ met' : '✗ not met');
const mib = (x: number | undefined) => (x === undefined ? '–' : x.toFixed(1));

function streamSpread(runs: readonly StreamRun[], key: 'perSecond' | 'fromSubscribePerSecond') {
  return spread(runs.filter((r) => r.ok).map((r) => r[key]));
}

export function renderAcp(r: AcpReport): string {
  const p = r.params;
  const m = r.machine;
  const L: string[] = [];
  L.push('# Daemon and ACP benchmark');
  L.push('');
  L.push(
    `Generated ${r.generatedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}${p.quick ? ' — **quick smoke run, not for comparison**' : ''}, in ${Math.round(r.totalSeconds)} s.`,
  );
  L.push('');
  L.push(
    `- **Machine:** ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}; Node ${m.node}`,
  );
  L.push(
    `- **Load average** at start: ${m.loadStart}; at end: ${m.loadEnd} (other work shares the 2 cores; the daemon, the subscriber and the producer all run on them)`,
  );
  L.push(`- **Warden:** ${wardenLine(r.warden)}`);
  L.push(`- **Command:** \`${r.command}\``);
  L.push(
    `- **Daemon:** \`warden serve --listen 127.0.0.1:0\` in a child process on a home made by \`warden init\` (durability \`${r.durability}\`, the default config; \`replay_page_size\` ${fmtInt(r.limits.replay_page_size)}, \`outbound_high_water_bytes\` ${fmtInt(r.limits.outbound_high_water_bytes)}), run from the TypeScript sources (Node type stripping) unless a row says *built* (\`node dist/cli/warden.js serve\`, after \`npm run build\`).`,
  );
  L.push('');

  const live = streamSpread(r.liveInProcess, 'perSecond');
  const liveX = streamSpread(r.liveCrossProcess, 'perSecond');
  const replay = streamSpread(r.replay, 'fromSubscribePerSecond');
  const ceil = streamSpread(r.ceiling, 'fromSubscribePerSecond');
  const cold = r.coldStart.filter((c) => c.entry === 'source');
  const coldMax = cold.length ? Math.max(...cold.map((c) => c.readyz.median)) : undefined;
  const rssIdle = r.rss.find((x) => x.entry === 'source' && x.home === 'fresh');
  const allStreams = [...r.liveInProcess, ...r.liveCrossProcess, ...r.replay];
  const gaps = allStreams.reduce((a, x) => a + x.gaps, 0);
  const dups = allStreams.reduce((a, x) => a + x.duplicates, 0);

  L.push('## Targets (DESIGN.md §16)');
  L.push('');
  L.push('| Target | Measured (median) | Status |');
  L.push('|---|--:|:-:|');
  L.push(
    `| Event stream ≥ 100,000 events/s to one subscriber (live, in-process producer) | ${fmtInt(live?.median)} | ${met(live && live.median >= 100_000)} |`,
  );
  L.push(
    `| same, producer in another process | ${fmtInt(liveX?.median)} | ${met(liveX && liveX.median >= 100_000)} |`,
  );
  L.push(
    `| Replay ≥ 200,000 events/s | ${fmtInt(replay?.median)} | ${met(replay && replay.median >= 200_000)} |`,
  );
  L.push(
    `| 0 gaps, 0 duplicates (every live and replay run) | ${gaps} gaps, ${dups} duplicates | ${met(gaps === 0 && dups === 0)} |`,
  );
  L.push(
    `| Remote worker enqueue → start p99 ≤ 5 ms | ${fmtMs(r.latency?.p99)} ms | ${met(r.latency ? r.latency.p99 <= 5 : undefined)} |`,
  );
  L.push(
    `| Cold start to ready ≤ 300 ms (spawn → /readyz 200, sources, worst of fresh / existing home) | ${fmtMs(coldMax)} ms | ${met(coldMax === undefined ? undefined : coldMax <= 300)} |`,
  );
  L.push(
    `| Idle RSS ≤ 100 MB (sources, fresh home, no client) | ${mib(rssIdle?.idle.vmRss)} MiB | ${met(rssIdle ? rssIdle.idle.vmRss * 1.048576 <= 100 : undefined)} |`,
  );
  L.push('');

  L.push('## Event stream to one subscriber');
  L.push('');
  L.push(
    `One raw \`ws\` client subscribes (\`events.subscribe\`) and JSON-parses every frame, checking that each seq is the previous one + 1 (a skipped seq counts as a gap, a repeated one as a duplicate). ${p.runs} runs per row, interleaved (in-process, cross-process, replay, ceiling); median (IQR p25–p75). A run counts only if every event arrived, with no gap, no duplicate and no backpressure cut-off.`,
  );
  L.push('');
  L.push(
    `- **Live, in-process producer:** the daemon's own process appends ${fmtInt(p.liveEvents)} events (\`task.progress\`, data \`{ k, pad: 'x'.repeat(64) }\`) to a fresh session with \`store.commit\`, ${fmtInt(p.batch)} per commit, yielding to the event loop (\`setImmediate\`) between commits; the subscriber was subscribed first. They reach it through the event pump's fast path (\`onCommit\`, sent from memory). This runs \`Daemon.start\` with \`warden serve\`'s settings in a forked process (\`bench/acp/host.ts\`), since \`warden serve\` has no way to commit events in bulk from its own process.`,
  );
  L.push(
    `- **Live, cross-process producer:** another Node process opens the daemon's SQLite file and appends ${fmtInt(p.liveEvents)} events, ${fmtInt(p.batch)} per commit, as fast as it can; the daemon hears the commits (change watcher) and reads them from the store in pages.`,
  );
  L.push(
    `- Events/s = events ÷ (first event → last event at the subscriber). The producer's own append rate is given beside it: delivery cannot be faster than production.`,
  );
  L.push(
    `- **Replay:** a session of ${fmtInt(p.replayEvents)} events (+ its \`session.created\`), written with the Store straight into the file by the benchmark before subscribing; \`events.subscribe {from_seq: 0}\`. Events/s = events ÷ (subscribe request sent → last event).`,
  );
  L.push(
    `- **Ceiling:** a plain \`ws\` server in its own process sends the same number of frames — a frame Warden sent in the replay, seq rewritten, so the same JSON size — pre-serialised, in pages of ${fmtInt(r.limits.replay_page_size)}, waiting before the next page until \`bufferedAmount\` ≤ a quarter of ${fmtInt(r.limits.outbound_high_water_bytes)} bytes (the flow control of Warden's replay). Same client, same clock as the replay. *vs ceiling* is always against this plain ceiling. The *corked* ceiling is the same server writing each page between \`socket.cork()\` and \`uncork()\`: not what Warden does, but what batching its writes could gain.`,
  );
  L.push('');
  L.push(
    '| Case | Events/s, median (IQR) | Producer appends/s, median | First event after subscribe, ms | Frame bytes | vs ceiling | Server CPU µs / event | Subscriber CPU µs / event | Gaps / dups | Runs ok |',
  );
  L.push('|---|--:|--:|--:|--:|--:|--:|--:|:-:|--:|');
  const row = (
    name: string,
    runs: readonly StreamRun[],
    key: 'perSecond' | 'fromSubscribePerSecond',
  ) => {
    const s = streamSpread(runs, key);
    const prod = spread(runs.filter((x) => x.producerPerSecond).map((x) => x.producerPerSecond!));
    const first = spread(runs.map((x) => x.firstEventMs));
    const bytes = spread(runs.map((x) => x.frameBytes));
    const scpu = spread(runs.map((x) => x.serverCpuUsPerEvent ?? NaN));
    const ccpu = spread(runs.map((x) => x.clientCpuUsPerEvent ?? NaN));
    L.push(
      `| ${name} | ${fmtIntSpread(s)} | ${prod ? fmtInt(prod.median) : '–'} | ${fmtMs(first?.median)} | ${fmtInt(bytes?.median)} | ${s && ceil ? fmtRatio(s.median / ceil.median) : '–'} | ${fmtSmall(scpu?.median)}${runs[0]?.serverCpuIncludesProducer ? ' (incl. producer)' : ''} | ${fmtSmall(ccpu?.median)} | ${runs.reduce((a, x) => a + x.gaps, 0)} / ${runs.reduce((a, x) => a + x.duplicates, 0)} | ${runs.filter((x) => x.ok).length}/${runs.length} |`,
    );
  };
  row('Live, in-process producer', r.liveInProcess, 'perSecond');
  row('Live, producer in another process', r.liveCrossProcess, 'perSecond');
  row(`Replay of ${fmtInt(p.replayEvents)} stored events`, r.replay, 'fromSubscribePerSecond');
  row('Ceiling: plain `ws`, pre-serialised frames', r.ceiling, 'fromSubscribePerSecond');
  row(
    'Ceiling, each page corked (`socket.cork()` … `uncork()`)',
    r.ceilingCorked,
    'fromSubscribePerSecond',
  );
  L.push('');
  const bad = [
    ...r.liveInProcess.map((x) => ['live in-process', x] as const),
    ...r.liveCrossProcess.map((x) => ['live cross-process', x] as const),
    ...r.replay.map((x) => ['replay', x] as const),
    ...r.ceiling.map((x) => ['ceiling', x] as const),
    ...r.ceilingCorked.map((x) => ['ceiling corked', x] as const),
  ].filter(([, x]) => !x.ok);
  if (bad.length) {
    L.push('Runs that did not count:');
    L.push('');
    for (const [name, x] of bad)
      L.push(
        `- ${name}: ${x.received}/${x.expected} events, ${x.gaps} gaps, ${x.duplicates} duplicates${x.backpressure ? ', cut off for backpressure (`system.backpressure`)' : ''}${x.timedOut ? ', timed out' : ''}${x.closed ? `, closed ${x.closed.code} ${x.closed.reason}` : ''}`,
      );
    L.push('');
  }

  L.push('## Remote worker: task.submit → handler start');
  L.push('');
  if (r.latency) {
    L.push(
      `\`runRemoteWorker\` (warden/client; concurrency 1, \`waitMs\` 30 s, lane \`default\`) idle in its \`task.claim\` long-poll; the benchmark submits one no-op task at a time over ACP with a second \`WardenClient\` (\`tasks.submit\`) and measures from just before the call to the handler's start, in the same process (\`performance.now()\`). Each sample waits until the previous task reads back \`succeeded\`, then ${p.latencyGapMs} ms. ${p.latencyWarmup} warm-up samples excluded; ${fmtInt(r.latency.samples.length)} measured.`,
    );
    L.push('');
    L.push('| p50 ms | p90 ms | p99 ms | max ms | Completed |');
    L.push('|--:|--:|--:|--:|--:|');
    L.push(
      `| ${fmtMs(r.latency.p50)} | ${fmtMs(r.latency.p90)} | ${fmtMs(r.latency.p99)} | ${fmtMs(r.latency.max)} | ${fmtInt(r.latency.completed)} |`,
    );
    L.push('');
  }

  L.push('## Cold start to ready');
  L.push('');
  L.push(
    `\`warden serve --listen 127.0.0.1:<port>\` spawned by this process; the clocks run from just before \`spawn\` to the \`ready\` log line read from its stdout, and to the first \`GET /readyz\` answered 200 (polled every 2 ms from the spawn on; connection refused until it listens, 503 until its workers run). *Fresh* = a home just made by \`warden init\` (empty database); *existing* = the home the stream benchmarks used (their sessions and ${fmtInt(p.replayEvents + p.liveEvents * p.runs)}+ events: the replay session and the cross-process live sessions). ${p.coldRuns} runs each; median (min–max). Node's own start-up is inside.`,
  );
  L.push('');
  L.push(
    '| Build | Home | spawn → `ready` line, ms | spawn → /readyz 200, ms | of which: spawn → first log line (Node + module loading), ms | first log line → `ready` (store, recovery, listeners, workers), ms |',
  );
  L.push('|---|---|--:|--:|--:|--:|');
  for (const c of r.coldStart)
    L.push(
      `| ${c.entry === 'source' ? 'sources (type stripping)' : 'built (dist/)'} | ${c.home} | ${fmtMs(c.readyLog.median)} (${fmtMs(c.readyLog.min)}–${fmtMs(c.readyLog.max)}) | ${fmtMs(c.readyz.median)} (${fmtMs(c.readyz.min)}–${fmtMs(c.readyz.max)}) | ${fmtMs(c.firstLog.median)} | ${fmtMs(c.startPhases.median)} |`,
    );
  L.push('');

  L.push('## Idle memory');
  L.push('');
  L.push(
    `VmRSS (and its anonymous / file-backed parts) from \`/proc/<pid>/status\`, ${p.idleS} s after \`ready\` with no client, then ${p.idleS} s after ${p.idleClients} raw \`ws\` clients connected and said \`system.hello\` (idle, no subscription). MiB.`,
  );
  L.push('');
  L.push(
    '| Build | Home | Idle VmRSS | RssAnon | RssFile | With clients VmRSS | Per client, KiB | Threads |',
  );
  L.push('|---|---|--:|--:|--:|--:|--:|--:|');
  for (const x of r.rss)
    L.push(
      `| ${x.entry === 'source' ? 'sources' : 'built'} | ${x.home} | ${mib(x.idle.vmRss)} | ${mib(x.idle.rssAnon)} | ${mib(x.idle.rssFile)} | ${mib(x.withClients.vmRss)} | ${fmtInt(((x.withClients.vmRss - x.idle.vmRss) * 1024) / x.clients)} | ${x.threads} |`,
    );
  L.push('');
  if (r.hostMemory) {
    const h = r.hostMemory;
    const M = (x: number) => (x / 2 ** 20).toFixed(1);
    L.push(
      `The same daemon (\`Daemon.start\` in \`bench/acp/host.ts\`, sources, fresh home) ${p.idleS} s after start, from \`process.memoryUsage()\`: rss ${M(h.rss)} MiB, V8 heap ${M(h.heapUsed)} used of ${M(h.heapTotal)}, external ${M(h.external)}, array buffers ${M(h.arrayBuffers)} MiB. The rest of the RSS is not the JS heap: code (Node's binary, V8's compiled code, native addons), the heartbeat worker thread's isolate, SQLite's page cache and the thread stacks.`,
    );
    L.push('');
  }
  for (const [entry, rows] of Object.entries(r.imports)) {
    L.push(
      `**What start-up imports cost (${entry === 'source' ? 'sources' : 'built'})**: a fresh \`node\` process (\`bench/acp/import-cost.mjs\`, plain JavaScript so Node's type stripper is not loaded before the first sample) imports the daemon's dependencies, then Warden's layers, one at a time; RSS and heap after a full GC, MiB. Each row includes what it imported that was not loaded yet.`,
    );
    L.push('');
    L.push('| After importing | Import ms | RSS | Δ RSS | V8 heap used | heap total | external |');
    L.push('|---|--:|--:|--:|--:|--:|--:|');
    let prev = rows[0]?.rss ?? 0;
    for (const x of rows) {
      L.push(
        `| ${x.name} | ${fmtMs(x.ms)} | ${mib(x.rss)} | ${(x.rss - prev >= 0 ? '+' : '') + (x.rss - prev).toFixed(1)} | ${mib(x.heapUsed)} | ${mib(x.heapTotal)} | ${mib(x.external)} |`,
      );
      prev = x.rss;
    }
    L.push('');
  }
  L.push(...findings(r));
  L.push('Raw numbers: `acp.json`. How to run and read this: `bench/README.md`.');
  L.push('');
  return L.join('\n');
}

/** What the numbers say, computed from this run (the reading is the same on every run). */
function findings(r: AcpReport): string[] {
  const L: string[] = ['## Findings', ''];
  const src = r.rss.find((x) => x.entry === 'source' && x.home === 'fresh');
  const built = r.rss.find((x) => x.entry === 'built' && x.home === 'fresh');
  const rows = r.imports.built ?? r.imports.source ?? [];
  const delta = (name: string) => {
    const i = rows.findIndex((x) => x.name === name);
    return i > 0 ? rows[i]!.rss - rows[i - 1]!.rss : undefined;
  };
  const ms = (name: string) => rows.find((x) => x.name === name)?.ms;
  const base = rows[0]?.rss;
  const allImports = rows.find((x) => x.name === 'src/cli/program')?.rss;
  const worker = delta('+ one idle worker_threads Worker');
  const srcCore = r.imports.source?.find((x) => x.name === 'src/core/index');
  const builtCore = r.imports.built?.find((x) => x.name === 'src/core/index');
  const stripping = srcCore && builtCore ? srcCore.rss - builtCore.rss : undefined; // same rows before it
  L.push(
    `**Idle RSS is over the 100 MB target** (${mib(src?.idle.vmRss)} MiB from the sources, ${mib(built?.idle.vmRss)} MiB built). Where it goes, from the tables above:`,
  );
  L.push('');
  L.push(
    `- **Node itself**: ${mib(base)} MiB before anything is imported (its binary, V8, ICU, the default threads).`,
  );
  L.push(
    `- **Type stripping** (running \`src/*.ts\`): loading Node's TypeScript stripper costs ${mib(stripping)} MiB at the first \`.ts\` import (and ${fmtMs(srcCore && builtCore ? srcCore.ms - builtCore.ms : undefined)} ms more); the idle daemon from the sources is ${mib(src && built ? src.idle.vmRss - built.idle.vmRss : undefined)} MiB bigger than from \`dist/\`. Production should run the built package (\`bin\` already points at \`dist/cli/warden.js\`).`,
  );
  L.push(
    `- **Dependencies loaded at start**: \`openai\` +${mib(delta('openai'))} MiB (${fmtMs(ms('openai'))} ms), \`zod\` +${mib(delta('zod'))} MiB (${fmtMs(ms('zod'))} ms), \`ws\` +${mib(delta('ws'))} MiB, \`better-sqlite3\` +${mib(delta('better-sqlite3'))} MiB; all of Warden's own layers together add only ${mib(allImports !== undefined && rows.find((x) => x.name === 'openai') ? allImports - rows.find((x) => x.name === 'openai')!.rss : undefined)} MiB. Everything imported: ${mib(allImports)} MiB.`,
  );
  L.push(
    `- **The heartbeat thread**: an idle \`worker_threads\` Worker (a second V8 isolate, what \`queue/heartbeat-pump.ts\` starts) adds ${mib(worker)} MiB by itself.`,
  );
  if (built && allImports !== undefined)
    L.push(
      `- **At run time** the built daemon holds ${mib(built.idle.vmRss - allImports)} MiB more than the imports alone: the heartbeat isolate, V8's heap growth (semi-spaces) and compiled code, SQLite's page cache (\`cache_size = -65536\`, up to 64 MiB, filled only by reads), sockets. ${r.hostMemory ? `\`process.memoryUsage()\` of the sources daemon: V8 heap ${(r.hostMemory.heapUsed / 2 ** 20).toFixed(1)} MiB used of ${(r.hostMemory.heapTotal / 2 ** 20).toFixed(1)} MiB reserved, external ${(r.hostMemory.external / 2 ** 20).toFixed(1)} MiB.` : ''}`,
    );
  L.push(
    `- **Clients are cheap**: ${r.rss.length ? r.rss.map((x) => `${fmtInt(((x.withClients.vmRss - x.idle.vmRss) * 1024) / x.clients)} KiB`).join(' / ') : '–'} per idle connection (${r.rss.map((x) => `${x.entry === 'source' ? 'sources' : 'built'} ${x.home}`).join(' / ')}).`,
  );
  L.push('');
  L.push(
    "What would bring it down: run `dist/` (no stripper); (`openai` is already imported only when an OpenAI model is first called, so the daemon does not carry it — the table above imports it explicitly); build the zod schemas lazily or per command, or use `zod/mini` where only parsing is needed; run heartbeats on the main thread (or start the thread only when a step runs long) instead of a second isolate at start; a smaller SQLite `cache_size` for the daemon's idle footprint; and V8 flags such as `--max-semi-space-size` to cap the young generation (untested).",
  );
  L.push('');
  const first = r.coldStart.map((c) => c.firstLog.median);
  const phases = r.coldStart.map((c) => c.startPhases.median);
  L.push(
    `**Cold start is module loading, not the daemon's start**: spawn → first log line (Node start + loading every module the CLI imports) takes ${fmtMs(Math.min(...first))}–${fmtMs(Math.max(...first))} ms (medians), while the daemon's own phases (store, recovery, listeners, workers) take ${fmtMs(Math.min(...phases))}–${fmtMs(Math.max(...phases))} ms. \`src/cli/main.ts\` builds the whole program, so \`serve\` loads every command\'s modules. Lazy imports per command, and zod schemas built on first use, are the lever. Median spawn → /readyz: ${r.coldStart.map((c) => `${c.entry === 'source' ? 'sources' : 'built'} ${c.home} ${fmtMs(c.readyz.median)} ms`).join(', ')}.`,
  );
  L.push('');
  const live = spread(r.liveInProcess.filter((x) => x.ok).map((x) => x.perSecond));
  const ceil = spread(r.ceiling.filter((x) => x.ok).map((x) => x.fromSubscribePerSecond));
  const corked = spread(r.ceilingCorked.filter((x) => x.ok).map((x) => x.fromSubscribePerSecond));
  const ceilCpu = spread(r.ceiling.map((x) => x.serverCpuUsPerEvent ?? NaN));
  const corkCpu = spread(r.ceilingCorked.map((x) => x.serverCpuUsPerEvent ?? NaN));
  const replayCpu = spread(r.replay.map((x) => x.serverCpuUsPerEvent ?? NaN));
  L.push(
    `**Writes per frame decide event throughput**: the plain \`ws\` ceiling, which does no work but \`ws.send\` of ready strings one socket write each, reaches ${fmtInt(ceil?.median)} events/s at ${fmtSmall(ceilCpu?.median)} µs of server CPU per frame; corking each page gives ${fmtInt(corked?.median)} events/s at ${fmtSmall(corkCpu?.median)} µs. Warden's event pump corks each page it reads (and each commit's events on the live fast path), so its replay — a page read from SQLite, one \`JSON.stringify\` per event, corked sends — costs ${fmtSmall(replayCpu?.median)} µs of daemon CPU per event and beats the plain ceiling. ${live && ceil ? `Live delivery with the producer in the daemon's own process reached ${fmtRatio(live.median / ceil.median)} of the plain ceiling: producer and pump share one thread, and delivery cannot outrun production (see the producer column).` : ''}`,
  );
  L.push('');
  return L;
}
