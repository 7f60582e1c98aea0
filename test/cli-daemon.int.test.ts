/**
 * The CLI with a real `warden serve` on the same home: commands find it through daemon.json (or
 * WARDEN_URL) and go through it, with the same output as on the database directly.
 */
import { appendFileSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { resolveDaemonTarget } from '../src/cli/daemon-target.ts';
import { WardenClient } from '../src/client/index.ts';
import { type CliResult, json, REPO, runCli } from './helpers/cli.ts';
import { type DaemonProcess, startDaemon } from './helpers/daemon.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

let home: string;
let daemon: DaemonProcess;
let client: WardenClient;
/** A read-only token made with `warden token create --scopes read`. */
let readToken: string;

const cli = (args: readonly string[], env: Record<string, string> = {}) =>
  runCli(args, { home, env });
const errorOf = (r: CliResult) => json<{ error: { code: string; message: string } }>(r).error;

beforeAll(async () => {
  home = tempDir('warden-cli-daemon-');
  expect((await runCli(['init'], { home })).code).toBe(0);
  appendFileSync(join(home, 'config.yaml'), 'lanes:\n  emails: {}\n');
  daemon = await startDaemon(home);
  client = await WardenClient.connect({ url: daemon.acpUrl, token: daemon.token });
  const created = await cli(['token', 'create', '--name', 'ro', '--scopes', 'read', '--json']);
  readToken = json<{ token: string }>(created).token;
}, 60_000);

afterAll(async () => {
  await client?.close();
  await daemon?.stop();
  removeTempDirs();
});

/** A port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** A job on `emails` that died: claimed over ACP and failed at its only attempt. */
async function deadTask(name: string): Promise<string> {
  const { task } = await client.tasks.submit({ name, lane: 'emails', max_attempts: 1 });
  for (;;) {
    const { claims } = await client.tasks.claim({ lanes: ['emails'], limit: 256 });
    let found = false;
    for (const c of claims) {
      if (c.task.id === task.id) {
        await client.tasks.fail({
          task_id: c.task.id,
          attempt_token: c.attempt_token,
          error: { message: 'mailbox full', code: 'BOUNCED', retryable: true }, // the last attempt: dead
        });
        found = true;
      } else await client.tasks.release({ task_id: c.task.id, attempt_token: c.attempt_token });
    }
    if (found) return task.id;
  }
}

describe('which path a command takes (resolveDaemonTarget)', () => {
  it('follows --direct > --url > WARDEN_URL > daemon.json > the database', () => {
    const discovered = resolveDaemonTarget({ home }, {});
    expect(discovered).toMatchObject({ kind: 'daemon', source: 'discovered', local: true });
    expect(discovered.kind === 'daemon' && discovered.token).toBe(daemon.token);
    expect(resolveDaemonTarget({ home, direct: true }, { WARDEN_URL: daemon.acpUrl })).toEqual({
      kind: 'direct',
    });
    expect(resolveDaemonTarget({ home }, { WARDEN_DIRECT: '1' })).toEqual({ kind: 'direct' });
    expect(
      resolveDaemonTarget({ home, url: 'ws://10.9.9.9:1/acp' }, { WARDEN_URL: daemon.acpUrl }),
    ).toMatchObject({ kind: 'daemon', url: 'ws://10.9.9.9:1/acp', source: 'flag', local: false });
    expect(
      resolveDaemonTarget({ home }, { WARDEN_URL: daemon.acpUrl, WARDEN_TOKEN: 'tok' }),
    ).toMatchObject({ source: 'env', token: 'tok', local: true });
    // The home's daemon serves warden.db, not this database.
    expect(resolveDaemonTarget({ home, db: join(home, 'other.db') }, {})).toEqual({
      kind: 'direct',
    });
    expect(resolveDaemonTarget({ home: tempDir() }, {})).toEqual({ kind: 'direct' });
  });

  it('refuses a URL without any token (UNAUTHORIZED) instead of connecting', () => {
    expect(() => resolveDaemonTarget({ home: tempDir(), url: daemon.acpUrl }, {})).toThrow(
      expect.objectContaining({ code: 'UNAUTHORIZED' }),
    );
  });
});

describe('submit', () => {
  it('fails with DAEMON_UNREACHABLE (exit 1) naming the URL and --direct when WARDEN_URL is dead', async () => {
    const url = `ws://127.0.0.1:${await deadPort()}/acp`;
    const r = await cli(['submit', 'send-email', '--lane', 'emails', '--json'], {
      WARDEN_URL: url,
    });
    expect(r.code).toBe(1);
    const error = errorOf(r);
    expect(error.code).toBe('DAEMON_UNREACHABLE');
    expect(error.message).toContain(url);
    expect(error.message).toContain('--direct');
    expect((await client.tasks.list({})).tasks).toEqual([]); // nothing was submitted anywhere
  });

  it('goes through the daemon found in daemon.json: a read-only WARDEN_TOKEN is FORBIDDEN, --direct is not', async () => {
    const args = ['submit', 'send-email', '--lane', 'emails', '--json'];
    const refused = await cli(args, { WARDEN_TOKEN: readToken });
    expect(refused.code).toBe(1);
    expect(errorOf(refused).code).toBe('FORBIDDEN');
    const viaUrl = await cli(args, { WARDEN_TOKEN: readToken, WARDEN_URL: daemon.acpUrl });
    expect(viaUrl.code).toBe(1);
    expect(errorOf(viaUrl).code).toBe('FORBIDDEN');
    expect((await client.tasks.list({})).tasks).toEqual([]);
    const direct = await cli([...args, '--direct'], { WARDEN_TOKEN: readToken });
    expect(direct.code).toBe(0);
    const { id } = json<{ id: string }>(direct);
    expect((await client.tasks.get({ task_id: id })).task.state).toBe('queued');
  });

  it('submits through the daemon with the auth.token; both paths print the same and share the idempotency key', async () => {
    const args = [
      'submit',
      'send-email',
      '--lane',
      'emails',
      '--payload',
      '{"to":"a@example.com"}',
    ];
    const first = await cli([...args, '--key', 'welcome-1', '--json']);
    expect(first.code).toBe(0);
    const submitted = json<{ id: string; deduplicated: boolean; state: string; lane: string }>(
      first,
    );
    expect(submitted.id).toMatch(/^t_/);
    expect(submitted).toEqual({
      id: submitted.id,
      deduplicated: false,
      state: 'queued',
      lane: 'emails',
    });
    const { task } = await client.tasks.get({ task_id: submitted.id });
    expect(task.payload).toEqual({ to: 'a@example.com' });
    const again = await cli([...args, '--key', 'welcome-1', '--json', '--direct']);
    expect(json(again)).toEqual({ ...submitted, deduplicated: true });
    // The daemon only takes lanes it declares (there are no workers for others).
    const unknown = await cli(['submit', 'x', '--lane', 'nowhere']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/INVALID_PARAMS.*nowhere/);
  });
});

describe('runs and interrupts', () => {
  let pid: string;

  it('approve through the daemon resumes a waiting run, and the daemon finishes it', async () => {
    const run = await cli([
      'run',
      '--no-interactive',
      'examples/review-loop.yaml',
      '--input',
      '{"topic":"durable agents"}',
    ]);
    expect(run.code).toBe(4);
    const viaDaemon = await cli(['interrupts', '--json']);
    const direct = await cli(['interrupts', '--json', '--direct']);
    expect(viaDaemon.stdout).toBe(direct.stdout);
    const [pending] = json<Array<{ id: string; process_id: string }>>(viaDaemon);
    pid = pending!.process_id;
    const approved = await cli(['approve', pending!.id, '--note', 'ship it', '--json']);
    expect(approved.code).toBe(0);
    expect(json(approved)).toMatchObject({
      interrupt: {
        id: pending!.id,
        status: 'resolved',
        response: { approved: true, text: 'ship it' },
      },
      process: { pid },
    });
    const { run: done } = await client.runs.wait({ pid, timeout_ms: 60_000 });
    expect(done).toMatchObject({ state: 'terminated', terminal_reason: 'completed' });
    // Resolved by the daemon's caller (the admin token), not by `cli:<user>` as directly.
    const { interrupt } = await client.interrupts.get({ interrupt_id: pending!.id });
    expect(interrupt.resolver).toBe('admin');
  }, 120_000);

  it('cancel through the daemon, then again on the database: the same shape, changed once', async () => {
    const text = readFileSync(join(REPO, 'examples/review-loop.yaml'), 'utf8');
    const { run } = await client.runs.start({ workflow: text as never, input: { topic: 'x' } });
    await client.runs.wait({ pid: run.pid, until: 'waiting', timeout_ms: 60_000 });
    const first = await cli(['cancel', run.pid, '--reason', 'superseded', '--json']);
    expect(json(first)).toEqual({
      pid: run.pid,
      state: 'terminated',
      terminal_reason: 'user_cancelled',
      changed: true,
    });
    const second = await cli(['cancel', run.pid, '--json', '--direct']);
    expect(json(second)).toEqual({ ...json<object>(first), changed: false });
  }, 120_000);

  it('ps prints the same through the daemon and on the database', async () => {
    const viaDaemon = await cli(['ps', '--json']);
    const direct = await cli(['ps', '--json'], { WARDEN_DIRECT: '1' });
    expect(viaDaemon.code).toBe(0);
    expect(viaDaemon.stdout).toBe(direct.stdout);
    expect(json<Array<{ pid: string }>>(viaDaemon).map((p) => p.pid)).toContain(pid);
  });
});

describe('tasks and the dead-letter queue', () => {
  it('tasks and dlq print the same JSON through the daemon and on the database', async () => {
    await deadTask('doomed');
    for (const args of [
      ['tasks', '--json'],
      ['dlq', '--json'],
    ]) {
      const viaDaemon = await cli(args, { WARDEN_URL: daemon.acpUrl });
      const direct = await cli([...args, '--direct']);
      expect(viaDaemon.code).toBe(0);
      expect(viaDaemon.stdout).toBe(direct.stdout);
      expect(viaDaemon.stdout).toContain('doomed');
    }
  }, 60_000);

  it('redrive goes through the daemon; purge works on the home database, not through a remote URL', async () => {
    const dead = (await client.tasks.dlqList({})).tasks;
    expect(dead.length).toBeGreaterThan(0);
    const other = await deadTask('doomed-too');
    const redriven = await cli(['dlq', 'redrive', dead[0]!.id]);
    expect(redriven.stdout).toContain('redrove 1 task');
    expect((await client.tasks.get({ task_id: dead[0]!.id })).task.state).toBe('queued');
    // A URL that is not the one in daemon.json could be another host's daemon.
    const port = new URL(daemon.acpUrl).port;
    const remote = await cli(['dlq', 'purge', other, '--url', `ws://localhost:${port}/acp`]);
    expect(remote.code).toBe(2);
    expect(remote.stderr).toMatch(/INVALID_PARAMS.*--direct/);
    const purged = await cli(['dlq', 'purge', other, '--json']);
    expect(json(purged)).toEqual({ action: 'purge', ids: [other] });
    await expect(client.tasks.get({ task_id: other })).rejects.toMatchObject({ code: 'NOT_FOUND' });
  }, 60_000);
});
