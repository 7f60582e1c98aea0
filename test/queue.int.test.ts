/**
 * The durable job queue end to end on SQLite (DESIGN.md §6): claims are exclusive across
 * connections and OS processes, stale lease tokens change nothing, heartbeats survive a blocked
 * event loop (and stop when it stalls), crash loops and poison end dead, retries follow the
 * backoff policy, idempotent submits and effects happen once, lanes, priorities, delays, cancel,
 * dead letters and schedules behave as documented.
 *
 * No test asserts on durations: each waits on a condition with a deadline, and time-dependent
 * behaviour runs on a ManualClock.
 */
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  canonicalJson,
  type Clock,
  type ErrorCode,
  type EventType,
  isWardenError,
  ManualClock,
  sha256Hex,
  systemClock,
  type WardenError,
} from '../src/core/index.ts';
import {
  EffectJournal,
  type JobContext,
  type JobHandler,
  JobQueue,
  JobWorker,
  type JobWorkerOptions,
  nonRetryable,
  reclaimExpiredLeases,
  retryAfter,
} from '../src/queue/index.ts';
import {
  type EventRecord,
  type NewEvent,
  openSqliteStore,
  type SqliteStoreOptions,
  type Store,
  type TaskRecord,
} from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { sleep } from './helpers/wait.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const moduleUrl = (path: string) => pathToFileURL(join(ROOT, path)).href;
const STORE_MODULE = moduleUrl('src/store/index.ts');
const QUEUE_MODULE = moduleUrl('src/queue/index.ts');
const RECLAIM_MODULE = moduleUrl('src/queue/lease-reaper.ts');

// ---------------------------------------------------------------------------------------------
// Resources: every store, worker and child process is closed after each test.

const stores: Store[] = [];
const workers: JobWorker[] = [];
const children: Child[] = [];

afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.stop({ abort: true });
  for (const child of children.splice(0)) await child.kill();
  for (const store of stores.splice(0)) await store.close();
});
afterAll(removeTempDirs);

async function open(options: Partial<SqliteStoreOptions> = {}): Promise<Store> {
  const store = await openSqliteStore({ file: join(tempDir(), 'q.db'), ...options });
  stores.push(store);
  return store;
}

function newWorker(options: JobWorkerOptions): JobWorker {
  const worker = new JobWorker({ random: () => 0.5, heartbeat: 'timer', ...options });
  workers.push(worker);
  return worker;
}

// ---------------------------------------------------------------------------------------------
// Helpers

type Falsy = undefined | null | false;

/** Polls `probe` until it returns a value, or fails after `timeoutMs` naming what it waited for. */
async function waitUntil<T>(
  probe: () => T | Falsy | Promise<T | Falsy>,
  what: string,
  timeoutMs = 15_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== null && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function expectCode(action: () => unknown, code: ErrorCode): Promise<WardenError> {
  let caught: unknown;
  try {
    await action();
  } catch (error) {
    caught = error;
  }
  expect(isWardenError(caught, code), `expected ${code}, got ${String(caught)}`).toBe(true);
  return caught as WardenError;
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

async function getTask(store: Store, id: string): Promise<TaskRecord> {
  const task = await store.getTask(id);
  expect(task, `task ${id}`).toBeDefined();
  return task!;
}

/** Waits until the task matches, returning it. */
function waitForTask(
  store: Store,
  id: string,
  match: (t: TaskRecord) => boolean,
  what: string,
): Promise<TaskRecord> {
  return waitUntil(async () => {
    const task = await store.getTask(id);
    return task && match(task) ? task : undefined;
  }, `task ${id}: ${what}`);
}

async function snapshot(store: Store, id: string) {
  return {
    task: await store.getTask(id),
    attempts: await store.listAttempts(id),
    events: (await allEvents(store)).length,
  };
}

function event(task: TaskRecord, type: EventType, data: unknown = {}): NewEvent {
  return { session_id: task.session_id, type, trace_id: task.trace_id, task_id: task.id, data };
}

function claimOne(store: Store, workerId: string, now: number, lanes = ['default']) {
  return store.claimTasks({ lanes, kinds: ['job'], workerId, limit: 1, leaseMs: 10_000, now });
}

// ---------------------------------------------------------------------------------------------
// Child processes (real concurrency: better-sqlite3 is synchronous within one process)

interface Child {
  readonly lines: string[];
  readonly exited: Promise<number | null>;
  line(match: (line: string) => boolean, what: string, timeoutMs?: number): Promise<string>;
  kill(): Promise<void>;
}

/** Runs an ES module given as text in a new `node` process; stdout is collected by line. */
function spawnModule(code: string): Child {
  const proc = spawn(process.execPath, ['--input-type=module', '-e', code], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const lines: string[] = [];
  let stderr = '';
  let buffer = '';
  let done = false;
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk: string) => {
    buffer += chunk;
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      lines.push(buffer.slice(0, i));
      buffer = buffer.slice(i + 1);
    }
  });
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (chunk: string) => {
    stderr += chunk;
  });
  const exited = new Promise<number | null>((resolve) => {
    proc.on('close', (code) => {
      done = true;
      resolve(code);
    });
  });
  const child: Child = {
    lines,
    exited,
    line: (match, what, timeoutMs) =>
      waitUntil(
        () => {
          const found = lines.find(match);
          if (found !== undefined) return found;
          if (done) throw new Error(`child exited before ${what}; stderr: ${stderr}`);
          return undefined;
        },
        what,
        timeoutMs,
      ),
    kill: async () => {
      if (!done) proc.kill('SIGKILL');
      await exited;
    },
  };
  children.push(child);
  return child;
}

/** A process that reclaims expired job leases every 20 ms until `stopFile` exists. */
function startReaper(file: string, stopFile: string): Child {
  return spawnModule(`
import { existsSync } from 'node:fs';
import { reclaimExpiredLeases } from ${JSON.stringify(RECLAIM_MODULE)};
import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
const store = await openSqliteStore({ file: ${JSON.stringify(file)}, mustExist: true });
console.log('ready');
const deadline = Date.now() + 25000;
while (!existsSync(${JSON.stringify(stopFile)}) && Date.now() < deadline) {
  const now = Date.now();
  const n = await reclaimExpiredLeases(store, now, { isDeadOwner: () => false, agingMs: 10000, random: () => 0 });
  if (n > 0) console.log(JSON.stringify({ reclaimed: n, at: now }));
  await new Promise((resolve) => setTimeout(resolve, 20));
}
await store.close();
`);
}

// =============================================================================================

