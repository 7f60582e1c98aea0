/**
 * KernelService over gRPC against a real `warden serve`, with a client loaded from proto/: every
 * RPC's happy path and documented status codes, in the reference's order of checks (pid →
 * identity → exists → owner → quota), and Warden's fixes of the original's defects 5, 6, 12,
 * 13, 15, 16 and 17 as seen on the wire.
 */
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from './helpers/cli.ts';
import {
  call,
  failure,
  type GrpcDaemon,
  type JeevesClient,
  metadataOf,
  startGrpcDaemon,
} from './helpers/jeeves-grpc.ts';
import { removeTempDirs } from './helpers/tmp.ts';

let server: GrpcDaemon;
let k: JeevesClient;

const ALICE = () => metadataOf({ user_id: 'alice', session_id: 's-1', request_id: 'r-1' });
const BOB = () => metadataOf({ user_id: 'bob', session_id: 's-2' });

beforeAll(async () => {
  server = await startGrpcDaemon();
  k = server.client('KernelService');
}, 60_000);

afterAll(async () => {
  await server?.stop();
  removeTempDirs();
});

const create = (pid: string, extra: object = {}) =>
  call(k, 'CreateProcess', {
    pid,
    request_id: `req-${pid}`,
    user_id: 'alice',
    session_id: 's-1',
    ...extra,
  });

