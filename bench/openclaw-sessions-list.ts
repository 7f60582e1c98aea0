/**
 * OpenClaw `sessions.list` on a gateway with many sessions and finished chat runs: the first
 * call (every session's view built from its runs), a repeat with nothing changed, and a repeat
 * after one session got a new run — what a Control UI pays after each `sessions.changed`.
 * Needs no bench dependencies:
 *
 *   cd bench && npm run bench:sessions-list [-- --sessions N --runs R]   (`:quick` for a smoke run)
 *
 * Writes bench/results/openclaw-sessions-list.md (results/quick/… with --quick).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

import { buildWorkflow } from '../src/core/index.ts';
import { Kernel } from '../src/kernel/index.ts';
import type { MethodCall } from '../src/protocols/openclaw/connection.ts';
import { sessionMethods } from '../src/protocols/openclaw/methods/sessions.ts';
import { AgentRegistry, Worker } from '../src/runtime/index.ts';
import { openSqliteStore } from '../src/store/index.ts';
import { benchDir, loadAverage, machineInfo, wardenInfo, wardenLine } from './shared/machine.ts';
import { fmtMs, median } from './shared/stats.ts';

const quick = process.argv.includes('--quick');
const flag = (name: string, fallback: number) => {
  const at = process.argv.indexOf(`--${name}`);
  return at >= 0 ? Number(process.argv[at + 1]) : fallback;
};
const SESSIONS = flag('sessions', quick ? 50 : 500);
const RUNS = flag('runs', quick ? 4 : 20);
const REPEATS = quick ? 3 : 7;

const loadStart = loadAverage();
const dir = mkdtempSync(join(tmpdir(), 'warden-bench-sessions-'));
const store = await openSqliteStore({ file: join(dir, 'warden.db'), durability: 'fast' });
const kernel = new Kernel({
  store,
  rateLimits: { per_minute: 1e9, per_hour: 1e9, per_day: 1e9, burst: 1e9 },
});
const workflow = buildWorkflow({
  name: 'chat',
  stages: [{ name: 'reply', agent: { kind: 'typescript', name: 'reply' } }],
});
const agents = new AgentRegistry().register('reply', (ctx) =>
  Promise.resolve({ output: { text: `reply at step ${ctx.step}: ${'lorem ipsum '.repeat(20)}` } }),
);
const worker = new Worker({ kernel, agents, concurrency: 8 });
/** Polls the run's row until it ended (the bench has no event subscription of its own). */
async function ended(pid: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while ((await kernel.getProcess(pid)).state !== 'terminated') {
    if (Date.now() > deadline) throw new Error(`run ${pid} did not end`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
await worker.start();
const built = performance.now();
for (let r = 0; r < RUNS; r++) {
  const pids = await Promise.all(
    Array.from(
      { length: SESSIONS },
      async (_, s) =>
        (
          await kernel.startRun({
            workflow,
            sessionKey: `agent:main:s${s}`,
            input: { message: `message ${r} of session ${s}` },
          })
        ).pid,
    ),
  );
  for (const pid of pids) await ended(pid);
}
const buildSeconds = (performance.now() - built) / 1000;

const list = async (handlers: ReturnType<typeof sessionMethods>) => {
  const call = {
    method: 'sessions.list',
    params: { includeDerivedTitles: true, includeLastMessage: true, limit: 1000 },
    services: { kernel },
    signal: new AbortController().signal,
  } as unknown as MethodCall;
  const t0 = performance.now();
  const result = (await handlers['sessions.list']!(call)) as { totalCount: number };
  if (result.totalCount !== SESSIONS) throw new Error(`listed ${result.totalCount}`);
  return performance.now() - t0;
};
const cold: number[] = [];
const warm: number[] = [];
const oneChanged: number[] = [];
for (let i = 0; i < REPEATS; i++) {
  const handlers = sessionMethods({ turns: undefined as never, model: () => 'scripted' });
  cold.push(await list(handlers));
  warm.push(await list(handlers));
  const pid = (
    await kernel.startRun({ workflow, sessionKey: 'agent:main:s0', input: { message: 'one more' } })
  ).pid;
  await ended(pid);
  oneChanged.push(await list(handlers));
}
await worker.stop();
kernel.close();
await store.close();
rmSync(dir, { recursive: true, force: true });

const m = machineInfo();
const L = [
  '# OpenClaw `sessions.list`: every view built vs kept until its session changes',
  '',
  `Generated ${new Date().toISOString().replace('T', ' ').slice(0, 19)} UTC.`,
  '',
  `- **Machine:** ${m.cpu}, ${m.cores} cores, ${m.memoryGiB} GiB RAM, ${m.os}; **Node ${m.node}**`,
  `- **Load average** at start: ${loadStart}; at end: ${loadAverage()}`,
  `- **Warden:** ${wardenLine(wardenInfo())}`,
  `- **Command:** \`cd bench && npm run bench:sessions-list${quick ? ':quick' : ''}\``,
  `- **Data:** ${SESSIONS} sessions × ${RUNS} finished chat runs (${SESSIONS * RUNS} runs, built in ${buildSeconds.toFixed(1)} s) in embedded SQLite (\`durability: fast\`); \`sessions.list\` with derived titles and last messages, called in-process (no socket), ${REPEATS} repetitions, medians.`,
  '',
  '| Call | ms, median | min – max |',
  '|---|--:|--:|',
  ...(
    [
      ['First call (a new gateway: every session’s runs read)', cold],
      ['Again, nothing changed', warm],
      ['Again, after one session got a new run', oneChanged],
    ] as const
  ).map(
    ([name, xs]) =>
      `| ${name} | ${fmtMs(median(xs))} | ${fmtMs(Math.min(...xs))} – ${fmtMs(Math.max(...xs))} |`,
  ),
  '',
  'Each view is kept with a stamp of its session row (version, update time) and of its runs (count, sum of versions, sum of update times: `Store.sessionRunStamps`, one grouped query); a call rebuilds only the views whose stamp moved, so a change made by another node, or a run deleted by retention, shows at once.',
  '',
];
const outDir = resolve(benchDir, quick ? 'results/quick' : 'results');
mkdirSync(outDir, { recursive: true });
writeFileSync(resolve(outDir, 'openclaw-sessions-list.md'), `${L.join('\n')}`);
console.log(L.join('\n'));
