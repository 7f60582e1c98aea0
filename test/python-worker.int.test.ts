/**
 * The standard-library Python worker (examples/workers/python) against a real `warden serve`:
 * claim → heartbeat → complete/fail over its own WebSocket client, reclaim after SIGKILL,
 * LEASE_LOST for a dead attempt, graceful stop on signals, reconnects. Some runs go through a
 * relay that fragments every frame, splits UTF-8 characters across fragments and pings, so the
 * client's frame handling is exercised against `ws`, not only against the daemon's framing.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket, { WebSocketServer } from 'ws';

import { REPO, runCli } from './helpers/cli.ts';
import { type DaemonProcess, startDaemon } from './helpers/daemon.ts';
import { connectRaw, type RawPeer } from './helpers/raw-acp.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const WORKER = join(REPO, 'examples/workers/python/warden_worker.py');

let home: string;
let daemon: DaemonProcess;
let peer: RawPeer;

beforeAll(async () => {
  home = tempDir('warden-pyworker-');
  const init = await runCli(['init'], { home });
  expect(init.code, init.stderr).toBe(0);
  writeFileSync(join(home, 'config.yaml'), 'lanes:\n  py: {}\n');
  daemon = await startDaemon(home);
  peer = await connectRaw(daemon.acpUrl, daemon.token);
}, 60_000);

afterAll(async () => {
  peer?.close();
  await daemon?.stop();
  removeTempDirs();
});

interface Line {
  task_id: string;
  name: string;
  outcome: string;
  attempt: number;
  state?: string;
}

interface PyWorker {
  readonly child: ChildProcess;
  lines(): Line[];
  stderr(): string;
  stdout(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

function startWorker(args: readonly string[], env: Record<string, string> = {}): PyWorker {
  const base: Record<string, string | undefined> = { ...process.env };
  delete base.WARDEN_TOKEN;
  delete base.WARDEN_URL;
  const child = spawn(
    'python3',
    [WORKER, '--url', daemon.acpUrl, '--token-file', join(home, 'auth.token'), ...args],
    { env: { ...base, ...env }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('close', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    lines: () =>
      stdout
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as Line),
  };
}

async function exitOk(worker: PyWorker): Promise<void> {
  const { code, signal } = await worker.exited;
  expect({ code, signal }, worker.stderr()).toEqual({ code: 0, signal: null });
}

async function waitFor(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function submit(name: string, payload: unknown, extra: Record<string, unknown> = {}) {
  const r = await peer.call('task.submit', { name, payload, lane: 'py', ...extra });
  expect(r.error, JSON.stringify(r.error)).toBeUndefined();
  return (r.result!.task as { id: string }).id;
}

interface TaskView {
  id: string;
  state: string;
  attempts: number;
  result: unknown;
  last_error: { message: string } | null;
}

async function getTask(taskId: string): Promise<{ task: TaskView; attempts: unknown[] }> {
  const r = await peer.call('task.get', { task_id: taskId });
  expect(r.error, JSON.stringify(r.error)).toBeUndefined();
  return r.result as unknown as { task: TaskView; attempts: unknown[] };
}

/**
 * A WebSocket relay between the Python worker and the daemon. It records the upgrade requests
 * and the claims (so a test can replay a dead worker's attempt token), can drop every connection,
 * and with `fragment` sends each frame to the worker in three fragments cut at byte offsets,
 * after a ping.
 */
interface Relay {
  readonly url: string;
  readonly upgrades: Array<{ url: string; authorization: string | undefined }>;
  readonly claims: Array<{ task_id: string; attempt_token: string }>;
  pongs: number;
  dropAll(): void;
  close(): Promise<void>;
}