describe('KernelService', () => {
  it('creates a PCB with per-field quota defaults, and answers duplicates as the reference says', async () => {
    const pcb = await create('k-create', {
      priority: 'SCHEDULING_PRIORITY_HIGH',
      quota: { max_llm_calls: 7, max_tool_calls: 3, max_agent_hops: 9, max_iterations: 2 },
    });
    expect(pcb).toMatchObject({
      pid: 'k-create',
      request_id: 'req-k-create',
      user_id: 'alice',
      session_id: 's-1',
      state: 'PROCESS_STATE_NEW',
      priority: 'SCHEDULING_PRIORITY_HIGH',
      started_at_ms: 0,
      completed_at_ms: 0,
    });
    expect(pcb.created_at_ms as number).toBeGreaterThan(Date.now() - 60_000);
    // Unset fields take the defaults (defect 6: the original copied zeros).
    expect(pcb.quota).toMatchObject({
      max_llm_calls: 7,
      max_tool_calls: 3,
      max_agent_hops: 9,
      max_iterations: 2,
      timeout_seconds: 300,
      soft_timeout_seconds: 240,
      max_inference_requests: 100,
      max_inference_input_chars: 100_000,
      max_input_tokens: 4096,
    });
    expect(pcb.usage).toMatchObject({ llm_calls: 0, inference_requests: 0 });
    // The same pid again from the same user: the existing PCB, unchanged.
    const again = await create('k-create', { priority: 'SCHEDULING_PRIORITY_LOW' });
    expect(again.priority).toBe('SCHEDULING_PRIORITY_HIGH');
    // From another user: ALREADY_EXISTS (the original handed over the other user's PCB).
    const other = await failure(create('k-create', { user_id: 'bob' }));
    expect(other.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(other.details).not.toContain('alice');
  });

  it('checks pid, then identity, then existence, then owner', async () => {
    expect((await failure(call(k, 'CreateProcess', { user_id: 'a', session_id: 's' }))).code).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
    expect((await failure(create('k-ident', { user_id: '' }))).code).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    expect((await failure(create('k-ident', { session_id: '' }))).code).toBe(
      grpc.status.UNAUTHENTICATED,
    );
    expect((await failure(create('k-ident', { priority: 9 }))).code).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
    expect((await failure(create('k-ident', { quota: { max_llm_calls: -1 } }))).code).toBe(
      grpc.status.INVALID_ARGUMENT,
    );
    await create('k-ident');
    for (const rpc of ['GetProcess', 'ScheduleProcess', 'TerminateProcess', 'RecordUsage']) {
      expect((await failure(call(k, rpc, { pid: '' }, ALICE()))).code, rpc).toBe(
        grpc.status.INVALID_ARGUMENT,
      );
      const noMetadata = await failure(call(k, rpc, { pid: 'k-ident' }));
      expect(noMetadata.code, rpc).toBe(grpc.status.UNAUTHENTICATED);
      expect(noMetadata.details).toMatch(/missing request metadata/);
      const noSession = await failure(
        call(k, rpc, { pid: 'k-ident' }, metadataOf({ user_id: 'alice' })),
      );
      expect(noSession.code, rpc).toBe(grpc.status.UNAUTHENTICATED);
      expect((await failure(call(k, rpc, { pid: 'k-nobody' }, ALICE()))).code, rpc).toBe(
        grpc.status.NOT_FOUND,
      );
      const denied = await failure(call(k, rpc, { pid: 'k-ident' }, BOB()));
      expect(denied.code, rpc).toBe(grpc.status.PERMISSION_DENIED);
      expect(denied.details).not.toContain('alice');
    }
    // Nothing above changed the process.
    const pcb = await call(k, 'GetProcess', { pid: 'k-ident' }, ALICE());
    expect(pcb.state).toBe('PROCESS_STATE_NEW');
    expect(pcb.usage).toMatchObject({ llm_calls: 0 });
    // Another token's caller has its own pids: NOT_FOUND, not PERMISSION_DENIED.
    const admin = metadataOf({
      authorization: `Bearer ${server.daemon.token}`,
      user_id: 'alice',
      session_id: 's-1',
    });
    expect((await failure(call(k, 'GetProcess', { pid: 'k-ident' }, admin))).code).toBe(
      grpc.status.NOT_FOUND,
    );
    const bad = metadataOf({ authorization: 'Bearer nope', user_id: 'a', session_id: 's' });
    expect((await failure(call(k, 'GetProcess', { pid: 'k-ident' }, bad))).code).toBe(
      grpc.status.UNAUTHENTICATED,
    );
  });

  it('runs the lifecycle: schedule, FIFO next-runnable, transitions, terminate with force', async () => {
    const owner = metadataOf({ user_id: 'carol', session_id: 's-c' });
    const pids = ['k-life-1', 'k-life-2', 'k-life-3'];
    for (const pid of pids) {
      await create(pid, { user_id: 'carol', session_id: 's-c' });
      const ready = await call(k, 'ScheduleProcess', { pid }, owner);
      expect(ready.state).toBe('PROCESS_STATE_READY');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    const again = await failure(call(k, 'ScheduleProcess', { pid: 'k-life-1' }, owner));
    expect(again.code).toBe(grpc.status.FAILED_PRECONDITION);
    // FIFO within a priority (defect 5: the Rust port popped the newest first).
    const first = await call(k, 'GetNextRunnable', {}, owner);
    expect(first).toMatchObject({ pid: 'k-life-1', state: 'PROCESS_STATE_RUNNING' });
    expect(first.started_at_ms as number).toBeGreaterThan(0);
    expect(first.last_scheduled_at_ms as number).toBeGreaterThan(0);
    expect((await call(k, 'GetNextRunnable', {}, owner)).pid).toBe('k-life-2');
    // Re-queued goes to the back of its class.
    await call(k, 'TransitionState', { pid: 'k-life-1', new_state: 'PROCESS_STATE_READY' }, owner);
    expect((await call(k, 'GetNextRunnable', {}, owner)).pid).toBe('k-life-3');
    expect((await call(k, 'GetNextRunnable', {}, owner)).pid).toBe('k-life-1');
    const empty = await failure(call(k, 'GetNextRunnable', {}, owner));
    expect(empty.code).toBe(grpc.status.NOT_FOUND);
    expect(empty.details).toBe('no runnable process');

    // UNSPECIFIED new_state is the caller's mistake (the original read it as NEW).
    const unspecified = await failure(
      call(k, 'TransitionState', { pid: 'k-life-1', new_state: 0 }, owner),
    );
    expect(unspecified.code).toBe(grpc.status.INVALID_ARGUMENT);
    const illegal = await failure(
      call(k, 'TransitionState', { pid: 'k-life-1', new_state: 'PROCESS_STATE_NEW' }, owner),
    );
    expect(illegal.code).toBe(grpc.status.FAILED_PRECONDITION);
    const waiting = await call(
      k,
      'TransitionState',
      { pid: 'k-life-1', new_state: 'PROCESS_STATE_WAITING', reason: 'input' },
      owner,
    );
    expect(waiting.state).toBe('PROCESS_STATE_WAITING');
    // One termination path (defect 17): TransitionState(→TERMINATED) of RUNNING needs force.
    const viaTransition = await failure(
      call(k, 'TransitionState', { pid: 'k-life-2', new_state: 'PROCESS_STATE_TERMINATED' }, owner),
    );
    expect(viaTransition.code).toBe(grpc.status.FAILED_PRECONDITION);
    const unforced = await failure(call(k, 'TerminateProcess', { pid: 'k-life-2' }, owner));
    expect(unforced.code).toBe(grpc.status.FAILED_PRECONDITION);
    const ended = await call(
      k,
      'TerminateProcess',
      { pid: 'k-life-2', reason: 'done', force: true },
      owner,
    );
    expect(ended.state).toBe('PROCESS_STATE_TERMINATED');
    expect(ended.completed_at_ms as number).toBeGreaterThan(0);
    const twice = await call(k, 'TerminateProcess', { pid: 'k-life-2' }, owner);
    expect(twice.completed_at_ms).toBe(ended.completed_at_ms);
    const zombie = await call(
      k,
      'TransitionState',
      { pid: 'k-life-2', new_state: 'PROCESS_STATE_ZOMBIE' },
      owner,
    );
    expect(zombie.state).toBe('PROCESS_STATE_ZOMBIE');

    const counts = await call(k, 'GetProcessCounts', {}, owner);
    expect(counts).toEqual({
      counts_by_state: { running: 1, waiting: 1, zombie: 1 },
      total: 3,
      queue_depth: 0,
    });
    const listed = await call(k, 'ListProcesses', { state: 'PROCESS_STATE_RUNNING' }, owner);
    expect((listed.processes as Array<{ pid: string }>).map((p) => p.pid)).toEqual(['k-life-3']);
    const all = await call(k, 'ListProcesses', {}, owner);
    expect((all.processes as Array<{ pid: string }>).map((p) => p.pid)).toEqual(pids);
    // The caller's processes only, narrowed by the metadata's user (defect 15).
    const asBob = await call(k, 'ListProcesses', { user_id: 'carol' }, BOB());
    expect(asBob.processes).toEqual([]);
    const badState = await failure(call(k, 'ListProcesses', { state: 42 }, owner));
    expect(badState.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('records usage into one record that CheckQuota and GetProcess both show', async () => {
    const meta = metadataOf({ user_id: 'dave', session_id: 's-d' });
    await create('k-usage', { user_id: 'dave', session_id: 's-d', quota: { max_llm_calls: 2 } });
    const unknown = await call(k, 'CheckQuota', { pid: 'k-nothing' }, meta);
    expect(unknown).toMatchObject({ within_bounds: true, usage: null, quota: null });
    const usage = await call(
      k,
      'RecordUsage',
      {
        pid: 'k-usage',
        llm_calls: 2,
        tokens_in: 40,
        inference_requests: 5,
        inference_input_chars: 900,
      },
      meta,
    );
    // Every counter adds the value sent (defect 13: the original added 1 inference request).
    expect(usage).toMatchObject({ llm_calls: 2, tokens_in: 40, inference_requests: 5 });
    expect(usage.inference_input_chars).toBe(900);
    expect((await call(k, 'CheckQuota', { pid: 'k-usage' }, meta)).within_bounds).toBe(true);
    await call(k, 'RecordUsage', { pid: 'k-usage', llm_calls: 1, agent_hops: 1 }, meta);
    const over = await call(k, 'CheckQuota', { pid: 'k-usage' }, meta);
    expect(over).toMatchObject({
      within_bounds: false,
      exceeded_reason: 'max_llm_calls_exceeded',
      usage: { llm_calls: 3, agent_hops: 1 },
      quota: { max_llm_calls: 2 },
    });
    // PCB.usage is the same record (defect 12: the original's stayed at zero).
    const pcb = await call(k, 'GetProcess', { pid: 'k-usage' }, meta);
    expect(pcb.usage).toMatchObject({ llm_calls: 3, inference_requests: 5 });
    const refused = await failure(call(k, 'ScheduleProcess', { pid: 'k-usage' }, meta));
    expect(refused.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
    expect(refused.details).toBe('quota limit exceeded: max_llm_calls_exceeded');
    // Kept after termination (the original deleted the tracker: "within bounds" again).
    await call(k, 'TerminateProcess', { pid: 'k-usage' }, meta);
    expect((await call(k, 'CheckQuota', { pid: 'k-usage' }, meta)).within_bounds).toBe(false);
    const negative = await failure(call(k, 'RecordUsage', { pid: 'k-usage', llm_calls: -2 }, meta));
    expect(negative.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('checks rate limits per user and endpoint: 60 a minute, recorded only when asked', async () => {
    const check = (record: boolean, user = 'erin') =>
      call(k, 'CheckRateLimit', { user_id: user, endpoint: '/chat', record });
    for (let i = 0; i < 5; i++) expect((await check(false)).remaining).toBe(60);
    for (let i = 1; i <= 60; i++) {
      const ok = await check(true);
      expect(ok).toMatchObject({ allowed: true, exceeded: false, remaining: 60 - i });
    }
    const refused = await check(true);
    expect(refused).toMatchObject({
      allowed: false,
      exceeded: true,
      limit_type: 'minute',
      current_count: 60,
      limit: 60,
      remaining: 0,
    });
    expect(refused.retry_after_seconds as number).toBeGreaterThan(0);
    expect(refused.retry_after_seconds as number).toBeLessThanOrEqual(66);
    // Another user's windows are their own.
    expect((await check(true, 'frank')).allowed).toBe(true);
    const noEndpoint = await failure(call(k, 'CheckRateLimit', { user_id: 'erin' }));
    expect(noEndpoint.code).toBe(grpc.status.INVALID_ARGUMENT);
  });

  it('leaves every change in the event log, where warden sees it', async () => {
    const meta = metadataOf({ user_id: 'gina', session_id: 's-g' });
    await create('k-log', { user_id: 'gina', session_id: 's-g' });
    await call(k, 'ScheduleProcess', { pid: 'k-log' }, meta);
    const status = await call(k, 'GetProcessCounts', {}, meta);
    expect(status).toEqual({ counts_by_state: { ready: 1 }, total: 1, queue_depth: 1 });
    const verify = await runCli(['ledger', 'verify'], { home: server.home });
    expect(verify.code, verify.stderr).toBe(0);
  });
});
