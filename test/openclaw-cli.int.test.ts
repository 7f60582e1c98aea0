/**
 * The published `openclaw` CLI (npm `openclaw@2026.9.6`, installed by scripts/openclaw-cli.sh)
 * against a real `warden serve`: OpenClaw's own client, unchanged, is the judge of
 * compatibility (reference §9: what the CLI sends, reads and prints).
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from './helpers/cli.ts';
import { type GatewayDaemon, startGatewayDaemon } from './helpers/openclaw-gateway.ts';
import { tempDir } from './helpers/tmp.ts';

const run = promisify(execFile);
const REPO = join(import.meta.dirname, '..');

let gw: GatewayDaemon;
let bin: string;
let clientHome: string;

beforeAll(async () => {
  const installed = await run('bash', [join(REPO, 'scripts', 'openclaw-cli.sh')], {
    cwd: REPO,
    timeout: 600_000,
  });
  bin = installed.stdout.trim();
  clientHome = tempDir('openclaw-client-');
  gw = await startGatewayDaemon();
}, 660_000);

afterAll(async () => {
  await gw?.stop();
});

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
  readonly ms: number;
}

/** Runs `openclaw <args>` with a private state dir and home (never the user's ~/.openclaw). */
async function openclaw(
  args: readonly string[],
  timeoutMs = 60_000,
  env: Record<string, string> = {},
): Promise<CliResult> {
  const started = Date.now();
  try {
    const { stdout, stderr } = await run(bin, [...args], {
      timeout: timeoutMs,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: clientHome,
        OPENCLAW_STATE_DIR: join(clientHome, 'state'),
        NO_COLOR: '1',
        ...env,
      },
      maxBuffer: 16 * 1024 * 1024,
    });
    return { code: 0, stdout, stderr, ms: Date.now() - started };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
      ms: Date.now() - started,
    };
  }
}

function json<T = Record<string, unknown>>(result: CliResult): T {
  const text = result.stdout.trim();
  try {
    return JSON.parse(text.slice(text.indexOf('{'))) as T;
  } catch {
    throw new Error(`not JSON (exit ${result.code}): ${result.stdout}\n${result.stderr}`);
  }
}

const target = () => ['--url', gw.url, '--token', gw.token];

