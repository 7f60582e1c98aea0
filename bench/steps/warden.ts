/**
 * Warden's side of the steps benchmark: a workflow of STAGES `typescript` stages (one agent,
 * registered by name, run by a Worker), started with Kernel.startRun. Every step is claimed,
 * executed and settled through the store, so each is durable before the next is queued.
 */
import {
  AgentRegistry,
  buildWorkflow,
  type EventRecord,
  Kernel,
  openSqliteStore,
  Worker,
} from '../../src/index.ts';
import { type GraphSystem, type OpenOptions, STAGES } from './graph.ts';

/**
 * Retry backoff of every stage, ms. It only matters in the crash test: a step reclaimed from a
 * dead worker is requeued after the stage's retry backoff (default 1 s with full jitter, i.e. a
 * random 0–1 s), which would measure the configured delay instead of the recovery.
 */
const RETRY_BACKOFF_MS = 1;

/** startRun is rate-limited per user (600/min by default); the benchmark starts far more. */
const UNLIMITED = { per_minute: 1e9, per_hour: 1e9, per_day: 1e9, burst: 1e9 };

function chainWorkflow() {
  const stages = Array.from({ length: STAGES }, (_, i) => ({
    name: `s${i}`,
    agent: { kind: 'typescript', name: 'node', config: { i } },
    retry: { max_attempts: 3, backoff: RETRY_BACKOFF_MS },
    default_next: i + 1 < STAGES ? `s${i + 1}` : 'end',
  }));
  return buildWorkflow(
    { name: `chain${STAGES}`, bounds: { max_agent_hops: STAGES + 5 }, stages },
    `chain${STAGES}`,
    { agents: new Set(['node']), routingFunctions: new Set() },
  );
}

export async function openWarden(
  durability: 'fast' | 'strict',
  options: OpenOptions,
): Promise<GraphSystem> {
  const store = await openSqliteStore({ file: options.file, durability });
  const kernel = new Kernel({ store, rateLimits: UNLIMITED });
  // Completion is observed on the kernel's bus (delivered right after the terminating commit),
  // not by polling, so no poll interval is added to a run's time.
  const terminated = new Set<string>();
  const waiters = new Map<string, () => void>();
  const subscription = kernel.bus.subscribe(['process.terminated'], (message) => {
    const pid = (message.payload as EventRecord).process_id;
    if (!pid) return;
    terminated.add(pid);
    waiters.get(pid)?.();
  });
  const untilTerminated = async (pid: string) => {
    if (terminated.has(pid)) return;
    const done = new Promise<void>((resolve) => waiters.set(pid, resolve));
    // It may have terminated before this process subscribed (resume test): ask the store.
    if ((await kernel.getProcess(pid)).state !== 'terminated') await done;
    waiters.delete(pid);
  };
  const agents = new AgentRegistry().register('node', async (_ctx, config) => {
    const i = Number(config.i);
    await options.node(i);
    return { output: { i } };
  });
  const workflow = chainWorkflow();
  await kernel.recover();
  const worker = new Worker({ kernel, agents });
  await worker.start();
  return {
    info: {
      name: `Warden (${durability})`,
      durability:
        durability === 'strict'
          ? 'journal_mode=wal, synchronous=FULL, group commit (set by openSqliteStore) → survives power loss'
          : 'journal_mode=wal, synchronous=NORMAL (set by openSqliteStore) → survives a process crash',
      // Warden's connection is private: this is what openSqliteStore sets for the mode.
      synchronous: durability === 'strict' ? 'FULL' : 'NORMAL',
      settings: `Kernel.startRun of a ${STAGES}-stage workflow of \`typescript\` stages (agent registered by name); Worker defaults (concurrency 4, leaseMs 15 s, heartbeat thread); completion seen on kernel.bus \`process.terminated\`; per-user rate limit lifted; stage retry backoff ${RETRY_BACKOFF_MS} ms`,
    },
    async run() {
      const p = await kernel.startRun({ workflow });
      await untilTerminated(p.pid);
      return p.pid;
    },
    async begin() {
      return (await kernel.startRun({ workflow })).pid;
    },
    finish: untilTerminated,
    async verify(pid) {
      const p = await kernel.getProcess(pid);
      const outputs = Object.keys(p.envelope.outputs ?? {}).length;
      if (p.terminal_reason !== 'completed' || outputs !== STAGES)
        throw new Error(
          `run ${pid} ended ${p.state}/${p.terminal_reason} with ${outputs}/${STAGES} outputs`,
        );
    },
    async close() {
      await worker.stop();
      subscription.unsubscribe();
      kernel.close();
      await store.close();
    },
  };
}
