/**
 * Cross-process wake-up: an idle JobWorker in one process, tasks submitted one at a time from
 * ANOTHER process on the same SQLite file. Measures submit → handler start (both sides stamp
 * `performance.timeOrigin + performance.now()`, so the two processes share one time base), and
 * counts the idle worker's write transactions while nothing is queued (it must make none).
 *
 *   node queue/cross-process.ts [--samples 300] [--gap-ms 20] [--idle-s 10] [--durability fast]
 *                               [--quick] [--out DIR]
 *
 * Writes cross-process.json to DIR (default results/; with --quick: 50 samples, 2 s idle,
 * results/quick/, which is not committed).
 *
 * Needs no peer system: it runs from the repository (Node runs the .ts sources directly).
 */
import { fork } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

import { JobQueue, JobWorker } from '../../src/queue/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';
import { parseFlags } from '../shared/cli.ts';
import { wardenInfo } from '../shared/machine.ts';
import { percentile } from '../shared/stats.ts';

const here = dirname(fileURLToPath(import.meta.url));
const wallNow = () => performance.timeOrigin + performance.now();

if (process.argv[2] === 'submitter') {
  // The other process: submits on request, answers with the time just before the submit.
  const store = await openSqliteStore({ file: process.argv[3]!, mustExist: true });
  const queue = new JobQueue({ store });
  process.on('message', (message: { i: number } | 'exit') => {
    if (message === 'exit') {
      void store.close().then(() => process.exit(0));
      return;
    }
    const at = wallNow();
    void queue.submit('ping', { i: message.i }).then(() => process.send!({ i: message.i, at }));
  });
  process.send!('ready');
} else {
  const flags = parseFlags(process.argv.slice(2));
  const samples = flags.num('samples', flags.quick ? 50 : 300);
  const gapMs = flags.num('gap-ms', 20);
  const idleS = flags.num('idle-s', flags.quick ? 2 : 10);
  const durability = flags.str('durability', 'fast') as 'fast' | 'strict';
  const out = resolve(here, '..', flags.str('out', flags.quick ? 'results/quick' : 'results'));
  const dir = resolve(here, '..', '.tmp', `xproc-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'warden.db');
  const store = await openSqliteStore({ file, durability });
  const queue = new JobQueue({ store });
  const started = new Map<number, number>();
  let onStart: ((i: number) => void) | null = null;
  const worker = new JobWorker({ queue });
  worker.handle<{ i: number }, null>('ping', (job) => {
    started.set(job.payload.i, wallNow());
    onStart?.(job.payload.i);
    return null;
  });
  await queue.ready();
  await worker.start();

  // 1. Idle: nothing queued, nobody writing. Count write transactions and claims.
  await new Promise((r) => setTimeout(r, 500)); // let start-up settle
  const writesBefore = store.writeTransactions;
  const claimsBefore = worker.claimTransactions;
  await new Promise((r) => setTimeout(r, idleS * 1_000));
  const idleWrites = store.writeTransactions - writesBefore;
  const idleClaims = worker.claimTransactions - claimsBefore;

  // 2. Cross-process submit → start.
  const child = fork(fileURLToPath(import.meta.url), ['submitter', file], { stdio: 'inherit' });
  await new Promise<void>((r) => child.once('message', () => r()));
  const submittedAt = new Map<number, number>();
  child.on('message', (m: { i: number; at: number }) => submittedAt.set(m.i, m.at));
  const latencies: number[] = [];
  const warmup = 20;
  for (let i = 0; i < warmup + samples; i++) {
    const done = new Promise<void>((r) => (onStart = (j) => j === i && r()));
    child.send({ i });
    await done;
    // The submit's own acknowledgement may arrive after the start: wait for it.
    while (!submittedAt.has(i)) await new Promise((r) => setTimeout(r, 1));
    if (i >= warmup) latencies.push(started.get(i)! - submittedAt.get(i)!);
    await new Promise((r) => setTimeout(r, gapMs));
  }
  child.send('exit');
  await new Promise((r) => child.once('exit', r));
  await worker.stop();
  await store.close();
  rmSync(dir, { recursive: true, force: true });

  const sorted = [...latencies].sort((a, b) => a - b);
  const result = {
    generated_at: new Date().toISOString(),
    quick: flags.quick,
    warden: wardenInfo(),
    command: `cd bench && node queue/cross-process.ts ${process.argv.slice(2).join(' ')}`.trim(),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? '?'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, ${os.platform()} ${os.release()}`,
    node: process.version,
    durability,
    idle_seconds: idleS,
    idle_write_transactions: idleWrites,
    idle_claim_transactions: idleClaims,
    samples,
    gap_ms: gapMs,
    submit_to_start_ms: {
      p50: percentile(sorted, 50),
      p90: percentile(sorted, 90),
      p99: percentile(sorted, 99),
      max: sorted.at(-1),
    },
  };
  console.log(JSON.stringify(result, null, 2));
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'cross-process.json'), `${JSON.stringify(result, null, 2)}\n`);
}
