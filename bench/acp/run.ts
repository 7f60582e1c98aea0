/**
 * Daemon and ACP benchmark: `warden serve` in a child process, measured from this process
 * through raw `ws` clients (and `warden/client` for the remote worker).
 *
 *   node acp/run.ts            (npm run bench:acp)
 *   node acp/run.ts --quick    smoke test → results/quick/
 *
 * 1. live events/s to one subscriber: produced in the daemon's process (the event pump's
 *    in-memory fast path) and by another process writing the SQLite file (read in pages);
 * 2. replay events/s of a stored session from seq 0;
 * 3. the ceiling: a plain `ws` server sending the same frames with the same flow control;
 * 4. remote worker latency: task.submit sent → handler start, idle long-polling worker;
 * 5. cold start: spawn → `ready` log line and → first /readyz 200, fresh and existing home,
 *    from the sources (type stripping) and from dist/;
 * 6. idle RSS, with no client and with 100 idle clients; plus what the memory is made of.
 *
 * Options: --runs R (default 5; quick 2), --live-events N (200000; quick 20000), --replay-events
 * N (200000; quick 20000), --batch B (events per producer commit, 100), --latency-samples S
 * (1000; quick 200), --latency-gap-ms (5), --cold-runs C (10; quick 3), --idle-s (5),
 * --idle-clients (100), --entries source,built, --out DIR.
 */
