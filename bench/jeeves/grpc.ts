/**
 * The jeeves client side: OrchestrationService loaded from proto/ with @grpc/proto-loader (as
 * test/grpc-orchestration.int.test.ts does, not Warden's code), and the `PipelineWorker` loop
 * with a trivial agent, timed per step and per RPC.
 *
 * - `original`: the jeeves-airframe loop as the original client runs it: ReportAgentResult's
 *   reply discarded, GetNextInstruction after every report (2 RPCs per step).
 * - `follow`: the next instruction taken from ReportAgentResult's reply (1 RPC per step).
 */
import { join } from 'node:path';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

import { repoDir } from '../shared/machine.ts';
import { agentOutput, loopPipeline } from './pipeline.ts';

export type GrpcLoop = 'original' | 'follow';

type Reply = Record<string, unknown>;
type Unary = (
  request: object,
  metadata: grpc.Metadata,
  callback: (error: grpc.ServiceError | null, reply: Reply) => void,
) => void;
export type OrchestrationClient = grpc.Client & Record<string, Unary>;

const PROTO = join(repoDir, 'proto', 'jeeves', 'engine', 'v1', 'engine.proto');

export function connectOrchestration(address: string): OrchestrationClient {
  const definition = protoLoader.loadSync(PROTO, {
    keepCase: true,
    longs: Number,
    enums: String,
    defaults: true,
  });
  const root = grpc.loadPackageDefinition(definition) as unknown as {
    jeeves: { engine: { v1: Record<string, grpc.ServiceClientConstructor> } };
  };
  const Service = root.jeeves.engine.v1.OrchestrationService!;
  return new Service(address, grpc.credentials.createInsecure()) as unknown as OrchestrationClient;
}

function call(c: OrchestrationClient, method: string, request: object): Promise<Reply> {
  return new Promise((resolve, reject) =>
    c[method]!(request, new grpc.Metadata(), (error, reply) =>
      error ? reject(error) : resolve(reply),
    ),
  );
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

export interface GrpcSessionResult {
  readonly loop: GrpcLoop;
  /** Measured steps (after the warm-up steps of the same session). */
  readonly steps: number;
  readonly seconds: number;
  readonly stepsPerSecond: number;
  /** One value per measured step: RUN_AGENT received → the next RUN_AGENT received, ms. */
  readonly stepMs: number[];
  /** Per-RPC latency of the measured steps, ms. */
  readonly reportMs: number[];
  readonly nextMs: number[];
  /** Hops the session's state dict counts at the end (= warm-up + measured steps). */
  readonly hops: number;
  /** Size of the last RUN_AGENT's `envelope` (the state dict every reply carries), bytes. */
  readonly envelopeBytes: number;
  readonly clientCpuSeconds: number;
  readonly serverCpuSeconds: number;
  /**
   * The timed steps on the monotonic clock in µs (`process.hrtime`), the clock V8 stamps a
   * `.cpuprofile`'s samples with: the profile is cut to this window.
   */
  readonly windowUs: readonly [number, number];
}

const hrUs = () => Number(process.hrtime.bigint() / 1000n);

/**
 * One orchestration session: InitializeSession, then `warmup + steps` agent turns; the clock
 * runs over the last `steps`. Throws unless every instruction was the expected RUN_AGENT (the
 * loop alternates plan and critic) and the session counts exactly one hop per turn.
 */
export async function runGrpcSession(
  c: OrchestrationClient,
  options: {
    processId: string;
    loop: GrpcLoop;
    warmup: number;
    steps: number;
    serverCpu: () => number;
    /** Awaited as the clock starts and as it stops (the store-call count reads the daemon's counters there). */
    mark?: (at: 'start' | 'end') => Promise<void>;
  },
): Promise<GrpcSessionResult> {
  const { processId, loop, warmup, steps } = options;
  await call(c, 'InitializeSession', {
    process_id: processId,
    pipeline_config: json(loopPipeline(`bench-${processId}`)),
    envelope: json({ envelope_id: processId, raw_input: 'bench' }),
    force: false,
  });
  const stepMs: number[] = [];
  const reportMs: number[] = [];
  const nextMs: number[] = [];
  let instr = await call(c, 'GetNextInstruction', { process_id: processId });
  let expected = 'plan';
  let t0 = 0;
  let c0 = process.cpuUsage();
  let s0 = 0;
  let last = 0;
  let w0 = 0;
  const total = warmup + steps;
  for (let i = 0; i < total; i++) {
    if (i === warmup) {
      await options.mark?.('start');
      t0 = performance.now();
      w0 = hrUs();
      last = t0;
      c0 = process.cpuUsage();
      s0 = options.serverCpu();
    }
    if (instr.kind !== 'RUN_AGENT' || instr.agent_name !== expected)
      throw new Error(
        `step ${i}: expected RUN_AGENT ${expected}, got ${String(instr.kind)} ${String(instr.agent_name)} ${JSON.stringify(instr.termination_message ?? '')}`,
      );
    const agent = expected;
    const a = performance.now();
    const reply = await call(c, 'ReportAgentResult', {
      process_id: processId,
      agent_name: agent,
      output: json(agentOutput(agent)),
      metrics: { llm_calls: 1, tool_calls: 0, tokens_in: 0, tokens_out: 0, duration_ms: 0 },
      success: true,
      error: '',
    });
    const b = performance.now();
    if (loop === 'follow') instr = reply;
    else instr = await call(c, 'GetNextInstruction', { process_id: processId });
    const now = performance.now();
    if (i >= warmup) {
      reportMs.push(b - a);
      if (loop === 'original') nextMs.push(now - b);
      stepMs.push(now - last);
      last = now;
    }
    expected = agent === 'plan' ? 'critic' : 'plan';
  }
  const seconds = (performance.now() - t0) / 1000;
  const windowUs = [w0, hrUs()] as const;
  const cpu = process.cpuUsage(c0);
  const serverCpuSeconds = options.serverCpu() - s0;
  await options.mark?.('end');
  if (instr.kind !== 'RUN_AGENT' || instr.agent_name !== expected)
    throw new Error(
      `after the last step: expected RUN_AGENT ${expected}, got ${String(instr.kind)}`,
    );
  const envelope = JSON.parse((instr.envelope as Buffer).toString('utf8')) as {
    agent_hop_count: number;
  };
  // The instruction just received was issued too: one hop for every turn, plus it.
  if (envelope.agent_hop_count !== total + 1)
    throw new Error(`the session counts ${envelope.agent_hop_count} hops, expected ${total + 1}`);
  return {
    loop,
    steps,
    seconds,
    stepsPerSecond: steps / seconds,
    stepMs,
    reportMs,
    nextMs,
    hops: envelope.agent_hop_count,
    envelopeBytes: (instr.envelope as Buffer).length,
    clientCpuSeconds: (cpu.user + cpu.system) / 1e6,
    serverCpuSeconds,
    windowUs,
  };
}
