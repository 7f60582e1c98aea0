/**
 * MCP servers as tool sources (docs/mcp.md): a real stdio server (a child process) and a real
 * streamable HTTP server, each with the tools of test/helpers/mcp-test-tools.ts.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';

import { type McpServerConfig, mcpServerSchema, WardenError } from '../src/core/index.ts';
import { McpToolSource, type McpToolSourceOptions } from '../src/runtime/tools/mcp.ts';
import type { Tool, ToolExecution } from '../src/runtime/tools/types.ts';
import { type McpHttpTestServer, startMcpHttpServer } from './helpers/mcp-http-server.ts';
import { noteInvocations } from './helpers/mcp-test-tools.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { rejection, waitFor } from './helpers/wait.ts';

const SERVER = fileURLToPath(new URL('./helpers/mcp-stdio-server.ts', import.meta.url));

const SECRETS: Record<string, string> = {
  STDIO_TOKEN: 'stdio-secret-value-1',
  LOUD: 'hunter2-do-not-print',
};

function resolveSecret(name: string): string {
  const value = SECRETS[name];
  if (value === undefined) {
    throw new WardenError('SECRET_MISSING', `the secret ${name} is not set`, {
      details: { name },
    });
  }
  return value;
}

const sources: McpToolSource[] = [];

function source(config: Record<string, unknown>, options: Partial<McpToolSourceOptions> = {}) {
  const parsed: McpServerConfig = mcpServerSchema.parse(config);
  const created = new McpToolSource(parsed, { resolveSecret, ...options });
  sources.push(created);
  return created;
}

function stdio(extra: Record<string, unknown> = {}) {
  return source({ name: 't', command: process.execPath, args: [SERVER], ...extra });
}

function run(signal: AbortSignal = new AbortController().signal): ToolExecution {
  return { signal, secret: resolveSecret };
}

async function tool(from: McpToolSource, name: string): Promise<Tool> {
  const found = (await from.list()).find((t) => t.name === name);
  if (!found) throw new Error(`no tool ${name}`);
  return found;
}

async function call(from: McpToolSource, name: string, args: Record<string, unknown> = {}) {
  return (await tool(from, `${from.name}.${name}`)).execute(args, run());
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

afterEach(async () => {
  await Promise.all(sources.splice(0).map((s) => s.close()));
  removeTempDirs();
});

const TOOL_NAMES = [
  'add',
  'big',
  'echo',
  'env_get',
  'env_probe',
  'fail',
  'odd_name',
  'picture',
  'slow',
  'write_note',
];

describe('MCP over stdio', () => {
  it('lists the tools with Warden names, effects and the server schemas', async () => {
    const s = stdio();
    expect(s.name).toBe('mcp.t');
    expect(s.pid).toBeNull(); // lazy: nothing runs before the first list()
    const tools = await s.list();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOL_NAMES.map((n) => `mcp.t.${n}`));
    const byName = new Map(tools.map((t) => [t.name.slice('mcp.t.'.length), t]));
    expect(byName.get('add')!.effect).toBe('read');
    expect(byName.get('env_probe')!.effect).toBe('read');
    expect(byName.get('echo')!.effect).toBe('execute');
    expect(byName.get('write_note')!.effect).toBe('execute'); // readOnlyHint false
    expect(byName.get('echo')!.description).toBe('Returns the text it is given.');
    const echoSchema = byName.get('echo')!.inputSchema;
    expect(echoSchema).toMatchObject({
      type: 'object',
      properties: { text: { type: 'string' } },
      required: ['text'],
    });
    expect(echoSchema).not.toHaveProperty('$schema');
    expect(Object.isFrozen(echoSchema)).toBe(true);
    expect(byName.get('fail')!.inputSchema).toMatchObject({ type: 'object' });
    // `odd.name` is renamed; `odd_name` then collides with it and is skipped.
    expect(byName.get('odd_name')!.description).toBe('The tool odd.name.');
    expect(s.warnings).toEqual([
      "mcp.t: tool 'odd.name' is named mcp.t.odd_name",
      "mcp.t: skipped tool 'odd_name': its name mcp.t.odd_name is already taken",
    ]);
    expect(await s.list()).toBe(tools); // kept, not listed again
  });

  it('calls tools: text, structured content, is_error, images, bounded output', async () => {
    const s = stdio();
    expect(await call(s, 'echo', { text: 'hello' })).toEqual({ content: 'hello' });
    expect(await call(s, 'add', { a: 2, b: 3 })).toEqual({ content: { sum: 5 } });
    expect(await call(s, 'fail')).toEqual({ content: 'it failed on purpose', is_error: true });
    expect(await call(s, 'picture')).toEqual({
      content: 'a picture:\n[image image/png, 300 bytes, not shown]',
    });
    const big = await call(s, 'big', { bytes: 300 * 1024 });
    expect(typeof big.content).toBe('string');
    const text = big.content as string;
    expect(Buffer.byteLength(text)).toBeLessThanOrEqual(256 * 1024);
    expect(text.endsWith(` … (truncated, ${300 * 1024} bytes)`)).toBe(true);
    const small = await call(s, 'big', { bytes: 1000 });
    expect(small.content).toBe('x'.repeat(1000));
  });

  it('reports the server rejecting bad arguments as an is_error result', async () => {
    const s = stdio();
    const out = await call(s, 'add', { a: 'two', b: 3 });
    expect(out.is_error).toBe(true);
    expect(String(out.content)).toMatch(/Input validation error/i);
  });

  it('runs a tool with a real side effect', async () => {
    const s = stdio();
    const dir = tempDir();
    expect(await call(s, 'write_note', { dir, name: 'n.txt', text: 'note' })).toEqual({
      content: 'wrote n.txt',
    });
    expect(readFileSync(join(dir, 'n.txt'), 'utf8')).toBe('note');
    expect(noteInvocations(dir)).toBe(1);
  });

  it('cancels a call when its signal aborts, and the server hears about it', async () => {
    const s = stdio();
    const dir = tempDir();
    const slow = await tool(s, 'mcp.t.slow');
    const controller = new AbortController();
    const pending = slow.execute({ ms: 60_000, dir }, run(controller.signal));
    await waitFor(() => existsSync(join(dir, 'slow-started')), 10_000, 'the slow call to start');
    const reason = new WardenError('CANCELED', 'the run was cancelled');
    controller.abort(reason);
    expect(await rejection(pending)).toBe(reason);
    await waitFor(() => existsSync(join(dir, 'slow-cancelled')), 10_000, 'the server to cancel');
    expect(existsSync(join(dir, 'slow-done'))).toBe(false);
    // Any other abort reason becomes CANCELED; the connection is still usable.
    const other = new AbortController();
    const second = slow.execute({ ms: 60_000 }, run(other.signal));
    other.abort(new Error('stop'));
    expect((await rejection(second)).code).toBe('CANCELED');
    expect(await call(s, 'echo', { text: 'still here' })).toEqual({ content: 'still here' });
    // An already aborted signal fails without calling the server.
    expect((await rejection(slow.execute({ ms: 1 }, run(AbortSignal.abort())))).code).toBe(
      'CANCELED',
    );
  });

  it('fails a call that outlasts its timeout with TOOL_ERROR, keeping the connection', async () => {
    const s = stdio({ timeout: 1500 });
    const error = await rejection(call(s, 'slow', { ms: 30_000 }));
    expect(error.code).toBe('TOOL_ERROR');
    expect(error.message).toBe(
      "MCP server 't' did not answer slow within 1500 ms: check the server, or raise its timeout",
    );
    expect(error.details).toEqual({ server: 't', tool: 'slow' });
    expect(await call(s, 'echo', { text: 'after' })).toEqual({ content: 'after' });
  });

  it('gives the server only its configured env plus PATH, with secrets resolved', async () => {
    process.env.WARDEN_MCP_TEST_PARENT_ONLY = 'must-not-leak';
    try {
      const s = stdio({ env: { MODE: 'ro', MY_TOKEN: { secret: 'STDIO_TOKEN' } } });
      const probe = await call(s, 'env_probe');
      expect(probe).toEqual({ content: { names: ['MODE', 'MY_TOKEN', 'PATH'] } });
      expect(await call(s, 'env_get', { name: 'MY_TOKEN' })).toEqual({
        content: 'stdio-secret-value-1',
      });
      expect(await call(s, 'env_get', { name: 'PATH' })).toEqual({ content: process.env.PATH });
    } finally {
      delete process.env.WARDEN_MCP_TEST_PARENT_ONLY;
    }
  });

  it('fails with the resolver error (SECRET_MISSING) and starts nothing when a secret is missing', async () => {
    const s = stdio({ env: { MY_TOKEN: { secret: 'NOT_SET' } } });
    const error = await rejection(s.list());
    expect(error.code).toBe('SECRET_MISSING');
    expect(error.message).toBe('the secret NOT_SET is not set');
    expect(s.pid).toBeNull();
  });

  it('restarts a crashed server on the next call', async () => {
    const s = stdio();
    expect(await call(s, 'echo', { text: 'one' })).toEqual({ content: 'one' });
    const first = s.pid!;
    expect(alive(first)).toBe(true);
    process.kill(first, 'SIGKILL');
    await waitFor(() => !alive(first) && s.pid === null, 10_000, 'the server to die');
    expect(await call(s, 'echo', { text: 'two' })).toEqual({ content: 'two' });
    expect(s.pid).not.toBeNull();
    expect(s.pid).not.toBe(first);
  });

  it('fails a call cut short by a crash with TOOL_ERROR, then restarts on the next call', async () => {
    const s = stdio();
    const dir = tempDir();
    const pending = call(s, 'slow', { ms: 60_000, dir });
    await waitFor(() => existsSync(join(dir, 'slow-started')), 10_000, 'the slow call to start');
    process.kill(s.pid!, 'SIGKILL');
    const error = await rejection(pending);
    expect(error.code).toBe('TOOL_ERROR');
    expect(error.message).toMatch(
      /^MCP server 't' exited \(signal SIGKILL\) during slow; it may or may not have taken effect, and the server is restarted on the next call; its stderr ends: test server: ready \(pid \d+\)$/,
    );
    expect(await call(s, 'echo', { text: 'back' })).toEqual({ content: 'back' });
  });

  it('close() kills the server, is idempotent, and later calls fail', async () => {
    const s = stdio();
    const echo = await tool(s, 'mcp.t.echo');
    const pid = s.pid!;
    expect(alive(pid)).toBe(true);
    await s.close();
    expect(alive(pid)).toBe(false);
    await s.close();
    const error = await rejection(echo.execute({ text: 'x' }, run()));
    expect(error.code).toBe('INVALID_STATE');
    expect((await rejection(s.list())).code).toBe('INVALID_STATE');
  });

  it('close() also ends what the server started (its whole process group)', async () => {
    const dir = tempDir();
    // A helper that ignores stdin (so it would outlive the server), then the server itself.
    const script = `sleep 600 </dev/null >/dev/null 2>&1 & echo $! > "${dir}/bg.pid"; exec "${process.execPath}" "${SERVER}"`;
    const s = source({ name: 'wrapped', command: '/bin/sh', args: ['-c', script] });
    expect(await call(s, 'echo', { text: 'up' })).toEqual({ content: 'up' });
    const helper = Number(readFileSync(join(dir, 'bg.pid'), 'utf8'));
    expect(alive(helper)).toBe(true);
    await s.close();
    await waitFor(() => !alive(helper), 5_000, 'the helper process to end');
  });

  it('explains start-up failures: missing command, early exit (stderr, secrets masked), no handshake', async () => {
    const missing = await rejection(
      source({ name: 'nope', command: 'warden-no-such-mcp-server' }).list(),
    );
    expect(missing.code).toBe('TOOL_ERROR');
    expect(missing.message).toBe(
      "MCP server 'nope' could not be started (spawn warden-no-such-mcp-server ENOENT): check that its command is installed and on PATH, and its cwd exists",
    );

    const early = await rejection(
      stdio({ env: { MCP_TEST_EXIT_AT_START: '3', MCP_TEST_SAY: { secret: 'LOUD' } } }).list(),
    );
    expect(early.code).toBe('TOOL_ERROR');
    expect(early.message).toBe(
      "MCP server 't' exited (code 3) before completing the MCP handshake: check its command, args, cwd and env (it sees only PATH and its configured env); its stderr ends: test server: refusing to start (exit 3) [secret]",
    );
    expect(early.details).toMatchObject({ server: 't', exit_code: 3 });

    const mute = source({
      name: 'mute',
      command: process.execPath,
      args: ['-e', 'setInterval(() => {}, 1000)'],
      startup_timeout: 300,
    });
    const silent = await rejection(mute.list());
    expect(silent.code).toBe('TOOL_ERROR');
    expect(silent.message).toBe(
      "MCP server 'mute' did not complete the MCP handshake within 300 ms: check that its command starts an MCP server on stdio, or raise startup_timeout",
    );
    expect(mute.pid).toBeNull();
  });
});

describe('MCP over streamable HTTP', () => {
  let server: McpHttpTestServer;
  beforeAll(async () => {
    server = await startMcpHttpServer();
    SECRETS.HTTP_AUTH = `Bearer ${server.token}`;
  });
  afterAll(async () => {
    await server.close();
  });

  const http = (headers: Record<string, unknown> = { Authorization: { secret: 'HTTP_AUTH' } }) =>
    source({ name: 'remote', url: server.url, headers });

  it('lists and calls tools, sending the secret header', async () => {
    const s = http();
    const tools = await s.list();
    expect(tools.map((t) => t.name).sort()).toEqual(TOOL_NAMES.map((n) => `mcp.remote.${n}`));
    expect(tools.find((t) => t.name === 'mcp.remote.add')!.effect).toBe('read');
    expect(s.pid).toBeNull();
    expect(await call(s, 'echo', { text: 'over http' })).toEqual({ content: 'over http' });
    expect(await call(s, 'add', { a: 20, b: 22 })).toEqual({ content: { sum: 42 } });
    expect(await call(s, 'fail')).toEqual({ content: 'it failed on purpose', is_error: true });
  });

  it('cancels and times out HTTP calls like stdio ones', async () => {
    const s = http();
    const dir = tempDir();
    const controller = new AbortController();
    const slow = await tool(s, 'mcp.remote.slow');
    const pending = slow.execute({ ms: 60_000, dir }, run(controller.signal));
    await waitFor(() => existsSync(join(dir, 'slow-started')), 10_000, 'the slow call to start');
    controller.abort();
    expect((await rejection(pending)).code).toBe('CANCELED');
    await waitFor(() => existsSync(join(dir, 'slow-cancelled')), 10_000, 'the server to cancel');

    const quick = source({
      name: 'quick',
      url: server.url,
      headers: { Authorization: { secret: 'HTTP_AUTH' } },
      timeout: 1500,
    });
    const error = await rejection(call(quick, 'slow', { ms: 30_000 }));
    expect(error.code).toBe('TOOL_ERROR');
    expect(error.message).toBe(
      "MCP server 'quick' did not answer slow within 1500 ms: check the server, or raise its timeout",
    );
  });

  it('refused credentials are a TOOL_ERROR naming the server and what to check, without the secret', async () => {
    SECRETS.WRONG_AUTH = 'Bearer wrong-token-value';
    const before = server.unauthorized();
    const error = await rejection(http({ Authorization: { secret: 'WRONG_AUTH' } }).list());
    expect(server.unauthorized()).toBeGreaterThan(before);
    expect(error.code).toBe('TOOL_ERROR');
    expect(error.message).toMatch(
      new RegExp(
        `^MCP server 'remote' at ${server.url} could not be reached \\(HTTP 401: .*unauthorized.*\\): check the url, that the server is running, and its headers \\(HTTP 401/403 mean the credentials were refused\\)$`,
      ),
    );
    expect(error.message).not.toContain('wrong-token-value');
  });

  it('a missing secret in headers fails with SECRET_MISSING', async () => {
    const error = await rejection(http({ Authorization: { secret: 'NOT_SET' } }).list());
    expect(error.code).toBe('SECRET_MISSING');
  });

  it('an unreachable server is a TOOL_ERROR', async () => {
    const gone = await startMcpHttpServer();
    await gone.close();
    const error = await rejection(source({ name: 'gone', url: gone.url }).list());
    expect(error.code).toBe('TOOL_ERROR');
    expect(error.message).toMatch(
      /^MCP server 'gone' at http:\/\/127\.0\.0\.1:\d+\/mcp could not be reached/,
    );
  });

  it('starts a new session when the server forgot the old one (restart, expiry)', async () => {
    const s = http();
    expect(await call(s, 'echo', { text: 'a' })).toEqual({ content: 'a' });
    await server.dropSessions();
    expect(server.sessions()).toBe(0);
    expect(await call(s, 'echo', { text: 'b' })).toEqual({ content: 'b' });
    expect(server.sessions()).toBe(1);
  });
});
