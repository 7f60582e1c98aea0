/**
 * `warden/testing`: a kernel on a temporary SQLite file, a manual clock and a helper that
 * waits for a run to settle — for testing workflows and agents without a network.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { z } from 'zod';

import { checkParams, type Clock, ManualClock, WardenError } from '../core/index.ts';
import { Kernel, type KernelOptions } from '../kernel/index.ts';
import { AgentRegistry, Worker } from '../runtime/index.ts';
import { agentRegistryParam } from '../runtime/params.ts';
import { openSqliteStore, type ProcessRecord, type Store } from '../store/index.ts';

export { ManualClock };

/** `agents` here; every other option is the Kernel's, checked by `new Kernel`. */
const testKernelArgs = z.object({
  options: z.looseObject(
    {
      agents: agentRegistryParam.optional(),
    },
    { error: 'expected an options object { agents?, clock?, routingFunctions?, … }' },
  ),
});

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
  checkParams('createTestKernel', testKernelArgs, { options });
  const { agents: given, ...kernelOptions } = options;
  const dir = mkdtempSync(join(tmpdir(), 'warden-testing-'));
  const store = await openSqliteStore({
    file: join(dir, 'warden.db'),
    ...(options.clock ? { clock: options.clock } : {}),
  });
  let kernel: Kernel;
  try {
    kernel = new Kernel({ ...kernelOptions, store });
  } catch (error) {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const agents = given ?? new AgentRegistry();
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
          throw new WardenError(
            'TIMEOUT',
            `run ${pid} did not settle within ${timeoutMs} ms (state ${p.state})`,
            { details: { pid, state: p.state } },
          );
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
