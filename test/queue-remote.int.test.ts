/**
 * Remote workers' job API (RemoteWork: claim, heartbeat, complete, fail, progress, release) on a
 * real SQLite file: fencing by lease token (DESIGN.md §2.4), retries identical to the in-process
 * JobWorker, long-polls that wake on a submit from this process or another without polling
 * (§2.9: an idle wait writes nothing), and lease expiry as the only reclaim of a remote lease.
 *
 * Lease and backoff arithmetic runs on a ManualClock; the long-poll and reaper tests run on real
 * time and wait on conditions, asserting only that a wake came well before the wait's end.
 */
import { writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { type Clock, type ErrorCode, ManualClock, type WardenError } from '../src/core/index.ts';
import {
  isDeadLocalOwner,
  JobQueue,
  type JobQueueOptions,
  JobWorker,
  reclaimExpiredLeases,
  REMOTE_OWNER_PATTERN,
  type RemoteClaim,
  RemoteWork,
  remoteWorkerId,
  type RemoteWorkOptions,
} from '../src/queue/index.ts';
import { type EventRecord, openSqliteStore, type Store } from '../src/store/index.ts';
import { killChildren, moduleUrl, spawnModule } from './helpers/child.ts';
import { wrapStore } from './helpers/store-spy.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { rejection, sleep } from './helpers/wait.ts';

const STORE_MODULE = moduleUrl('src/store/index.ts');
const QUEUE_MODULE = moduleUrl('src/queue/index.ts');

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await killChildren();
});
afterAll(removeTempDirs);

async function open(file = join(tempDir(), 'q.db')): Promise<Store> {
  const store = await openSqliteStore({ file });
  cleanups.push(() => store.close());
  return store;
}

interface Setup {
  store: Store;
  queue: JobQueue;
  remote: RemoteWork;
}

async function setup(
  options: {
    clock?: Clock;
    store?: Store;
    queue?: Partial<JobQueueOptions>;
    remote?: Partial<RemoteWorkOptions>;
  } = {},
): Promise<Setup> {
  const store = options.store ?? (await open());
  const queue = new JobQueue({
    store,
    lanes: { a: {} },
    ...(options.clock ? { clock: options.clock } : {}),
    ...options.queue,
  });
  await queue.ready();
  const remote = new RemoteWork({ queue, random: () => 0.5, ...options.remote });
  cleanups.push(() => remote.stop());
  return { store, queue, remote };
}

async function allEvents(store: Store): Promise<EventRecord[]> {
  const out: EventRecord[] = [];
  for (const session of await store.listSessions())
    out.push(...(await store.readEvents({ sessionId: session.id, limit: 10_000 })));
  return out;
}