describe('claims', () => {
  it('50 connections race for one task and exactly one wins (repeated)', async () => {
    const file = join(tempDir(), 'q.db');
    const main = await open({ file });
    const queue = new JobQueue({ store: main });
    const connections = await Promise.all(Array.from({ length: 50 }, () => open({ file })));
    for (let round = 0; round < 5; round++) {
      const { id } = await queue.submit('race', { round });
      const now = Date.now();
      const results = await Promise.all(
        connections.map((store, i) => claimOne(store, `w${i}`, now)),
      );
      const winners = results.flatMap((claims, i) => claims.map((claim) => ({ i, claim })));
      expect(winners).toHaveLength(1);
      const { i, claim } = winners[0]!;
      expect(claim.task.id).toBe(id);
      expect(claim.attempt).toBe(1);
      const task = await getTask(main, id);
      expect(task).toMatchObject({
        state: 'running',
        attempts: 1,
        lease_owner: `w${i}`,
        lease_token: claim.leaseToken,
      });
      expect(await taskEvents(main, id, 'task.claimed')).toHaveLength(1);
      // The loser's view through its own connection agrees.
      expect((await connections[(i + 1) % 50]!.getTask(id))?.lease_token).toBe(claim.leaseToken);
    }
  });

  it('4 OS processes released together race for one task and exactly one claims it', async () => {
    const dir = tempDir();
    const file = join(dir, 'q.db');
    const go = join(dir, 'go-');
    const rounds = 3;
    const store = await open({ file });
    const queue = new JobQueue({
      store,
      lanes: Object.fromEntries(Array.from({ length: rounds }, (_, r) => [`r${r}`, {}])),
    });
    const ids: string[] = [];
    for (let r = 0; r < rounds; r++)
      ids.push((await queue.submit('race', { r }, { lane: `r${r}` })).id);
    const code = `
import { existsSync } from 'node:fs';
import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
const store = await openSqliteStore({ file: ${JSON.stringify(file)}, mustExist: true });
console.log('ready');
for (let r = 0; r < ${rounds}; r++) {
  while (!existsSync(${JSON.stringify(go)} + r)) await new Promise((resolve) => setTimeout(resolve, 1));
  const claims = await store.claimTasks({ lanes: ['r' + r], kinds: ['job'], workerId: 'proc-' + process.pid,
    limit: 1, leaseMs: 10000, now: Date.now() });
  console.log(JSON.stringify({ round: r, ids: claims.map((c) => c.task.id), tokens: claims.map((c) => c.leaseToken) }));
}
await store.close();
`;
    const procs = Array.from({ length: 4 }, () => spawnModule(code));
    await Promise.all(procs.map((p) => p.line((l) => l === 'ready', 'child ready')));
    for (let r = 0; r < rounds; r++) {
      writeFileSync(go + r, '');
      const lines = await Promise.all(
        procs.map((p) => p.line((l) => l.startsWith(`{"round":${r},`), `round ${r} result`)),
      );
      const results = lines.map((l) => JSON.parse(l) as { ids: string[]; tokens: string[] });
      const winners = results.filter((res) => res.ids.length > 0);
      expect(winners).toHaveLength(1);
      expect(winners[0]!.ids).toEqual([ids[r]]);
      const task = await getTask(store, ids[r]!);
      expect(task).toMatchObject({ state: 'running', attempts: 1 });
      expect(task.lease_token).toBe(winners[0]!.tokens[0]);
      expect(await taskEvents(store, ids[r]!, 'task.claimed')).toHaveLength(1);
    }
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0, 0, 0]);
  });
});

describe('lease fencing', () => {
  it('a stale token cannot heartbeat, settle or commit, and changes nothing', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const queue = new JobQueue({ store, clock });
    const { id } = await queue.submit('stale', { n: 1 }, { attempts: 5 });

    const [a] = await claimOne(store, 'worker-a', clock.now());
    expect(a?.task.id).toBe(id);
    clock.advance(10_000);
    expect(
      await reclaimExpiredLeases(store, clock.now(), {
        isDeadOwner: () => false,
        agingMs: 10_000,
        random: () => 0,
      }),
    ).toBe(1);
    const [b] = await claimOne(store, 'worker-b', clock.now());
    expect(b?.task.id).toBe(id);
    expect(b!.attempt).toBe(2);
    expect(b!.leaseToken).not.toBe(a!.leaseToken);

    const task = b!.task;
    const before = await snapshot(store, id);
    const now = clock.now();
    await expectCode(() => store.heartbeat(id, a!.leaseToken, 10_000, now), 'LEASE_LOST');
    expect(await store.heartbeatTasks([{ id, leaseToken: a!.leaseToken }], 10_000, now)).toEqual([
      id,
    ]);
    const [outcome] = await store.settleTasks([
      {
        id,
        leaseToken: a!.leaseToken,
        state: 'succeeded',
        result: 'stale result',
        attemptOutcome: 'succeeded',
        now,
        events: [event(task, 'task.succeeded', { attempt: 1 })],
      },
    ]);
    expect(outcome?.ok).toBe(false);
    expect(isWardenError(outcome?.error, 'LEASE_LOST')).toBe(true);
    await expectCode(
      () =>
        store.commit([
          {
            op: 'task.settle',
            id,
            leaseToken: a!.leaseToken,
            state: 'failed',
            error: { code: 'JOB_FAILED', message: 'stale' },
            attemptOutcome: 'failed',
            now,
          },
          { op: 'event', event: event(task, 'task.failed') },
        ]),
      'LEASE_LOST',
    );
    await expectCode(
      () =>
        store.commit([
          { op: 'task.fence', id, leaseToken: a!.leaseToken },
          { op: 'event', event: event(task, 'task.progress') },
        ]),
      'LEASE_LOST',
    );
    expect(await snapshot(store, id)).toEqual(before);

    // The current holder completes normally.
    const [fresh] = await store.settleTasks([
      {
        id,
        leaseToken: b!.leaseToken,
        state: 'succeeded',
        result: 'fresh result',
        attemptOutcome: 'succeeded',
        now,
        events: [event(task, 'task.succeeded', { attempt: 2 })],
      },
    ]);
    expect(fresh).toEqual({ id, ok: true });
    expect(await getTask(store, id)).toMatchObject({
      state: 'succeeded',
      result: 'fresh result',
      attempts: 2,
      lease_token: null,
    });
    expect(
      (await store.listAttempts(id)).map((x) => [x.attempt, x.lease_token, x.worker_id, x.outcome]),
    ).toEqual([
      [1, a!.leaseToken, 'worker-a', 'lease_expired'],
      [2, b!.leaseToken, 'worker-b', 'succeeded'],
    ]);
    // And once settled, B's token is stale too.
    await expectCode(() => store.heartbeat(id, b!.leaseToken, 10_000, now), 'LEASE_LOST');
  });
});

