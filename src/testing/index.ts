/**
 * `warden/testing`: a kernel on a temporary SQLite file, a manual clock and a helper that
 * waits for a run to settle — for testing workflows and agents without a network.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { type Clock, ManualClock } from '../core/index.ts';
import { Kernel, type KernelOptions } from '../kernel/index.ts';
import { AgentRegistry, Worker } from '../runtime/index.ts';
import { openSqliteStore, type ProcessRecord, type Store } from '../store/index.ts';

export { ManualClock };

export interface TestKernel {
  readonly kernel: Kernel;
  readonly store: Store;
  readonly worker: Worker;
  readonly agents: AgentRegistry;
  /** Waits until the run terminates or waits for a person; rejects after `timeoutMs`. */
  settle(pid: string, timeoutMs?: number): Promise<ProcessRecord>;
  close(): Promise<void>;
}

export async function createTestKernel(
  options: { clock?: Clock; agents?: AgentRegistry } & Omit<KernelOptions, 'store' | 'clock'> = {},
): Promise<TestKernel> {
  const dir = mkdtempSync(join(tmpdir(), 'warden-testing-'));
  const store = await openSqliteStore({
    file: join(dir, 'warden.db'),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  const kernel = new Kernel({ ...options, store });
  const agents = options.agents ?? new AgentRegistry();
  const worker = new Worker({ kernel, agents });
  await worker.start();
  return {
    kernel,
    store,
    worker,
    agents,
    async settle(pid, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const p = await kernel.getProcess(pid);
        if (p.state === 'terminated' || p.state === 'waiting') return p;
        if (Date.now() > deadline)
          throw new Error(`run ${pid} did not settle within ${timeoutMs} ms (state ${p.state})`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
    },
    async close() {
      await worker.stop({ abort: true });
      kernel.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
