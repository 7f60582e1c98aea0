/**
 * The commit that finishes a step takes the run's next step for the same worker (task.handoff)
 * only when no other due step waits ahead of it: a run never overtakes another — unless the
 * worker prefers that run (`preferRuns`, what `warden run` passes for its own run).
 */
import { join } from 'node:path';

import { afterAll, describe, expect, it } from 'vitest';

import { buildWorkflow } from '../src/core/index.ts';
import { Kernel, verifyLedger } from '../src/kernel/index.ts';
import { AgentRegistry, Worker } from '../src/runtime/index.ts';
import { openSqliteStore } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { sleep } from './helpers/wait.ts';

afterAll(removeTempDirs);

const workflow = buildWorkflow(
  {
    name: 'two-steps',
    stages: [
      { name: 'one', agent: { kind: 'typescript', name: 'record' }, default_next: 'two' },
      { name: 'two', agent: { kind: 'typescript', name: 'record' } },
    ],
  },
  'two-steps',
  { agents: new Set(['record']), routingFunctions: new Set() },
);

async function runAll(
  starts: number,
  prefer: (pids: readonly string[]) => ReadonlySet<string> = () => new Set(),
): Promise<{ order: string[]; handoffs: number }> {
  const store = await openSqliteStore({ file: join(tempDir(), 'h.db') });
  const kernel = new Kernel({ store });
  const order: string[] = [];
  const agents = new AgentRegistry().register('record', async (ctx) => {
    order.push(`${ctx.pid}:${ctx.stage.name}`);
    await sleep(5);
    return { output: {} };
  });
  const pids: string[] = [];
  for (let i = 0; i < starts; i++) pids.push((await kernel.startRun({ workflow })).pid);
  const worker = new Worker({ kernel, agents, concurrency: 1, preferRuns: prefer(pids) });
  await worker.start();
  try {
    for (let i = 0; i < 400; i++) {
      const runs = await Promise.all(pids.map((pid) => kernel.getProcess(pid)));
      if (runs.every((p) => p.state === 'terminated')) break;
      await sleep(10);
    }
    const runs = await Promise.all(pids.map((pid) => kernel.getProcess(pid)));
    expect(runs.map((p) => p.terminal_reason)).toEqual(pids.map(() => 'completed'));
    expect((await verifyLedger(store)).ok).toBe(true);
    let handoffs = 0;
    for (const pid of pids) {
      const session = (await kernel.getProcess(pid)).session_id;
      const events = await store.readEvents({ sessionId: session, limit: 1000 });
      handoffs += events.filter(
        (e) => e.type === 'task.claimed' && (e.data as { handoff?: boolean }).handoff,
      ).length;
    }
    return {
      order: order.map((s) => s.replace(/^p_\w+/, (pid) => `r${pids.indexOf(pid)}`)),
      handoffs,
    };
  } finally {
    await worker.stop();
    kernel.close();
    await store.close();
  }
}

describe('step handoff', () => {
  it('a lone run takes its next step in the finishing commit', async () => {
    const { order, handoffs } = await runAll(1);
    expect(order).toEqual(['r0:one', 'r0:two']);
    expect(handoffs).toBe(1);
  });

  it('a run whose next step would overtake a waiting run goes through the queue instead', async () => {
    // One slot, two runs queued: r0's second step must not jump ahead of r1's first.
    const { order, handoffs } = await runAll(2);
    expect(order).toEqual(['r0:one', 'r1:one', 'r0:two', 'r1:two']);
    // r0:two waited behind r1:one (refused); r1:two was handed off only if nothing was waiting.
    expect(handoffs).toBeLessThanOrEqual(1);
  });

  it('a worker preferring its own run keeps it: its next step overtakes the waiting run', async () => {
    // What `warden run` does for the run it started: the same two runs, one slot.
    const { order, handoffs } = await runAll(2, (pids) => new Set([pids[0]!]));
    expect(order).toEqual(['r0:one', 'r0:two', 'r1:one', 'r1:two']);
    expect(handoffs).toBeGreaterThanOrEqual(1);
  });
});
