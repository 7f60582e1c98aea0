/**
 * A CLI people like: help with examples and the global options for every command, shell
 * completion generated from the command tree, and `warden watch` to follow a run from another
 * terminal (including a run whose worker died).
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import type { Command } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';

import { buildProgram } from '../src/cli/program.ts';
import { buildWorkflow } from '../src/core/index.ts';
import { initHomeWithKernel, runCli, spawnCli } from './helpers/cli.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

afterAll(removeTempDirs);

/** Every runnable command path: `run`, `ledger verify`, … */
function commandPaths(command: Command, prefix: string[] = []): string[][] {
  return command.commands.flatMap((c) => {
    const path = [...prefix, c.name()];
    return c.commands.length ? commandPaths(c, path) : [path];
  });
}

const paths = commandPaths(buildProgram(() => {}));

describe('help', () => {
  it.each(paths.map((p) => [p.join(' '), p]))(
    '`warden %s --help` shows the global options and examples',
    async (_, path) => {
      const help = await runCli([...path, '--help'], { home: tempDir() });
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('Global Options:');
      expect(help.stdout).toContain('--home <dir>');
      expect(help.stdout).toMatch(/Examples:\n {2}\$ warden /);
    },
  );
});

describe('completion', () => {
  function complete(script: string, words: string[]): string[] {
    const file = join(tempDir(), 'c.bash');
    writeFileSync(file, script);
    const line = words.map((w) => `'${w}'`).join(' ');
    const result = spawnSync(
      'bash',
      [
        '-c',
        `source '${file}'; COMP_WORDS=(${line}); COMP_CWORD=${words.length - 1}; _warden; printf '%s\\n' "\${COMPREPLY[@]}"`,
      ],
      { encoding: 'utf8' },
    );
    expect(result.status, result.stderr).toBe(0);
    return result.stdout.split('\n').filter(Boolean);
  }

  it('bash: commands, their options, subcommands, and files for a workflow', async () => {
    const script = (await runCli(['completion', 'bash'], { home: tempDir() })).stdout;
    expect(complete(script, ['warden', 'r'])).toEqual(['run', 'resume', 'restore']);
    expect(complete(script, ['warden', 'w'])).toEqual(['watch']);
    expect(complete(script, ['warden', '--home', '/x', 'run', '--in'])).toEqual([
      '--input',
      '--interactive',
    ]);
    expect(complete(script, ['warden', 'ledger', ''])).toContain('verify');
    expect(complete(script, ['warden', 'run', 'examples/rev'])).toEqual([
      'examples/review-loop.yaml',
    ]);
    // Every command completes.
    const all = complete(script, ['warden', '']);
    for (const path of paths) expect(all).toContain(path[0]);
  });

  it('zsh and fish scripts name every command; another shell is refused', async () => {
    const home = tempDir();
    const zsh = (await runCli(['completion', 'zsh'], { home })).stdout;
    expect(zsh.startsWith('#compdef warden\n')).toBe(true);
    expect(zsh).toContain('bashcompinit');
    const fish = (await runCli(['completion', 'fish'], { home })).stdout;
    for (const path of paths) expect(fish).toContain(`-a ${path.at(-1)!} -d `);
    expect(fish).toContain("-n '__fish_seen_subcommand_from run' -l input -r");
    const other = await runCli(['completion', 'tcsh'], { home });
    expect(other.code).toBe(2);
    expect(other.stderr).toContain("unknown shell 'tcsh': use one of bash, zsh, fish");
  });
});

describe('warden watch', () => {
  it('follows a run another process drives, shows what it waits for, and ends with it', async () => {
    const home = tempDir();
    const { store, kernel, close } = await initHomeWithKernel(home);
    try {
      const run = await kernel.startRun({
        workflow: buildWorkflow({
          name: 'watched',
          stages: [
            {
              name: 'ask',
              interrupt: { kind: 'confirmation', prompt: 'go on?' },
              default_next: 'after',
            },
            { name: 'after', agent: { kind: 'noop' } },
          ],
        }),
      });
      // Nobody runs steps yet: the run waits for the answer.
      const watcher = spawnCli(['watch', run.pid], { home, env: { WARDEN_COMMAND: 'warden' } });
      let stdout = '';
      let answered = false;
      watcher.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (!answered && stdout.includes('waiting for a person')) {
          answered = true;
          void (async () => {
            const [ask] = await store.listInterrupts({ processId: run.pid, status: 'pending' });
            await kernel.resolveInterrupt(ask!.id, { approved: true });
            // A resume in another process runs the rest; watch shows it.
            await runCli(['resume', run.pid], { home });
          })();
        }
      });
      const code = await new Promise<number | null>((resolve) => watcher.on('close', resolve));
      expect(code, stdout).toBe(0);
      expect(stdout).toMatch(/confirmation: go on\?/);
      expect(stdout).toMatch(/approve with: warden --home \S+ approve int_\w+/);
      expect(stdout).toMatch(/✓ after/);
      expect(stdout).toMatch(/■ completed/);
    } finally {
      await close();
    }
  });

  it('says when the worker running the step died, and how to take the run over', async () => {
    const home = tempDir();
    const { store, kernel, close } = await initHomeWithKernel(home);
    try {
      const run = await kernel.startRun({
        workflow: buildWorkflow({
          name: 'orphan',
          stages: [{ name: 'a', agent: { kind: 'noop' } }],
        }),
      });
      const [claim] = await store.claimTasks({
        lanes: [kernel.agentLane],
        kinds: ['agent_step'],
        workerId: 'gone-host/1/dead',
        limit: 1,
        leaseMs: 1,
        now: Date.now(),
      });
      await kernel.orchestrator.beginStep(claim!);
      await new Promise((resolve) => setTimeout(resolve, 10));
      const ps = await runCli(['ps'], { home });
      expect(ps.stdout).toMatch(/running \(stalled\)/);
      const watcher = spawnCli(['watch', run.pid], { home, env: { WARDEN_COMMAND: 'warden' } });
      let stdout = '';
      let sent = false;
      watcher.stdout!.on('data', (d: Buffer) => {
        stdout += d.toString();
        if (!sent && stdout.includes('take it over with')) {
          sent = true;
          watcher.kill('SIGINT');
        }
      });
      const code = await new Promise<number | null>((resolve) => watcher.on('close', resolve));
      expect(stdout).toMatch(
        /! stalled: the worker holding its step \(gone-host\/1\/dead\) stopped renewing its lease \d+ s ago; take it over with: warden --home \S+ resume p_\w+/,
      );
      expect(code).toBe(130);
      expect(stdout).toMatch(/stopped watching; p_\w+ is running/);
    } finally {
      await close();
    }
  });
});