import { type ChildProcess, execFileSync, fork, spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

import { runRemoteWorker, WardenClient } from '../../src/client/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import { parseFlags } from '../shared/cli.ts';
import { benchDir, loadAverage, machineInfo, wardenInfo } from '../shared/machine.ts';
import { percentile, spread } from '../shared/stats.ts';
import {
  builtAvailable,
  type Entry,
  initHome,
  procCpuSeconds,
  rss,
  startDaemon,
} from './daemon.ts';
import type { AcpReport, StreamRun } from './report.ts';
import { renderAcp } from './report.ts';
import { connectRaw, stream } from './subscriber.ts';

const log = (line: string) => process.stderr.write(`${line}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PAD = 'x'.repeat(64);

function parseArgs(argv: string[]) {
  const f = parseFlags(argv);
  const entries = f.list('entries', ['source', 'built']) as Entry[];
  return {
    quick: f.quick,
    runs: Math.max(1, f.num('runs', f.quick ? 2 : 5)),
    liveEvents: f.num('live-events', f.quick ? 20_000 : 200_000),
    replayEvents: f.num('replay-events', f.quick ? 20_000 : 200_000),
    batch: Math.max(1, f.num('batch', 100)),
    latencySamples: f.num('latency-samples', f.quick ? 200 : 1_000),
    latencyWarmup: 20,
    latencyGapMs: f.num('latency-gap-ms', 5),
    coldRuns: Math.max(1, f.num('cold-runs', f.quick ? 3 : 10)),
    idleS: f.num('idle-s', 5),
    idleClients: f.num('idle-clients', 100),
    entries: entries.filter((e) => e === 'source' || (e === 'built' && builtAvailable())),
    out: resolve(benchDir, f.str('out', f.quick ? 'results/quick' : 'results')),
  };
}
type Args = ReturnType<typeof parseArgs>;

/** The last seq of a session (its `session.created` and anything since). */
async function lastSeq(acpUrl: string, token: string, sessionId: string): Promise<number> {
  const acp = await connectRaw(acpUrl, token);
  let last = 0;
  for (;;) {
    const page = await acp.call('session.history', {
      session_id: sessionId,
      from_seq: last,
      limit: 10_000,
    });
    const events = page.events as Array<{ seq: number }>;
    if (events.length) last = events[events.length - 1]!.seq;
    if (!page.more) break;
  }
  await acp.close();
  return last;
}

async function createSession(acpUrl: string, token: string, key: string): Promise<string> {
  const acp = await connectRaw(acpUrl, token);
  const { session } = (await acp.call('session.create', { key })) as { session: { id: string } };
  await acp.close();
  return session.id;
}

/** Runs a stream measurement and the CPU seconds the server process and this process spent. */
async function withCpu<T>(
  serverPid: number,
  fn: () => Promise<T>,
): Promise<{ result: T; serverCpu: number; clientCpu: number }> {
  const s0 = procCpuSeconds(serverPid);
  const c0 = process.cpuUsage();
  const result = await fn();
  const c = process.cpuUsage(c0);
  return {
    result,
    serverCpu: procCpuSeconds(serverPid) - s0,
    clientCpu: (c.user + c.system) / 1e6,
  };
}

function toRun(
  r: Awaited<ReturnType<typeof stream>>,
  expected: number,
  extra: Partial<StreamRun> = {},
): StreamRun {
  const span = (r.lastAt - r.firstAt) / 1000;
  const fromSubscribe = (r.lastAt - r.subscribeSentAt) / 1000;
  const ok =
    r.received === expected && r.gaps === 0 && r.duplicates === 0 && !r.timedOut && !r.backpressure;
  return {
    ok,
    received: r.received,
    expected,
    gaps: r.gaps,
    duplicates: r.duplicates,
    perSecond: r.received / span,
    fromSubscribePerSecond: r.received / fromSubscribe,
    firstEventMs: r.firstAt - r.subscribeSentAt,
    seconds: span,
    frameBytes: r.frameBytes,
    backpressure: r.backpressure,
    timedOut: r.timedOut,
    ...(r.closed ? { closed: r.closed } : {}),
    ...extra,
  };
}

function forkReady<T>(
  script: string,
  env: NodeJS.ProcessEnv,
  init?: unknown,
): Promise<{ child: ChildProcess; msg: T }> {
  const child = fork(join(benchDir, script), [], {
    env,
    stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
  });
  if (init !== undefined) child.send(init as object);
  return new Promise((resolve, reject) => {
    child.once('message', (msg) => resolve({ child, msg: msg as T }));
    child.once('exit', (code) => reject(new Error(`${script} exited (${code})`)));
  });
}

function nextMessage<T>(child: ChildProcess): Promise<T> {
  return new Promise((resolve) => child.once('message', (m) => resolve(m as T)));
}

function runProducer(
  file: string,
  sessionId: string,
  total: number,
  batch: number,
  durability: string,
): Promise<{ produced: number; seconds: number }> {
  const child = spawn(
    process.execPath,
    [join(benchDir, 'acp/producer.ts'), file, sessionId, String(total), String(batch), durability],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) =>
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as { produced: number; seconds: number })
        : reject(new Error(`producer exited ${code}`)),
    ),
  );
}

async function streams(args: Args, tmp: string, report: AcpReport): Promise<string> {
  // The in-process producer's daemon (host.ts) and the real `warden serve`, each on its own home.
  const hostHome = join(tmp, 'host');
  const serveHome = join(tmp, 'serve');
  initHome(hostHome);
  initHome(serveHome);
  const host = await forkReady<{ ready: string; token: string; durability: string }>(
    'acp/host.ts',
    { ...process.env, WARDEN_HOME: hostHome },
  );
  const hostAcp = `${host.msg.ready.replace(/^http/, 'ws')}/acp`;
  const daemon = await startDaemon(serveHome);
  report.durability = host.msg.durability;
  const dbFile = join(serveHome, 'warden.db');
  const timeoutMs = 120_000;

  // The replay session: N events written straight into the file by this process.
  const replaySession = await createSession(daemon.acpUrl, daemon.token, 'bench-replay');
  {
    const store = await openSqliteStore({
      file: dbFile,
      durability: host.msg.durability as 'fast',
    });
    for (let i = 0; i < args.replayEvents; i += 1_000)
      await store.commit(
        Array.from({ length: Math.min(1_000, args.replayEvents - i) }, (_, k) => ({
          op: 'event' as const,
          event: {
            session_id: replaySession,
            type: 'task.progress' as const,
            trace_id: 'tr_replay',
            data: { k: i + k, pad: PAD },
          },
        })),
      );
    await store.close();
  }
  const replayLast = await lastSeq(daemon.acpUrl, daemon.token, replaySession);
  const hello = await connectRaw(daemon.acpUrl, daemon.token, { hello: false });
  const limits = (
    (await hello.call('system.hello', {
      protocol: { min: 1, max: 1 },
      client: { name: 'bench', version: '0' },
    })) as { limits: { replay_page_size: number; outbound_high_water_bytes: number } }
  ).limits;
  await hello.close();
  report.limits = limits;

  const ceilings: Record<'plain' | 'corked', { child: ChildProcess; port: number } | null> = {
    plain: null,
    corked: null,
  };
  let sample = '';
  for (let r = 0; r < args.runs; r++) {
    log(`run ${r + 1}/${args.runs}`);
    // 1a. live, in-process producer
    {
      const sessionId = await createSession(hostAcp, host.msg.token, `live-in-${r}`);
      const from = await lastSeq(hostAcp, host.msg.token, sessionId);
      const acp = await connectRaw(hostAcp, host.msg.token);
      const produced = nextMessage<{ produced: number; seconds: number }>(host.child);
      const {
        result: res,
        serverCpu,
        clientCpu,
      } = await withCpu(host.child.pid!, async () => {
        const x = await stream(acp, {
          sessionId,
          fromSeq: from,
          lastSeq: from + args.liveEvents,
          timeoutMs,
          onSubscribed: () =>
            host.child.send({
              cmd: 'produce',
              sessionId,
              total: args.liveEvents,
              batch: args.batch,
            }),
        });
        return x;
      });
      const p = await produced;
      await acp.close();
      const run = toRun(res, args.liveEvents, {
        producerPerSecond: p.produced / p.seconds,
        serverCpuUsPerEvent: (serverCpu * 1e6) / res.received,
        serverCpuIncludesProducer: true,
        clientCpuUsPerEvent: (clientCpu * 1e6) / res.received,
      });
      report.liveInProcess.push(run);
      log(`  live in-process: ${fmt(run)}`);
    }
    // 1b. live, another process writes the file
    {
      const sessionId = await createSession(daemon.acpUrl, daemon.token, `live-x-${r}`);
      const from = await lastSeq(daemon.acpUrl, daemon.token, sessionId);
      const acp = await connectRaw(daemon.acpUrl, daemon.token);
      let producer!: Promise<{ produced: number; seconds: number }>;
      const {
        result: res,
        serverCpu,
        clientCpu,
      } = await withCpu(daemon.pid, () =>
        stream(acp, {
          sessionId,
          fromSeq: from,
          lastSeq: from + args.liveEvents,
          timeoutMs,
          onSubscribed: () =>
            (producer = runProducer(
              dbFile,
              sessionId,
              args.liveEvents,
              args.batch,
              report.durability,
            )),
        }),
      );
      const p = await producer;
      await acp.close();
      const run = toRun(res, args.liveEvents, {
        producerPerSecond: p.produced / p.seconds,
        serverCpuUsPerEvent: (serverCpu * 1e6) / res.received,
        clientCpuUsPerEvent: (clientCpu * 1e6) / res.received,
      });
      report.liveCrossProcess.push(run);
      log(`  live cross-process: ${fmt(run)}`);
    }
    // 2. replay
    {
      const acp = await connectRaw(daemon.acpUrl, daemon.token);
      const {
        result: res,
        serverCpu,
        clientCpu,
      } = await withCpu(daemon.pid, () =>
        stream(acp, {
          sessionId: replaySession,
          fromSeq: 0,
          lastSeq: replayLast,
          timeoutMs,
          sampleSeq: 1_000,
        }),
      );
      await acp.close();
      if (res.sample) sample = res.sample;
      const run = toRun(res, replayLast, {
        serverCpuUsPerEvent: (serverCpu * 1e6) / res.received,
        clientCpuUsPerEvent: (clientCpu * 1e6) / res.received,
      });
      report.replay.push(run);
      log(`  replay: ${fmt(run)}`);
    }
    // 3. the ceilings, with a frame Warden just sent
    for (const kind of ['plain', 'corked'] as const) {
      let c = ceilings[kind];
      if (!c) {
        const f = await forkReady<{ port: number }>('acp/ceiling.ts', process.env, {
          sample,
          sampleSeq: 1_000,
          total: replayLast,
          pageSize: limits.replay_page_size,
          highWaterBytes: limits.outbound_high_water_bytes,
          cork: kind === 'corked',
        });
        c = ceilings[kind] = { child: f.child, port: f.msg.port };
      }
      const acp = await connectRaw(`ws://127.0.0.1:${c.port}`, 'none');
      const {
        result: res,
        serverCpu,
        clientCpu,
      } = await withCpu(c.child.pid!, () =>
        stream(acp, { sessionId: 'x', fromSeq: 0, lastSeq: replayLast, timeoutMs }),
      );
      await acp.close();
      const run = toRun(res, replayLast, {
        serverCpuUsPerEvent: (serverCpu * 1e6) / res.received,
        clientCpuUsPerEvent: (clientCpu * 1e6) / res.received,
      });
      (kind === 'plain' ? report.ceiling : report.ceilingCorked).push(run);
      log(`  ceiling ${kind}: ${fmt(run)}`);
    }
  }
  for (const c of Object.values(ceilings)) c?.child.send('stop');
  host.child.send({ cmd: 'stop' });
  await new Promise((r) => host.child.once('exit', r));

  // 4. remote worker latency on the same daemon
  await latency(args, daemon.acpUrl, daemon.token, report);
  await daemon.stop();
  return serveHome;
}

