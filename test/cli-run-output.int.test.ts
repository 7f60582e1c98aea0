/**
 * `warden run`/`resume` show every step of their run whichever process executes it: progress
 * comes from the run's events in the database, not from this process's worker. Here a worker
 * in the test process holds the run's step when `warden resume` starts, and takes each next step
 * in the commit that finishes the one before (handoff), so the command's own worker runs none of
 * them — its terminal must still show them all.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { buildWorkflow } from '../src/core/index.ts';
import type { Kernel } from '../src/kernel/index.ts';
import { AgentRegistry, Worker } from '../src/runtime/index.ts';
import type { Store } from '../src/store/index.ts';
import { initHomeWithKernel, spawnCli } from './helpers/cli.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { waitForProcess } from './helpers/wait.ts';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});
afterAll(removeTempDirs);

const workflow = buildWorkflow(
  {
    name: 'elsewhere',
    stages: [
      { name: 'first', agent: { kind: 'typescript', name: 'gate' }, default_next: 'second' },
      { name: 'second', agent: { kind: 'noop', delay: 300 }, default_next: 'third' },
      { name: 'third', agent: { kind: 'noop', output: { done: true } } },
    ],
  },
  'elsewhere',
  { agents: new Set(['gate']), routingFunctions: new Set() },
);

async function openHome(home: string): Promise<{ store: Store; kernel: Kernel }> {
  const { store, kernel, close } = await initHomeWithKernel(home);
  closers.push(close);
  return { store, kernel };
}

describe('warden run/resume output follows the run, not the worker', () => {
  it('resume shows every step that another process runs, then the summary', async () => {
    const home = tempDir();
    const { store, kernel } = await openHome(home);
    // The first step waits until `warden resume` is watching, so the rest happens in its view.
    let open = () => {};
    const opened = new Promise<void>((resolve) => (open = resolve));
    const agents = new AgentRegistry().register('gate', async () => {
      await opened;
      return { output: { gated: true } };
    });
    const elsewhere = new Worker({ kernel, concurrency: 1, agents });
    closers.push(() => elsewhere.stop());
    const run = await kernel.startRun({ workflow });
    await elsewhere.start();
    await waitForProcess(kernel, run.pid, (p) => p.state === 'running');

    const child = spawnCli(['resume', run.pid], { home });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (stdout.includes('resuming')) open();
    });
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    const resumed = { code, stdout };
    expect(resumed.code, resumed.stdout).toBe(0);
    const lines = resumed.stdout.split('\n');
    const at = (pattern: RegExp) => lines.findIndex((l) => pattern.test(l));
    // Every step after the drive began, in order, and the run's summary after them.
    const order = [/✓ first/, /▸ second/, /✓ second/, /▸ third/, /✓ third/, /■ completed/].map(at);
    expect(
      order.every((i) => i >= 0),
      resumed.stdout,
    ).toBe(true);
    expect([...order].sort((a, b) => a - b)).toEqual(order);
    // Each shown once.
    expect(lines.filter((l) => /▸ second/.test(l))).toHaveLength(1);

    // The command's own worker ran none of them: the test process's worker claimed every step.
    const claims = (await store.readEvents({ sessionId: run.session_id, limit: 1000 }))
      .filter((e) => e.type === 'task.claimed')
      .map((e) => (e.data as { worker_id: string }).worker_id);
    expect(claims).toHaveLength(3);
    expect(new Set(claims)).toEqual(new Set([elsewhere.id]));
  });

  it('run shows its run from the first step when another process takes it', async () => {
    const home = tempDir();
    const { kernel } = await openHome(home);
    // A busy worker elsewhere, ready to claim: whoever runs the steps, all of them show.
    const elsewhere = new Worker({ kernel, concurrency: 4, agents: new AgentRegistry() });
    closers.push(() => elsewhere.stop());
    await elsewhere.start();
    const file = join(home, 'four.yaml');
    writeFileSync(
      file,
      ['a', 'b', 'c', 'd']
        .map(
          (name, i, all) =>
            `  - { name: ${name}, agent: { kind: noop, delay: 50 }${all[i + 1] ? `, default_next: ${all[i + 1]}` : ''} }`,
        )
        .join('\n')
        .replace(/^/, 'name: four\nstages:\n'),
    );
    const child = spawnCli(['run', file, '--no-interactive'], { home });
    let stdout = '';
    child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(code, stdout).toBe(0);
    const shown = stdout.split('\n').filter((l) => /^[▸✓] /.test(l));
    expect(
      shown.map((l) => l.split(' ').slice(0, 2).join(' ')),
      stdout,
    ).toEqual(['a', 'b', 'c', 'd'].flatMap((name) => [`▸ ${name}`, `✓ ${name}`]));
    expect(stdout).toMatch(/■ completed/);
  });
});
