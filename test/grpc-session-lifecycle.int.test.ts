/**
 * Orchestration sessions over gRPC against a real `warden serve` (client loaded from proto/):
 * an interrupt that waits and resumes — answered through InitializeSession(force) with the
 * response, keeping the edge counts (defect 21), or from the Warden CLI — a budget exhausted
 * mid-run, a resumed envelope's counters counting against the bounds, an envelope with an empty
 * user id, and two clients racing on one session with every stage committed once.
 */
import { status } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { WardenClient } from '../src/client/index.ts';
import { runCli } from './helpers/cli.ts';
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
import { perStage, runOf } from './helpers/python-grpc.ts';
import { removeTempDirs } from './helpers/tmp.ts';

let server: GrpcDaemon;
let c: JeevesClient;

beforeAll(async () => {
  server = await startGrpcDaemon();
  c = server.client('OrchestrationService');
}, 60_000);

afterAll(async () => {
  await server?.stop();
  removeTempDirs();
});

/** The reference's linear pipeline (understand → think → respond, bounds 3/10/21). */
const LINEAR = LINEAR_PIPELINE;

/** understand asks a person (`kind`) when its output says so, then respond answers. */
function asking(kind: 'clarification' | 'confirmation') {
  return {
    name: `ask-${kind}`,
    agents: [
      {
        name: 'understand',
        stage_order: 1,
        routing_rules: [{ condition: 'needs', value: kind, target: kind }],
        default_next: 'respond',
      },
      { name: 'respond', stage_order: 2, default_next: 'end' },
    ],
    [`${kind}_resume_stage`]: 'respond',
    max_iterations: 3,
    max_llm_calls: 10,
    max_agent_hops: 21,
  };
}

const report = (processId: string, agent: string, output: object, llmCalls = 1) =>
  call(c, 'ReportAgentResult', {
    process_id: processId,
    agent_name: agent,
    output: jsonBytes(output),
    metrics: { llm_calls: llmCalls, duration_ms: 1 },
    success: true,
  });

const next = (processId: string) => call(c, 'GetNextInstruction', { process_id: processId });

