/**
 * A deliberately late remote worker, for proving that stale completions are refused across
 * nodes. argv[2] is JSON: {urls, token, lanes, claims, leaseMs, name}.
 *
 * It claims `claims` tasks with a short lease and never heartbeats; for each, waits until the
 * task has moved on without it (another attempt started, or the task finished); then tries to
 * heartbeat and to complete it with its old attempt token, through whichever node it is
 * connected to now. Both must answer LEASE_LOST.
 *
 * stdout: `ready`; `claimed <n>` once it holds them all; `stale <task_id> <attempt> <heartbeat answer> <complete answer>` per claim,
 * where an answer is an error code or `ACCEPTED` (a bug: a stale completion was accepted);
 * `done` at the end.
 */
import {
  type Claim,
  isWardenError,
  type TaskRecord,
  WardenClient,
} from '../../src/client/index.ts';
import { failoverOptions } from './failover-socket.ts';

interface Args {
  readonly urls: string[];
  readonly token: string;
  readonly lanes: string[];
  readonly claims: number;
  readonly leaseMs: number;
  readonly name: string;
}

const args = JSON.parse(process.argv[2]!) as Args;
const { socket: _socket, ...options } = failoverOptions(args.urls, args.token, args.name);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

let client: WardenClient | undefined;
while (!client) {
  try {
    client = await WardenClient.connect(options);
  } catch {
    await sleep(100);
  }
}
const c = client;
process.stdout.write('ready\n');

/** Runs `call` until it has a definitive answer: the result, or a non-retryable error. */
async function settled<T>(call: () => Promise<T>): Promise<T | { code: string }> {
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if (!isWardenError(error)) throw error;
      if (!error.retryable) return { code: error.code };
      await sleep(100);
    }
  }
}

const answer = (r: unknown) =>
  typeof r === 'object' && r !== null && 'code' in r ? String(r.code) : 'ACCEPTED';

// Claim them all first (then nobody else can have them), and only then let them go stale.
const held: Claim[] = [];
while (held.length < args.claims) {
  const claimed = await settled(() =>
    c.tasks.claim({
      lanes: args.lanes,
      limit: args.claims - held.length,
      lease_ms: args.leaseMs,
      wait_ms: 2_000,
      worker_name: args.name,
    }),
  );
  if ('code' in claimed) throw new Error(`claim failed: ${claimed.code}`);
  held.push(...claimed.claims);
}
process.stdout.write(`claimed ${held.length}\n`);

await Promise.all(
  held.map(async (claim) => {
    // Wait (without heartbeating) until the task went on without this attempt: another attempt
    // claimed it (the sharpest case: the stale completion races a live one) or it finished.
    for (;;) {
      const got = await settled(() => c.tasks.get({ task_id: claim.task.id }));
      if ('code' in got) throw new Error(`task.get failed: ${got.code}`);
      const task: TaskRecord = got.task;
      if (task.attempts > claim.attempt || !['running', 'queued'].includes(task.state)) break;
      await sleep(100);
    }
    const token = { task_id: claim.task.id, attempt_token: claim.attempt_token };
    const beat = await settled(() => c.tasks.heartbeat({ ...token, lease_ms: 60_000 }));
    const complete = await settled(() => c.tasks.complete({ ...token, result: { stale: true } }));
    process.stdout.write(
      `stale ${claim.task.id} ${claim.attempt} ${answer(beat)} ${answer(complete)}\n`,
    );
  }),
);
process.stdout.write('done\n');
await c.close();
