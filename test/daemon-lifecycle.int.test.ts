/**
 * `warden serve` as a process: start order, a failing phase exits with its reason code and one
 * JSON line, one daemon per home, live reloads (file change and SIGHUP; an invalid one keeps the
 * old configuration), and a graceful stop that tells clients and leaves nothing behind.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { WardenClient } from '../src/client/index.ts';
import { runCli } from './helpers/cli.ts';
import { type DaemonProcess, startDaemon } from './helpers/daemon.ts';
import { upgradeStatus } from './helpers/raw-acp.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { waitFor } from './helpers/wait.ts';

const running: DaemonProcess[] = [];
afterEach(async () => {
  for (const d of running.splice(0)) await d.stop('SIGKILL');
  removeTempDirs();
});

async function initHome(config?: string): Promise<string> {
  const home = tempDir('warden-life-');
  await runCli(['init'], { home });
  if (config !== undefined) writeFileSync(join(home, 'config.yaml'), config);
  return home;
}

function fatalLine(stdout: string): Record<string, unknown> {
  const lines = stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const fatal = lines.filter((l) => l.level === 'fatal');
  expect(fatal).toHaveLength(1);
  return fatal[0]!;
}

describe('start', () => {
  it('logs each phase in order, then ready', async () => {
    const home = await initHome();
    const d = await startDaemon(home);
    running.push(d);
    const phases = d.logs.filter((l) => typeof l.phase === 'string').map((l) => l.phase);
    expect(phases.filter((p, i) => phases.indexOf(p) === i)).toEqual([
      'config',
      'store',
      'recovery',
      'policy',
      'listeners',
      'workers',
    ]);
    expect(d.logs.at(-1)).toMatchObject({ msg: 'ready', pid: d.child.pid });
    expect(existsSync(join(home, 'daemon.json'))).toBe(true);
  });

  it('fails in phase listeners when the port is taken (exit 1, one fatal line)', async () => {
    const home = await initHome();
    const blocker = createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as { port: number }).port;
    const r = await runCli(['serve', '--listen', `127.0.0.1:${port}`], { home, timeoutMs: 30_000 });
    blocker.close();
    expect(r.code).toBe(1);
    expect(fatalLine(r.stdout)).toMatchObject({ phase: 'listeners' });
    expect(existsSync(join(home, 'daemon.json'))).toBe(false);
  });

  it('fails in phase store on a corrupt database (exit 6)', async () => {
    const home = await initHome();
    writeFileSync(join(home, 'warden.db'), 'this is not a database'.repeat(500));
    const r = await runCli(['serve', '--listen', '127.0.0.1:0'], { home, timeoutMs: 30_000 });
    expect(r.code).toBe(6);
    expect(fatalLine(r.stdout)).toMatchObject({ phase: 'store', code: 'STORE_CORRUPT' });
  });

  it('fails in phase config on an invalid config.yaml (exit 2) and for a second daemon (exit 8)', async () => {
    const bad = await initHome('server:\n  listen: nowhere\n');
    const r = await runCli(['serve'], { home: bad, timeoutMs: 30_000 });
    expect(r.code).toBe(2);
    expect(fatalLine(r.stdout)).toMatchObject({ phase: 'config', code: 'CONFIG_INVALID' });
    const home = await initHome();
    const first = await startDaemon(home);
    running.push(first);
    const second = await runCli(['serve', '--listen', '127.0.0.1:0'], { home, timeoutMs: 30_000 });
    expect(second.code).toBe(8);
    expect(fatalLine(second.stdout)).toMatchObject({ code: 'DAEMON_RUNNING' });
  });
});

describe('reload', () => {
  it('applies a changed config.yaml live, refuses an invalid one and keeps serving', async () => {
    const home = await initHome('server:\n  allowed_origins: []\n');
    const d = await startDaemon(home);
    running.push(d);
    const headers = { authorization: `Bearer ${d.token}`, origin: 'https://ops.example.com' };
    expect((await upgradeStatus(d.acpUrl, headers)).status).toBe(403);
    writeFileSync(
      join(home, 'config.yaml'),
      'server:\n  allowed_origins: ["https://ops.example.com"]\n',
    );
    await waitFor(
      async () => (await upgradeStatus(d.acpUrl, headers)).status === 101,
      10_000,
      'the reload',
    );
    writeFileSync(join(home, 'config.yaml'), 'server:\n  allowed_origins: "not a list"\n');
    await waitFor(
      () =>
        d.logs.some(
          (l) =>
            l.msg === 'configuration reload refused; the previous configuration stays in force',
        ),
      10_000,
    );
    expect((await upgradeStatus(d.acpUrl, headers)).status).toBe(101);
    writeFileSync(join(home, 'config.yaml'), 'server:\n  allowed_origins: []\n');
    d.child.kill('SIGHUP');
    await waitFor(
      async () => (await upgradeStatus(d.acpUrl, headers)).status === 403,
      10_000,
      'the SIGHUP reload',
    );
    expect(d.child.exitCode).toBeNull();
  });
});

describe('stop', () => {
  it('tells clients, ends long polls, exits 0 and removes daemon.json', async () => {
    const home = await initHome('lanes:\n  idle: {}\n');
    const d = await startDaemon(home);
    running.push(d);
    const client = await WardenClient.connect({ url: d.acpUrl, token: d.token, reconnect: false });
    const notices: unknown[] = [];
    client.on('shutdown', (n: unknown) => notices.push(n));
    const poll = client.tasks.claim({ lanes: ['idle'], wait_ms: 60_000 }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200));
    const started = Date.now();
    const exit = await d.stop('SIGTERM');
    expect(exit.code).toBe(0);
    expect(Date.now() - started).toBeLessThan(15_000);
    const answer = await poll;
    expect(answer).toMatchObject({ claims: [] });
    expect(notices).toHaveLength(1);
    expect(existsSync(join(home, 'daemon.json'))).toBe(false);
    expect(d.logs.some((l) => l.msg === 'stopped')).toBe(true);
    await client.close();
  });
});