describe('orchestration session lifecycle', () => {
  it('waits on a clarification and resumes through InitializeSession(force) with the answer', async () => {
    const id = 'env_clarify';
    const config = jsonBytes(asking('clarification'));
    await call(c, 'InitializeSession', { process_id: id, pipeline_config: config });
    expect((await next(id)).agent_name).toBe('understand');
    const wait = await report(id, 'understand', {
      needs: 'clarification',
      question: 'Which city?',
    });
    expect(wait).toMatchObject({ kind: 'WAIT_INTERRUPT', interrupt_pending: true });
    const interrupt = wait.interrupt as Record<string, unknown>;
    expect(interrupt).toMatchObject({
      kind: 'CLARIFICATION',
      question: 'Which city?',
      status: 'INTERRUPT_PENDING',
    });
    expect(interrupt.id as string).toMatch(/^int_/);
    // Asking again while it waits changes nothing.
    const again = await next(id);
    expect(again.kind).toBe('WAIT_INTERRUPT');
    expect((again.interrupt as { id: string }).id).toBe(interrupt.id);

    // The reference's resume path: the caller answers and re-initialises with force.
    const envelope = parseBytes(wait.envelope);
    envelope.interrupt_pending = false;
    (envelope.interrupt as Record<string, unknown>).response = { text: 'Paris' };
    const resumed = await call(c, 'InitializeSession', {
      process_id: id,
      pipeline_config: config,
      envelope: jsonBytes(envelope),
      force: true,
    });
    expect(resumed.terminated).toBe(false);
    const run = await next(id);
    expect(run.agent_name).toBe('respond');
    const state = parseBytes(run.envelope);
    expect((state.outputs as Record<string, unknown>).clarification).toMatchObject({
      text: 'Paris',
    });
    const done = await report(id, 'respond', { response: 'Sunny in Paris' });
    expect(done).toMatchObject({ kind: 'TERMINATE', terminal_reason: 'COMPLETED' });
    // The interrupt stage is a step of its own in Warden: 2 agents + 1 question = 3 hops.
    expect(parseBytes(done.envelope)).toMatchObject({ agent_hop_count: 3, llm_call_count: 2 });
    // The same run went on: its edge counts survived the resume (defect 21).
    const session = await call(c, 'GetSessionState', { process_id: id });
    expect(session.edge_traversals).toEqual({
      'understand->clarification': 1,
      'clarification->respond': 1,
    });
  });

  it('a confirmation approved from the Warden CLI lets the gRPC client continue', async () => {
    const id = 'env_confirm';
    await call(c, 'InitializeSession', {
      process_id: id,
      pipeline_config: jsonBytes(asking('confirmation')),
    });
    await next(id);
    const wait = await report(id, 'understand', { needs: 'confirmation', message: 'Send it?' });
    expect(wait.kind).toBe('WAIT_INTERRUPT');
    const interrupt = wait.interrupt as { id: string; kind: string; message: string };
    expect(interrupt).toMatchObject({ kind: 'CONFIRMATION', message: 'Send it?' });
    const approved = await runCli(['approve', interrupt.id, '--note', 'yes'], {
      home: server.home,
    });
    expect(approved.code, approved.stderr).toBe(0);
    const run = await next(id);
    expect(run.agent_name).toBe('respond');
    expect(
      (parseBytes(run.envelope).outputs as Record<string, unknown>).confirmation,
    ).toMatchObject({ approved: true });
    expect((await report(id, 'respond', { ok: true })).terminal_reason).toBe('COMPLETED');
  });

  it('terminates with MAX_LLM_CALLS_EXCEEDED when the budget runs out mid-run', async () => {
    const id = 'env_budget';
    await call(c, 'InitializeSession', {
      process_id: id,
      pipeline_config: jsonBytes({ ...LINEAR, max_llm_calls: 3 }),
    });
    await next(id);
    await report(id, 'understand', {}, 2);
    const out = await report(id, 'think', {}, 2);
    expect(out).toMatchObject({ kind: 'TERMINATE', terminal_reason: 'MAX_LLM_CALLS_EXCEEDED' });
    expect(parseBytes(out.envelope)).toMatchObject({
      llm_call_count: 4,
      agent_hop_count: 2,
      terminal_reason: 'max_llm_calls_exceeded',
      terminated: true,
    });
    expect((await next(id)).terminal_reason).toBe('MAX_LLM_CALLS_EXCEEDED');
  });

  it("counts a resumed envelope's counters against the bounds", async () => {
    const id = 'env_counters';
    const state = await call(c, 'InitializeSession', {
      process_id: id,
      pipeline_config: jsonBytes({ ...LINEAR, max_agent_hops: 5 }),
      envelope: jsonBytes({
        envelope_id: id,
        user_id: '',
        current_stage: 'think',
        agent_hop_count: 4,
        llm_call_count: 2,
        iteration: 1,
      }),
    });
    // The session's first step is issued when it starts: its hop is counted already.
    expect(parseBytes(state.envelope)).toMatchObject({
      current_stage: 'think',
      agent_hop_count: 5,
      llm_call_count: 2,
      iteration: 1,
      user_id: 'anonymous',
    });
    const run = await next(id);
    expect(run.agent_name).toBe('think');
    expect(parseBytes(run.envelope).agent_hop_count).toBe(5);
    const out = await report(id, 'think', {});
    expect(out).toMatchObject({ kind: 'TERMINATE', terminal_reason: 'MAX_AGENT_HOPS_EXCEEDED' });
    expect(parseBytes(out.envelope).llm_call_count).toBe(3);
  });

  it('keeps outputs under output_key across loop-backs, sorts stably, honours a terminated envelope', async () => {
    // Defect 19: outputs under output_key, nothing deleted on a loop-back; defect 20: ties of
    // stage_order keep array order, and a terminated envelope starts a terminated session.
    const id = 'env_keys';
    const config = {
      name: 'loop',
      agents: [
        { name: 'planner', stage_order: 0, output_key: 'plan', default_next: 'critic' },
        {
          name: 'critic',
          stage_order: 0,
          routing_rules: [{ condition: 'verdict', value: 'again', target: 'planner' }],
          default_next: 'end',
        },
      ],
      max_iterations: 3,
      max_llm_calls: 10,
      max_agent_hops: 21,
    };
    const state = await call(c, 'InitializeSession', {
      process_id: id,
      pipeline_config: jsonBytes(config),
    });
    expect(state.stage_order).toEqual(['planner', 'critic']);
    expect((await next(id)).agent_name).toBe('planner');
    await report(id, 'planner', { steps: [1] });
    await report(id, 'critic', { verdict: 'again' });
    const second = await next(id);
    expect(second.agent_name).toBe('planner');
    const outputs = parseBytes(second.envelope).outputs as Record<string, unknown>;
    expect(outputs.plan).toEqual({ steps: [1] });
    expect(outputs.critic).toEqual({ verdict: 'again' });
    expect(outputs.planner).toBeUndefined();
    await report(id, 'planner', { steps: [1, 2] });
    const done = await report(id, 'critic', { verdict: 'ok' });
    expect(done.terminal_reason).toBe('COMPLETED');
    expect(parseBytes(done.envelope).iteration).toBe(1);

    await call(c, 'InitializeSession', {
      process_id: 'env_ended',
      pipeline_config: jsonBytes(LINEAR),
      envelope: jsonBytes({ terminated: true, terminal_reason: 'user_cancelled' }),
    });
    const ended = await next('env_ended');
    expect(ended).toMatchObject({ kind: 'TERMINATE', terminal_reason: 'USER_CANCELLED' });
  });

  it('two clients racing on one session commit every stage once', async () => {
    const id = 'env_race';
    await call(c, 'InitializeSession', { process_id: id, pipeline_config: jsonBytes(LINEAR) });
    const other = server.client('OrchestrationService');
    const refused: number[] = [];
    const loop = async (client: JeevesClient) => {
      for (let guard = 0; guard < 20; guard++) {
        const instr = await call(client, 'GetNextInstruction', { process_id: id });
        if (instr.kind !== 'RUN_AGENT') return instr;
        const agent = instr.agent_name as string;
        try {
          await call(client, 'ReportAgentResult', {
            process_id: id,
            agent_name: agent,
            output: jsonBytes({ by: client === c ? 'first' : 'second' }),
            metrics: { llm_calls: 1 },
            success: true,
          });
        } catch (error) {
          // The other client reported this agent first: the step moved on.
          refused.push((error as { code: number }).code);
        }
      }
      throw new Error('the loop did not end');
    };
    const [a, b] = await Promise.all([loop(c), loop(other)]);
    expect(a.terminal_reason).toBe('COMPLETED');
    expect(b.terminal_reason).toBe('COMPLETED');
    expect(refused.every((code) => code === (status.FAILED_PRECONDITION as number))).toBe(true);
    const envelope = parseBytes(a.envelope);
    expect(envelope).toMatchObject({ agent_hop_count: 3, llm_call_count: 3 });
    const session = await call(c, 'GetSessionState', { process_id: id });
    expect(session.edge_traversals).toEqual({ 'understand->think': 1, 'think->respond': 1 });
    const api = await WardenClient.connect({
      url: server.daemon.acpUrl,
      token: server.daemon.token,
    });
    try {
      const { events } = await runOf(api, id);
      expect(perStage(events, 'stage.completed')).toEqual({ understand: 1, think: 1, respond: 1 });
      expect(perStage(events, 'stage.started')).toEqual({ understand: 1, think: 1, respond: 1 });
    } finally {
      await api.close();
    }
    const unknown = await failure(next('env_never'));
    expect(unknown.code).toBe(status.NOT_FOUND);
  });
});