describe('heartbeats and a blocked event loop', () => {
  interface BlockRun {
    store: Store;
    worker: JobWorker;
    id: string;
    result: unknown;
    reclaims: Array<{ reclaimed: number; at: number }>;
    blockEnd: number;
  }

  /**
   * Runs one job whose first attempt blocks this event loop for `blockMs`, while a reaper in
   * another OS process reclaims any lease that expires meanwhile. A warm-up job first proves
   * the heartbeat thread renews leases.
   */
  async function runBlockingJob(options: {
    blockMs: number;
    yieldFirst: boolean;
    stallLimitMs?: number;
  }): Promise<BlockRun> {
    const dir = tempDir();
    const file = join(dir, 'q.db');
    const stopFile = join(dir, 'stop-reaper');
    const store = await open({ file });
    const queue = new JobQueue({ store });
    const worker = newWorker({
      queue,
      // Margins for a loaded 2-core CI machine: ten renewals per lease, and a lease long enough
      // that a thread starved of CPU for a few seconds still renews in time (at 1.5 s, six busy
      // processes on two cores made the renewals lapse).
      leaseMs: 4_000,
      heartbeatMs: 400,
      heartbeat: 'thread',
      ...(options.stallLimitMs === undefined ? {} : { stallLimitMs: options.stallLimitMs }),
    });
    let blockEnd = 0;
    const block = (job: JobContext) => {
      if (job.attempt === 1) {
        const end = Date.now() + options.blockMs;
        while (Date.now() < end) {
          // busy: this event loop does nothing else meanwhile
        }
        blockEnd = Date.now();
      }
      return { attempt: job.attempt };
    };
    worker.handle('warmup', async (job) => {
      const first = (await getTask(store, job.id)).lease_expires_at!;
      await waitUntil(
        async () => (await getTask(store, job.id)).lease_expires_at! > first,
        'a renewal by the heartbeat thread',
      );
      return 'warm';
    });
    const handler: JobHandler = options.yieldFirst
      ? async (job) => {
          await new Promise((resolve) => setImmediate(resolve));
          return block(job);
        }
      : block;
    worker.handle('block', handler);
    await worker.start();
    expect(worker.heartbeatMode).toBe('thread');
    const warm = await queue.submit('warmup', null);
    expect(await queue.result(warm.id, { timeoutMs: 15_000 })).toBe('warm');

    const reaper = startReaper(file, stopFile);
    await reaper.line((l) => l === 'ready', 'reaper ready');
    const { id } = await queue.submit('block', null, { backoff: { baseMs: 1, maxMs: 5 } });
    const result = await queue.result(id, { timeoutMs: 20_000 });
    writeFileSync(stopFile, '');
    expect(await reaper.exited).toBe(0);
    const reclaims = reaper.lines
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { reclaimed: number; at: number });
    return { store, worker, id, result, reclaims, blockEnd };
  }

  async function expectKeptLease(run: BlockRun): Promise<void> {
    expect(run.blockEnd).toBeGreaterThan(0);
    expect(run.result).toEqual({ attempt: 1 });
    expect(run.reclaims).toEqual([]);
    expect(await getTask(run.store, run.id)).toMatchObject({ state: 'succeeded', attempts: 1 });
    expect((await run.store.listAttempts(run.id)).map((a) => a.outcome)).toEqual(['succeeded']);
    expect(await taskEvents(run.store, run.id, 'task.lease_expired')).toEqual([]);
    expect(run.worker.stats.leaseLost).toBe(0);
  }

  it('a handler blocking the event loop past its lease keeps it (the thread renews)', async () => {
    await expectKeptLease(await runBlockingJob({ blockMs: 6_000, yieldFirst: true }));
  });

  it('a handler that blocks from its first line keeps its lease as well', async () => {
    await expectKeptLease(await runBlockingJob({ blockMs: 6_000, yieldFirst: false }));
  });

  it('a stalled event loop stops the renewals: the task is reclaimed and the late result rejected', async () => {
    const run = await runBlockingJob({ blockMs: 8_000, yieldFirst: true, stallLimitMs: 300 });
    // The reaper (another process) reclaimed the lease while this event loop was blocked.
    expect(run.reclaims.length).toBeGreaterThanOrEqual(1);
    expect(run.reclaims[0]!.at).toBeLessThan(run.blockEnd);
    // The late completion of attempt 1 was dropped; attempt 2 produced the result.
    expect(run.result).toEqual({ attempt: 2 });
    expect(run.worker.stats.leaseLost).toBeGreaterThanOrEqual(1);
    const attempts = await run.store.listAttempts(run.id);
    expect(attempts.map((a) => [a.attempt, a.outcome])).toEqual([
      [1, 'lease_expired'],
      [2, 'succeeded'],
    ]);
    expect(attempts[0]!.ended_at!).toBeLessThan(run.blockEnd);
    expect(await getTask(run.store, run.id)).toMatchObject({ state: 'succeeded', attempts: 2 });
    const succeeded = await taskEvents(run.store, run.id, 'task.succeeded');
    expect(succeeded.map((e) => e.attempt)).toEqual([2]);
    expect(
      (await taskEvents(run.store, run.id, 'task.lease_expired')).map((e) => e.attempt),
    ).toEqual([1]);
  });
});

