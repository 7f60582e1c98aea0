/**
 * `warden events --follow` is woken by commits of other processes (no polling), and keeps
 * printing new events after `--limit` bounded the replay (it used to ask the store for 0 rows).
 */
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { Kernel } from '../src/kernel/index.ts';
import { openSqliteStore } from '../src/store/index.ts';
import { runCli, spawnCli } from './helpers/cli.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

describe('warden events --follow', () => {
  afterAll(removeTempDirs);

  it('prints events committed by another process after --limit was reached', async () => {
    const home = tempDir();
    expect((await runCli(['init', '--json'], { home })).code).toBe(0);
    const store = await openSqliteStore({ file: join(home, 'warden.db') });
    const kernel = new Kernel({ store });
    const system = await kernel.sessions.ensure('main');
    const append = (n: number) =>
      store.commit([
        {
          op: 'event',
          event: { session_id: system.id, type: 'budget.granted', trace_id: 'tr_f', data: { n } },
        },
      ]);
    await append(1);
    await append(2);
    const child = spawnCli(['events', '--session', 'main', '--follow', '--limit', '1', '--json'], {
      home,
    });
    const lines: Array<{ seq: number; data: { n?: number } }> = [];
    let buffer = '';
    child.stdout!.on('data', (d: Buffer) => {
      buffer += d.toString();
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      for (const p of parts) if (p.trim()) lines.push(JSON.parse(p) as (typeof lines)[number]);
    });
    let stderr = '';
    child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const waitFor = async (n: number) => {
      const deadline = Date.now() + 10_000;
      while (!lines.some((l) => l.data?.n === n)) {
        if (Date.now() > deadline || child.exitCode !== null)
          throw new Error(`event ${n} never printed; stderr: ${stderr}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    try {
      await new Promise((r) => setTimeout(r, 300)); // the replay (limited to 1) is printed
      await append(3);
      await waitFor(3);
      await append(4);
      await waitFor(4);
      expect(stderr).toBe('');
    } finally {
      child.kill('SIGTERM');
      kernel.close();
      await store.close();
    }
  });
});