async function taskEvents(store: Store, id: string, type?: string): Promise<EventRecord[]> {
  return (await allEvents(store)).filter(
    (e) => e.task_id === id && (type === undefined || e.type === type),
  );
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<WardenError> {
  const error = await rejection(promise);
  expect(error.code, error.message).toBe(code);
  return error;
}

/** Everything a stale call must leave unchanged. */
async function snapshot(store: Store, id: string) {
  return {
    task: await store.getTask(id),
    attempts: await store.listAttempts(id),
    events: (await allEvents(store)).length,
  };
}

async function waitUntil<T>(
  probe: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

const W1 = remoteWorkerId('py-worker', 'w1');
const W2 = remoteWorkerId('go-worker', 'w2');

async function claimOne(remote: RemoteWork, workerId: string, leaseMs = 1_000) {
  const claims = await remote.claim({ workerId, lanes: ['a'], leaseMs });
  expect(claims).toHaveLength(1);
  return claims[0]!;
}

// =============================================================================================

describe('claim and settle', () => {
  it('claim → complete: one task.claimed and one task.succeeded, the result stored', async () => {
    const { store, queue, remote } = await setup();
    const { id } = await queue.submit('resize', { w: 64 }, { lane: 'a' });
    const claim = await claimOne(remote, W1, 5_000);
    expect(claim.task.id).toBe(id);
    expect(claim.task.payload).toEqual({ w: 64 });
    expect(claim.attempt).toBe(1);
    const running = (await store.getTask(id))!;
    expect(running.state).toBe('running');
    expect(running.lease_owner).toBe(W1);
    expect(running.lease_token).toBe(claim.leaseToken);
    expect(claim.leaseExpiresAt).toBe(running.lease_expires_at);
    const [claimed] = await taskEvents(store, id, 'task.claimed');
    expect(claimed!.data).toMatchObject({ lane: 'a', worker_id: W1 });
    expect(claimed!.attempt).toBe(1);

    const settled = await remote.complete(id, claim.leaseToken, { url: 'x.png' });
    expect(settled).toEqual({
      taskId: id,
      attempt: 1,
      state: 'succeeded',
      availableAt: null,
      reason: null,
      error: null,
    });
    expect(await queue.result(id)).toEqual({ url: 'x.png' });
    expect((await taskEvents(store, id)).map((e) => e.type)).toEqual([
      'task.queued',
      'task.claimed',
      'task.succeeded',
    ]);
  });

  it('takes job tasks of declared lanes only, from a remote worker id', async () => {
    const { store, queue, remote } = await setup();
    // A workflow step in the same lane, queued before the job: never handed to a remote worker.
    const { task } = await queue.submit('template', {}, { lane: 'a' });
    await store.commit([
      {
        op: 'task.insert',
        row: { ...task, id: `${task.id}_step`, kind: 'agent_step', idempotency_key: null },
      },
    ]);
    await store.commit([
      { op: 'task.cancel', id: task.id, expectState: 'queued', leaseToken: null, now: Date.now() },
    ]);
    const { id } = await queue.submit('job', {}, { lane: 'a' });
    const claims = await remote.claim({ workerId: W1, lanes: ['a'], limit: 10 });
    expect(claims.map((c) => c.task.id)).toEqual([id]);
    expect((await store.getTask(`${task.id}_step`))!.state).toBe('queued');

    const unknown = await expectCode(
      remote.claim({ workerId: W1, lanes: ['a', 'nope'] }),
      'INVALID_PARAMS',
    );
    expect(unknown.message).toContain("unknown lane 'nope' (declared: default, a)");
    const local = await expectCode(
      remote.claim({ workerId: `${hostname()}/1/abc/def`, lanes: ['a'] }),
      'INVALID_PARAMS',
    );
    expect(local.message).toContain('request.workerId');
    await expectCode(
      remote.claim({ workerId: W1, lanes: ['a'], leaseMs: 700_000 }),
      'INVALID_PARAMS',
    );
    await expectCode(remote.claim({ workerId: W1, lanes: ['a'], limit: 257 }), 'INVALID_PARAMS');
    await expectCode(remote.claim({ workerId: W1, lanes: [] }), 'INVALID_PARAMS');
  });

  it('fail → retries with backoff, then dead: the same events and states as an in-process worker', async () => {
    const { store, queue, remote } = await setup();
    const options = {
      attempts: 3,
      poisonThreshold: 0,
      backoff: { baseMs: 40, maxMs: 100 },
    };
    // Remote: three claims (each long-polls through the backoff), three failures.
    const { id: remoteId } = await queue.submit('flaky', { n: 1 }, options);
    const outcomes = [];
    for (let i = 0; i < 3; i++) {
      const [claim] = await remote.claim({ workerId: W1, lanes: ['default'], waitMs: 10_000 });
      expect(claim!.attempt).toBe(i + 1);
      outcomes.push(await remote.fail(remoteId, claim!.leaseToken, { message: 'boom' }));
    }
    expect(outcomes.map((o) => [o.state, o.reason])).toEqual([
      ['queued', 'retry'],
      ['queued', 'retry'],
      ['dead', 'attempts_exhausted'],
    ]);
    expect(outcomes[0]!.availableAt).toEqual(expect.any(Number));
    expect(outcomes[2]!.error).toMatchObject({
      code: 'JOB_FAILED',
      message: 'boom',
      retryable: true,
    });

    // In-process: the same job, the same failure, the same jitter.
    const { id: localId } = await queue.submit('flaky', { n: 1 }, options);
    const worker = new JobWorker({
      queue,
      random: () => 0.5,
      heartbeat: 'timer',
      lanes: ['default'],
    });
    worker.handle('flaky', () => {
      throw new Error('boom');
    });
    await worker.start();
    cleanups.push(() => worker.stop({ abort: true }));
    await waitUntil(
      async () => (await store.getTask(localId))!.state === 'dead',
      'the local job to die',
    );

    const shape = async (id: string) =>
      (await taskEvents(store, id)).map((e) => {
        const {
          lease_expires_at: _l,
          worker_id: _w,
          available_at: _a,
          ...data
        } = e.data as Record<string, unknown>;
        return { type: e.type, attempt: e.attempt, data };
      });
    const remoteShape = await shape(remoteId);
    expect(remoteShape.map((e) => e.type)).toEqual([
      'task.queued',
      'task.claimed',
      'task.retry_scheduled',
      'task.claimed',
      'task.retry_scheduled',
      'task.claimed',
      'task.dead',
    ]);
    expect(remoteShape).toEqual(await shape(localId));
    const [remoteTask, localTask] = [
      (await store.getTask(remoteId))!,
      (await store.getTask(localId))!,
    ];
    expect(remoteTask.last_error).toEqual(localTask.last_error);
    expect(remoteTask.attempts).toBe(3);
    expect((await store.listAttempts(remoteId)).map((a) => a.outcome)).toEqual([
      'failed',
      'failed',
      'failed',
    ]);
  });

  it('a retry is due at availableAt: the backoff of the policy, or the worker’s retryAfterMs', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 1));
    const { store, queue, remote } = await setup({ clock });
    const { id } = await queue.submit(
      'j',
      {},
      { lane: 'a', backoff: { baseMs: 1_000, maxMs: 60_000 } },
    );
    let claim = await claimOne(remote, W1);
    let out = await remote.fail(id, claim.leaseToken, { message: 'try later' });
    // Full jitter with random 0.5 after attempt 1: 0.5 × 1000 ms.
    expect(out).toMatchObject({ state: 'queued', reason: 'retry', availableAt: clock.now() + 500 });
    expect((await store.getTask(id))!.available_at).toBe(clock.now() + 500);
    clock.advance(500);
    claim = await claimOne(remote, W1);
    out = await remote.fail(id, claim.leaseToken, { message: 'later', retryAfterMs: 7_000 });
    expect(out.availableAt).toBe(clock.now() + 7_000);
  });

  it('a remote code counts only when Warden knows it and a job may give it', async () => {
    const clock = new ManualClock();
    const { store, queue, remote } = await setup({ clock });
    const fail = async (failure: Parameters<RemoteWork['fail']>[2]) => {
      const { id } = await queue.submit('j', {}, { lane: 'a' });
      const claim = await claimOne(remote, W1);
      const out = await remote.fail(id, claim.leaseToken, failure);
      const event = (await taskEvents(store, id)).at(-1)!;
      return { out, data: event.data as { error: { code: string }; details?: unknown } };
    };
    // A known code, with its own retryability: INVALID_PARAMS is not retried.
    let r = await fail({ code: 'INVALID_PARAMS', message: 'bad row' });
    expect(r.out).toMatchObject({ state: 'failed', reason: 'non_retryable' });
    expect(r.out.error).toMatchObject({ code: 'INVALID_PARAMS', retryable: false });
    // The kernel's codes cannot be borrowed: JOB_FAILED, the code kept in the details.
    for (const code of ['CANCELED', 'LEASE_LOST', 'STORE_CORRUPT']) {
      r = await fail({ code, message: 'spoof' });
      expect(r.out.error?.code).toBe('JOB_FAILED');
      expect(r.out.state).toBe('queued');
      expect(r.data.details).toEqual({ code });
    }
    // An unknown code: JOB_FAILED with the code and the worker's details.
    r = await fail({ code: 'E_TIMEOUT_DB', message: 'db slow', details: { row: 3 } });
    expect(r.out.error?.code).toBe('JOB_FAILED');
    expect(r.data.details).toEqual({ row: 3, code: 'E_TIMEOUT_DB' });
    // retryable: false ends the task failed.
    r = await fail({ message: 'never works', retryable: false });
    expect(r.out).toMatchObject({ state: 'failed', reason: 'non_retryable' });
  });

  it('results and progress are size-checked like in-process ones; progress is fenced', async () => {
    const { store, queue, remote } = await setup({
      queue: { maxResultBytes: 1_024, maxProgressBytes: 512 },
    });
    const { id } = await queue.submit('big', {}, { lane: 'a' });
    const claim = await claimOne(remote, W1, 5_000);
    await remote.progress(id, claim.leaseToken, { done: 1 });
    expect((await taskEvents(store, id, 'task.progress')).map((e) => e.data)).toEqual([
      { progress: { done: 1 } },
    ]);
    await expectCode(remote.progress(id, claim.leaseToken, 'x'.repeat(600)), 'PAYLOAD_TOO_LARGE');
    // An oversized result fails the job without retrying, as for an in-process handler.
    const out = await remote.complete(id, claim.leaseToken, 'y'.repeat(2_000));
    expect(out).toMatchObject({ state: 'failed', reason: 'non_retryable' });
    expect(out.error?.code).toBe('PAYLOAD_TOO_LARGE');
    await expectCode(remote.progress(id, claim.leaseToken, { done: 2 }), 'LEASE_LOST');
  });

  it('release hands an unstarted claim back in its place without spending an attempt', async () => {
    const { store, queue, remote } = await setup();
    const { id, task } = await queue.submit('j', {}, { lane: 'a' });
    const claim = await claimOne(remote, W1);
    const out = await remote.release(id, claim.leaseToken);
    expect(out).toMatchObject({ state: 'queued', availableAt: task.available_at });
    const back = (await store.getTask(id))!;
    expect(back).toMatchObject({ state: 'queued', attempts: 0, sort_key: task.sort_key });
    expect(await taskEvents(store, id, 'task.released')).toHaveLength(1);
    expect((await claimOne(remote, W2)).attempt).toBe(1);
    await expectCode(remote.release(id, claim.leaseToken), 'LEASE_LOST');
  });
});