describe('failure handling', () => {
  it('a handler that crashes differently every time ends dead after max attempts', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const worker = newWorker({ queue });
    const activities = ['', 'parsing', 'loading', 'saving', 'sending'];
    worker.handle('crashy', (job) => {
      throw new Error(`crashed while ${activities[job.attempt]}`);
    });
    await worker.start();
    const { id } = await queue.submit('crashy', null, {
      attempts: 3,
      backoff: { baseMs: 1, maxMs: 5 },
    });
    const error = await expectCode(() => queue.result(id, { timeoutMs: 15_000 }), 'JOB_FAILED');
    expect(error.details).toMatchObject({ state: 'dead' });
    const { task, attempts } = await queue.inspect(id);
    expect(task).toMatchObject({ state: 'dead', attempts: 3 });
    expect(attempts.map((a) => [a.attempt, a.outcome, a.error?.message])).toEqual([
      [1, 'failed', 'crashed while parsing'],
      [2, 'failed', 'crashed while loading'],
      [3, 'failed', 'crashed while saving'],
    ]);
    const dead = await taskEvents(store, id, 'task.dead');
    expect(dead).toHaveLength(1);
    expect(dead[0]!.data).toMatchObject({ reason: 'attempts_exhausted', attempt: 3 });
    expect(await taskEvents(store, id, 'task.retry_scheduled')).toHaveLength(2);
    expect((await queue.deadLetters()).map((t) => t.id)).toContain(id);
  });

  it('a worker that dies holding the lease every time leads to dead after max attempts', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const queue = new JobQueue({ store, clock });
    // poisonThreshold 1 would dead-letter at the first counted failure: expiries do not count.
    const { id } = await queue.submit('doomed', null, { attempts: 3, poisonThreshold: 1 });
    for (let attempt = 1; attempt <= 3; attempt++) {
      const claims = await claimOne(store, `doomed-worker-${attempt}`, clock.now());
      expect(claims.map((c) => [c.task.id, c.attempt])).toEqual([[id, attempt]]);
      expect(
        await reclaimExpiredLeases(store, clock.now(), {
          isDeadOwner: () => false,
          agingMs: 10_000,
          random: () => 0,
        }),
      ).toBe(0);
      clock.advance(10_000);
      expect(
        await reclaimExpiredLeases(store, clock.now(), {
          isDeadOwner: () => false,
          agingMs: 10_000,
          random: () => 0,
        }),
      ).toBe(1);
    }
    expect(await getTask(store, id)).toMatchObject({
      state: 'dead',
      attempts: 3,
      last_error: { code: 'LEASE_EXPIRED' },
    });
    expect((await store.listAttempts(id)).map((a) => a.outcome)).toEqual([
      'lease_expired',
      'lease_expired',
      'lease_expired',
    ]);
    expect(await taskEvents(store, id, 'task.lease_expired')).toHaveLength(3);
    const dead = await taskEvents(store, id, 'task.dead');
    expect(dead.map((e) => e.data)).toEqual([
      expect.objectContaining({ reason: 'attempts_exhausted', attempts: 3 }),
    ]);
    expect(await claimOne(store, 'late', clock.now())).toEqual([]);
  });

  it('a dead owner on this host is reclaimed before its lease expires', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const queue = new JobQueue({ store, clock });
    const { id } = await queue.submit('orphan', null);
    await claimOne(store, 'gone-host/1/x', clock.now());
    expect(
      await reclaimExpiredLeases(store, clock.now(), {
        isDeadOwner: () => false,
        agingMs: 10_000,
        random: () => 0,
      }),
    ).toBe(0);
    const dead = (owner: string) => owner === 'gone-host/1/x';
    expect(
      await reclaimExpiredLeases(store, clock.now(), {
        isDeadOwner: dead,
        agingMs: 10_000,
        random: () => 0,
      }),
    ).toBe(1);
    expect(await getTask(store, id)).toMatchObject({ state: 'queued', attempts: 1 });
    const [expired] = await taskEvents(store, id, 'task.lease_expired');
    expect(expired?.data).toMatchObject({ why: 'owner_dead', owner: 'gone-host/1/x' });
  });

  it('the same error every time is poison: dead after exactly poisonThreshold attempts', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const worker = newWorker({ queue });
    worker.handle('poison', (job) => {
      // The numbers differ each time; the fingerprint masks them.
      throw new Error(`upstream refused the connection after ${job.attempt * 1_000} ms`);
    });
    await worker.start();
    const { id } = await queue.submit('poison', null, {
      attempts: 10,
      poisonThreshold: 3,
      backoff: { baseMs: 1, maxMs: 5 },
    });
    await expectCode(() => queue.result(id, { timeoutMs: 15_000 }), 'JOB_FAILED');
    const { task, attempts } = await queue.inspect(id);
    expect(task).toMatchObject({ state: 'dead', attempts: 3 });
    expect(attempts.map((a) => a.outcome)).toEqual(['failed', 'failed', 'failed']);
    expect(task.options.consecutive_fingerprint).toEqual({
      fingerprint: 'JOB_FAILED:upstream refused the connection after # ms',
      count: 3,
    });
    const dead = await taskEvents(store, id, 'task.dead');
    expect(dead).toHaveLength(1);
    expect(dead[0]!.data).toMatchObject({ reason: 'poison', attempt: 3, max_attempts: 10 });
  });

  it('a non-retryable error fails the task after one attempt', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const worker = newWorker({ queue });
    worker.handle('strict', () => {
      throw nonRetryable('the input is malformed');
    });
    await worker.start();
    const { id } = await queue.submit('strict', null, { attempts: 5 });
    const error = await expectCode(() => queue.result(id, { timeoutMs: 15_000 }), 'JOB_FAILED');
    expect(error.message).toContain('the input is malformed');
    const { task, attempts } = await queue.inspect(id);
    expect(task).toMatchObject({
      state: 'failed',
      attempts: 1,
      last_error: { code: 'JOB_FAILED', retryable: false },
    });
    expect(attempts.map((a) => a.outcome)).toEqual(['failed']);
    expect((await taskEvents(store, id, 'task.failed')).map((e) => e.data)).toEqual([
      expect.objectContaining({ reason: 'non_retryable' }),
    ]);
  });
});

describe('retry timing (ManualClock, pinned random)', () => {
  async function setup(random: () => number) {
    const clock = new ManualClock();
    const store = await open({ clock });
    const queue = new JobQueue({ store, clock });
    const worker = newWorker({ queue, random, leaseMs: 600_000, heartbeatMs: 300_000 });
    return { clock, store, queue, worker };
  }

  it('with random ≈ 1 the delay after attempt k is min(max, base · 2^(k-1))', async () => {
    const { clock, store, queue, worker } = await setup(() => 0.999999);
    const letters = ['', 'alpha', 'bravo', 'charlie', 'delta', 'echo'];
    worker.handle('flaky', (job) => {
      throw new Error(`flaky ${letters[job.attempt]}`);
    });
    await worker.start();
    const { id } = await queue.submit('flaky', null, {
      attempts: 5,
      backoff: { baseMs: 100, maxMs: 300 },
    });
    const expected = [100, 200, 300, 300];
    for (let k = 1; k <= expected.length; k++) {
      const task = await waitForTask(
        store,
        id,
        (t) => t.state === 'queued' && t.attempts === k,
        `queued after attempt ${k}`,
      );
      const attempt = (await store.listAttempts(id))[k - 1]!;
      expect(attempt).toMatchObject({ attempt: k, outcome: 'failed' });
      expect(attempt.ended_at).toBe(clock.now());
      expect(task.available_at - attempt.ended_at!).toBe(expected[k - 1]);
      const retry = (await taskEvents(store, id, 'task.retry_scheduled'))[k - 1];
      expect(retry?.data).toMatchObject({ attempt: k, delay_ms: expected[k - 1] });
      // Not claimable a millisecond early.
      expect(await claimOne(store, 'early', task.available_at - 1)).toEqual([]);
      clock.advance(expected[k - 1]!);
    }
    await waitForTask(store, id, (t) => t.state === 'dead', 'dead after attempt 5');
    expect((await store.listAttempts(id)).map((a) => a.started_at)).toEqual([
      clock.now() - 900,
      clock.now() - 800,
      clock.now() - 600,
      clock.now() - 300,
      clock.now(),
    ]);
  });

  it('with random 0 every retry is immediate', async () => {
    const { store, queue, worker } = await setup(() => 0);
    worker.handle('flaky', (job) => {
      throw new Error(`flaky ${['', 'one', 'two', 'three', 'four'][job.attempt]}`);
    });
    await worker.start();
    const { id } = await queue.submit('flaky', null, {
      attempts: 4,
      backoff: { baseMs: 1_000, maxMs: 60_000 },
    });
    const task = await waitForTask(store, id, (t) => t.state === 'dead', 'dead');
    expect(task.attempts).toBe(4);
    const retries = await taskEvents(store, id, 'task.retry_scheduled');
    expect(retries.map((e) => (e.data as { delay_ms: number }).delay_ms)).toEqual([0, 0, 0]);
  });

  it('retryAfter(ms) schedules the retry exactly ms later instead of the backoff', async () => {
    const { clock, store, queue, worker } = await setup(() => 0.999999);
    worker.handle('polite', (job) => {
      if (job.attempt === 1) throw retryAfter(250);
      return `done on attempt ${job.attempt}`;
    });
    await worker.start();
    const { id } = await queue.submit('polite', null); // default backoff: 1000 ms base
    const task = await waitForTask(
      store,
      id,
      (t) => t.state === 'queued' && t.attempts === 1,
      'queued after attempt 1',
    );
    const [attempt] = await store.listAttempts(id);
    expect(task.available_at - attempt!.ended_at!).toBe(250);
    expect(task.available_at).toBe(clock.now() + 250);
    clock.advance(250);
    await waitForTask(store, id, (t) => t.state === 'succeeded', 'succeeded');
    expect(await queue.result(id)).toBe('done on attempt 2');
  });
});