async function latency(args: Args, url: string, token: string, report: AcpReport): Promise<void> {
  const client = await WardenClient.connect({
    url,
    token,
    client: { name: 'bench', version: '0' },
  });
  const stop = new AbortController();
  let onStart: ((t: number) => void) | null = null;
  const worker = runRemoteWorker({
    connect: { url, token, client: { name: 'bench-worker', version: '0' } },
    lanes: ['default'],
    concurrency: 1,
    waitMs: 30_000,
    signal: stop.signal,
    handlers: {
      'bench.noop': () => {
        onStart?.(performance.now());
        return null;
      },
    },
  });
  const samples: number[] = [];
  const total = args.latencyWarmup + args.latencySamples;
  await sleep(200); // the worker's first long-poll is in
  for (let i = 0; i < total; i++) {
    const started = new Promise<number>((resolve) => (onStart = resolve));
    const t0 = performance.now();
    const { task } = await client.tasks.submit({ name: 'bench.noop', payload: { i } });
    const t1 = await started;
    if (i >= args.latencyWarmup) samples.push(t1 - t0);
    // The next sample starts with the worker idle again: this task settled, then a short gap.
    for (;;) {
      const { task: t } = await client.tasks.get({ task_id: task.id });
      if (t.state === 'succeeded') break;
      await sleep(1);
    }
    await sleep(args.latencyGapMs);
  }
  stop.abort();
  await client.close();
  const summary = await worker;
  report.latency = {
    samples,
    p50: percentile(samples, 50)!,
    p90: percentile(samples, 90)!,
    p99: percentile(samples, 99)!,
    max: Math.max(...samples),
    completed: summary.completed,
  };
  log(
    `  remote worker latency: p50 ${report.latency.p50.toFixed(2)} ms, p99 ${report.latency.p99.toFixed(2)} ms (${samples.length} samples)`,
  );
}