async function startRelay(options: { fragment: boolean }): Promise<Relay> {
  const wss = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(wss, 'listening');
  const sockets = new Set<WebSocket>();
  const relay: Relay = {
    url: `ws://127.0.0.1:${(wss.address() as AddressInfo).port}/acp`,
    upgrades: [],
    claims: [],
    pongs: 0,
    dropAll: () => {
      for (const s of sockets) s.terminate();
    },
    close: async () => {
      relay.dropAll();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
  wss.on('connection', (down, req) => {
    relay.upgrades.push({ url: req.url ?? '', authorization: req.headers.authorization });
    const up = new WebSocket(daemon.acpUrl, {
      headers: { authorization: req.headers.authorization ?? '' },
    });
    sockets.add(down);
    sockets.add(up);
    const early: string[] = [];
    up.on('open', () => early.splice(0).forEach((m) => up.send(m)));
    down.on('message', (data: Buffer) => {
      if (up.readyState === WebSocket.OPEN) up.send(data.toString());
      else early.push(data.toString());
    });
    up.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString()) as {
        result?: { claims?: Array<{ task: { id: string }; attempt_token: string }> };
      };
      for (const c of frame.result?.claims ?? [])
        relay.claims.push({ task_id: c.task.id, attempt_token: c.attempt_token });
      if (!options.fragment) return down.send(data.toString());
      down.ping();
      const third = Math.ceil(data.length / 3);
      down.send(data.subarray(0, third), { binary: false, fin: false });
      down.send(data.subarray(third, 2 * third), { binary: false, fin: false });
      down.send(data.subarray(2 * third), { binary: false, fin: true });
    });
    down.on('pong', () => relay.pongs++);
    const closeBoth = () => {
      down.terminate();
      up.terminate();
      sockets.delete(down);
      sockets.delete(up);
    };
    down.on('close', closeBoth);
    up.on('close', closeBoth);
    down.on('error', closeBoth);
    up.on('error', closeBoth);
  });
  return relay;
}

