/**
 * The daemon SIGKILLed under load — two remote worker processes claiming, a subscriber
 * following the session, a client submitting — then restarted on the same port. Every client
 * reconnects by itself and everything resumes: 0 tasks lost, 0 duplicated completions, the
 * subscriber saw every event exactly once in order, and the ledger verifies.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { isWardenError, WardenClient } from '../../src/client/index.ts';
import { runCli } from '../helpers/cli.ts';
import { type DaemonProcess, startDaemon } from '../helpers/daemon.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';
import { waitFor } from '../helpers/wait.ts';

const WORKER = fileURLToPath(new URL('../helpers/remote-worker-process.ts', import.meta.url));
const TASKS = 1_500;

let home: string;
let listen: string;
let daemon: DaemonProcess;
const workers: ChildProcess[] = [];

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

beforeAll(async () => {
  home = tempDir('warden-dkill-');
  await runCli(['init'], { home });
  listen = `127.0.0.1:${await freePort()}`;
  daemon = await startDaemon(home, { listen });
}, 60_000);

afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await daemon?.stop('SIGKILL');
  removeTempDirs();
});

it('survives a SIGKILL under load: nothing lost, nothing completed twice, every event once', async () => {
  const token = daemon.token;
  const url = daemon.acpUrl;
  const client = await WardenClient.connect({
    url,
    token,
    reconnect: { initialDelayMs: 50, maxDelayMs: 300 },
  });
  const { session } = await client.sessions.create({ key: 'load' });
  const seen: number[] = [];
  const sub = await client.subscribe(session.id, {
    fromSeq: 0,
    onEvent: (e) => void seen.push(e.seq),
  });
  for (const name of ['w1', 'w2'])
    workers.push(
      spawn(
        process.execPath,
        [WORKER, url, join(home, 'auth.token'), 'agents', '3000', '4', join(home, `${name}.log`)],
        {
          stdio: ['ignore', 'ignore', 'inherit'],
        },
      ),
    );

  // Submits, each with its own idempotency key, retried through the outage.
  let submitted = 0;
  const submitting = (async () => {
    for (let i = 0; i < TASKS; i++) {
      for (;;) {
        try {
          await client.tasks.submit({
            name: 'work',
            lane: 'agents',
            session_key: 'load',
            idempotency_key: `job-${i}`,
            payload: { ms: 2 },
          });
          break;
        } catch (error) {
          if (!isWardenError(error) || !error.retryable) throw error;
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
      }
      submitted = i + 1;
    }
  })();

  await waitFor(() => submitted >= TASKS / 3, 60_000, 'a third submitted');
  daemon.child.kill('SIGKILL');
  await daemon.exited;
  await new Promise((resolve) => setTimeout(resolve, 300));
  daemon = await startDaemon(home, { listen });
  await submitting;

  const tasksByState = async () =>
    ((await client.system.status()) as { tasks: Record<string, number> }).tasks;
  const count = async (state: string) => (await tasksByState())[state] ?? 0;
  await waitFor(
    async () => (await count('succeeded')) === TASKS,
    120_000,
    `all ${TASKS} tasks succeeded`,
  );
  const tasks = await tasksByState();
  expect(tasks).toMatchObject({ succeeded: TASKS });
  expect(tasks.queued ?? 0).toBe(0);
  expect(tasks.dead ?? 0).toBe(0);

  // Every accepted completion exactly once; read the whole log page by page.
  const succeededBy = new Map<string, number>();
  let from = 0;
  let last = 0;
  for (;;) {
    const page = await client.sessions.history({
      session_id: session.id,
      from_seq: from,
      limit: 10_000,
    });
    for (const e of page.events) {
      if (e.type === 'task.succeeded' && e.task_id)
        succeededBy.set(e.task_id, (succeededBy.get(e.task_id) ?? 0) + 1);
      last = e.seq;
    }
    if (!page.more) break;
    from = page.last_seq;
  }
  expect(succeededBy.size).toBe(TASKS);
  expect([...succeededBy.values()].every((n) => n === 1)).toBe(true);

  await waitFor(() => seen.at(-1) === last, 30_000, 'the subscriber caught up');
  expect(seen.length).toBe(last);
  for (let i = 0; i < seen.length; i++)
    if (seen[i] !== i + 1) expect.fail(`event ${i} has seq ${seen[i]}`);
  expect((await client.ledger.verify({})).ok).toBe(true);
  await sub.close();
  await client.close();
}, 300_000);
