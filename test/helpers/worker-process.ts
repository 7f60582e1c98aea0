/**
 * A worker in its own OS process, for multi-process tests: it opens the database named in
 * argv[2], runs agent steps with a TypeScript agent `record` that appends one JSON line per
 * execution (pid, step, attempt, OS pid, start and end times) to argv[3], and exits once no
 * run is left unfinished.
 */
import { appendFileSync } from 'node:fs';

import { Kernel } from '../../src/kernel/index.ts';
import { AgentRegistry, Worker } from '../../src/runtime/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';

const [file, sink] = process.argv.slice(2) as [string, string];
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
