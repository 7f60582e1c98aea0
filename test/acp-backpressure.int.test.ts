/**
 * Backpressure: a client that stops reading gets `system.backpressure` and a 1013 close, the
 * daemon's memory stays bounded, and other clients are served meanwhile.
 */
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, expect, it } from 'vitest';
import WebSocket from 'ws';

import { runCli } from './helpers/cli.ts';
import { type DaemonProcess, startDaemon } from './helpers/daemon.ts';
import { connectRaw } from './helpers/raw-acp.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const PRODUCER = fileURLToPath(new URL('./helpers/event-producer.ts', import.meta.url));

let home: string;
let daemon: DaemonProcess;

function rssMiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

beforeAll(async () => {
  home = tempDir('warden-bp-');
  await runCli(['init'], { home });
  writeFileSync(
    join(home, 'config.yaml'),
    'server:\n  outbound_high_water_bytes: 1048576\n  stall_timeout: 2s\n',
  );
  daemon = await startDaemon(home);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  removeTempDirs();
});

it('cuts off a client that stopped reading, with a notice, and keeps serving the others', async () => {
  const admin = await connectRaw(daemon.acpUrl, daemon.token);
  const session = (await admin.call('session.create', { key: 'flood' })).result!.session as {
    id: string;
  };
  const producer = spawn(
    process.execPath,
    [PRODUCER, join(home, 'warden.db'), session.id, '60000', '500'],
    {
      stdio: 'ignore',
    },
  );
  const produced = new Promise<void>((resolve) => producer.on('exit', () => resolve()));
  const rssBefore = rssMiB(daemon.child.pid!);

  // The slow client: subscribes, then its socket stops reading (the kernel buffers fill).
  const slow = new WebSocket(daemon.acpUrl, {
    headers: { authorization: `Bearer ${daemon.token}` },
  });
  await new Promise((resolve) => slow.once('open', resolve));
  const frames: Array<{ method?: string }> = [];
  slow.on('message', (d: Buffer) => frames.push(JSON.parse(d.toString()) as { method?: string }));
  const closed = new Promise<number>((resolve) => slow.on('close', (code) => resolve(code)));
  slow.send(
    JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'system.hello',
      params: { protocol: { min: 1, max: 1 } },
    }),
  );
  slow.send(
    JSON.stringify({
      jsonrpc: '2.0',
      id: 2,
      method: 'events.subscribe',
      params: { session_id: session.id },
    }),
  );
  const socket = (slow as unknown as { _socket: Socket })._socket;
  await new Promise((r) => setTimeout(r, 50));
  socket.pause();

  // Another client stays responsive while the slow one is cut off.
  const other = await connectRaw(daemon.acpUrl, daemon.token);
  let peakRss = rssBefore;
  for (let i = 0; i < 40; i++) {
    const started = Date.now();
    const pong = await other.call('system.ping', {});
    expect(pong.result?.now).toBeTypeOf('number');
    expect(Date.now() - started).toBeLessThan(5_000);
    peakRss = Math.max(peakRss, rssMiB(daemon.child.pid!));
    await new Promise((r) => setTimeout(r, 100));
  }
  await produced;
  socket.resume();
  expect(await closed).toBe(1013);
  expect(frames.some((f) => f.method === 'system.backpressure')).toBe(true);
  const notice = frames.find((f) => f.method === 'system.backpressure') as {
    params: { high_water_bytes: number };
  };
  expect(notice.params.high_water_bytes).toBe(1_048_576);
  // Bounded: one connection's buffer (1 MiB mark) plus pages, not 60,000 events' worth.
  console.log(`daemon RSS ${rssBefore.toFixed(0)} MiB before, ${peakRss.toFixed(0)} MiB peak`);
  expect(peakRss - rssBefore).toBeLessThan(150);
  const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
  expect(metrics).toMatch(/warden_acp_backpressure_closes_total 1/);
  other.close();
  admin.close();
}, 120_000);
