/** The `warden` CLI end to end, in child processes, on a real SQLite file. */
import { afterAll, describe, expect, it } from 'vitest';

import { json, runCli } from './helpers/cli.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

interface RunJson {
  pid: string;
  state: string;
  terminal_reason: string | null;
  usage: { llm_calls: number; agent_hops: number; iterations: number };
  outputs: Record<string, unknown>;
  pending_interrupts: Array<{ id: string; kind: string }>;
}

describe('warden CLI', () => {
  afterAll(removeTempDirs);

  it('init creates the home with a 0600 token and is idempotent', async () => {
    const home = tempDir();
    const first = json<{ created: string[]; token_file: string }>(
      await runCli(['init', '--json'], { home }),
    );
    expect(first.created).toHaveLength(3);
    const { statSync, readFileSync } = await import('node:fs');
    expect(statSync(first.token_file).mode & 0o777).toBe(0o600);
    const token = readFileSync(first.token_file, 'utf8');
    const second = json<{ created: string[] }>(await runCli(['init', '--json'], { home }));
    expect(second.created).toEqual([]);
    expect(readFileSync(first.token_file, 'utf8')).toBe(token);
  });

  it('runs the main example, asking at the terminal for the sign-off', async () => {
    const home = tempDir();
    const result = await runCli(
      ['run', 'examples/review-loop.yaml', '--input', '{"topic":"x"}', '--interactive'],
      { home, input: 'y\n' },
    );
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('▸ draft');
    expect(result.stdout).toContain('approve? [y/n]');
    expect(result.stdout).toContain('■ completed');
    const [run] = json<RunJson[]>(await runCli(['ps', '--json'], { home }));
    expect(run!.terminal_reason).toBe('completed');
    expect(run!.outputs.publish).toEqual({ published: true });
    // Loop: three drafts, three reviews; hops counted once per step (7 steps incl. the gate).
    expect(run!.usage.llm_calls).toBe(6);
    expect(run!.usage.agent_hops).toBe(8);
    expect((await runCli(['ledger', 'verify'], { home })).code).toBe(0);
  });

  it('without a terminal leaves the run waiting, then approve + resume finishes it', async () => {
    const home = tempDir();
    const waiting = await runCli(
      ['run', 'examples/review-loop.yaml', '--no-interactive', '--json'],
      { home },
    );
    expect(waiting.code).toBe(4);
    const run = json<RunJson>(waiting);
    expect(run.state).toBe('waiting');
    expect(run.pending_interrupts).toHaveLength(1);
    const id = run.pending_interrupts[0]!.id;

    const listed = json<Array<{ id: string; status: string }>>(
      await runCli(['interrupts', '--json'], { home }),
    );
    expect(listed.map((i) => i.id)).toEqual([id]);

    const approved = await runCli(['approve', id, '--json'], { home });
    expect(approved.code).toBe(0);
    expect(json<{ process: { state: string } }>(approved).process.state).toBe('ready');
    const again = await runCli(['approve', id], { home });
    expect(again.code).toBe(8);
    expect(again.stderr).toContain('INVALID_STATE');

    const resumed = await runCli(['resume', run.pid, '--json'], { home });
    expect(resumed.code).toBe(0);
    expect(json<RunJson>(resumed).terminal_reason).toBe('completed');
  });

  it('a denied sign-off ends the run without publishing', async () => {
    const home = tempDir();
    const result = await runCli(['run', 'examples/review-loop.yaml', '--interactive', '--json'], {
      home,
      input: 'n\n',
    });
    expect(result.code).toBe(0);
    const run = json<RunJson>(result);
    expect(run.terminal_reason).toBe('completed');
    expect(run.outputs.publish).toBeUndefined();
    expect(run.outputs.sign_off).toEqual({ approved: false });
  });

  it('the budget example ends with max_llm_calls_exceeded and exit code 3', async () => {
    const home = tempDir();
    const result = await runCli(['run', 'examples/budget-exhausted.yaml', '--json'], { home });
    expect(result.code).toBe(3);
    const run = json<RunJson>(result);
    expect(run.terminal_reason).toBe('max_llm_calls_exceeded');
    expect(run.usage.llm_calls).toBe(5);
  });

  it('inspect, events and cancel', async () => {
    const home = tempDir();
    const run = json<RunJson>(
      await runCli(['run', 'examples/review-loop.yaml', '--no-interactive', '--json'], { home }),
    );
    const inspected = json<{
      envelope: { history: unknown[] };
      tasks: unknown[];
      interrupts: unknown[];
    }>(await runCli(['inspect', run.pid, '--json'], { home }));
    expect(inspected.envelope.history.length).toBeGreaterThan(0);
    expect(inspected.interrupts).toHaveLength(1);
    const events = await runCli(['events', '--process', run.pid, '--json'], { home });
    const lines = events.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { seq: number; type: string });
    expect(lines[0]!.type).toBe('process.created');
    expect(lines.every((e, i) => i === 0 || e.seq > lines[i - 1]!.seq)).toBe(true);

    const cancelled = await runCli(['cancel', run.pid, '--json'], { home });
    expect(json<{ state: string; terminal_reason: string }>(cancelled)).toMatchObject({
      state: 'terminated',
      terminal_reason: 'user_cancelled',
    });
    const interrupts = json<Array<{ status: string }>>(
      await runCli(['interrupts', '--all', '--json'], { home }),
    );
    expect(interrupts.map((i) => i.status)).toEqual(['cancelled']);
    const twice = json<{ changed: boolean }>(await runCli(['cancel', run.pid, '--json'], { home }));
    expect(twice.changed).toBe(false);
  });

  it('doctor reports a healthy installation', async () => {
    const home = tempDir();
    await runCli(['init'], { home });
    const result = await runCli(['doctor', '--json'], { home });
    expect(result.code).toBe(0);
    const report = json<{ ok: boolean; checks: Array<{ name: string; ok: boolean }> }>(result);
    expect(report.ok).toBe(true);
    expect(report.checks.map((c) => c.name)).toEqual(
      expect.arrayContaining(['node', 'config', 'auth token', 'database', 'ledger']),
    );
  });
});