describe('the published openclaw CLI against warden serve', () => {
  it('gateway call health prints the payload and exits 0', async () => {
    const result = await openclaw(['gateway', 'call', 'health', '--json', ...target()]);
    expect(result.code, result.stderr).toBe(0);
    const payload = json<{ ok: boolean; ts: number }>(result);
    expect(payload.ok).toBe(true);
    expect(Number.isInteger(payload.ts)).toBe(true);
  });

  it('a wrong token ends in AUTH_TOKEN_MISMATCH, exit 1, without retrying', async () => {
    const result = await openclaw([
      'gateway',
      'call',
      'health',
      '--json',
      '--url',
      gw.url,
      '--token',
      'not-a-warden-token',
    ]);
    expect(result.code).toBe(1);
    const out = json<{ ok: boolean; error: { type: string; details?: { code?: string } } }>(result);
    expect(out.ok).toBe(false);
    expect(out.error.type).toBe('gateway_request_error');
    expect(out.error.details?.code).toBe('AUTH_TOKEN_MISMATCH');
    // "ends this way within about 1 s" (§9.3): no reconnect loop (generous for a loaded CI box).
    expect(result.ms).toBeLessThan(15_000);
  });

  it('least privilege: sessions.reset asks for admin, which a read/write token does not hold', async () => {
    const created = await runCli(
      ['--json', 'token', 'create', '--name', 'oc-rw', '--scopes', 'read,write'],
      { home: gw.home },
    );
    expect(created.code, created.stderr).toBe(0);
    const token = (JSON.parse(created.stdout) as { token: string }).token;
    const result = await openclaw([
      'gateway',
      'call',
      'sessions.reset',
      '--params',
      '{"key":"main"}',
      '--json',
      '--url',
      gw.url,
      '--token',
      token,
    ]);
    expect(result.code).toBe(1);
    const out = json<{
      error: { code: string; details?: { code?: string; missingScope?: string } };
    }>(result);
    expect(out.error.code).toBe('FORBIDDEN');
    expect(out.error.details).toMatchObject({
      code: 'MISSING_SCOPE',
      missingScope: 'operator.admin',
    });
    // The same token may read.
    const health = await openclaw([
      'gateway',
      'call',
      'health',
      '--json',
      '--url',
      gw.url,
      '--token',
      token,
    ]);
    expect(health.code, health.stderr).toBe(0);
  });

  it('gateway probe connects, calls health/status/system-presence/config.get and reports ok', async () => {
    const result = await openclaw(['gateway', 'probe', '--json', ...target()]);
    expect(result.code, result.stderr).toBe(0);
    const out = json<{
      ok: boolean;
      targets: Array<{ connect: { ok: boolean; rpcOk?: boolean }; server?: { connId?: string } }>;
    }>(result);
    expect(out.ok).toBe(true);
    expect(out.targets[0]?.connect.ok).toBe(true);
    expect(out.targets[0]?.connect.rpcOk).toBe(true);
  });

  it('openclaw agent runs a turn on Warden and prints the final reply; chat.history has it', async () => {
    const result = await openclaw(
      ['agent', '--session-key', 'cli-agent', '--message', 'hello from openclaw', '--json'],
      120_000,
      { OPENCLAW_GATEWAY_URL: gw.url, OPENCLAW_GATEWAY_TOKEN: gw.token },
    );
    // `agent` takes its target from the environment (no --url), like an installed CLI.
    expect(result.code, result.stderr).toBe(0);
    const final = json<{
      runId: string;
      status: string;
      result: { payloads: Array<{ text: string }> };
    }>(result);
    expect(final.status).toBe('ok');
    expect(final.result.payloads[0]?.text).toBe('[scripted] hello from openclaw');
    const history = await openclaw([
      'gateway',
      'call',
      'chat.history',
      '--params',
      '{"sessionKey":"cli-agent"}',
      '--json',
      ...target(),
    ]);
    expect(history.code, history.stderr).toBe(0);
    const messages = json<{ sessionKey: string; messages: Array<{ role: string; runId: string }> }>(
      history,
    );
    expect(messages.sessionKey).toBe('agent:main:cli-agent');
    expect(messages.messages.map((m) => m.role)).toEqual(['user', 'assistant']);
    expect(messages.messages[0]?.runId).toBe(final.runId);
  });

  it('gateway usage-cost reports zero-filled days with the turns counted', async () => {
    const result = await openclaw(['gateway', 'usage-cost', '--days', '2', '--json', ...target()]);
    expect(result.code, result.stderr).toBe(0);
    const out = json<{ days: number; daily: unknown[]; totals: { input: number } }>(result);
    expect(out.days).toBe(2);
    expect(out.daily).toHaveLength(2);
    expect(out.totals.input).toBeGreaterThan(0);
  });

  it('openclaw sessions delete pages sessions.list and deletes the session', async () => {
    const send = await openclaw([
      'gateway',
      'call',
      'chat.send',
      '--params',
      JSON.stringify({ sessionKey: 'to-delete', message: 'x', idempotencyKey: 'cli-del-1' }),
      '--json',
      ...target(),
    ]);
    expect(send.code, send.stderr).toBe(0);
    const key = 'agent:main:to-delete';
    const deadline = Date.now() + 30_000;
    for (;;) {
      const history = json<{ messages: unknown[] }>(
        await openclaw([
          'gateway',
          'call',
          'chat.history',
          '--params',
          JSON.stringify({ sessionKey: key }),
          '--json',
          ...target(),
        ]),
      );
      if (history.messages.length === 2 || Date.now() > deadline) break;
    }
    const result = await openclaw(['sessions', 'delete', key, '--yes', '--json'], 60_000, {
      OPENCLAW_GATEWAY_URL: gw.url,
      OPENCLAW_GATEWAY_TOKEN: gw.token,
    });
    expect(result.code, `${result.stdout}\n${result.stderr}`).toBe(0);
    const out = json<{ ok: boolean; results: Array<{ key: string; ok: boolean }> }>(result);
    expect(out.ok).toBe(true);
    expect(out.results).toEqual([expect.objectContaining({ key, ok: true })]);
    const list = json<{ sessions: Array<{ key: string }> }>(
      await openclaw([
        'gateway',
        'call',
        'sessions.list',
        '--params',
        '{"includeGlobal":true,"includeUnknown":true}',
        '--json',
        ...target(),
      ]),
    );
    expect(list.sessions.map((s) => s.key)).not.toContain(key);
  });
});