async function coldStart(args: Args, tmp: string, existingHome: string, report: AcpReport) {
  for (const entry of args.entries)
    for (const kind of ['fresh', 'existing'] as const) {
      const runs: Array<{
        readyLogMs: number;
        readyzMs: number;
        firstLogMs: number;
        startPhasesMs: number;
      }> = [];
      for (let i = 0; i < args.coldRuns; i++) {
        const home = kind === 'fresh' ? join(tmp, `fresh-${entry}-${i}`) : existingHome;
        if (kind === 'fresh') initHome(home);
        const d = await startDaemon(home, { entry, pollReadyz: true });
        runs.push({
          readyLogMs: d.readyLogMs,
          readyzMs: d.readyzMs!,
          firstLogMs: d.firstLogMs,
          startPhasesMs: d.startPhasesMs,
        });
        await d.stop();
        if (kind === 'fresh') rmSync(home, { recursive: true, force: true });
      }
      report.coldStart.push({
        entry,
        home: kind,
        runs,
        readyLog: spread(runs.map((r) => r.readyLogMs))!,
        readyz: spread(runs.map((r) => r.readyzMs))!,
        firstLog: spread(runs.map((r) => r.firstLogMs))!,
        startPhases: spread(runs.map((r) => r.startPhasesMs))!,
      });
      log(
        `  cold start ${entry} ${kind}: ready line ${spread(runs.map((r) => r.readyLogMs))!.median.toFixed(0)} ms, /readyz ${spread(runs.map((r) => r.readyzMs))!.median.toFixed(0)} ms`,
      );
    }
}

