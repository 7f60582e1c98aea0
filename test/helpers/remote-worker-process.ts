/**
 * A remote worker in its own OS process, on the shipped client: argv = url, token file, lanes
 * (comma-separated), lease ms, concurrency, log file. Job `work` appends `<task_id> <attempt>`
 * to the log file when it runs (the "effect"), after sleeping `payload.ms`. Prints
 * `claimed <task_id> <attempt_token>` when a job starts (tests use the token to check it is
 * useless once the attempt is over), and `ready` once connected.
 */
import { appendFileSync, readFileSync } from 'node:fs';

import { runRemoteWorker, WardenClient } from '../../src/client/index.ts';

const [url, tokenFile, lanes, leaseMs, concurrency, logFile] = process.argv.slice(2) as [
  string,
  string,
  string,
  string,
  string,
  string,
];
const client = await WardenClient.connect({
  url,
  token: readFileSync(tokenFile, 'utf8').trim(),
  client: { name: 'test-remote-worker', version: '1' },
  reconnect: { initialDelayMs: 50, maxDelayMs: 500 },
});
process.stdout.write('ready\n');
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
await runRemoteWorker({
  client,
  lanes: lanes.split(','),
  leaseMs: Number(leaseMs),
  concurrency: Number(concurrency),
  waitMs: 5_000,
  signal: stop.signal,
  handlers: {
    work: async (job) => {
      process.stdout.write(`claimed ${job.id} ${job.attemptToken}\n`);
      const ms = (job.payload as { ms?: number } | null)?.ms ?? 0;
      if (ms > 0) await new Promise((resolve) => setTimeout(resolve, ms));
      appendFileSync(logFile, `${job.id} ${job.attempt}\n`);
      return { done: job.id };
    },
  },
});
await client.close();
