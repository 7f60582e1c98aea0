/**
 * Parallel pipelines (`default_run_mode: "parallel"`) over gRPC against a real `warden serve`,
 * with a client loaded from proto/ (not Warden's code), set up like
 * grpc-orchestration.int.test.ts: a fork/join with join all (the original client's loop and
 * one that follows the replies), join any (the losing branch is cancelled and never handed
 * out; its report is refused), a failing branch (fatal, and tolerated with error_next: end),
 * a fork wider than the hops left, the parallel state-dict keys mid-run, and a parallel
 * pipeline with routing rules refused.
 *
 * One client is handed one branch at a time (kernel/external-steps.ts): the one it holds, else
 * the lowest outstanding in stage order; so the runs below are deterministic. Clients that send
 * `worker_id` metadata hold a branch each, so one session's branches run at once.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  call as callWith,
  failure,
  type GrpcDaemon,
  type JeevesClient as Client,
  jsonBytes as json,
  metadataOf,
  parseBytes as parse,
  startGrpcDaemon,
} from './helpers/jeeves-grpc.ts';
import { removeTempDirs } from './helpers/tmp.ts';

let server: GrpcDaemon;

beforeAll(async () => {
  server = await startGrpcDaemon();
}, 60_000);

afterAll(async () => {
  await server?.stop();
  removeTempDirs();
});

const client = () => server.client('OrchestrationService');
const call = (c: Client, method: string, request: object) => callWith(c, method, request);

/** plan → a, b → merge, with Go's habitual `default_next` along the graph (ignored). */
function forkJoin(
  merge: object = {},
  extra: object = {},
): { agents: Array<Record<string, unknown>> } & Record<string, unknown> {
  return {
    name: 'fork-join',
    default_run_mode: 'parallel',
    max_iterations: 3,
    max_llm_calls: 10,
    max_agent_hops: 21,
    agents: [
      { name: 'plan', stage_order: 1, default_next: 'end' },
      { name: 'a', stage_order: 2, requires: ['plan'], default_next: 'merge' },
      { name: 'b', stage_order: 2, requires: ['plan'], default_next: 'merge' },
      { name: 'merge', stage_order: 3, requires: ['a', 'b'], default_next: 'end', ...merge },
    ],
    ...extra,
  };
}

async function init(c: Client, processId: string, config: object): Promise<void> {
  await call(c, 'InitializeSession', {
    process_id: processId,
    pipeline_config: json(config),
    envelope: json({ envelope_id: processId, raw_input: 'hello' }),
    force: false,
  });
}

/** Reports `agent` done (one LLM call) and returns ReportAgentResult's reply. */
function report(c: Client, processId: string, agent: string, success = true, error = '') {
  return call(c, 'ReportAgentResult', {
    process_id: processId,
    agent_name: agent,
    output: success ? json({ response: `${agent} done` }) : Buffer.alloc(0),
    metrics: { llm_calls: success ? 1 : 0, tool_calls: 0, tokens_in: 0, tokens_out: 0 },
    success,
    error,
  });
}

/** The parallel-runner keys of a session's state dict, and its current stage. */
async function sets(c: Client, processId: string) {
  const state = await call(c, 'GetSessionState', { process_id: processId });
  const envelope = parse(state.envelope);
  return {
    current_stage: state.current_stage,
    parallel_mode: envelope.parallel_mode as boolean,
    active: envelope.active_stages as Record<string, boolean>,
    completed: envelope.completed_stage_set as Record<string, boolean>,
    failed: envelope.failed_stages as Record<string, string>,
    hops: envelope.agent_hop_count as number,
  };
}

/** The original client's loop, or one that follows ReportAgentResult's replies. */
async function runAll(c: Client, processId: string, follow: boolean) {
  const ran: string[] = [];
  let instr = await call(c, 'GetNextInstruction', { process_id: processId });
  for (let guard = 0; instr.kind === 'RUN_AGENT' && guard < 20; guard++) {
    ran.push(instr.agent_name as string);
    const reply = await report(c, processId, instr.agent_name as string);
    instr = follow ? reply : await call(c, 'GetNextInstruction', { process_id: processId });
  }
  return { ran, instr };
}

