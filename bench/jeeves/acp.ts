/**
 * The comparison side: the same number of durable steps through Warden's own ACP (JSON-RPC 2.0
 * over WebSocket), with `warden/client`.
 *
 * ACP has no call that hands a workflow step to a client: `task.claim` serves `job` tasks only
 * (src/queue/remote-work.ts: workflow steps are run by the daemon's step workers). So the
 * closest comparisons that exist are:
 *
 * - `acp-queued`: a remote worker (`runRemoteWorker`, concurrency 1) runs jobs queued ahead of
 *   time, one after the other: task.claim → handler → task.complete, 2 calls per step, like the
 *   original jeeves loop (ReportAgentResult + GetNextInstruction). No workflow state.
 * - `acp-chain`: the same worker, but each job's handler submits the next job before it
 *   returns (task.submit → task.complete → task.claim: 3 calls per step), so each step creates
 *   the next durable step as a workflow step does, instead of finding it queued.
 * - `daemon-workflow`: the same two-stage loop as `noop` stages, started with `run.start` and
 *   run by the daemon's own step workers: the same state machine and durability with no client
 *   in the loop (the floor a remote client adds to).
 */
import { runRemoteWorker, WardenClient } from '../../src/client/index.ts';
import { loopWorkflow } from './pipeline.ts';

export type AcpVariant = 'acp-queued' | 'acp-chain';

export interface StepRun {
  readonly steps: number;
  readonly seconds: number;
  readonly stepsPerSecond: number;
  /** One value per measured step (empty when the variant cannot time single steps), ms. */
  readonly stepMs: number[];
  readonly clientCpuSeconds: number;
  readonly serverCpuSeconds: number;
  /** What the variant checked after the clock stopped, in words (for the report's table). */
  readonly checked: string;
}

const JOB = 'bench.step';

/**
 * `warmup + steps + 1` jobs run one after the other by one remote worker; the clock runs from
 * the handler start of job `warmup` to that of job `warmup + steps` (so `steps` step intervals,
 * each = settle the job + claim the next + hand it to the handler, plus submit it for a chain).
 */
export async function runAcpWorker(options: {
  url: string;
  token: string;
  variant: AcpVariant;
  lane: string;
  warmup: number;
  steps: number;
  serverCpu: () => number;
  /** Awaited as the clock starts and as it stops (the store-call count reads the daemon's counters there). */
  mark?: (at: 'start' | 'end') => Promise<void>;
}): Promise<StepRun> {
  const { url, token, variant, lane, warmup, steps } = options;
  const total = warmup + steps + 1;
  const client = await WardenClient.connect({
    url,
    token,
    client: { name: 'bench', version: '0' },
  });
  if (variant === 'acp-queued') {
    // Outside the clock: every job is queued before the worker starts, 100 calls in flight.
    for (let i = 0; i < total; i += 100)
      await Promise.all(
        Array.from({ length: Math.min(100, total - i) }, (_, k) =>
          client.tasks.submit({ name: JOB, lane, payload: { i: i + k } }),
        ),
      );
  } else {
    await client.tasks.submit({ name: JOB, lane, payload: { i: 0 } });
  }
  const starts: number[] = [];
  const seen: number[] = [];
  let c0 = process.cpuUsage();
  let s0 = 0;
  const stop = new AbortController();
  let done: () => void = () => undefined;
  const finished = new Promise<void>((resolve) => (done = resolve));
  const worker = runRemoteWorker({
    client,
    lanes: [lane],
    concurrency: 1,
    // The whole round fits in one lease: heartbeats (every third of it) are not what is measured.
    leaseMs: 60_000,
    waitMs: 5_000,
    signal: stop.signal,
    handlers: {
      [JOB]: async (job) => {
        const i = (job.payload as { i: number }).i;
        if (seen.length === warmup) {
          await options.mark?.('start');
          c0 = process.cpuUsage();
          s0 = options.serverCpu();
        }
        starts.push(performance.now());
        seen.push(i);
        if (seen.length === total) {
          await options.mark?.('end');
          done();
          return null;
        }
        if (variant === 'acp-chain')
          await client.tasks.submit({ name: JOB, lane, payload: { i: i + 1 } });
        return null;
      },
    },
  });
  await finished;
  const cpu = process.cpuUsage(c0);
  const serverCpuSeconds = options.serverCpu() - s0;
  stop.abort();
  const summary = await worker;
  await client.close();
  const stepMs = starts.slice(warmup + 1).map((t, k) => t - starts[warmup + k]!);
  const seconds = (starts[warmup + steps]! - starts[warmup]!) / 1000;
  // Every job ran once, in order: the lane held nothing else and one worker ran it.
  const inOrder = seen.every((v, k) => v === k);
  if (seen.length !== total || !inOrder)
    throw new Error(`${variant}: ran ${seen.length} of ${total} jobs, in order: ${inOrder}`);
  if (summary.completed !== total)
    throw new Error(`${variant}: completed ${summary.completed} of ${total} jobs`);
  return {
    steps,
    seconds,
    stepsPerSecond: steps / seconds,
    stepMs,
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
    serverCpuSeconds,
    checked: `${total.toLocaleString('en-US')} jobs ran once each, in order, all completed`,
  };
}

/**
 * The loop as a daemon-run workflow of `noop` stages: `run.start` → `run.wait`; the clock runs
 * from run.start sent to run.wait answered, ÷ the steps (a warm-up run of `warmup` steps first,
 * outside the clock). The run must end on its hop bound after exactly `steps` steps.
 */
export async function runDaemonWorkflow(options: {
  url: string;
  token: string;
  warmup: number;
  steps: number;
  serverCpu: () => number;
  /** Awaited before run.start and after run.wait of the timed run. */
  mark?: (at: 'start' | 'end') => Promise<void>;
}): Promise<StepRun> {
  const client = await WardenClient.connect({
    url: options.url,
    token: options.token,
    client: { name: 'bench', version: '0' },
  });
  const once = async (steps: number, name: string) => {
    const t0 = performance.now();
    const { run } = await client.runs.start({ workflow: loopWorkflow(name, steps) });
    const { run: end, reached } = await client.runs.wait({ pid: run.pid, timeout_ms: 300_000 });
    const seconds = (performance.now() - t0) / 1000;
    if (!reached || end.state !== 'terminated')
      throw new Error(`daemon-workflow: run ${run.pid} did not end (${end.state})`);
    // Each issued step counts a hop; the step that would exceed the bound is never issued.
    const hops = (end.usage as { agent_hops?: number } | undefined)?.agent_hops;
    if (hops !== steps || end.terminal_reason !== 'max_agent_hops_exceeded')
      throw new Error(
        `daemon-workflow: expected ${steps} hops ending on the hop bound, got ${hops} (${end.terminal_reason})`,
      );
    return seconds;
  };
  if (options.warmup > 0) await once(options.warmup, 'bench-loop-warmup');
  await options.mark?.('start');
  const c0 = process.cpuUsage();
  const s0 = options.serverCpu();
  const seconds = await once(options.steps, 'bench-loop');
  const cpu = process.cpuUsage(c0);
  const serverCpuSeconds = options.serverCpu() - s0;
  await options.mark?.('end');
  await client.close();
  return {
    steps: options.steps,
    seconds,
    stepsPerSecond: options.steps / seconds,
    stepMs: [],
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
    serverCpuSeconds,
    checked: `ended on max_agent_hops after exactly ${options.steps.toLocaleString('en-US')} hops`,
  };
}
