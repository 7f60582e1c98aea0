/**
 * OrchestrationService over gRPC against a real `warden serve`, with a client loaded from
 * proto/ (not Warden's code): the jeeves `PipelineWorker` loop exactly as the original client
 * runs it (no metadata, ReportAgentResult's reply discarded, GetNextInstruction after every
 * report) and a variant that follows the replies; both end the reference's linear pipeline with
 * 3 hops (the original: 5). Also: tokens, status codes, a mismatched report, ALREADY_EXISTS,
 * tenant isolation, a failing agent, and a looping pipeline bounded by its edge limit.
 */
import { join } from 'node:path';

import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { LINEAR_PIPELINE } from './helpers/jeeves-fixtures.ts';
import {
  call,
  failure,
  type GrpcDaemon,
  type JeevesClient as Client,
  jsonBytes as json,
  parseBytes as parse,
  startGrpcDaemon,
} from './helpers/jeeves-grpc.ts';
import { removeTempDirs } from './helpers/tmp.ts';

let server: GrpcDaemon;
let daemon: GrpcDaemon['daemon'];
let address: string;

beforeAll(async () => {
  server = await startGrpcDaemon();
  daemon = server.daemon;
  address = server.address;
}, 60_000);

afterAll(async () => {
  await server?.stop();
  removeTempDirs();
});

const client = (service = 'OrchestrationService') => server.client(service);

/** The reference's linear pipeline (understand → think → respond, bounds 3/10/21). */
const LINEAR = LINEAR_PIPELINE;

/** The original client's loop (jeeves-airframe `PipelineWorker.execute`), unchanged. */
async function pipelineWorker(c: Client, processId: string, followReplies: boolean) {
  await call(c, 'InitializeSession', {
    process_id: processId,
    pipeline_config: json(LINEAR),
    envelope: json({ envelope_id: processId, raw_input: 'hello' }),
    force: false,
  });
  const ran: string[] = [];
  let instr = await call(c, 'GetNextInstruction', { process_id: processId });
  for (let guard = 0; guard < 20; guard++) {
    if (instr.kind !== 'RUN_AGENT') break;
    const agent = instr.agent_name as string;
    ran.push(agent);
    const reply = await call(c, 'ReportAgentResult', {
      process_id: processId,
      agent_name: agent,
      output: json({ response: `${agent} done` }),
      metrics: { llm_calls: 1, tool_calls: 0, tokens_in: 0, tokens_out: 0, duration_ms: 3 },
      success: true,
      error: '',
    });
    instr = followReplies ? reply : await call(c, 'GetNextInstruction', { process_id: processId });
  }
  return { ran, instr };
}

