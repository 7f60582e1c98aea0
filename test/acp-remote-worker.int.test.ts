/**
 * A remote worker (its own OS process, on the shipped client) SIGKILLed mid-task: the task is
 * reclaimed when its lease expires and completed by another worker, exactly once; the dead
 * worker's attempt token is useless afterwards, as a parameter and as a credential.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, expect, it } from 'vitest';

import { WardenClient } from '../src/client/index.ts';
import { runCli } from './helpers/cli.ts';
import { type DaemonProcess, startDaemon } from './helpers/daemon.ts';
import { upgradeStatus } from './helpers/raw-acp.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { waitFor } from './helpers/wait.ts';

const WORKER = fileURLToPath(new URL('./helpers/remote-worker-process.ts', import.meta.url));

let home: string;
let daemon: DaemonProcess;
let client: WardenClient;

function startWorker(logFile: string, leaseMs: number): { child: ChildProcess; lines: string[] } {
  const child = spawn(
    process.execPath,
    [WORKER, daemon.acpUrl, join(home, 'auth.token'), 'remote', String(leaseMs), '1', logFile],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const lines: string[] = [];
  child.stdout.on('data', (d: Buffer) => lines.push(...d.toString().split('\n').filter(Boolean)));
  return { child, lines };
}

beforeAll(async () => {
  home = tempDir('warden-remote-');
  await runCli(['init'], { home });
  writeFileSync(join(home, 'config.yaml'), 'lanes:\n  remote: {}\n');
  daemon = await startDaemon(home);
  client = await WardenClient.connect({ url: daemon.acpUrl, token: daemon.token });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await daemon?.stop();
  removeTempDirs();
});

it('reclaims a SIGKILLed remote worker’s task at lease expiry; another worker completes it once', async () => {
  const logA = join(home, 'a.log');
  const logB = join(home, 'b.log');
  const { task } = await client.tasks.submit({
    name: 'work',
    lane: 'remote',
    payload: { ms: 1_500 },
  });
  const a = startWorker(logA, 2_000);
  await waitFor(() => a.lines.some((l) => l.startsWith(`claimed ${task.id}`)), 20_000);
  const deadToken = a.lines.find((l) => l.startsWith(`claimed ${task.id}`))!.split(' ')[2]!;
  a.child.kill('SIGKILL');
  await new Promise((resolve) => a.child.once('exit', resolve));
  expect(existsSync(logA)).toBe(false); // killed before its effect

  const b = startWorker(logB, 2_000);
  await waitFor(
    async () => (await client.tasks.get({ task_id: task.id })).task.state === 'succeeded',
    30_000,
  );
  const { task: done, attempts } = await client.tasks.get({ task_id: task.id });
  expect(done.attempts).toBe(2);
  expect(attempts.map((x) => x.outcome)).toEqual(['lease_expired', 'succeeded']);
  expect(readFileSync(logB, 'utf8').trim().split('\n')).toEqual([`${task.id} 2`]);

  // The dead attempt's token: refused as a parameter and as a credential.
  await expect(
    client.tasks.complete({ task_id: task.id, attempt_token: deadToken, result: { late: true } }),
  ).rejects.toMatchObject({ code: 'LEASE_LOST' });
  expect(
    (await upgradeStatus(daemon.acpUrl, { authorization: `Bearer ${deadToken}` })).status,
  ).toBe(401);
  const history = await client.sessions.history({ session_id: done.session_id, limit: 10_000 });
  const succeeded = history.events.filter(
    (e) => e.type === 'task.succeeded' && e.task_id === task.id,
  );
  expect(succeeded).toHaveLength(1);
  b.child.kill('SIGTERM');
  await new Promise((resolve) => b.child.once('exit', resolve));
}, 120_000);