describe('idempotent submit', () => {
  it('returns the existing task within the window, conflicts on another request, frees the key after', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const queue = new JobQueue({ store, clock, idempotencyWindowMs: 1_000 });
    const first = await queue.submit('mail', { to: 'a@example.com' }, { idempotencyKey: 'k1' });
    expect(first.deduplicated).toBe(false);
    const events = (await allEvents(store)).length;
    clock.advance(999);
    const again = await queue.submit('mail', { to: 'a@example.com' }, { idempotencyKey: 'k1' });
    expect(again).toMatchObject({ id: first.id, deduplicated: true });
    expect(await store.listTasks()).toHaveLength(1);
    expect((await allEvents(store)).length).toBe(events);

    const conflict = await expectCode(
      () => queue.submit('mail', { to: 'b@example.com' }, { idempotencyKey: 'k1' }),
      'IDEMPOTENCY_CONFLICT',
    );
    expect(conflict.message).toContain('k1');
    await expectCode(
      () => queue.submit('other-job', { to: 'a@example.com' }, { idempotencyKey: 'k1' }),
      'IDEMPOTENCY_CONFLICT',
    );
    // A batch holding a conflict inserts nothing, not even its valid members.
    await expectCode(
      () =>
        queue.submitMany([
          { name: 'mail', payload: { to: 'c@example.com' } },
          { name: 'mail', payload: { to: 'b@example.com' }, options: { idempotencyKey: 'k1' } },
        ]),
      'IDEMPOTENCY_CONFLICT',
    );
    expect(await store.listTasks()).toHaveLength(1);
    expect((await allEvents(store)).length).toBe(events);

    clock.advance(1);
    const later = await queue.submit('mail', { to: 'b@example.com' }, { idempotencyKey: 'k1' });
    expect(later.deduplicated).toBe(false);
    expect(later.id).not.toBe(first.id);
    expect(await store.listTasks()).toHaveLength(2);
    expect((await getTask(store, first.id)).idempotency_key).toBeNull();
    expect((await getTask(store, later.id)).idempotency_key).toBe('k1');
  });

  it('a resubmit with the same key into a full lane returns the existing task', async () => {
    const store = await open();
    const queue = new JobQueue({ store, lanes: { small: { maxDepth: 2 } } });
    const first = await queue.submit('mail', { n: 1 }, { lane: 'small', idempotencyKey: 'k' });
    await queue.submit('mail', { n: 2 }, { lane: 'small' });
    const again = await queue.submit('mail', { n: 1 }, { lane: 'small', idempotencyKey: 'k' });
    expect(again).toMatchObject({ id: first.id, deduplicated: true });
  });

  it('deduplicates within one batch', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const [a, b] = await queue.submitMany([
      { name: 'mail', payload: { n: 1 }, options: { idempotencyKey: 'same' } },
      { name: 'mail', payload: { n: 1 }, options: { idempotencyKey: 'same' } },
    ]);
    expect(b).toMatchObject({ id: a!.id, deduplicated: true });
    expect(await store.listTasks()).toHaveLength(1);
  });
});

