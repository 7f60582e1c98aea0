/**
 * A job worker in its own OS process, for the queue chaos test (test/chaos/queue-kill.chaos.test.ts).
 *
 *   node test/helpers/queue-chaos-worker.ts <db> <sink> <index> [pace]
 *
 * It works the `append` jobs of the database <db>: each handler appends its payload's `n` as a
 * line to the file <sink> through the effect journal (key `append:<n>`), whose `reconcile`
 * answers from the numbers already in the sink, so an append made just before a SIGKILL (whose
 * `done` was never recorded) is found instead of being made twice. `pace` (0 … 1, default 1)
 * scales the handler's simulated latencies; the parent runs its last child at full speed.
 *
 * Its worker id is `<host>/<os pid>/c<index>`, so the parent knows which leases a killed child
 * held. It prints JSON lines on stdout (pipe writes are synchronous, so they are out before a
 * later SIGKILL):
 *   {"started": ms, "reclaimed": n, "worker": id}      once start() has reclaimed dead leases
 *   {"reconciled": n} / {"replayed": n}                 an effect found by reconcile / already done
 *   {"finished": ms, "stats": {...}}                     no task is left queued or running
 * and exits 0 after the last line.
 */
import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

import { JobQueue, JobWorker, localWorkerId } from '../../src/queue/index.ts';
import { openSqliteStore } from '../../src/store/index.ts';

const [file, sink, index, paceText] = process.argv.slice(2) as [string, string, string, string?];
const pace = paceText === undefined ? 1 : Number(paceText);

function say(line: unknown): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** A random wait of up to `ms` × pace; none at pace 0. */
function jitter(ms: number): Promise<void> | undefined {
  const wait = Math.floor(Math.random() * ms * pace);
  return wait > 0 ? sleep(wait).then(() => undefined) : undefined;
}

// What the destination already holds: the "remote side" that reconcile asks.
const inSink = new Set<number>();
if (existsSync(sink)) {
  for (const line of readFileSync(sink, 'utf8').split('\n'))
    if (line !== '') inSink.add(Number(line));
}

const store = await openSqliteStore({ file });
const queue = new JobQueue({ store, lanes: { default: { concurrency: 64 } } });
const worker = new JobWorker({
  queue,
  id: localWorkerId(`c${index}`),
  concurrency: 64,
  leaseMs: 15_000,
  onError: (error) => process.stderr.write(`worker error: ${error.code} ${error.message}\n`),
});

worker.handle<{ n: number }>('append', async (job) => {
  const { n } = job.payload;
  await jitter(40);
  // How the effect was settled in this attempt (set from the callbacks below).
  const outcome: { how: 'applied' | 'reconciled' | 'replayed' } = { how: 'replayed' };
  const recorded = await job.effect(
    `append:${n}`,
    { n },
    async () => {
      outcome.how = 'applied';
      appendFileSync(sink, `${n}\n`);
      inSink.add(n);
      // A slow acknowledgement: the effect has happened but its `done` is not recorded yet.
      await jitter(30);
      return n;
    },
    {
      tool: 'sink.append',
      reconcile: () => {
        if (!inSink.has(n)) return undefined;
        outcome.how = 'reconciled';
        return n;
      },
    },
  );
  if (recorded !== n) throw new Error(`effect append:${n} recorded ${String(recorded)}`);
  if (outcome.how !== 'applied') say({ [outcome.how]: n });
  // Work after the effect: a kill here leaves the effect done and the task running.
  await jitter(30);
  return { n };
});

await worker.start();
say({ started: Date.now(), reclaimed: worker.stats.reclaimed, worker: worker.id });

for (;;) {
  await sleep(100);
  const { tasks } = await store.countByState();
  if ((tasks.queued ?? 0) === 0 && (tasks.running ?? 0) === 0) break;
}
await worker.stop();
await store.close();
say({ finished: Date.now(), stats: worker.stats });