describe('OrchestrationService', () => {
  it.each([
    ['the original loop (reply discarded)', false],
    ['a loop that follows the replies', true],
  ])('%s: a 3-stage pipeline ends with 3 hops, 3 LLM calls, COMPLETED', async (_name, follow) => {
    const c = client();
    const processId = `env_linear_${String(follow)}`;
    const { ran, instr } = await pipelineWorker(c, processId, follow);
    expect(ran).toEqual(['understand', 'think', 'respond']);
    expect(instr.kind).toBe('TERMINATE');
    expect(instr.terminal_reason).toBe('COMPLETED');
    const envelope = parse(instr.envelope);
    expect(envelope).toMatchObject({
      agent_hop_count: 3,
      llm_call_count: 3,
      iteration: 0,
      current_stage: 'end',
      terminated: true,
    });
    expect((envelope.outputs as Record<string, unknown>).respond).toEqual({
      response: 'respond done',
    });
    const again = await call(c, 'GetNextInstruction', { process_id: processId });
    expect(again.kind).toBe('TERMINATE');
    expect(again.terminal_reason).toBe('COMPLETED');
    const state = await call(c, 'GetSessionState', { process_id: processId });
    expect(state.edge_traversals).toEqual({ 'understand->think': 1, 'think->respond': 1 });
    expect(state.terminated).toBe(true);
    expect(state.stage_order).toEqual(['understand', 'think', 'respond']);
  });

  it('answers the documented status codes, and a wrong report changes nothing', async () => {
    const c = client();
    expect((await failure(call(c, 'GetNextInstruction', { process_id: '' }))).code).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
    expect((await failure(call(c, 'GetNextInstruction', { process_id: 'nope' }))).code).toBe(
      grpc.status.NOT_FOUND,
    );
    const bad = await failure(
      call(c, 'InitializeSession', { process_id: 'x', pipeline_config: Buffer.from('{not json') }),
    );
    expect(bad.code).toBe(grpc.status.INVALID_ARGUMENT);
    await call(c, 'InitializeSession', { process_id: 'env_codes', pipeline_config: json(LINEAR) });
    const dup = await failure(
      call(c, 'InitializeSession', { process_id: 'env_codes', pipeline_config: json(LINEAR) }),
    );
    expect(dup.code).toBe(grpc.status.ALREADY_EXISTS);
    const first = await call(c, 'GetNextInstruction', { process_id: 'env_codes' });
    expect(first.agent_name).toBe('understand');
    const wrong = await failure(
      call(c, 'ReportAgentResult', { process_id: 'env_codes', agent_name: 'think', success: true }),
    );
    expect(wrong.code).toBe(grpc.status.FAILED_PRECONDITION);
    const same = await call(c, 'GetNextInstruction', { process_id: 'env_codes' });
    expect(same.agent_name).toBe('understand');
    expect(parse(same.envelope).agent_hop_count).toBe(1);
    // force replaces the session: a fresh run.
    await call(c, 'InitializeSession', {
      process_id: 'env_codes',
      pipeline_config: json(LINEAR),
      force: true,
    });
    const fresh = await call(c, 'GetNextInstruction', { process_id: 'env_codes' });
    expect(fresh.agent_name).toBe('understand');
    expect(parse(fresh.envelope).agent_hop_count).toBe(1);
  });

  it('binds sessions to their caller: another token cannot see them; a bad token is refused', async () => {
    const c = client();
    await call(c, 'InitializeSession', { process_id: 'env_mine', pipeline_config: json(LINEAR) });
    const admin = new grpc.Metadata();
    admin.set('authorization', `Bearer ${daemon.token}`);
    const other = await failure(call(c, 'GetSessionState', { process_id: 'env_mine' }, admin));
    expect(other.code).toBe(grpc.status.NOT_FOUND);
    const badToken = new grpc.Metadata();
    badToken.set('authorization', 'Bearer not-a-token');
    const refused = await failure(call(c, 'GetSessionState', { process_id: 'env_mine' }, badToken));
    expect(refused.code).toBe(grpc.status.UNAUTHENTICATED);
    expect(daemon.output()).not.toContain('not-a-token');
    expect(daemon.output()).not.toContain(daemon.token);
  });

  it('a failing agent takes error_next, else terminates TOOL_FAILED_FATALLY with its error', async () => {
    const c = client();
    await call(c, 'InitializeSession', { process_id: 'env_fail', pipeline_config: json(LINEAR) });
    await call(c, 'GetNextInstruction', { process_id: 'env_fail' });
    const reply = await call(c, 'ReportAgentResult', {
      process_id: 'env_fail',
      agent_name: 'understand',
      success: false,
      error: 'model unavailable',
    });
    expect(reply.kind).toBe('TERMINATE');
    expect(reply.terminal_reason).toBe('TOOL_FAILED_FATALLY');
    const envelope = parse(reply.envelope);
    expect(envelope.failed_stages).toEqual({ understand: 'model unavailable' });
  });

  it('a looping pipeline stops at its edge limit: MAX_ITERATIONS_EXCEEDED, max_loop_exceeded', async () => {
    const c = client();
    const loop = {
      name: 'loop',
      agents: [
        { name: 'plan', stage_order: 1, default_next: 'critic' },
        {
          name: 'critic',
          stage_order: 2,
          default_next: 'end',
          routing_rules: [{ condition: 'verdict', value: 'again', target: 'plan' }],
        },
      ],
      max_iterations: 10,
      max_agent_hops: 21,
      edge_limits: [{ from: 'critic', to: 'plan', max_count: 1 }],
    };
    await call(c, 'InitializeSession', { process_id: 'env_loop', pipeline_config: json(loop) });
    const ran: string[] = [];
    let instr = await call(c, 'GetNextInstruction', { process_id: 'env_loop' });
    while (instr.kind === 'RUN_AGENT') {
      ran.push(instr.agent_name as string);
      await call(c, 'ReportAgentResult', {
        process_id: 'env_loop',
        agent_name: instr.agent_name,
        output: json({ verdict: 'again' }),
        success: true,
      });
      instr = await call(c, 'GetNextInstruction', { process_id: 'env_loop' });
    }
    expect(ran).toEqual(['plan', 'critic', 'plan', 'critic']);
    expect(instr.terminal_reason).toBe('MAX_ITERATIONS_EXCEEDED');
    expect(instr.termination_message).toMatch(/edge limit exceeded: critic->plan/);
    expect(parse(instr.envelope).terminal_reason).toBe('max_loop_exceeded');
  });

  it('CommBus: a subscriber gets the published events of its types, in order; bad input is INVALID_ARGUMENT', async () => {
    const bus = client('CommBusService') as unknown as Client & {
      Subscribe(
        request: object,
        metadata: grpc.Metadata,
      ): grpc.ClientReadableStream<Record<string, unknown>>;
    };
    const stream = bus.Subscribe({ event_types: ['greeting'] }, new grpc.Metadata());
    const received: Array<[string, unknown]> = [];
    stream.on('data', (e: Record<string, unknown>) =>
      received.push([e.event_type as string, parse(e.payload)]),
    );
    stream.on('error', () => undefined); // cancelled at the end
    // The subscription is live once a publish reaches it: publish until one arrives.
    for (let i = 0; received.length === 0 && i < 50; i++) {
      await call(bus, 'Publish', { event_type: 'greeting', payload: json({ warmup: i }) });
      await new Promise((r) => setTimeout(r, 20));
    }
    received.length = 0;
    await call(bus, 'Publish', { event_type: 'other', payload: json({ n: 0 }) });
    for (let n = 1; n <= 3; n++)
      expect(
        await call(bus, 'Publish', { event_type: 'greeting', payload: json({ n }) }),
      ).toMatchObject({
        success: true,
      });
    for (let i = 0; received.length < 3 && i < 100; i++)
      await new Promise((r) => setTimeout(r, 20));
    expect(received).toEqual([
      ['greeting', { n: 1 }],
      ['greeting', { n: 2 }],
      ['greeting', { n: 3 }],
    ]);
    stream.cancel();
    const send = await call(bus, 'Send', { command_type: 'nobody.listens', payload: json({}) });
    expect(send.success).toBe(false);
    expect(send.error).toMatch(/no handler/);
    const query = await call(bus, 'Query', { query_type: 'nobody.answers', timeout_ms: 100 });
    expect(query.success).toBe(false);
    for (const [method, request] of [
      ['Publish', { event_type: '' }],
      ['Publish', { event_type: 'x', payload: Buffer.from('{nope') }],
      ['Send', { command_type: '' }],
      ['Query', { query_type: '' }],
    ] as const)
      expect((await failure(call(bus, method, request))).code).toBe(grpc.status.INVALID_ARGUMENT);
    const empty = bus.Subscribe({ event_types: [] }, new grpc.Metadata());
    const code = await new Promise<number>((resolve) => {
      empty.on('error', (e: grpc.ServiceError) => resolve(e.code));
      empty.on('data', () => undefined);
    });
    expect(code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('serves grpc.health.v1: SERVING for the server and each jeeves service, SERVICE_UNKNOWN otherwise', async () => {
    const definition = protoLoader.loadSync(
      join(import.meta.dirname, '..', 'proto', 'grpc', 'health', 'v1', 'health.proto'),
      { keepCase: true, enums: String, defaults: true },
    );
    const root = grpc.loadPackageDefinition(definition) as unknown as {
      grpc: { health: { v1: { Health: grpc.ServiceClientConstructor } } };
    };
    const health = new root.grpc.health.v1.Health(
      address,
      grpc.credentials.createInsecure(),
    ) as unknown as Client;
    const check = async (service: string) => (await call(health, 'Check', { service })).status;
    expect(await check('')).toBe('SERVING');
    expect(await check('jeeves.engine.v1.OrchestrationService')).toBe('SERVING');
    expect(await check('jeeves.engine.v1.CommBusService')).toBe('SERVING');
    // All four services are registered (defect 7: the shipped original served two).
    expect(await check('jeeves.engine.v1.KernelService')).toBe('SERVING');
    expect(await check('jeeves.engine.v1.EngineService')).toBe('SERVING');
    expect(await check('jeeves.engine.v1.Nope')).toBe('SERVICE_UNKNOWN');
    health.close();
  });
});
