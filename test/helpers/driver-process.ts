/**
 * A run driver in its own OS process, for chaos tests: a kernel and a runtime Worker on one
 * database, running until it is killed or told to stop. It never calls `recover()`: whatever it
 * reclaims, it reclaims while running.
 *
 *   node driver-process.ts <db> <sink> <leaseMs> <stepMs> <stopFile> <concurrency>
 *
 * The TypeScript agent `slow` takes `stepMs` (± 20 %) and appends one JSON line per finished
 * execution (pid, step, attempt, OS pid, start, end) to `sink`; its output is
 * `{by: <OS pid>}`. Prints `{"ready":true,"worker":<worker id>,"os_pid":<pid>}` once working;
 * exits 0 once `stopFile` exists.
 */
import { appendFileSync, existsSync } from 'node:fs';

import { Kernel } from '../../src/kernel/index.ts';
import { AgentRegistry, Worker } from '../../src/runtime/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';

const [file, sink, leaseText, stepText, stopFile, concurrencyText] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
];
const stepMs = Number(stepText);
const store = await openSqliteStore({ file, mustExist: true });
const kernel = new Kernel({
  store,
  rateLimits: { per_minute: 100_000, per_hour: 1_000_000, per_day: 10_000_000, burst: 10_000 },
});
const agents = new AgentRegistry().register('slow', async (ctx) => {
  const start = Date.now();
  const ms = Math.round(stepMs * (0.8 + Math.random() * 0.4));
  await new Promise((resolve) => setTimeout(resolve, ms));
  appendFileSync(
    sink,
    `${JSON.stringify({ pid: ctx.pid, step: ctx.step, attempt: ctx.attempt, os_pid: process.pid, start, end: Date.now() })}\n`,
  );
  return { output: { by: process.pid } };
});
const worker = new Worker({
  kernel,
  agents,
  concurrency: Number(concurrencyText),
  leaseMs: Number(leaseText),
});
await worker.start();
console.log(JSON.stringify({ ready: true, worker: worker.id, os_pid: process.pid }));
while (!existsSync(stopFile)) await new Promise((resolve) => setTimeout(resolve, 50));
await worker.stop();
kernel.close();
await store.close();