describe('effect journal', () => {
  /** A submitted job claimed by `worker`: the attempt a journal is scoped to. */
  async function claimedJob(store: Store, clock: Clock = systemClock) {
    const queue = new JobQueue({ store, clock });
    const { id } = await queue.submit('mail', { n: 1 });
    const [claim] = await store.claimTasks({
      lanes: ['default'],
      kinds: ['job'],
      workerId: 'w-test',
      limit: 1,
      leaseMs: 30_000,
      now: clock.now(),
    });
    expect(claim?.task.id).toBe(id);
    return claim!;
  }

  it('a done effect is never repeated; another request under the key conflicts', async () => {
    const store = await open();
    const effects = new EffectJournal(store).forClaim(await claimedJob(store));
    let calls = 0;
    const fn = () => {
      calls += 1;
      return { receipt: `r-${calls}` };
    };
    const results: unknown[] = [];
    for (let i = 0; i < 5; i++)
      results.push(await effects.effect('email:42', { to: 'a@example.com' }, fn));
    expect(calls).toBe(1);
    expect(results).toEqual(Array.from({ length: 5 }, () => ({ receipt: 'r-1' })));
    expect(await store.getEffect('email:42')).toMatchObject({
      status: 'done',
      result: { receipt: 'r-1' },
    });
    await expectCode(
      () => effects.effect('email:42', { to: 'b@example.com' }, fn),
      'IDEMPOTENCY_CONFLICT',
    );
    expect(calls).toBe(1);
  });

  it('a failed effect is recorded failed and runs again on the next call', async () => {
    const store = await open();
    const effects = new EffectJournal(store).forClaim(await claimedJob(store));
    let calls = 0;
    const fn = () => {
      calls += 1;
      if (calls === 1) throw new Error('smtp down');
      return 'sent';
    };
    await expect(effects.effect('email:7', { n: 7 }, fn)).rejects.toThrow('smtp down');
    expect((await store.getEffect('email:7'))?.status).toBe('failed');
    expect(await effects.effect('email:7', { n: 7 }, fn)).toBe('sent');
    expect(await effects.effect('email:7', { n: 7 }, fn)).toBe('sent');
    expect(calls).toBe(2);
    expect(await store.getEffect('email:7')).toMatchObject({ status: 'done', result: 'sent' });
  });

  it('after a crash left it pending, reconcile decides instead of running it again', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    // The attempt that crashed ran on `dead-worker`, a process known to be gone.
    const effects = new EffectJournal(store, clock, {
      isDeadOwner: (worker) => worker === 'dead-worker',
    }).forClaim(await claimedJob(store, clock));
    const crashed = (key: string, request: unknown, age = 60_000) =>
      store.commit([
        {
          op: 'effect.insert',
          row: {
            idempotency_key: key,
            tool: 'payment',
            request_hash: sha256Hex(canonicalJson(request)),
            status: 'pending',
            result_hash: null,
            result: null,
            owner: 'lt_crashed',
            owner_worker: 'dead-worker',
            task_id: null,
            session_id: null,
            error: null,
            created_at: clock.now() - age,
            updated_at: clock.now() - age,
          },
        },
      ]);
    await crashed('pay:1', { amount: 5 });
    let calls = 0;
    const fn = () => {
      calls += 1;
      return 'charged again';
    };
    const found = await effects.effect('pay:1', { amount: 5 }, fn, {
      reconcile: () => 'charge ch_1 found',
    });
    expect(found).toBe('charge ch_1 found');
    expect(calls).toBe(0);
    expect(await store.getEffect('pay:1')).toMatchObject({
      status: 'done',
      result: 'charge ch_1 found',
    });
    expect(await effects.effect('pay:1', { amount: 5 }, fn)).toBe('charge ch_1 found');
    expect(calls).toBe(0);

    // Reconcile that finds nothing: fn runs.
    await crashed('pay:2', { amount: 6 });
    expect(await effects.effect('pay:2', { amount: 6 }, fn, { reconcile: () => undefined })).toBe(
      'charged again',
    );
    expect(calls).toBe(1);
    // Without reconcile, fn runs (the effect may happen twice: documented).
    await crashed('pay:3', { amount: 7 });
    expect(await effects.effect('pay:3', { amount: 7 }, fn)).toBe('charged again');
    expect(calls).toBe(2);
    expect((await store.getEffect('pay:3'))?.status).toBe('done');
    // A record left pending in this very millisecond is still recognised as not ours.
    await crashed('pay:4', { amount: 8 }, 0);
    expect(
      await effects.effect('pay:4', { amount: 8 }, fn, { reconcile: () => 'charge ch_4 found' }),
    ).toBe('charge ch_4 found');
    expect(calls).toBe(2);
  });

  it('a job retried after its effect performs the side effect exactly once', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const worker = newWorker({ queue });
    let sent = 0;
    const words = ['', 'first', 'second', 'third', 'fourth'];
    worker.handle('notify', async (job: JobContext<{ to: string }>) => {
      const receipt = await job.effect(`notify:${job.id}`, job.payload, () => {
        sent += 1;
        return `receipt-${sent}`;
      });
      if (job.attempt < 3) throw new Error(`flaky after sending (${words[job.attempt]})`);
      return { receipt, attempt: job.attempt };
    });
    await worker.start();
    const { id } = await queue.submit(
      'notify',
      { to: 'ops@example.com' },
      { attempts: 5, backoff: { baseMs: 1, maxMs: 5 } },
    );
    expect(await queue.result(id, { timeoutMs: 15_000 })).toEqual({
      receipt: 'receipt-1',
      attempt: 3,
    });
    expect(sent).toBe(1);
    expect((await store.listAttempts(id)).map((a) => a.outcome)).toEqual([
      'failed',
      'failed',
      'succeeded',
    ]);
  });
});

