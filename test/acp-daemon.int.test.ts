/**
 * `warden serve` in a child process, driven over real sockets with raw JSON-RPC frames: auth at
 * the upgrade, the handshake, typed errors, frame limits, HTTP endpoints, graceful stop.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { json, runCli } from './helpers/cli.ts';
import { type DaemonProcess, startDaemon } from './helpers/daemon.ts';
import { connectRaw, upgradeStatus } from './helpers/raw-acp.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

let home: string;
let daemon: DaemonProcess;

beforeAll(async () => {
  home = tempDir('warden-acp-');
  await runCli(['init'], { home });
  writeFileSync(
    join(home, 'config.yaml'),
    'server:\n  allowed_origins: ["https://ops.example.com"]\nlanes:\n  emails: { concurrency: 4 }\n',
  );
  daemon = await startDaemon(home);
}, 60_000);

afterAll(async () => {
  await daemon?.stop();
  removeTempDirs();
});

describe('authentication at the upgrade', () => {
  it('refuses a missing token with 401 and opens no socket', async () => {
    const r = await upgradeStatus(daemon.acpUrl, {});
    expect(r.status).toBe(401);
    expect((JSON.parse(r.body) as { error: { code: string } }).error.code).toBe('UNAUTHORIZED');
  });

  it('refuses a wrong token with 401', async () => {
    const r = await upgradeStatus(daemon.acpUrl, { authorization: 'Bearer not-the-token' });
    expect(r.status).toBe(401);
  });

  it('refuses a token in the query string even when it is valid, and never logs it', async () => {
    const r = await upgradeStatus(`${daemon.acpUrl}?token=${daemon.token}`, {});
    expect(r.status).toBe(401);
    expect((JSON.parse(r.body) as { error: { message: string } }).error.message).toMatch(
      /Authorization: Bearer/,
    );
    const r2 = await upgradeStatus(`${daemon.acpUrl}?access_token=${daemon.token}`, {
      authorization: `Bearer ${daemon.token}`,
    });
    expect(r2.status).toBe(401);
    expect(daemon.output()).not.toContain(daemon.token);
  });

  it('refuses a browser Origin that is not allowed with 403, accepts an allowed one', async () => {
    const bad = await upgradeStatus(daemon.acpUrl, {
      authorization: `Bearer ${daemon.token}`,
      origin: 'https://evil.example.com',
    });
    expect(bad.status).toBe(403);
    const good = await upgradeStatus(daemon.acpUrl, {
      authorization: `Bearer ${daemon.token}`,
      origin: 'https://ops.example.com',
    });
    expect(good.status).toBe(101);
  });

  it('answers FORBIDDEN for a method outside the token scopes, and nothing changes', async () => {
    const created = await runCli(
      ['token', 'create', '--name', 'reader', '--scopes', 'read', '--json'],
      {
        home,
      },
    );
    expect(created.code, created.stderr).toBe(0);
    const { token } = json<{ token: string }>(created);
    const peer = await connectRaw(daemon.acpUrl, token);
    const denied = await peer.call('task.submit', { name: 'x', lane: 'emails' });
    expect(denied.error?.data?.code).toBe('FORBIDDEN');
    expect(denied.error?.data?.details).toMatchObject({ method: 'task.submit', needs: 'write' });
    const list = await peer.call('task.list', { lane: 'emails' });
    expect(list.result?.tasks).toEqual([]);
    peer.close();
    // The connection recorded the token's use (an audit hint for `warden token list`).
    const listed = json<Array<{ name: string; last_used_at: number | null }>>(
      await runCli(['token', 'list', '--json'], { home }),
    );
    expect(listed.find((t) => t.name === 'reader')?.last_used_at).toBeTypeOf('number');
  });
});

describe('the handshake', () => {
  it('requires system.hello before anything else and does nothing', async () => {
    const peer = await connectRaw(daemon.acpUrl, daemon.token, { hello: false });
    const r = await peer.call('task.submit', { name: 'early', lane: 'emails' });
    expect(r.error?.data?.code).toBe('HANDSHAKE_REQUIRED');
    const hello = await peer.call('system.hello', { protocol: { min: 1, max: 3 } });
    expect(hello.result?.protocol).toBe(1);
    expect(hello.result?.scopes).toContain('admin');
    const again = await peer.call('system.hello', { protocol: { min: 1, max: 1 } });
    expect(again.error?.data?.code).toBe('INVALID_STATE');
    const list = await peer.call('task.list', {});
    expect((list.result?.tasks as Array<{ name: string }>).some((t) => t.name === 'early')).toBe(
      false,
    );
    peer.close();
  });

  it('answers PROTOCOL_MISMATCH and closes when no version is common', async () => {
    const peer = await connectRaw(daemon.acpUrl, daemon.token, { hello: false });
    const r = await peer.call('system.hello', { protocol: { min: 2, max: 5 } });
    expect(r.error?.data?.code).toBe('PROTOCOL_MISMATCH');
    expect(r.error?.data?.details).toEqual({ server: { min: 1, max: 1 } });
    expect((await peer.closed).code).toBe(1002);
  });
});

describe('malformed traffic', () => {
  it('answers every kind with a well-formed JSON-RPC error and keeps the connection', async () => {
    const peer = await connectRaw(daemon.acpUrl, daemon.token);
    expect((await peer.sendRaw('{not json')).error?.code).toBe(-32700);
    expect((await peer.sendRaw('[1,2]')).error?.code).toBe(-32600);
    expect(
      (await peer.sendRaw('{"jsonrpc":"1.0","id":5,"method":"system.ping"}')).error?.code,
    ).toBe(-32600);
    expect((await peer.sendRaw(Buffer.from('{}'), true)).error?.code).toBe(-32600);
    expect((await peer.call('no.such.method', {})).error?.code).toBe(-32601);
    const bad = await peer.call('task.submit', { name: 42 });
    expect(bad.error?.code).toBe(-32602);
    expect(bad.error?.data?.code).toBe('INVALID_PARAMS');
    expect(bad.error?.message).toMatch(/name/);
    const unknownKey = await peer.call('system.ping', { extra: 1 });
    expect(unknownKey.error?.data?.code).toBe('INVALID_PARAMS');
    expect((await peer.call('system.ping', {})).result?.now).toBeTypeOf('number');
    peer.close();
  });

  it('closes with 1009 on a frame over 1 MiB', async () => {
    const peer = await connectRaw(daemon.acpUrl, daemon.token);
    peer.ws.send(
      JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'system.ping',
        params: { x: 'y'.repeat(1_100_000) },
      }),
    );
    expect((await peer.closed).code).toBe(1009);
  });
});

describe('HTTP endpoints', () => {
  it('serves /healthz, /readyz and /metrics, and guards /events', async () => {
    expect((await fetch(`${daemon.url}/healthz`)).status).toBe(200);
    const ready = await fetch(`${daemon.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toMatchObject({ status: 'ready' });
    const metrics = await (await fetch(`${daemon.url}/metrics`)).text();
    expect(metrics).toMatch(/warden_queue_depth/);
    expect(metrics).toMatch(/process_resident_memory_bytes/);
    expect((await fetch(`${daemon.url}/events?session_id=x`)).status).toBe(401);
    expect((await fetch(`${daemon.url}/nope`)).status).toBe(404);
  });
});