async function idleRss(args: Args, tmp: string, existingHome: string, report: AcpReport) {
  for (const entry of args.entries)
    for (const kind of ['fresh', 'existing'] as const) {
      const home = kind === 'fresh' ? join(tmp, `rss-${entry}`) : existingHome;
      if (kind === 'fresh') initHome(home);
      const d = await startDaemon(home, { entry });
      await sleep(args.idleS * 1_000);
      const idle = rss(d.pid);
      const clients = [];
      for (let i = 0; i < args.idleClients; i++) clients.push(await connectRaw(d.acpUrl, d.token));
      await sleep(args.idleS * 1_000);
      const withClients = rss(d.pid);
      const threads = Number(
        /^Threads:\s+(\d+)/m.exec(execFileSync('cat', [`/proc/${d.pid}/status`]).toString())?.[1],
      );
      for (const c of clients) await c.close();
      await d.stop();
      report.rss.push({ entry, home: kind, idle, withClients, clients: args.idleClients, threads });
      log(
        `  idle RSS ${entry} ${kind}: ${idle.vmRss.toFixed(1)} MiB; with ${args.idleClients} clients ${withClients.vmRss.toFixed(1)} MiB`,
      );
    }
  // The daemon's own view (host.ts runs the same Daemon.start): V8 heap, external, array buffers.
  const home = join(tmp, 'rss-host');
  initHome(home);
  const host = await forkReady<{ ready: string }>('acp/host.ts', {
    ...process.env,
    WARDEN_HOME: home,
  });
  await sleep(args.idleS * 1_000);
  host.child.send({ cmd: 'memory' });
  const { memory } = await nextMessage<{ memory: NodeJS.MemoryUsage }>(host.child);
  report.hostMemory = { ...memory, vmRss: rss(host.child.pid!).vmRss * 2 ** 20 };
  host.child.send({ cmd: 'stop' });
  await new Promise((r) => host.child.once('exit', r));
  // What the imports cost, one by one (a fresh process each).
  for (const entry of args.entries) {
    const out = execFileSync(process.execPath, [
      '--expose-gc',
      join(benchDir, 'acp/import-cost.mjs'),
      entry,
    ]).toString();
    report.imports[entry] = JSON.parse(out) as AcpReport['imports'][string];
  }
}

function fmt(r: StreamRun): string {
  return `${Math.round(r.perSecond).toLocaleString('en-US')} events/s (${r.received}/${r.expected}, gaps ${r.gaps}, dups ${r.duplicates}${r.backpressure ? ', BACKPRESSURE' : ''}${r.timedOut ? ', TIMED OUT' : ''})`;
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  const t0 = performance.now();
  const tmp = join(benchDir, '.tmp', `acp-${process.pid}`);
  mkdirSync(tmp, { recursive: true });
  mkdirSync(args.out, { recursive: true });
  const passthrough = process.argv.slice(2).join(' ');
  const report: AcpReport = {
    generatedAt: new Date().toISOString(),
    command: `cd bench && npm run bench:acp${passthrough ? ` -- ${passthrough}` : ''}`,
    machine: { ...machineInfo(), loadStart: loadAverage(), loadEnd: '' },
    warden: wardenInfo(),
    params: { ...args, out: relative(benchDir, args.out) },
    durability: '',
    limits: { replay_page_size: 0, outbound_high_water_bytes: 0 },
    liveInProcess: [],
    liveCrossProcess: [],
    replay: [],
    ceiling: [],
    ceilingCorked: [],
    latency: null,
    coldStart: [],
    rss: [],
    hostMemory: null,
    imports: {},
    totalSeconds: 0,
  };
  log(
    `acp benchmark${args.quick ? ' (quick)' : ''}: ${args.runs} runs, entries ${args.entries.join(', ')}`,
  );
  try {
    const existingHome = await streams(args, tmp, report);
    await coldStart(args, tmp, existingHome, report);
    await idleRss(args, tmp, existingHome, report);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  report.machine.loadEnd = loadAverage();
  report.totalSeconds = (performance.now() - t0) / 1000;
  writeFileSync(join(args.out, 'acp.json'), `${JSON.stringify(report, null, 2)}\n`);
  const md = renderAcp(report);
  writeFileSync(join(args.out, 'acp.md'), md);
  process.stdout.write(md);
  log(
    `\nwrote ${relative(process.cwd(), join(args.out, 'acp.md'))} and acp.json in ${Math.round(report.totalSeconds)} s`,
  );
}

main().catch((error: unknown) => {
  log(String((error as Error)?.stack ?? error));
  process.exit(1);
});
