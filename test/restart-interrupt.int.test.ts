/**
 * Interrupts survive restarts (issue 2): one raised before a kill is still pending afterwards,
 * and resolving it resumes the run; expiry is applied after a restart too.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { json, runCli, spawnCli } from './helpers/cli.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

interface InterruptJson {
  id: string;
  kind: string;
  status: string;
  process_id: string;
}

async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met before the deadline');
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('interrupts across restarts', () => {
  afterAll(removeTempDirs);

  it('a pending interrupt outlives a SIGKILL and resolving it resumes the run', async () => {
    const home = tempDir();
    // --interactive with an open stdin: the run waits at the prompt until we kill it.
    const child = spawnCli(['run', 'examples/review-loop.yaml', '--interactive'], { home });
    child.stdout!.resume();
    child.stderr!.resume();
    const pending = await waitFor(async () => {
      const list = json<InterruptJson[]>(await runCli(['interrupts', '--json'], { home }));
      return list.length > 0 ? list : undefined;
    });
    const closed = new Promise((resolve) => child.on('close', resolve));
    child.kill('SIGKILL');
    await closed;

    const after = json<InterruptJson[]>(await runCli(['interrupts', '--json'], { home }));
    expect(after).toEqual(pending);
    expect(after[0]!.status).toBe('pending');

    expect((await runCli(['approve', after[0]!.id], { home })).code).toBe(0);
    const resumed = await runCli(['resume', after[0]!.process_id, '--json'], { home });
    expect(resumed.code).toBe(0);
    const run = json<{ terminal_reason: string; outputs: Record<string, unknown> }>(resumed);
    expect(run.terminal_reason).toBe('completed');
    expect(run.outputs.publish).toEqual({ published: true });
    expect((await runCli(['ledger', 'verify'], { home })).code).toBe(0);
  });

  it('an interrupt that expires while nothing runs is expired on the next start', async () => {
    const home = tempDir();
    const file = join(home, 'ttl.yaml');
    writeFileSync(
      file,
      [
        'name: ttl',
        'stages:',
        '  - name: ask',
        '    interrupt: { kind: confirmation, prompt: "ok?", ttl: 300ms }',
        '    routing: [{ when: { field: interrupt.approved, eq: true }, next: yes }]',
        '    default_next: no',
        '  - name: "yes"',
        '    agent: { kind: noop, output: { said: yes } }',
        '  - name: "no"',
        '    agent: { kind: noop, output: { said: no } }',
      ].join('\n'),
    );
    const first = await runCli(['run', file, '--no-interactive', '--json'], { home });
    expect(first.code).toBe(4);
    const { pid } = json<{ pid: string }>(first);
    await new Promise((r) => setTimeout(r, 400));
    const resumed = await runCli(['resume', pid, '--json'], { home });
    expect(resumed.code).toBe(0);
    const run = json<{ terminal_reason: string; outputs: Record<string, unknown> }>(resumed);
    expect(run.terminal_reason).toBe('completed');
    expect(run.outputs.no).toEqual({ said: 'no' });
    expect(run.outputs.ask).toEqual({ approved: false, expired: true });
    const all = json<InterruptJson[]>(await runCli(['interrupts', '--all', '--json'], { home }));
    expect(all.map((i) => i.status)).toEqual(['expired']);
  });
});
