/**
 * One process of the steps benchmark (forked by steps/run.ts), in one of three roles:
 *
 *   measure <system> <config json>   answers `round` commands: a fresh database, G graph runs
 *                                    one after the other (timed), verified, deleted
 *   crash   <system> <db> <counter>  starts one graph run and reports when node KILL_AT is
 *                                    executing; the parent SIGKILLs it there
 *   resume  <system> <db> <counter> <id>
 *                                    opens the same database in a fresh process and drives the
 *                                    killed run to completion, reporting how long that took
 *
 * In the crash and resume roles every node execution appends a line to the counter file, so
 * the parent can count how many nodes ran more than once across the kill.
 */
import { appendFileSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';

import { type GraphSystem, KILL_AT, type NodeHook, STAGES } from './graph.ts';
import { type Opener, STEP_SYSTEMS } from './systems.ts';

export interface MeasureConfig {
  readonly graphRuns: number;
  readonly tmpDir: string;
}

export interface RoundResult {
  readonly warmup: boolean;
  readonly ok: boolean;
  readonly error?: string;
  readonly graphRuns: number;
  /** Wall time of the G graph runs, seconds. */
  readonly seconds?: number;
  /** seconds ÷ (G × STAGES), in ms: the per-step overhead of this round. */
  readonly perStepMs?: number;
  /** Each graph run's wall time, ms. */
  readonly runMs?: number[];
  /** Node executions seen (must be G × STAGES). */
  readonly executions: number;
}

export type StepsMessage =
  | { type: 'info'; name: string; durability: string; synchronous: string; settings: string }
  | { type: 'ready' }
  | { type: 'round'; result: RoundResult }
  | { type: 'begun'; id: string }
  | { type: 'at-kill' }
  | { type: 'resumed'; loadMs: number; inProcessMs: number; openMs: number }
  | { type: 'fatal'; error: string };

export type StepsCommand = { cmd: 'round'; warmup: boolean } | { cmd: 'exit' };

const send = (m: StepsMessage) =>
  new Promise<void>((resolve) => (process.send ? process.send(m, () => resolve()) : resolve()));

const describe = (e: unknown) =>
  (e instanceof Error ? `${e.name}: ${e.message}` : String(e)).slice(0, 500);

function removeDb(file: string) {
  // -wake: the file Warden's store touches after each commit to wake other processes.
  for (const suffix of ['', '-wal', '-shm', '-journal', '-wake'])
    rmSync(`${file}${suffix}`, { force: true });
}

async function load(system: string): Promise<Opener> {
  const loader = STEP_SYSTEMS[system];
  if (!loader) throw new Error(`unknown system ${system}`);
  return loader();
}

async function open(system: string, file: string, node: NodeHook): Promise<GraphSystem> {
  return (await load(system))({ file, node });
}

let roundCounter = 0;
async function round(system: string, cfg: MeasureConfig, warmup: boolean): Promise<RoundResult> {
  const file = join(cfg.tmpDir, `steps-${system}-${process.pid}-${++roundCounter}.db`);
  let executions = 0;
  let g: GraphSystem | undefined;
  try {
    g = await open(system, file, () => {
      executions += 1;
    });
    const ids: string[] = [];
    const runMs: number[] = [];
    const t0 = performance.now();
    for (let k = 0; k < cfg.graphRuns; k++) {
      const r0 = performance.now();
      ids.push(await g.run());
      runMs.push(performance.now() - r0);
    }
    const seconds = (performance.now() - t0) / 1000;
    for (const id of ids) await g.verify(id);
    if (executions !== cfg.graphRuns * STAGES)
      throw new Error(`${executions} node executions, expected ${cfg.graphRuns * STAGES}`);
    return {
      warmup,
      ok: true,
      graphRuns: cfg.graphRuns,
      seconds,
      perStepMs: (seconds * 1000) / (cfg.graphRuns * STAGES),
      runMs,
      executions,
    };
  } catch (error) {
    return { warmup, ok: false, error: describe(error), graphRuns: cfg.graphRuns, executions };
  } finally {
    await g?.close().catch(() => {});
    removeDb(file);
  }
}

async function measure(system: string, cfg: MeasureConfig): Promise<void> {
  mkdirSync(cfg.tmpDir, { recursive: true });
  // Report the system's settings from a throw-away instance.
  const probeFile = join(cfg.tmpDir, `steps-${system}-${process.pid}-probe.db`);
  const probe = await open(system, probeFile, () => {});
  await send({ type: 'info', ...probe.info });
  await probe.close();
  removeDb(probeFile);
  let chain = Promise.resolve();
  process.on('message', (command: StepsCommand) => {
    chain = chain.then(async () => {
      if (command.cmd === 'exit') process.exit(0);
      await send({ type: 'round', result: await round(system, cfg, command.warmup) });
    });
  });
  await send({ type: 'ready' });
}

/** Appends one line per node execution: `<index> <os pid>`. */
function counting(counter: string, then?: (index: number) => Promise<void>): NodeHook {
  return async (index) => {
    appendFileSync(counter, `${index} ${process.pid}\n`);
    await then?.(index);
  };
}

async function crash(system: string, file: string, counter: string): Promise<void> {
  const g = await open(
    system,
    file,
    counting(counter, async (index) => {
      if (index !== KILL_AT) return;
      await send({ type: 'at-kill' });
      await new Promise(() => {}); // hold the node until the parent's SIGKILL
    }),
  );
  await send({ type: 'begun', id: await g.begin() });
}

async function resume(system: string, file: string, counter: string, id: string): Promise<void> {
  const l0 = performance.now();
  const opener = await load(system); // the system's modules, timed apart from opening
  const loadMs = performance.now() - l0;
  const t0 = performance.now();
  const g = await opener({ file, node: counting(counter) });
  const openMs = performance.now() - t0;
  await g.finish(id);
  const inProcessMs = performance.now() - t0;
  await g.verify(id);
  await g.close();
  await send({ type: 'resumed', loadMs, inProcessMs, openMs });
  process.exit(0);
}

const [role, system, ...rest] = process.argv.slice(2) as [string, string, ...string[]];
try {
  if (role === 'measure') await measure(system, JSON.parse(rest[0]!) as MeasureConfig);
  else if (role === 'crash') await crash(system, rest[0]!, rest[1]!);
  else if (role === 'resume') await resume(system, rest[0]!, rest[1]!, rest[2]!);
  else throw new Error(`unknown role ${role}`);
} catch (error) {
  await send({ type: 'fatal', error: describe(error) });
  process.exit(1);
}
