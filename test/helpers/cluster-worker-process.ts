/**
 * A remote worker for multi-node tests, in its own OS process, on the shipped client and
 * `runRemoteWorker`. argv[2] is JSON: {urls, token, lanes, leaseMs, concurrency, effects, name}.
 *
 * It dials the nodes through the failover socket (a random one first, another after each drop),
 * so it outlives any node. Job `work` sleeps `payload.ms`, then performs its effect — appending
 * `<task_id>\t<attempt>` to the `effects` file — and returns: a task run twice (a stolen lease,
 * an accepted stale completion) shows as two lines.
 *
 * stdout: `ready` once connected; `lost <task_id> <where>` for every LEASE_LOST the worker saw
 * (`where` is `beat` when a heartbeat was refused, i.e. the lease was taken away while the job
 * ran, `settle` when the completion was refused); `summary <json>` (runRemoteWorker's counts and
 * the nodes dialed) after SIGTERM, once the running jobs are settled.
 */
import { appendFileSync } from 'node:fs';

import { runRemoteWorker, WardenClient } from '../../src/client/index.ts';
import { failoverOptions } from './failover-socket.ts';

interface Args {
  readonly urls: string[];
  readonly token: string;
  readonly lanes: string[];
  readonly leaseMs: number;
  readonly concurrency: number;
  readonly effects: string;
  readonly name: string;
}

const args = JSON.parse(process.argv[2]!) as Args;
const { socket, ...options } = failoverOptions(args.urls, args.token, args.name);
let client: WardenClient | undefined;
while (!client) {
  try {
    client = await WardenClient.connect(options);
  } catch {
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
process.stdout.write('ready\n');
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
const running = new Set<string>();
const summary = await runRemoteWorker({
  client,
  lanes: args.lanes,
  leaseMs: args.leaseMs,
  concurrency: args.concurrency,
  waitMs: 2_000,
  workerName: args.name,
  signal: stop.signal,
  onError: (error, taskId) => {
    if (error.code === 'LEASE_LOST' && taskId)
      process.stdout.write(`lost ${taskId} ${running.has(taskId) ? 'beat' : 'settle'}\n`);
  },
  handlers: {
    work: async (job) => {
      running.add(job.id);
      try {
        const ms = (job.payload as { ms?: number } | null)?.ms ?? 0;
        if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
        appendFileSync(args.effects, `${job.id}\t${job.attempt}\n`);
        return { done: job.id, by: args.name };
      } finally {
        running.delete(job.id);
      }
    },
  },
});
process.stdout.write(
  `summary ${JSON.stringify({ ...summary, dialed: socket.dialed.length, nodes: new Set(socket.dialed).size })}\n`,
);
await client.close();
