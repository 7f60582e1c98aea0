/**
 * Every ACP method against a real `warden serve` child process: the happy path and its typed
 * errors, over raw JSON-RPC frames.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { runCli } from './helpers/cli.ts';
import { type DaemonProcess, startDaemon } from './helpers/daemon.ts';
import { connectRaw, type RawPeer } from './helpers/raw-acp.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

let home: string;
let daemon: DaemonProcess;
let peer: RawPeer;

const ONE_STEP = {
  name: 'one-step',
  stages: [{ name: 'only', agent: { kind: 'noop', output: { done: true } }, default_next: 'end' }],
};
const ASKS = {
  name: 'asks',
  stages: [
    {
      name: 'sign_off',
      interrupt: { kind: 'confirmation', prompt: 'Ship it?' },
      routing: [{ when: { field: 'interrupt.approved', eq: true }, next: 'ship' }],
      default_next: 'end',
    },
    { name: 'ship', agent: { kind: 'noop', output: { shipped: true } }, default_next: 'end' },
  ],
};

async function ok(method: string, params: unknown = {}): Promise<Record<string, unknown>> {
  const r = await peer.call(method, params);
  if (r.error) throw new Error(`${method} failed: ${JSON.stringify(r.error)}`);
  return r.result!;
}

async function code(method: string, params: unknown): Promise<string | undefined> {
  return (await peer.call(method, params)).error?.data?.code;
}

beforeAll(async () => {
  home = tempDir('warden-acpm-');
  await runCli(['init'], { home });
  writeFileSync(join(home, 'config.yaml'), 'lanes:\n  jobs: {}\n  tiny: { max_depth: 1 }\n');
  daemon = await startDaemon(home);
  peer = await connectRaw(daemon.acpUrl, daemon.token);
}, 60_000);

afterAll(async () => {
  peer?.close();
  await daemon?.stop();
  removeTempDirs();
});

describe('system', () => {
  it('status and ping', async () => {
    const status = await ok('system.status');
    expect(status).toMatchObject({ store: { kind: 'sqlite', ok: true } });
    expect((await ok('system.ping')).now).toBeTypeOf('number');
  });
});

describe('session.*', () => {
  it('create, get, list, patch, history, delete', async () => {
    const created = await ok('session.create', { key: 'ticket-1', settings: { label: 'a' } });
    expect(created.created).toBe(true);
    const session = created.session as { id: string; updated_at: number };
    expect((await ok('session.create', { key: 'ticket-1' })).created).toBe(false);
    expect((await ok('session.get', { key: 'ticket-1' })).session).toMatchObject({
      id: session.id,
    });
    expect((await ok('session.get', { session_id: session.id })).session).toMatchObject({
      key: 'ticket-1',
    });
    const list = (await ok('session.list', {})).sessions as Array<{ key: string }>;
    expect(list.map((s) => s.key)).toContain('ticket-1');
    const patched = (
      await ok('session.patch', { session_id: session.id, settings: { label: 'b' } })
    ).session as { settings: Record<string, unknown> };
    expect(patched.settings).toEqual({ label: 'b' });
    expect(
      await code('session.patch', { session_id: session.id, settings: {}, expect_version: 99 }),
    ).toBe('CONFLICT');
    const history = await ok('session.history', { session_id: session.id });
    expect((history.events as Array<{ type: string }>).map((e) => e.type)).toEqual([
      'session.created',
      'session.updated',
    ]);
    expect(history).toMatchObject({ last_seq: 2, more: false });
    expect(await ok('session.delete', { session_id: session.id })).toHaveProperty('deleted');
    expect(await code('session.get', { session_id: session.id })).toBe('NOT_FOUND');
    expect(await code('session.get', { key: 'no-such' })).toBe('NOT_FOUND');
    expect(await code('session.history', { session_id: 's_nope' })).toBe('NOT_FOUND');
  });
});

describe('run.*', () => {
  it('start, wait, get, list; cancel; invalid workflows', async () => {
    const { run } = (await ok('run.start', { workflow: ONE_STEP, input: { x: 1 } })) as {
      run: { pid: string };
    };
    const waited = await ok('run.wait', { pid: run.pid, timeout_ms: 20_000 });
    expect(waited).toMatchObject({
      reached: true,
      run: { state: 'terminated', terminal_reason: 'completed' },
    });
    expect((await ok('run.get', { pid: run.pid })).run).toMatchObject({ pid: run.pid });
    const runs = (await ok('run.list', { states: ['terminated'] })).runs as Array<{ pid: string }>;
    expect(runs.map((r) => r.pid)).toContain(run.pid);
    const yaml =
      'name: y\nstages:\n  - name: a\n    agent: { kind: noop }\n    default_next: end\n';
    const fromText = (await ok('run.start', { workflow: yaml })) as { run: { pid: string } };
    expect((await ok('run.wait', { pid: fromText.run.pid, timeout_ms: 20_000 })).reached).toBe(
      true,
    );
    expect(await code('run.start', { workflow: { name: 'bad', stages: [] } })).toBe(
      'WORKFLOW_INVALID',
    );
    expect(await code('run.get', { pid: 'p_nope' })).toBe('NOT_FOUND');
    const asking = (await ok('run.start', { workflow: ASKS })) as { run: { pid: string } };
    const waiting = await ok('run.wait', {
      pid: asking.run.pid,
      until: 'waiting',
      timeout_ms: 20_000,
    });
    expect(waiting).toMatchObject({ reached: true, run: { state: 'waiting' } });
    const cancelled = (await ok('run.cancel', { pid: asking.run.pid, message: 'no' })).run;
    expect(cancelled).toMatchObject({ state: 'terminated', terminal_reason: 'user_cancelled' });
    const notYet = await ok('run.wait', { pid: asking.run.pid, timeout_ms: 10 });
    expect(notYet.reached).toBe(true);
  });
});

describe('interrupt.*', () => {
  it('list, get, resolve continues the run; resolving twice is INVALID_STATE; cancel', async () => {
    const { run } = (await ok('run.start', { workflow: ASKS })) as { run: { pid: string } };
    await ok('run.wait', { pid: run.pid, until: 'waiting', timeout_ms: 20_000 });
    const pending = (await ok('interrupt.list', { status: 'pending', pid: run.pid }))
      .interrupts as Array<{
      id: string;
      prompt: string;
    }>;
    expect(pending).toHaveLength(1);
    expect(pending[0]!.prompt).toBe('Ship it?');
    expect((await ok('interrupt.get', { interrupt_id: pending[0]!.id })).interrupt).toMatchObject({
      status: 'pending',
    });
    const resolved = await ok('interrupt.resolve', {
      interrupt_id: pending[0]!.id,
      response: { approved: true },
    });
    expect(resolved.interrupt).toMatchObject({ status: 'resolved', resolver: 'admin' });
    expect(
      await code('interrupt.resolve', {
        interrupt_id: pending[0]!.id,
        response: { approved: true },
      }),
    ).toBe('INVALID_STATE');
    const done = await ok('run.wait', { pid: run.pid, timeout_ms: 20_000 });
    expect(done.run).toMatchObject({ terminal_reason: 'completed' });
    const second = (await ok('run.start', { workflow: ASKS })) as { run: { pid: string } };
    await ok('run.wait', { pid: second.run.pid, until: 'waiting', timeout_ms: 20_000 });
    const [i2] = (await ok('interrupt.list', { status: 'pending', pid: second.run.pid }))
      .interrupts as Array<{ id: string }>;
    expect((await ok('interrupt.cancel', { interrupt_id: i2!.id })).interrupt).toMatchObject({
      status: 'cancelled',
    });
    expect(await code('interrupt.get', { interrupt_id: 'int_nope' })).toBe('NOT_FOUND');
  });
});

describe('task.*', () => {
  it('submit (idempotent), get, list, cancel, claim → heartbeat → complete; fail → dead; redrive', async () => {
    const a = await ok('task.submit', {
      name: 'send',
      payload: { to: 'a' },
      lane: 'jobs',
      idempotency_key: 'k1',
    });
    const again = await ok('task.submit', {
      name: 'send',
      payload: { to: 'a' },
      lane: 'jobs',
      idempotency_key: 'k1',
    });
    expect(again.deduplicated).toBe(true);
    expect(
      await code('task.submit', {
        name: 'send',
        payload: { to: 'b' },
        lane: 'jobs',
        idempotency_key: 'k1',
      }),
    ).toBe('IDEMPOTENCY_CONFLICT');
    const task = a.task as { id: string };
    expect(task).not.toHaveProperty('lease_token');
    const claimed = (await ok('task.claim', { lanes: ['jobs'], limit: 1, lease_ms: 5_000 }))
      .claims as Array<{
      task: { id: string; lease_token?: unknown };
      attempt: number;
      attempt_token: string;
    }>;
    expect(claimed).toHaveLength(1);
    const claim = claimed[0]!;
    expect(claim.task.id).toBe(task.id);
    expect(claim.task.lease_token).toBeUndefined();
    expect(
      await ok('task.heartbeat', { task_id: task.id, attempt_token: claim.attempt_token }),
    ).toHaveProperty('lease_expires_at');
    expect(
      await ok('task.progress', {
        task_id: task.id,
        attempt_token: claim.attempt_token,
        data: { pct: 50 },
      }),
    ).toEqual({
      ok: true,
    });
    const done = await ok('task.complete', {
      task_id: task.id,
      attempt_token: claim.attempt_token,
      result: { sent: true },
    });
    expect(done.task).toMatchObject({ state: 'succeeded', result: { sent: true } });
    expect(
      await code('task.complete', { task_id: task.id, attempt_token: claim.attempt_token }),
    ).toBe('LEASE_LOST');
    const got = await ok('task.get', { task_id: task.id });
    expect((got.attempts as unknown[]).length).toBe(1);
    expect(JSON.stringify(got)).not.toContain(claim.attempt_token.split('.').at(-1));

    const f = (await ok('task.submit', { name: 'flaky', lane: 'jobs', max_attempts: 1 })).task as {
      id: string;
    };
    const [fc] = (await ok('task.claim', { lanes: ['jobs'] })).claims as Array<{
      attempt_token: string;
    }>;
    const failed = await ok('task.fail', {
      task_id: f.id,
      attempt_token: fc!.attempt_token,
      error: { message: 'smtp down', retryable: true },
    });
    expect(failed.task).toMatchObject({ state: 'dead' });
    expect(
      ((await ok('task.dlq.list', { lane: 'jobs' })).tasks as Array<{ id: string }>).map(
        (t) => t.id,
      ),
    ).toContain(f.id);
    expect((await ok('task.redrive', { task_id: f.id })).task).toMatchObject({ state: 'queued' });
    expect((await ok('task.cancel', { task_id: f.id })).task).toMatchObject({ state: 'canceled' });
    const list = (await ok('task.list', { lane: 'jobs' })).tasks as Array<{ id: string }>;
    expect(list.map((t) => t.id)).toEqual(expect.arrayContaining([task.id, f.id]));
    expect(await code('task.get', { task_id: 't_nope' })).toBe('NOT_FOUND');
    expect(await code('task.submit', { name: 'x', lane: 'undeclared' })).toBe('INVALID_PARAMS');
  });

  it('answers QUEUE_FULL with retry_after_ms at a lane depth limit, and a long poll wakes at once', async () => {
    await ok('task.submit', { name: 'one', lane: 'tiny' });
    const full = await peer.call('task.submit', { name: 'two', lane: 'tiny' });
    expect(full.error?.data).toMatchObject({ code: 'QUEUE_FULL', retryable: true });
    const other = await connectRaw(daemon.acpUrl, daemon.token);
    const [c] = (await ok('task.claim', { lanes: ['tiny'] })).claims as Array<{
      task: { id: string };
      attempt_token: string;
    }>;
    await ok('task.complete', { task_id: c!.task.id, attempt_token: c!.attempt_token });
    const started = Date.now();
    const poll = other.call('task.claim', { lanes: ['tiny'], wait_ms: 20_000 });
    await new Promise((r) => setTimeout(r, 200));
    await ok('task.submit', { name: 'three', lane: 'tiny' });
    const got = await poll;
    expect((got.result?.claims as unknown[]).length).toBe(1);
    expect(Date.now() - started).toBeLessThan(10_000);
    other.close();
  });

  it('an attempt token authorizes only its own attempt', async () => {
    const t1 = (await ok('task.submit', { name: 'a1', lane: 'jobs' })).task as { id: string };
    const t2 = (await ok('task.submit', { name: 'a2', lane: 'jobs' })).task as { id: string };
    const claims = (await ok('task.claim', { lanes: ['jobs'], limit: 2 })).claims as Array<{
      task: { id: string };
      attempt_token: string;
    }>;
    const c1 = claims.find((c) => c.task.id === t1.id)!;
    const c2 = claims.find((c) => c.task.id === t2.id)!;
    expect(await code('task.complete', { task_id: t2.id, attempt_token: c1.attempt_token })).toBe(
      'LEASE_LOST',
    );
    const scoped = await connectRaw(daemon.acpUrl, c1.attempt_token);
    expect((await scoped.call('task.list', {})).error?.data?.code).toBe('FORBIDDEN');
    expect(
      (await scoped.call('task.complete', { task_id: t2.id, attempt_token: c2.attempt_token }))
        .error?.data?.code,
    ).toBe('FORBIDDEN');
    expect(
      (await scoped.call('task.complete', { task_id: t1.id, attempt_token: c1.attempt_token }))
        .result,
    ).toBeTruthy();
    scoped.close();
    await ok('task.release', { task_id: t2.id, attempt_token: c2.attempt_token });
    expect(
      (await ok('task.get', { task_id: t2.id })).task as { state: string; attempts: number },
    ).toMatchObject({
      state: 'queued',
      attempts: 0,
    });
  });
});

describe('events.* and ledger.verify', () => {
  it('subscribe replays then streams live; unsubscribe stops it; REPLAY_GAP-free ledger', async () => {
    const s = (await ok('session.create', { key: 'stream-1' })).session as { id: string };
    const sub = await ok('events.subscribe', { session_id: s.id, from_seq: 0 });
    expect(sub.subscription_id).toBeTypeOf('string');
    await ok('task.submit', { name: 'n', lane: 'jobs', session_key: 'stream-1' });
    await new Promise((r) => setTimeout(r, 300));
    const seen = peer.notifications
      .filter(
        (n) => n.method === 'events.event' && n.params?.subscription_id === sub.subscription_id,
      )
      .map((n) => n.params!.event as { seq: number; type: string });
    expect(seen.map((e) => e.seq)).toEqual([1, 2]);
    expect(seen.map((e) => e.type)).toEqual(['session.created', 'task.queued']);
    expect(await ok('events.unsubscribe', { subscription_id: sub.subscription_id })).toEqual({
      ok: true,
    });
    expect(await code('events.unsubscribe', { subscription_id: sub.subscription_id })).toBe(
      'NOT_FOUND',
    );
    expect(await code('events.subscribe', { session_id: 's_nope' })).toBe('NOT_FOUND');
    const verified = await ok('ledger.verify', {});
    expect(verified.ok).toBe(true);
  });
});