// =============================================================================================

describe('fencing', () => {
  it('a stale token after expiry and reclaim by another claimer is LEASE_LOST and changes nothing', async () => {
    const clock = new ManualClock();
    const { store, queue, remote } = await setup({ clock });
    const { id } = await queue.submit(
      'j',
      {},
      { lane: 'a', backoff: { baseMs: 1_000, maxMs: 1_000 } },
    );
    const stale = await claimOne(remote, W1, 1_000);
    clock.advance(1_001);
    const reclaimed = await reclaimExpiredLeases(store, clock.now(), {
      isDeadOwner: isDeadLocalOwner,
      agingMs: queue.agingMs,
      random: () => 0.5,
    });
    expect(reclaimed).toBe(1);
    clock.advance(1_000);
    const fresh = await claimOne(remote, W2, 1_000);
    expect(fresh.attempt).toBe(2);

    const before = await snapshot(store, id);
    for (const call of [
      () => remote.complete(id, stale.leaseToken, { late: true }),
      () => remote.fail(id, stale.leaseToken, { message: 'late' }),
      () => remote.heartbeat(id, stale.leaseToken),
      () => remote.progress(id, stale.leaseToken, { late: true }),
      () => remote.release(id, stale.leaseToken),
    ]) {
      const error = await expectCode(call(), 'LEASE_LOST');
      expect(error.details).toMatchObject({ task_id: id, state: 'running' });
    }
    expect(await snapshot(store, id)).toEqual(before);
    expect((await remote.complete(id, fresh.leaseToken, 'ok')).state).toBe('succeeded');
    await expectCode(remote.complete('t_missing', fresh.leaseToken, null), 'NOT_FOUND');
  });

  it('complete twice with one token: the first wins, the second is LEASE_LOST', async () => {
    const { store, queue, remote } = await setup();
    const { id } = await queue.submit('j', {}, { lane: 'a' });
    const claim = await claimOne(remote, W1);
    const [first, second] = await Promise.allSettled([
      remote.complete(id, claim.leaseToken, 1),
      remote.complete(id, claim.leaseToken, 2),
    ]);
    expect(first.status).toBe('fulfilled');
    expect(second.status).toBe('rejected');
    expect((second as PromiseRejectedResult).reason).toMatchObject({ code: 'LEASE_LOST' });
    await expectCode(remote.complete(id, claim.leaseToken, 3), 'LEASE_LOST');
    await expectCode(remote.fail(id, claim.leaseToken, { message: 'x' }), 'LEASE_LOST');
    expect(await queue.result(id)).toBe(1);
    expect(await taskEvents(store, id, 'task.succeeded')).toHaveLength(1);
  });

  it('cancel while claimed: heartbeat and complete are LEASE_LOST and the task stays canceled', async () => {
    const { store, queue, remote } = await setup();
    const { id } = await queue.submit('j', {}, { lane: 'a' });
    const claim = await claimOne(remote, W1);
    await queue.cancel(id);
    const error = await expectCode(remote.complete(id, claim.leaseToken, 'late'), 'LEASE_LOST');
    expect(error.details).toMatchObject({ state: 'canceled' });
    await expectCode(remote.heartbeat(id, claim.leaseToken), 'LEASE_LOST');
    expect((await store.getTask(id))!.state).toBe('canceled');
    expect(await taskEvents(store, id, 'task.succeeded')).toHaveLength(0);
  });

  it('heartbeat extends the lease; the reaper leaves a live remote lease alone and reclaims it at expiry', async () => {
    const clock = new ManualClock();
    const { store, queue, remote } = await setup({ clock });
    const { id } = await queue.submit('j', {}, { lane: 'a' });
    const t0 = clock.now();
    const claim = await claimOne(remote, W1, 1_000);
    expect(claim.leaseExpiresAt).toBe(t0 + 1_000);
    const reclaim = () =>
      reclaimExpiredLeases(store, clock.now(), {
        isDeadOwner: isDeadLocalOwner,
        agingMs: queue.agingMs,
      });
    clock.advance(800);
    expect(await remote.heartbeat(id, claim.leaseToken, 1_000)).toBe(t0 + 1_800);
    expect((await store.getTask(id))!.lease_expires_at).toBe(t0 + 1_800);
    clock.advance(800); // past the first expiry, before the renewed one
    expect(await reclaim()).toBe(0);
    expect((await store.getTask(id))!.lease_token).toBe(claim.leaseToken);
    clock.advance(201);
    expect(await reclaim()).toBe(1);
    const [expired] = await taskEvents(store, id, 'task.lease_expired');
    expect(expired!.data).toMatchObject({ owner: W1, why: 'lease_expired' });
    await expectCode(remote.complete(id, claim.leaseToken, 'late'), 'LEASE_LOST');
  });

  it('a remote owner id is never judged a dead local process, whatever name it was given', () => {
    for (const name of ['w', `${hostname()}/1/abc`, '../../x', '']) {
      const id = remoteWorkerId(name, 'r4nd0m');
      expect(id).toMatch(REMOTE_OWNER_PATTERN);
      expect(id.split('/')).toHaveLength(3);
      expect(isDeadLocalOwner(id)).toBe(false);
    }
  });
});