describe('lanes and scheduling', () => {
  it('a lane never runs more handlers at once than its concurrency', async () => {
    const store = await open();
    const queue = new JobQueue({ store, lanes: { duo: { concurrency: 2 } } });
    // Only the `duo` lane: a worker on several lanes spins when one is saturated (see below).
    const worker = newWorker({ queue, lanes: ['duo'] });
    let inFlight = 0;
    let maxInFlight = 0;
    worker.handle('work', async () => {
      inFlight += 1;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await sleep(15);
      inFlight -= 1;
      return 'ok';
    });
    const jobs = await queue.submitMany(
      Array.from({ length: 10 }, (_, i) => ({
        name: 'work',
        payload: { i },
        options: { lane: 'duo' },
      })),
    );
    await worker.start();
    for (const job of jobs) expect(await queue.result(job.id, { timeoutMs: 15_000 })).toBe('ok');
    expect(maxInFlight).toBe(2);
  });

  it('a worker on two lanes stays responsive when one lane is saturated', async () => {
    const file = join(tempDir(), 'q.db');
    const child = spawnModule(`
import { JobQueue, JobWorker } from ${JSON.stringify(QUEUE_MODULE)};
import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
const store = await openSqliteStore({ file: ${JSON.stringify(file)} });
const queue = new JobQueue({ store, lanes: { duo: { concurrency: 2 } } });
const worker = new JobWorker({ queue, heartbeat: 'timer' }); // works 'default' and 'duo'
worker.handle('work', async () => { await new Promise((resolve) => setTimeout(resolve, 5)); return 'ok'; });
const jobs = [];
for (let i = 0; i < 3; i++) jobs.push(await queue.submit('work', i, { lane: 'duo' }));
setTimeout(() => console.log('timers run'), 10);
await worker.start();
for (const job of jobs) await queue.result(job.id, { timeoutMs: 5000 });
console.log('done');
await worker.stop();
await store.close();
`);
    await child.line((l) => l === 'done', 'all three jobs to finish', 8_000);
    expect(child.lines).toContain('timers run');
    expect(await child.exited).toBe(0);
  });

  it('a full lane answers QUEUE_FULL and accepts nothing of an overflowing batch', async () => {
    const store = await open();
    const queue = new JobQueue({ store, lanes: { small: { concurrency: 1, maxDepth: 3 } } });
    await queue.submit('job', 1, { lane: 'small' });
    await queue.submit('job', 2, { lane: 'small' });
    const events = (await allEvents(store)).length;
    const batch = await expectCode(
      () =>
        queue.submitMany([
          { name: 'job', payload: 3, options: { lane: 'small' } },
          { name: 'job', payload: 4, options: { lane: 'small' } },
        ]),
      'QUEUE_FULL',
    );
    expect(batch.retryAfterMs).toBeGreaterThan(0);
    expect(await store.countQueued('small')).toBe(2);
    expect((await allEvents(store)).length).toBe(events);
    await queue.submit('job', 3, { lane: 'small' });
    const full = await expectCode(() => queue.submit('job', 4, { lane: 'small' }), 'QUEUE_FULL');
    expect(full.retryAfterMs).toBeGreaterThan(0);
    expect(full.details).toMatchObject({ lane: 'small', depth: 3, max_depth: 3 });
    expect(await store.countQueued('small')).toBe(3);
    // Other lanes are unaffected.
    await queue.submit('job', 5);
    expect(await store.countQueued('default')).toBe(1);
  });

  it('runs higher priorities first and FIFO within a priority', async () => {
    const clock = new ManualClock(); // one instant: order comes from priority and submit order
    const store = await open({ clock });
    const queue = new JobQueue({ store, clock, lanes: { serial: { concurrency: 1 } } });
    const order: string[] = [];
    const worker = newWorker({ queue, lanes: ['serial'], leaseMs: 600_000 });
    worker.handle('p', (job: JobContext<string>) => {
      order.push(job.payload);
    });
    const plan: Array<[string, 'low' | 'normal' | 'high' | 'realtime' | 'idle' | number]> = [
      ['low-1', 'low'],
      ['normal-1', 'normal'],
      ['idle-1', 'idle'],
      ['high-1', 'high'],
      ['low-2', 'low'],
      ['normal-2', 'normal'],
      ['realtime-1', 0],
      ['high-2', 'high'],
      ['normal-3', 'normal'],
    ];
    const ids = [];
    for (const [label, priority] of plan)
      ids.push((await queue.submit('p', label, { lane: 'serial', priority })).id);
    await worker.start();
    for (const id of ids) await waitForTask(store, id, (t) => t.state === 'succeeded', 'done');
    expect(order).toEqual([
      'realtime-1',
      'high-1',
      'high-2',
      'normal-1',
      'normal-2',
      'normal-3',
      'low-1',
      'low-2',
      'idle-1',
    ]);
  });

  it('does not start a delayed task before its time', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const queue = new JobQueue({ store, clock });
    const worker = newWorker({ queue, leaseMs: 600_000 });
    const startedAt = new Map<string, number>();
    worker.handle('run', (job: JobContext<string>) => {
      startedAt.set(job.payload, clock.now());
    });
    await worker.start();
    const submittedAt = clock.now();
    const later = await queue.submit('run', 'later', { delayMs: 60_000 });
    const now = await queue.submit('run', 'now');
    await waitForTask(store, now.id, (t) => t.state === 'succeeded', 'immediate job done');
    // The worker has claimed since the delayed task was queued, and left it.
    expect(await getTask(store, later.id)).toMatchObject({ state: 'queued', attempts: 0 });
    expect(startedAt.has('later')).toBe(false);
    clock.advance(59_999);
    await queue.submit('run', 'poke-1'); // wakes the worker (its own timer is in real time)
    await waitUntil(() => startedAt.has('poke-1'), 'poke-1 to run');
    expect((await getTask(store, later.id)).state).toBe('queued');
    clock.advance(1);
    await queue.submit('run', 'poke-2');
    await waitForTask(store, later.id, (t) => t.state === 'succeeded', 'delayed job done');
    expect(startedAt.get('later')).toBeGreaterThanOrEqual(submittedAt + 60_000);
  });

  it('cancel of a running job aborts its signal and the task ends canceled', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const worker = newWorker({ queue });
    let started = false;
    let seen: { aborted: boolean; reason: unknown } | undefined;
    worker.handle('long', async (job) => {
      started = true;
      await new Promise<void>((resolve) => {
        if (job.signal.aborted) resolve();
        else job.signal.addEventListener('abort', () => resolve(), { once: true });
      });
      seen = { aborted: job.signal.aborted, reason: job.signal.reason };
      throw job.signal.reason;
    });
    await worker.start();
    const { id } = await queue.submit('long', null);
    await waitUntil(() => started, 'the handler to start');
    const canceled = await queue.cancel(id, 'no longer needed');
    expect(canceled.state).toBe('canceled');
    const observed = await waitUntil(() => seen, 'the handler to see the abort');
    expect(observed.aborted).toBe(true);
    expect(isWardenError(observed.reason, 'CANCELED')).toBe(true);
    await waitUntil(() => worker.activeCount === 0, 'the handler to finish');
    await waitUntil(() => worker.stats.canceled >= 1, 'the worker to count the cancel');
    expect(worker.stats).toMatchObject({ canceled: 1, leaseLost: 0, succeeded: 0, retried: 0 });
    expect(await getTask(store, id)).toMatchObject({ state: 'canceled', lease_token: null });
    expect((await store.listAttempts(id)).map((a) => a.outcome)).toEqual(['canceled']);
    expect((await taskEvents(store, id, 'task.canceled')).map((e) => e.data)).toEqual([
      { reason: 'no longer needed', from: 'running' },
    ]);
    const error = await expectCode(() => queue.result(id), 'JOB_FAILED');
    expect(error.details).toMatchObject({ state: 'canceled' });
  });

  it('cancel of a queued job means it never runs', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const { id } = await queue.submit('never', null);
    expect((await queue.cancel(id)).state).toBe('canceled');
    // Canceling again is a no-op.
    expect((await queue.cancel(id)).state).toBe('canceled');
    const worker = newWorker({ queue });
    let ran = 0;
    worker.handle('never', () => {
      ran += 1;
    });
    worker.handle('probe', () => 'probed');
    await worker.start();
    const probe = await queue.submit('probe', null);
    expect(await queue.result(probe.id, { timeoutMs: 15_000 })).toBe('probed');
    expect(ran).toBe(0);
    expect(await getTask(store, id)).toMatchObject({ state: 'canceled', attempts: 0 });
    expect(await store.listAttempts(id)).toEqual([]);
  });

  it('dead letters: listed, purged for good; redrive or purge of a live task is INVALID_STATE', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const worker = newWorker({ queue });
    worker.handle('hopeless', () => {
      throw new Error('always fails');
    });
    worker.handle('fine', () => 'fine');
    await worker.start();
    const hopeless = await queue.submit('hopeless', null, { attempts: 1 });
    const fine = await queue.submit('fine', null);
    await waitForTask(store, hopeless.id, (t) => t.state === 'dead', 'hopeless dead');
    expect(await queue.result(fine.id, { timeoutMs: 15_000 })).toBe('fine');
    expect((await queue.deadLetters()).map((t) => t.id)).toEqual([hopeless.id]);
    expect((await taskEvents(store, hopeless.id, 'task.dead')).map((e) => e.data)).toEqual([
      expect.objectContaining({ reason: 'attempts_exhausted' }),
    ]);

    const before = await snapshot(store, fine.id);
    await expectCode(() => queue.redrive(fine.id), 'INVALID_STATE');
    await expectCode(() => queue.purge(fine.id), 'INVALID_STATE');
    expect(await snapshot(store, fine.id)).toEqual(before);

    await queue.purge(hopeless.id, 'tester');
    await expectCode(() => queue.get(hopeless.id), 'NOT_FOUND');
    await expectCode(() => queue.inspect(hopeless.id), 'NOT_FOUND');
    await expectCode(() => queue.purge(hopeless.id), 'NOT_FOUND');
    expect(await store.listAttempts(hopeless.id)).toEqual([]);
    expect(await queue.deadLetters()).toEqual([]);
    expect((await taskEvents(store, hopeless.id, 'task.purged')).map((e) => e.data)).toEqual([
      expect.objectContaining({ by: 'tester', name: 'hopeless', attempts: 1 }),
    ]);
  });

  it('a redriven dead letter runs again and succeeds', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const errors: WardenError[] = [];
    const worker = newWorker({ queue, onError: (e) => errors.push(e) });
    let runs = 0;
    worker.handle('fragile', () => {
      runs += 1;
      if (runs === 1) throw new Error('first run fails');
      return `ok on run ${runs}`;
    });
    await worker.start();
    const fragile = await queue.submit('fragile', null, { attempts: 1 });
    await waitForTask(store, fragile.id, (t) => t.state === 'dead', 'fragile dead');
    const redriven = await queue.redrive(fragile.id, 'tester');
    expect(redriven.state).not.toBe('dead');
    expect((await taskEvents(store, fragile.id, 'task.redriven')).map((e) => e.data)).toEqual([
      expect.objectContaining({ by: 'tester', attempts_before: 1 }),
    ]);
    // Either it settles, or the worker reports why it could not.
    await waitUntil(
      async () => errors.length > 0 || (await getTask(store, fragile.id)).state === 'succeeded',
      'the redriven task to settle',
    );
    expect(errors.map((e) => e.message)).toEqual([]);
    expect(runs).toBe(2);
    expect(await queue.result(fragile.id)).toBe('ok on run 2');
    expect((await store.listAttempts(fragile.id)).map((a) => a.outcome)).toContain('succeeded');
  });
});