describe('parallel pipelines over OrchestrationService', () => {
  it.each([
    ['the original loop (reply discarded)', false],
    ['a loop that follows the replies', true],
  ])('join all, %s: every agent once, COMPLETED, one hop per agent', async (_name, follow) => {
    const c = client();
    const processId = `env_par_all_${String(follow)}`;
    await init(c, processId, forkJoin());
    const { ran, instr } = await runAll(c, processId, follow);
    expect(ran).toEqual(['plan', 'a', 'b', 'merge']);
    expect(instr.kind).toBe('TERMINATE');
    expect(instr.terminal_reason).toBe('COMPLETED');
    const envelope = parse(instr.envelope);
    expect(envelope).toMatchObject({
      agent_hop_count: 4,
      llm_call_count: 4,
      iteration: 0,
      current_stage: 'end',
      terminated: true,
      terminal_reason: 'completed',
      parallel_mode: true,
      active_stages: {},
      completed_stage_set: { plan: true, a: true, b: true, merge: true },
      failed_stages: {},
    });
    expect(Object.keys(envelope.outputs as object).sort()).toEqual(['a', 'b', 'merge', 'plan']);
    const again = await call(c, 'GetNextInstruction', { process_id: processId });
    expect(again.terminal_reason).toBe('COMPLETED');
    const state = await call(c, 'GetSessionState', { process_id: processId });
    expect(state).toMatchObject({ terminated: true, terminal_reason: 'COMPLETED' });
    expect(state.edge_traversals).toEqual({});
  });

  it('GetSessionState shows the outstanding and completed branches mid-run', async () => {
    const c = client();
    const id = 'env_par_state';
    await init(c, id, forkJoin());
    expect(await sets(c, id)).toEqual({
      current_stage: 'plan',
      parallel_mode: true,
      active: { plan: true },
      completed: {},
      failed: {},
      hops: 1,
    });
    const first = await call(c, 'GetNextInstruction', { process_id: id });
    expect(first.agent_name).toBe('plan');
    const afterPlan = await report(c, id, 'plan');
    expect(afterPlan).toMatchObject({ kind: 'RUN_AGENT', agent_name: 'a' });
    expect(parse(afterPlan.agent_config)).toMatchObject({ name: 'a', requires: ['plan'] });
    expect(parse(afterPlan.envelope)).toMatchObject({
      active_stages: { a: true, b: true },
      completed_stage_set: { plan: true },
      agent_hop_count: 3,
    });
    // Asking again while a is held hands out a again, counting nothing.
    const same = await call(c, 'GetNextInstruction', { process_id: id });
    expect(same.agent_name).toBe('a');
    expect(await sets(c, id)).toMatchObject({ active: { a: true, b: true }, hops: 3 });
    await report(c, id, 'a');
    expect(await sets(c, id)).toEqual({
      current_stage: 'b',
      parallel_mode: true,
      active: { b: true },
      completed: { plan: true, a: true },
      failed: {},
      hops: 3,
    });
    await call(c, 'GetNextInstruction', { process_id: id });
    const afterB = await report(c, id, 'b');
    expect(afterB.agent_name).toBe('merge');
    expect(await sets(c, id)).toMatchObject({
      active: { merge: true },
      completed: { plan: true, a: true, b: true },
      hops: 4,
    });
  });

  it('join any: the first branch to report wins; the other is cancelled, never handed out, its report refused', async () => {
    const c = client();
    const id = 'env_par_any';
    await init(c, id, forkJoin({ join_strategy: 'any' }));
    await call(c, 'GetNextInstruction', { process_id: id });
    await report(c, id, 'plan');
    const held = await call(c, 'GetNextInstruction', { process_id: id });
    expect(held.agent_name).toBe('a');
    // b is outstanding but not handed out: a report for it is refused and changes nothing.
    const early = await failure(report(c, id, 'b'));
    expect(early.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(early.details).toMatch(/'b'.*was not handed out/);
    expect(await sets(c, id)).toMatchObject({
      active: { a: true, b: true },
      completed: { plan: true },
    });

    const afterA = await report(c, id, 'a');
    expect(afterA).toMatchObject({ kind: 'RUN_AGENT', agent_name: 'merge' });
    expect(parse(afterA.envelope)).toMatchObject({
      active_stages: { merge: true },
      completed_stage_set: { plan: true, a: true },
      failed_stages: {},
    });
    const late = await failure(report(c, id, 'b'));
    expect(late.code).toBe(grpc.status.FAILED_PRECONDITION);
    expect(late.details).toMatch(/'merge'.*not 'b'/);

    const { ran, instr } = await runAll(c, id, false);
    expect(ran).toEqual(['merge']);
    expect(instr.terminal_reason).toBe('COMPLETED');
    const envelope = parse(instr.envelope);
    expect(envelope).toMatchObject({
      completed_stage_set: { plan: true, a: true, merge: true },
      active_stages: {},
      failed_stages: {},
      // b was issued with a (one hop each) before a won the join.
      agent_hop_count: 4,
      llm_call_count: 3,
    });
    expect(envelope.outputs).not.toHaveProperty('b');
    // After the run, a report for b is ignored like any report to a finished session.
    const ended = await report(c, id, 'b');
    expect(ended).toMatchObject({ kind: 'TERMINATE', terminal_reason: 'COMPLETED' });
  });

  it('a failing branch without error_next ends the run TOOL_FAILED_FATALLY and cancels the other', async () => {
    const c = client();
    const id = 'env_par_fail';
    await init(c, id, forkJoin());
    await call(c, 'GetNextInstruction', { process_id: id });
    await report(c, id, 'plan');
    expect((await call(c, 'GetNextInstruction', { process_id: id })).agent_name).toBe('a');
    const reply = await report(c, id, 'a', false, 'model unavailable');
    expect(reply).toMatchObject({ kind: 'TERMINATE', terminal_reason: 'TOOL_FAILED_FATALLY' });
    expect(reply.termination_message).toMatch(/model unavailable/);
    expect(parse(reply.envelope)).toMatchObject({
      terminated: true,
      terminal_reason: 'tool_failed_fatally',
      active_stages: {},
      completed_stage_set: { plan: true },
      failed_stages: { a: 'model unavailable' },
      agent_hop_count: 3,
    });
    const next = await call(c, 'GetNextInstruction', { process_id: id });
    expect(next.terminal_reason).toBe('TOOL_FAILED_FATALLY');
  });

  it('error_next: end tolerates a failing branch: what waits for it with after runs, the run completes', async () => {
    const c = client();
    const id = 'env_par_tolerated';
    const config = forkJoin({ requires: ['b'], after: ['a'] });
    config.agents[1] = { ...config.agents[1], error_next: 'end' };
    await init(c, id, config);
    const ran: string[] = [];
    let instr = await call(c, 'GetNextInstruction', { process_id: id });
    while (instr.kind === 'RUN_AGENT') {
      const agent = instr.agent_name as string;
      ran.push(agent);
      await report(c, id, agent, agent !== 'a', agent === 'a' ? 'no answer' : '');
      instr = await call(c, 'GetNextInstruction', { process_id: id });
    }
    expect(ran).toEqual(['plan', 'a', 'b', 'merge']);
    expect(instr.terminal_reason).toBe('COMPLETED');
    expect(parse(instr.envelope)).toMatchObject({
      completed_stage_set: { plan: true, b: true, merge: true },
      failed_stages: { a: 'no answer' },
      agent_hop_count: 4,
    });
  });

  it('bounds: a fork wider than the hops left terminates MAX_AGENT_HOPS_EXCEEDED at the fork', async () => {
    const c = client();
    const id = 'env_par_hops';
    const config = forkJoin({ requires: ['a', 'b', 'c'] }, { max_agent_hops: 3 });
    config.agents.splice(3, 0, {
      name: 'c',
      stage_order: 2,
      requires: ['plan'],
      default_next: 'merge',
    });
    await init(c, id, config);
    expect((await call(c, 'GetNextInstruction', { process_id: id })).agent_name).toBe('plan');
    const reply = await report(c, id, 'plan');
    expect(reply).toMatchObject({ kind: 'TERMINATE', terminal_reason: 'MAX_AGENT_HOPS_EXCEEDED' });
    expect(parse(reply.envelope)).toMatchObject({
      terminal_reason: 'max_agent_hops_exceeded',
      agent_hop_count: 1,
      active_stages: {},
      completed_stage_set: { plan: true },
    });
    const state = await call(c, 'GetSessionState', { process_id: id });
    expect(state).toMatchObject({ terminated: true, terminal_reason: 'MAX_AGENT_HOPS_EXCEEDED' });
  });

  it('refuses a parallel pipeline with routing rules: INVALID_ARGUMENT naming the agent', async () => {
    const c = client();
    const config = forkJoin();
    config.agents[0] = {
      ...config.agents[0],
      routing_rules: [{ condition: 'skip', value: true, target: 'merge' }],
    };
    const error = await failure(init(c, 'env_par_routing', config));
    expect(error.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(error.details).toContain("agents[0].routing_rules: agent 'plan' has routing rules");
    const missing = await failure(call(c, 'GetSessionState', { process_id: 'env_par_routing' }));
    expect(missing.code).toBe(grpc.status.NOT_FOUND);
  });

  it('workers with their own worker_id hold a branch each at the same time', async () => {
    const id = 'par_workers';
    const w1 = client();
    const w2 = client();
    const as = (worker: string) => metadataOf({ worker_id: worker });
    await init(w1, id, forkJoin());
    const plan = await callWith(w1, 'GetNextInstruction', { process_id: id }, as('w1'));
    expect(plan.agent_name).toBe('plan');
    // ReportAgentResult's reply hands the reporter its next branch: report as the worker.
    const reportAs = (c: Client, worker: string, agent: string) =>
      callWith(
        c,
        'ReportAgentResult',
        { process_id: id, agent_name: agent, output: json({ by: worker }), success: true },
        as(worker),
      );
    expect((await reportAs(w1, 'w1', 'plan')).agent_name).toBe('a');
    const first = await callWith(w1, 'GetNextInstruction', { process_id: id }, as('w1'));
    const second = await callWith(w2, 'GetNextInstruction', { process_id: id }, as('w2'));
    expect([first.agent_name, second.agent_name]).toEqual(['a', 'b']);
    // Each worker asking again gets its own branch back, counting nothing.
    expect(
      (await callWith(w2, 'GetNextInstruction', { process_id: id }, as('w2'))).agent_name,
    ).toBe('b');
    expect(
      (await callWith(w1, 'GetNextInstruction', { process_id: id }, as('w1'))).agent_name,
    ).toBe('a');
    expect(await sets(w1, id)).toMatchObject({ active: { a: true, b: true }, hops: 3 });
    // A worker with nothing due waits for work: w2's reply to b waits while a is w1's. Whoever
    // answers first holds merge; the other's reply waits until the run ends.
    const fromB = reportAs(w2, 'w2', 'b').then((reply) => ['w2', reply] as const);
    const fromA = reportAs(w1, 'w1', 'a').then((reply) => ['w1', reply] as const);
    const [holder, handed] = await Promise.race([fromA, fromB]);
    expect(handed.agent_name).toBe('merge');
    const done = await reportAs(holder === 'w1' ? w1 : w2, holder, 'merge');
    const [, other] = await (holder === 'w1' ? fromB : fromA);
    expect(other).toMatchObject({ kind: 'TERMINATE', terminal_reason: 'COMPLETED' });
    expect(done).toMatchObject({ kind: 'TERMINATE', terminal_reason: 'COMPLETED' });
    expect(parse(done.envelope).agent_hop_count).toBe(4);
  });
});
