/**
 * How long a busy database lock can stall a worker's event loop. better-sqlite3 waits for a
 * lock synchronously, so another process's long write transaction blocks this process's event
 * loop for as long as it lasts. Two processes share one SQLite file: each runs a JobWorker and
 * submits batches of 1,000 tasks as fast as they complete; this process measures its own
 * event-loop delay (perf_hooks.monitorEventLoopDelay) over the run and prints p50/p99/max.
 *
 *   node queue/lock-stall.ts [--n 40000] [--durability fast] [--quick] [--out DIR]
 *
 * Writes lock-stall.json to DIR (default results/; --quick: N 4,000 into results/quick/).
 */
import { fork } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';

import { JobQueue, JobWorker } from '../../src/queue/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import { parseFlags } from '../shared/cli.ts';

const here = dirname(fileURLToPath(import.meta.url));

async function work(file: string, n: number, durability: 'fast' | 'strict') {
  const store = await openSqliteStore({ file, durability });
  const queue = new JobQueue({ store, lanes: { default: {} } });
  let done = 0;
  const worker = new JobWorker({ queue, concurrency: 32 });
  worker.handle('noop', () => {
    done += 1;
    return null;
  });
  await worker.start();
  const started = performance.now();
  for (let i = 0; i < n; i += 1_000) {
    await queue.submitMany(
      Array.from({ length: 1_000 }, (_, j) => ({ name: 'noop', payload: { i: i + j } })),
    );
    // Keep a backlog of a few thousand, shared by both processes.
    while ((await store.countQueued('default')) > 3_000) await new Promise((r) => setTimeout(r, 1));
  }
  // Until both processes' work is done: nothing queued or running in the database.
  for (;;) {
    const { tasks } = await store.countByState();
    if ((tasks.queued ?? 0) + (tasks.running ?? 0) === 0) break;
    if (performance.now() - started > 120_000) throw new Error('the run did not finish in 120 s');
    await new Promise((r) => setTimeout(r, 5));
  }
  await worker.stop();
  await store.close();
  return { done, seconds: (performance.now() - started) / 1_000 };
}

if (process.argv[2] === 'child') {
  const result = await work(process.argv[3]!, Number(process.argv[4]), process.argv[5] as 'fast');
  process.send!(result);
} else {
  const flags = parseFlags(process.argv.slice(2));
  const n = flags.num('n', flags.quick ? 4_000 : 40_000);
  const durability = flags.str('durability', 'fast') as 'fast' | 'strict';
  const out = resolve(here, '..', flags.str('out', flags.quick ? 'results/quick' : 'results'));
  const dir = resolve(here, '..', '.tmp', `stall-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'warden.db');
  (await openSqliteStore({ file, durability })).close().catch(() => undefined);
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const child = fork(fileURLToPath(import.meta.url), ['child', file, String(n), durability], {
    stdio: 'inherit',
  });
  const childDone = new Promise<{ done: number; seconds: number }>((r) =>
    child.once('message', r as never),
  );
  const mine = await work(file, n, durability);
  const theirs = await childDone;
  histogram.disable();
  rmSync(dir, { recursive: true, force: true });
  const ms = (ns: number) => Math.round(ns / 1e4) / 100;
  const result = {
    generated_at: new Date().toISOString(),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${os.platform()} ${os.release()}`,
    node: process.version,
    durability,
    tasks_per_process: n,
    handled: { this_process: mine.done, other_process: theirs.done },
    event_loop_delay_ms: {
      p50: ms(histogram.percentile(50)),
      p99: ms(histogram.percentile(99)),
      max: ms(histogram.max),
    },
  };
  console.log(JSON.stringify(result, null, 2));
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'lock-stall.json'), `${JSON.stringify(result, null, 2)}\n`);
}