describe('schedules', () => {
  it('an interval schedule fires once per occurrence', async () => {
    const clock = new ManualClock();
    const store = await open({ clock });
    const queue = new JobQueue({ store, clock });
    const schedule = await queue.schedule('heartbeat', {
      everyMs: 60_000,
      job: 'tick',
      payload: { from: 'schedule' },
    });
    expect(schedule.next_run_at).toBe(clock.now() + 60_000);
    expect(await queue.fireDueSchedules()).toEqual([]);
    clock.advance(60_000);
    const first = await queue.fireDueSchedules();
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ name: 'tick', payload: { from: 'schedule' } });
    expect(await queue.fireDueSchedules()).toEqual([]);
    clock.advance(30_000);
    expect(await queue.fireDueSchedules()).toEqual([]);
    clock.advance(30_000);
    expect(await queue.fireDueSchedules()).toHaveLength(1);
    expect(await queue.fireDueSchedules()).toEqual([]);
    expect(await store.listTasks()).toHaveLength(2);
    // A long downtime coalesces the missed occurrences into one firing.
    clock.advance(10 * 60_000);
    expect(await queue.fireDueSchedules()).toHaveLength(1);
    expect(await queue.fireDueSchedules()).toEqual([]);
    const [row] = await store.listSchedules();
    expect(row!.next_run_at).toBeGreaterThan(clock.now());
  });

  it('two queues on two connections never fire one occurrence twice', async () => {
    const clock = new ManualClock();
    const file = join(tempDir(), 'q.db');
    const storeA = await open({ file, clock });
    const storeB = await open({ file, clock });
    const queueA = new JobQueue({ store: storeA, clock });
    const queueB = new JobQueue({ store: storeB, clock });
    await queueA.schedule('report', { everyMs: 1_000, job: 'report' });
    for (let occurrence = 1; occurrence <= 5; occurrence++) {
      clock.advance(1_000);
      const fired = await Promise.all([queueA.fireDueSchedules(), queueB.fireDueSchedules()]);
      expect(fired.flat()).toHaveLength(1);
    }
    expect(await storeB.listTasks()).toHaveLength(5);
  });

  it('processes firing the same due occurrence at once create exactly one task', async () => {
    const dir = tempDir();
    const file = join(dir, 'q.db');
    const go = join(dir, 'go');
    const clock = new ManualClock();
    const store = await open({ file, clock });
    const queue = new JobQueue({ store, clock });
    await queue.schedule('nightly', { everyMs: 3_600_000, job: 'nightly' });
    const due = clock.now() + 3_600_000;
    const code = `
import { existsSync } from 'node:fs';
import { JobQueue } from ${JSON.stringify(QUEUE_MODULE)};
import { openSqliteStore } from ${JSON.stringify(STORE_MODULE)};
const clock = { now: () => ${due} };
const store = await openSqliteStore({ file: ${JSON.stringify(file)}, mustExist: true, clock });
const queue = new JobQueue({ store, clock });
await queue.sessions.system();
console.log('ready');
while (!existsSync(${JSON.stringify(go)})) await new Promise((resolve) => setTimeout(resolve, 1));
const fired = await queue.fireDueSchedules();
console.log(JSON.stringify({ fired: fired.map((t) => t.id) }));
await store.close();
`;
    const procs = Array.from({ length: 3 }, () => spawnModule(code));
    await Promise.all(procs.map((p) => p.line((l) => l === 'ready', 'child ready')));
    writeFileSync(go, '');
    const lines = await Promise.all(
      procs.map((p) => p.line((l) => l.startsWith('{"fired"'), 'fire result')),
    );
    expect(await Promise.all(procs.map((p) => p.exited))).toEqual([0, 0, 0]);
    const fired = lines.flatMap((l) => (JSON.parse(l) as { fired: string[] }).fired);
    expect(fired).toHaveLength(1);
    expect((await store.listTasks()).map((t) => t.id)).toEqual(fired);
  });

  it('rejects invalid schedules with INVALID_PARAMS', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const cron = await expectCode(
      () => queue.schedule('bad', { cron: 'every tuesday', job: 'x' }),
      'INVALID_PARAMS',
    );
    expect(cron.message).toContain('every tuesday');
    await expectCode(
      () => queue.schedule('bad', { cron: '61 * * * *', job: 'x' }),
      'INVALID_PARAMS',
    );
    await expectCode(() => queue.schedule('bad', { everyMs: 10, job: 'x' }), 'INVALID_PARAMS');
    await expectCode(() => queue.schedule('bad', { job: 'x' }), 'INVALID_PARAMS');
    await expectCode(
      () => queue.schedule('bad', { cron: '* * * * *', everyMs: 60_000, job: 'x' }),
      'INVALID_PARAMS',
    );
    await expectCode(
      () => queue.schedule('bad', { everyMs: 60_000, job: 'x', lane: 'nowhere' }),
      'INVALID_PARAMS',
    );
    expect(await store.listSchedules()).toEqual([]);
    // A valid cron schedule is accepted and due at its next occurrence.
    const ok = await queue.schedule('good', { cron: '*/5 * * * *', job: 'x' });
    expect(ok.next_run_at % 300_000).toBe(0);
  });
});
