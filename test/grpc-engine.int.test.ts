/**
 * EngineService over gRPC against a real `warden serve`, with a client loaded from proto/: the
 * envelope utilities (CreateEnvelope, UpdateEnvelope, CloneEnvelope, CheckBounds), a missing
 * envelope as INVALID_ARGUMENT instead of a crash (defect 18), ExecuteAgent as UNIMPLEMENTED,
 * and ExecutePipeline streaming a pipeline that a PipelineWorker client executes.
 */
import type * as grpc from '@grpc/grpc-js';
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LINEAR_PIPELINE } from './helpers/jeeves-fixtures.ts';
import {
  call,
  failure,
  type GrpcDaemon,
  type JeevesClient,
  jsonBytes,
  parseBytes,
  startGrpcDaemon,
} from './helpers/jeeves-grpc.ts';
import { removeTempDirs } from './helpers/tmp.ts';

let server: GrpcDaemon;
let engine: JeevesClient & {
  ExecutePipeline(request: object, metadata?: grpc.Metadata): grpc.ClientReadableStream<Event>;
};
let orchestration: JeevesClient;

interface Event {
  type: string;
  stage: string;
  timestamp_ms: number;
  payload: Buffer;
  envelope: Record<string, unknown> & { outputs: Record<string, Buffer> };
}

/** The reference's linear pipeline (understand → think → respond, bounds 3/10/21). */
const LINEAR = LINEAR_PIPELINE;

beforeAll(async () => {
  server = await startGrpcDaemon();
  engine = server.client('EngineService') as typeof engine;
  orchestration = server.client('OrchestrationService');
}, 60_000);

afterAll(async () => {
  await server?.stop();
  removeTempDirs();
});

/** Collects a stream's events until it ends (or fails). */
function collect(stream: grpc.ClientReadableStream<Event>): {
  events: Event[];
  done: Promise<grpc.ServiceError | null>;
  first: Promise<void>;
} {
  const events: Event[] = [];
  let sawFirst!: () => void;
  const first = new Promise<void>((resolve) => (sawFirst = resolve));
  stream.on('data', (event: Event) => {
    events.push(event);
    sawFirst();
  });
  const done = new Promise<grpc.ServiceError | null>((resolve) => {
    stream.on('error', (error: grpc.ServiceError) => {
      sawFirst();
      resolve(error);
    });
    stream.on('end', () => resolve(null));
  });
  return { events, done, first };
}

/** The PipelineWorker loop on `processId`, each agent reporting one LLM call. */
async function runWorker(processId: string): Promise<string[]> {
  const ran: string[] = [];
  for (let guard = 0; guard < 30; guard++) {
    const instr = await call(orchestration, 'GetNextInstruction', { process_id: processId });
    if (instr.kind !== 'RUN_AGENT') break;
    const agent = instr.agent_name as string;
    ran.push(agent);
    await call(orchestration, 'ReportAgentResult', {
      process_id: processId,
      agent_name: agent,
      output: jsonBytes({ response: `${agent} done` }),
      metrics: { llm_calls: 1, duration_ms: 1 },
      success: true,
    });
  }
  return ran;
}