// =============================================================================================

describe('long-poll', () => {
  it('wakes at once on a submit from this process; an idle wait makes no write transaction', async () => {
    const base = await open();
    let reads = 0;
    const store = wrapStore(base, {
      nextDue: (lanes, kinds) => {
        reads += 1;
        return base.nextDue(lanes, kinds);
      },
    });
    const { queue, remote } = await setup({ store });
    const writes = store.writeTransactions;
    const started = Date.now();
    const polling = remote.claim({ workerId: W1, lanes: ['a'], waitMs: 30_000 });
    await sleep(600);
    expect(store.writeTransactions).toBe(writes); // idle: no claim, no write
    expect(reads).toBe(1); // one read, then asleep: no polling
    const { id } = await queue.submit('now', {}, { lane: 'a' });
    const claims = await polling;
    expect(claims.map((c) => c.task.id)).toEqual([id]);
    expect(Date.now() - started).toBeLessThan(15_000); // woken, not timed out
    expect(store.writeTransactions - writes).toBe(2); // the submit and one claim
  });

  it('wakes on a submit from another process', async () => {
    const dir = tempDir();
    const file = join(dir, 'q.db');
    const go = join(dir, 'go');
    const store = await open(file);
    const { remote } = await setup({ store });
    const child = spawnModule(`
import { existsSync } from 'node:fs';
import { JobQueue } from ${JSON.stringify(QUEUE_MODULE)};
import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
const store = await openSqliteStore({ file: ${JSON.stringify(file)}, mustExist: true });
const queue = new JobQueue({ store, lanes: { a: {} } });
await queue.ready();
console.log('ready');
while (!existsSync(${JSON.stringify(go)})) await new Promise((resolve) => setTimeout(resolve, 20));
const { id } = await queue.submit('from-child', { pid: process.pid }, { lane: 'a' });
console.log(JSON.stringify({ id }));
await store.close();
`);
    await child.line((l) => l === 'ready', 'the child to open the store');
    const writes = store.writeTransactions;
    const polling = remote.claim({ workerId: W1, lanes: ['a'], waitMs: 30_000 });
    await sleep(500);
    expect(store.writeTransactions).toBe(writes);
    const sent = Date.now();
    writeFileSync(go, '');
    const claims = await polling;
    const line = await child.line((l) => l.startsWith('{"id"'), 'the child to submit');
    expect(claims.map((c) => c.task.id)).toEqual([(JSON.parse(line) as { id: string }).id]);
    expect(Date.now() - sent).toBeLessThan(15_000);
    expect(store.writeTransactions - writes).toBe(1); // the claim
  }, 40_000);

  it('wakes when a delayed job comes due', async () => {
    const { queue, remote } = await setup();
    const { task } = await queue.submit('later', {}, { lane: 'a', delayMs: 300 });
    const claims = await remote.claim({ workerId: W1, lanes: ['a'], waitMs: 30_000 });
    expect(claims.map((c) => c.task.id)).toEqual([task.id]);
    expect(Date.now()).toBeGreaterThanOrEqual(task.available_at);
  });

  it('returns nothing after waitMs, at once on abort, and when RemoteWork stops', async () => {
    const { store, remote } = await setup();
    const writes = store.writeTransactions;
    let started = Date.now();
    expect(await remote.claim({ workerId: W1, lanes: ['a'], waitMs: 400 })).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);

    const controller = new AbortController();
    started = Date.now();
    const aborted = remote.claim({
      workerId: W1,
      lanes: ['a'],
      waitMs: 30_000,
      signal: controller.signal,
    });
    setTimeout(() => controller.abort(), 100);
    expect(await aborted).toEqual([]);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(
      await remote.claim({
        workerId: W1,
        lanes: ['a'],
        waitMs: 30_000,
        signal: AbortSignal.abort(),
      }),
    ).toEqual([]);

    const polling = remote.claim({ workerId: W1, lanes: ['a'], waitMs: 30_000 });
    await sleep(50);
    await remote.stop();
    expect(await polling).toEqual([]);
    await expectCode(remote.claim({ workerId: W1, lanes: ['a'] }), 'INVALID_STATE');
    expect(store.writeTransactions).toBe(writes);
  });

  it('one submit, five waiting claimers: one gets the job, without a claim per waiter', async () => {
    const base = await open();
    let claimCalls = 0;
    const store = wrapStore(base, {
      claimTasks: (request) => {
        claimCalls += 1;
        return base.claimTasks(request);
      },
    });
    const { queue, remote } = await setup({ store });
    const polls = Array.from({ length: 5 }, (_, i) =>
      remote.claim({ workerId: remoteWorkerId('w', String(i)), lanes: ['a'], waitMs: 1_500 }),
    );
    await sleep(300);
    const { id } = await queue.submit('one', {}, { lane: 'a' });
    const results = await Promise.all(polls);
    expect(results.flat().map((c) => c.task.id)).toEqual([id]);
    expect(claimCalls).toBeLessThanOrEqual(2);
  });
});