describe('the Python worker', () => {
  it('runs jobs claim → complete over fragmented frames, pings and 16/64-bit lengths', async () => {
    const relay = await startRelay({ fragment: true });
    const big = 'ä'.repeat(40_000); // 80 kB of two-byte characters: 64-bit lengths both ways
    const ids = [
      await submit('upper', { text: 'hello wörld' }),
      await submit('upper', { text: 'x'.repeat(300) }), // 16-bit lengths
      await submit('upper', { text: big }),
    ];
    const worker = startWorker(['--url', relay.url, '--lanes', 'py', '--once']);
    await exitOk(worker);
    await relay.close();

    const expected = ['HELLO WÖRLD', 'X'.repeat(300), big.toUpperCase()];
    for (const [i, id] of ids.entries()) {
      const { task } = await getTask(id);
      expect(task.state).toBe('succeeded');
      expect(task.attempts).toBe(1);
      expect(task.result).toEqual({ text: expected[i] });
    }
    expect(worker.lines().map((l) => [l.task_id, l.name, l.outcome])).toEqual(
      ids.map((id) => [id, 'upper', 'completed']),
    );
    expect(relay.pongs).toBeGreaterThan(0);
    // The token travels in the Authorization header only, and is never printed.
    expect(relay.upgrades.length).toBeGreaterThan(0);
    for (const u of relay.upgrades) {
      expect(u.url).toBe('/acp');
      expect(u.authorization).toBe(`Bearer ${daemon.token}`);
    }
    expect(worker.stdout() + worker.stderr()).not.toContain(daemon.token);
  }, 60_000);

  it('fails a job by its retry policy: retried then dead, or failed at once when not retryable', async () => {
    const retried = await submit(
      'fail',
      { message: 'boom', retry_after_ms: 50 },
      { max_attempts: 3 },
    );
    const fatal = await submit(
      'fail',
      { message: 'no way', retryable: false },
      { max_attempts: 3 },
    );
    const worker = startWorker(['--lanes', 'py', '--once']);
    await exitOk(worker);

    const r = await getTask(retried);
    expect(r.task).toMatchObject({ state: 'dead', attempts: 3, last_error: { message: 'boom' } });
    expect(r.attempts).toHaveLength(3);
    const f = await getTask(fatal);
    expect(f.task).toMatchObject({ state: 'failed', attempts: 1 });
    expect(
      worker
        .lines()
        .filter((l) => l.task_id === retried)
        .map((l) => [l.outcome, l.state]),
    ).toEqual([
      ['failed', 'queued'],
      ['failed', 'queued'],
      ['failed', 'dead'],
    ]);
  }, 60_000);

  it('keeps a job longer than its lease alive with heartbeats', async () => {
    // Two and a half leases long: without heartbeats the lease expires and the task is reclaimed.
    const id = await submit('sleep', { seconds: 7 });
    const worker = startWorker(['--lanes', 'py', '--lease-ms', '3000', '--once']);
    await exitOk(worker);
    const { task, attempts } = await getTask(id);
    expect(task).toMatchObject({ state: 'succeeded', attempts: 1, result: { slept: 7 } });
    expect(attempts).toHaveLength(1);
    expect(worker.lines()).toEqual([
      expect.objectContaining({ task_id: id, outcome: 'completed' }),
    ]);
  }, 60_000);

  it('after SIGKILL mid-task: reclaimed at lease expiry, completed by another worker; the dead attempt gets LEASE_LOST', async () => {
    const relay = await startRelay({ fragment: false });
    const id = await submit('sleep', { seconds: 3 }, { max_attempts: 3 });
    const first = startWorker(['--url', relay.url, '--lanes', 'py', '--lease-ms', '2000']);
    await waitFor('the first worker to start the task', () =>
      first.stderr().includes(`running ${id}`),
    );
    const deadToken = relay.claims.find((c) => c.task_id === id)!.attempt_token;
    first.child.kill('SIGKILL');
    expect((await first.exited).signal).toBe('SIGKILL');
    await relay.close();

    const second = startWorker(['--lanes', 'py', '--lease-ms', '2000', '--max-tasks', '1']);
    await exitOk(second);
    expect(second.lines()).toEqual([
      expect.objectContaining({ task_id: id, outcome: 'completed', attempt: 2 }),
    ]);
    const { task, attempts } = await getTask(id);
    expect(task).toMatchObject({ state: 'succeeded', attempts: 2, result: { slept: 3 } });
    expect(attempts).toHaveLength(2);

    const late = await peer.call('task.complete', {
      task_id: id,
      attempt_token: deadToken,
      result: { from: 'the dead worker' },
    });
    expect(late.error?.data?.code).toBe('LEASE_LOST');
    const beat = await peer.call('task.heartbeat', { task_id: id, attempt_token: deadToken });
    expect(beat.error?.data?.code).toBe('LEASE_LOST');
    expect((await getTask(id)).task.result).toEqual({ slept: 3 });
  }, 90_000);

  it('on SIGTERM finishes the task in hand and exits 0; on SIGINT while idle exits 0', async () => {
    const id = await submit('sleep', { seconds: 2 });
    const busy = startWorker(['--lanes', 'py', '--lease-ms', '2000']);
    await waitFor('the worker to start the task', () => busy.stderr().includes(`running ${id}`));
    busy.child.kill('SIGTERM');
    await exitOk(busy);
    expect(busy.lines()).toEqual([expect.objectContaining({ task_id: id, outcome: 'completed' })]);
    expect((await getTask(id)).task.state).toBe('succeeded');

    const idle = startWorker(['--lanes', 'py']);
    await waitFor('the idle worker to connect', () => idle.stderr().includes('connected'));
    idle.child.kill('SIGINT');
    await exitOk(idle);
    expect(idle.lines()).toEqual([]);
  }, 60_000);

  it('reconnects with backoff when the connection drops, then works', async () => {
    const relay = await startRelay({ fragment: false });
    const worker = startWorker(['--url', relay.url, '--lanes', 'py', '--max-tasks', '1']);
    await waitFor('the worker to connect', () => worker.stderr().includes('connected'));
    relay.dropAll();
    await waitFor('the worker to reconnect', () => relay.upgrades.length >= 2);
    const id = await submit('upper', { text: 'again' });
    await exitOk(worker);
    await relay.close();
    expect(worker.stderr()).toMatch(/connection lost/);
    expect((await getTask(id)).task).toMatchObject({
      state: 'succeeded',
      result: { text: 'AGAIN' },
    });
  }, 60_000);

  it('picks up a job that `warden submit` queues while it long-polls', async () => {
    const worker = startWorker(['--lanes', 'py', '--max-tasks', '1']);
    await waitFor('the worker to connect', () => worker.stderr().includes('connected'));
    const submitted = await runCli(
      ['submit', 'upper', '--payload', '{"text": "from the cli"}', '--lane', 'py', '--json'],
      { home },
    );
    expect(submitted.code, submitted.stderr).toBe(0);
    await exitOk(worker);
    const [line] = worker.lines();
    expect(line).toMatchObject({ name: 'upper', outcome: 'completed', state: 'succeeded' });
    expect((await getTask(line!.task_id)).task.result).toEqual({ text: 'FROM THE CLI' });
  }, 60_000);

  it('exits 2 on a refused token, without printing it', async () => {
    const worker = startWorker(['--lanes', 'py', '--once'], { WARDEN_TOKEN: 'not-a-valid-token' });
    const { code } = await worker.exited;
    expect(code).toBe(2);
    expect(worker.stderr()).toMatch(/401/);
    expect(worker.stderr()).not.toContain('not-a-valid-token');
  });
});