describe('EngineService', () => {
  it('creates, updates, clones and checks envelopes', async () => {
    const created = await call(engine, 'CreateEnvelope', {
      raw_input: 'hello',
      user_id: 'u1',
      session_id: 's1',
      metadata: { channel: 'cli' },
      stage_order: ['a', 'b'],
    });
    expect(created).toMatchObject({
      raw_input: 'hello',
      user_id: 'u1',
      session_id: 's1',
      current_stage: 'start',
      stage_order: ['a', 'b'],
      max_iterations: 3,
      max_llm_calls: 10,
      max_agent_hops: 21,
      metadata_str: { channel: 'cli' },
    });
    expect(created.envelope_id as string).toMatch(/^env_/);
    expect(created.request_id as string).toMatch(/^req_/);
    const updated = await call(engine, 'UpdateEnvelope', {
      envelope: {
        ...created,
        outputs: { good: jsonBytes({ ok: true }), bad: jsonBytes([1, 2]), junk: Buffer.from('{') },
        terminal_reason: 99,
      },
    });
    // Non-object outputs are dropped; an unknown enum number reads as UNSPECIFIED.
    expect(Object.keys(updated.outputs as object)).toEqual(['good']);
    expect(parseBytes((updated.outputs as Record<string, Buffer>).good)).toEqual({ ok: true });
    expect(updated.terminal_reason).toBe('TERMINAL_REASON_UNSPECIFIED');
    const clone = await call(engine, 'CloneEnvelope', { envelope: updated });
    expect(clone.envelope_id).toBe(created.envelope_id);
    expect(clone).toEqual(updated);

    const ok = await call(engine, 'CheckBounds', { ...created, iteration: 1, llm_call_count: 4 });
    expect(ok).toEqual({
      can_continue: true,
      terminal_reason: 'TERMINAL_REASON_UNSPECIFIED',
      llm_calls_remaining: 6,
      agent_hops_remaining: 21,
      iterations_remaining: 2,
    });
    // One predicate with the orchestrator: iteration == max stops (defect 2); remaining ≥ 0.
    const atMax = await call(engine, 'CheckBounds', {
      ...created,
      iteration: 3,
      agent_hop_count: 30,
    });
    expect(atMax).toMatchObject({
      can_continue: false,
      terminal_reason: 'MAX_ITERATIONS_EXCEEDED',
      iterations_remaining: 0,
      agent_hops_remaining: 0,
    });
    // Bounds that are 0 take the defaults (defect 8): an empty envelope may continue.
    expect((await call(engine, 'CheckBounds', {})).can_continue).toBe(true);
    const pending = await call(engine, 'CheckBounds', { ...created, interrupt_pending: true });
    expect(pending).toMatchObject({
      can_continue: false,
      terminal_reason: 'TERMINAL_REASON_UNSPECIFIED',
    });
  });

  it('answers INVALID_ARGUMENT for a missing envelope and UNIMPLEMENTED for ExecuteAgent', async () => {
    for (const rpc of ['UpdateEnvelope', 'CloneEnvelope']) {
      const error = await failure(call(engine, rpc, {}));
      expect(error.code, rpc).toBe(status.INVALID_ARGUMENT);
      expect(error.details).toBe('envelope is required');
    }
    const agent = await failure(call(engine, 'ExecuteAgent', { agent_name: 'x' }));
    expect(agent.code).toBe(status.UNIMPLEMENTED);
    expect(agent.details).toMatch(/OrchestrationService/);
    const noEnvelope = collect(engine.ExecutePipeline({ pipeline_config: jsonBytes(LINEAR) }));
    expect((await noEnvelope.done)?.code).toBe(status.INVALID_ARGUMENT);
    const badConfig = collect(
      engine.ExecutePipeline({
        envelope: { envelope_id: 'env_bad' },
        pipeline_config: Buffer.from('{nope'),
      }),
    );
    expect((await badConfig.done)?.code).toBe(status.INVALID_ARGUMENT);
    // Nothing was started for the bad request.
    const state = await failure(call(orchestration, 'GetSessionState', { process_id: 'env_bad' }));
    expect(state.code).toBe(status.NOT_FOUND);
  });

  it('ExecutePipeline streams the pipeline a PipelineWorker runs, ending PIPELINE_COMPLETED', async () => {
    const envelope = (await call(engine, 'CreateEnvelope', { raw_input: 'hi', user_id: 'u' })) as {
      envelope_id: string;
    };
    const stream = collect(
      engine.ExecutePipeline({ envelope, pipeline_config: jsonBytes(LINEAR), thread_id: '' }),
    );
    await stream.first;
    expect(stream.events[0]).toMatchObject({ type: 'STAGE_STARTED', stage: 'understand' });
    const ran = await runWorker(envelope.envelope_id);
    expect(ran).toEqual(['understand', 'think', 'respond']);
    expect(await stream.done).toBeNull();
    const kinds = stream.events.map((e) => `${e.type}:${e.stage}`);
    expect(kinds).toEqual([
      'STAGE_STARTED:understand',
      'STAGE_COMPLETED:understand',
      'STAGE_STARTED:think',
      'STAGE_COMPLETED:think',
      'STAGE_STARTED:respond',
      'STAGE_COMPLETED:respond',
      'PIPELINE_COMPLETED:end',
    ]);
    expect(parseBytes(stream.events[1]!.payload)).toEqual({ response: 'understand done' });
    const last = stream.events.at(-1)!.envelope;
    expect(last).toMatchObject({
      envelope_id: envelope.envelope_id,
      agent_hop_count: 3,
      llm_call_count: 3,
      terminated: true,
      terminal_reason: 'COMPLETED',
      current_stage: 'end',
      max_agent_hops: 21,
    });
    expect(parseBytes(last.outputs.respond)).toEqual({ response: 'respond done' });
    // A second ExecutePipeline for the finished session starts it again (a fresh run).
    const again = collect(engine.ExecutePipeline({ envelope, pipeline_config: jsonBytes(LINEAR) }));
    await again.first;
    expect(again.events[0]).toMatchObject({ type: 'STAGE_STARTED', stage: 'understand' });
    expect(await runWorker(envelope.envelope_id)).toHaveLength(3);
    expect(await again.done).toBeNull();
  });

  it('ExecutePipeline ends with BOUNDS_EXCEEDED when a budget runs out', async () => {
    const config = { ...LINEAR, max_llm_calls: 2 };
    const stream = collect(
      engine.ExecutePipeline({
        envelope: { envelope_id: 'env_budget' },
        pipeline_config: jsonBytes(config),
      }),
    );
    await stream.first;
    expect(stream.events[0]?.type).toBe('STAGE_STARTED');
    expect(await runWorker('env_budget')).toEqual(['understand', 'think']);
    expect(await stream.done).toBeNull();
    const last = stream.events.at(-1)!;
    expect(last.type).toBe('BOUNDS_EXCEEDED');
    expect(parseBytes(last.payload)).toEqual({ terminal_reason: 'max_llm_calls_exceeded' });
    expect(last.envelope).toMatchObject({
      llm_call_count: 2,
      terminal_reason: 'MAX_LLM_CALLS_EXCEEDED',
    });
  });
});
