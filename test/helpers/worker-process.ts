/**
 * A worker in its own OS process, for multi-process tests: it opens the database named in
 * argv[2], runs agent steps with a TypeScript agent `record` that appends one JSON line per
 * execution (pid, step, attempt, OS pid, start and end times) to argv[3], and exits once no
 * run is left unfinished.
 *
 * Optional argv[4] and argv[5] (a directory and a count) make a start barrier: the worker writes
 * `ready-<os pid>` there and waits until that many workers are ready, so a test that wants every
 * worker to take part is not at the mercy of one process starting long after the other finished.
 */
import { appendFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { Kernel } from '../../src/kernel/index.ts';
import { AgentRegistry, Worker } from '../../src/runtime/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';

const [file, sink, barrierDir, barrierCount] = process.argv.slice(2) as [
  string,
  string,
  string | undefined,
  string | undefined,
];
const store = await openSqliteStore({ file });
const kernel = new Kernel({ store });
const agents = new AgentRegistry().register('record', async (ctx) => {
  const start = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 5 + Math.floor(Math.random() * 10)));
  const end = Date.now();
  appendFileSync(
    sink,
    `${JSON.stringify({ pid: ctx.pid, step: ctx.step, stage: ctx.stage.name, attempt: ctx.attempt, os_pid: process.pid, start, end })}\n`,
  );
  return { output: { by: process.pid } };
});
const worker = new Worker({ kernel, agents, concurrency: 4 });
if (barrierDir !== undefined) {
  writeFileSync(join(barrierDir, `ready-${process.pid}`), '');
  const expected = Number(barrierCount ?? '1');
  while (readdirSync(barrierDir).filter((f) => f.startsWith('ready-')).length < expected)
    await new Promise((resolve) => setTimeout(resolve, 10));
}
await worker.start();
for (;;) {
  await new Promise((resolve) => setTimeout(resolve, 50));
  const open = await store.listProcesses({
    states: ['new', 'ready', 'running', 'waiting', 'blocked'],
    limit: 1,
  });
  if (open.length === 0) break;
}
await worker.stop();
kernel.close();
await store.close();
