/**
 * Stopping and continuing, as a user meets it (issue: the first ten minutes, problem 11):
 * - Ctrl-C on `warden run` prints how to continue, exits 130, and hands the running step back
 *   without spending an attempt; the printed command continues the run to the end;
 * - `warden resume` without a pid reports the runs its own recovery ended, and exits non-zero;
 * - `inspect` says when a run's step history was cut, and where every step is.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { buildWorkflow } from '../src/core/index.ts';
import { Kernel } from '../src/kernel/index.ts';
import { openSqliteStore } from '../src/store/index.ts';
import { json, runCli, spawnCli } from './helpers/cli.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

afterAll(removeTempDirs);

function writeWorkflow(dir: string, name: string, yaml: string): string {
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  return file;
}

describe('Ctrl-C on warden run', () => {
  it('prints how to continue, exits 130, and the printed command finishes the run', async () => {
    const home = tempDir();
    const file = writeWorkflow(
      home,
      'slow',
      [
        'name: slow',
        'stages:',
        '  - { name: slow, agent: { kind: noop, delay: 3s }, default_next: after }',
        '  - { name: after, agent: { kind: noop } }',
      ].join('\n'),
    );
    const child = spawnCli(['run', file, '--no-interactive'], {
      home,
      env: { WARDEN_COMMAND: 'warden' },
    });
    let stdout = '';
    let sent = false;
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!sent && stdout.includes('▸ slow')) {
        sent = true;
        child.kill('SIGINT');
      }
    });
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve) =>
      child.on('close', (c, s) => resolve([c, s])),
    );
    expect(signal, stdout).toBeNull(); // handled, not killed by the signal
    expect(code, stdout).toBe(130);
    expect(stdout).toMatch(/■ interrupted \(SIGINT\): nothing committed is lost/);
    const hint = /continue it with: warden (--home \S+ resume (p_\w+))/.exec(stdout);
    expect(hint, stdout).not.toBeNull();

    const resumed = await runCli(hint![1]!.split(' '), { home });
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(0);
    expect(resumed.stdout).toMatch(/✓ slow/);
    expect(resumed.stdout).toMatch(/■ completed/);
    // The interrupted step was handed back, not failed: it ran again as attempt 1.
    const inspected = json<{ tasks: { stage: string; attempts: { outcome: string }[] }[] }>(
      await runCli(['inspect', hint![2]!, '--json'], { home }),
    );
    const slow = inspected.tasks.find((t) => t.stage === 'slow')!;
    expect(slow.attempts.map((a) => a.outcome)).toEqual(['succeeded']);
  });
});

describe('warden resume reports what recovery did', () => {
  it('a run that recovery ended (its step out of attempts) is reported, and resume exits 3', async () => {
    const home = tempDir();
    expect((await runCli(['init'], { home })).code).toBe(0);
    const store = await openSqliteStore({ file: join(home, 'warden.db') });
    const kernel = new Kernel({ store });
    let pid: string;
    try {
      const run = await kernel.startRun({
        workflow: buildWorkflow({
          name: 'fragile',
          stages: [{ name: 'once', agent: { kind: 'noop' }, retry: { max_attempts: 1 } }],
        }),
      });
      pid = run.pid;
      // A worker claims the only attempt and dies holding it: its lease expires.
      const [claim] = await store.claimTasks({
        lanes: [kernel.agentLane],
        kinds: ['agent_step'],
        workerId: 'elsewhere/1/gone',
        limit: 1,
        leaseMs: 1,
        now: Date.now(),
      });
      expect(await kernel.orchestrator.beginStep(claim!)).not.toBeNull();
    } finally {
      kernel.close();
      await store.close();
    }
    await new Promise((resolve) => setTimeout(resolve, 20));

    const resumed = await runCli(['resume'], { home });
    expect(resumed.code, resumed.stdout + resumed.stderr).toBe(3);
    expect(resumed.stdout).toMatch(/resuming 1 run \(reclaimed 1 lease/);
    expect(resumed.stdout).toMatch(/■ tool_failed_fatally/);
    const run = json<{ terminal_reason: string }>(
      await runCli(['inspect', pid!, '--json'], { home }),
    );
    expect(run.terminal_reason).toBe('tool_failed_fatally');
  });
});

describe('inspect and a long history', () => {
  it('says the history was cut, by how much, and where every step is', async () => {
    const home = tempDir();
    const file = writeWorkflow(
      home,
      'loop',
      [
        'name: loop',
        'bounds: { max_agent_hops: 400, max_iterations: 400 }',
        'stages:',
        '  - { name: tick, agent: { kind: noop }, default_next: tick, max_visits: 230 }',
      ].join('\n'),
    );
    const ran = await runCli(['run', file, '--no-interactive', '--json'], { home });
    expect(ran.code, ran.stderr).toBe(3); // ended by max_visits
    const { pid } = json<{ pid: string }>(ran);
    const inspected = json<{
      history_limit: number;
      history_truncated: boolean;
      envelope: { step: number; history: unknown[]; history_dropped: number };
      tasks: unknown[];
    }>(await runCli(['inspect', pid, '--json'], { home }));
    expect(inspected.history_limit).toBe(200);
    expect(inspected.history_truncated).toBe(true);
    expect(inspected.envelope.history).toHaveLength(200);
    expect(inspected.envelope.step).toBe(230);
    expect(inspected.envelope.history_dropped).toBe(30);
    expect(inspected.tasks).toHaveLength(230);

    const human = await runCli(['inspect', pid], { home, env: { WARDEN_COMMAND: 'warden' } });
    expect(human.stdout).toMatch(
      /… 30 older entries not kept here; every step: warden --home \S+ events --session main/,
    );
  });
});