// =============================================================================================

describe('reclaim of a remote lease', () => {
  it('a lapsed remote lease is reclaimed at expiry and the task completed by another claimer, once', async () => {
    const { store, queue, remote } = await setup();
    await remote.start(); // runs the lease reaper
    const { id } = await queue.submit('j', {}, { lane: 'a', backoff: { baseMs: 10, maxMs: 10 } });
    const first: RemoteClaim = await claimOne(remote, W1, 1_000);
    // Heartbeats keep it: past the first lease's expiry, nothing is reclaimed.
    const until = first.leaseExpiresAt + 500;
    while (Date.now() < until) {
      await remote.heartbeat(id, first.leaseToken, 1_000);
      await sleep(200);
    }
    expect(await taskEvents(store, id, 'task.lease_expired')).toHaveLength(0);
    expect((await store.getTask(id))!.lease_token).toBe(first.leaseToken);

    // The worker goes silent: the reaper takes the task back and another claimer gets it.
    const [second] = await remote.claim({ workerId: W2, lanes: ['a'], waitMs: 20_000 });
    expect(second).toBeDefined();
    expect(second!.attempt).toBe(2);
    const [expired] = await taskEvents(store, id, 'task.lease_expired');
    expect(expired!.data).toMatchObject({ owner: W1 });
    expect((await remote.complete(id, second!.leaseToken, 'by w2')).state).toBe('succeeded');
    await expectCode(remote.complete(id, first.leaseToken, 'by w1'), 'LEASE_LOST');
    expect(await taskEvents(store, id, 'task.succeeded')).toHaveLength(1);
    expect(await queue.result(id)).toBe('by w2');
  }, 30_000);
});
