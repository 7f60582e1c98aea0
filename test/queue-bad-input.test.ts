/**
 * Bad input to the job queue gets a typed error whose message names the field, and changes
 * nothing: no task, attempt, session, schedule or event is written.
 */
import { join } from 'node:path';

import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';

import { type ErrorCode, isWardenError } from '../src/core/index.ts';
import { JobQueue, type SubmitOptions } from '../src/queue/index.ts';
import { openSqliteStore, type Store, type TaskRecord } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

interface Ctx {
  readonly store: Store;
  readonly queue: JobQueue;
  /** A running task and its lease token. */
  readonly running: TaskRecord;
  readonly token: string;
}

interface Case {
  readonly name: string;
  readonly code: ErrorCode;
  /** What the message must say (the field, the declared lanes, ...). */
  readonly message?: RegExp;
  readonly run: (ctx: Ctx) => Promise<unknown>;
}

const MAX_PAYLOAD = 1_024;
const UNKNOWN = 't_00000000000000000000000000';

const submitWith = (options: unknown) => (ctx: Ctx) =>
  ctx.queue.submit('job', { ok: true }, options as SubmitOptions);

const circular: Record<string, unknown> = { name: 'loop' };
circular.self = circular;

const CASES: readonly Case[] = [
  // Submit options.
  {
    name: 'an unknown option key',
    code: 'INVALID_PARAMS',
    message: /colour/,
    run: submitWith({ colour: 'red' }),
  },
  {
    name: 'a negative delay',
    code: 'INVALID_PARAMS',
    message: /delayMs/,
    run: submitWith({ delayMs: -1 }),
  },
  {
    name: 'a fractional delay',
    code: 'INVALID_PARAMS',
    message: /delayMs/,
    run: submitWith({ delayMs: 1.5 }),
  },
  {
    name: 'a negative runAt',
    code: 'INVALID_PARAMS',
    message: /runAt/,
    run: submitWith({ runAt: -5 }),
  },
  {
    name: 'attempts 0',
    code: 'INVALID_PARAMS',
    message: /attempts/,
    run: submitWith({ attempts: 0 }),
  },
  {
    name: 'attempts as text',
    code: 'INVALID_PARAMS',
    message: /attempts/,
    run: submitWith({ attempts: 'three' }),
  },
  {
    name: "priority 'urgent'",
    code: 'INVALID_PARAMS',
    message: /priority/,
    run: submitWith({ priority: 'urgent' }),
  },
  {
    name: 'priority rank 7',
    code: 'INVALID_PARAMS',
    message: /priority/,
    run: submitWith({ priority: 7 }),
  },
  {
    name: 'a lane name with spaces',
    code: 'INVALID_PARAMS',
    message: /lane/,
    run: submitWith({ lane: 'my lane' }),
  },
  {
    name: 'an undeclared lane',
    code: 'INVALID_PARAMS',
    message: /unknown lane 'bulk'.*declared lanes: default, small/,
    run: submitWith({ lane: 'bulk' }),
  },
  {
    name: 'a backoff without maxMs',
    code: 'INVALID_PARAMS',
    message: /backoff/,
    run: submitWith({ backoff: { baseMs: 10 } }),
  },
  {
    name: 'a negative backoff base',
    code: 'INVALID_PARAMS',
    message: /backoff\.baseMs/,
    run: submitWith({ backoff: { baseMs: -1, maxMs: 10 } }),
  },
  {
    name: 'an empty idempotency key',
    code: 'INVALID_PARAMS',
    message: /idempotencyKey/,
    run: submitWith({ idempotencyKey: '' }),
  },
  {
    name: 'timeoutMs 0',
    code: 'INVALID_PARAMS',
    message: /timeoutMs/,
    run: submitWith({ timeoutMs: 0 }),
  },
  {
    name: 'a negative poison threshold',
    code: 'INVALID_PARAMS',
    message: /poisonThreshold/,
    run: submitWith({ poisonThreshold: -1 }),
  },
  {
    name: 'an invalid session key',
    code: 'INVALID_PARAMS',
    message: /session/,
    run: submitWith({ session: 'not a key!' }),
  },
  {
    name: 'options that are not an object',
    code: 'INVALID_PARAMS',
    message: /submit options/,
    run: submitWith('fast'),
  },
  // Payloads.
  {
    name: 'an oversized payload',
    code: 'PAYLOAD_TOO_LARGE',
    message: new RegExp(`limit is ${MAX_PAYLOAD}`),
    run: (ctx) => ctx.queue.submit('job', { blob: 'x'.repeat(MAX_PAYLOAD) }),
  },
  {
    name: 'a BigInt payload',
    code: 'INVALID_PARAMS',
    message: /not serialisable as JSON/,
    run: (ctx) => ctx.queue.submit('job', { amount: 10n }),
  },
  {
    name: 'a circular payload',
    code: 'INVALID_PARAMS',
    message: /not serialisable as JSON/,
    run: (ctx) => ctx.queue.submit('job', circular),
  },
  // Job names.
  {
    name: 'a job name with spaces',
    code: 'INVALID_PARAMS',
    message: /job name/,
    run: (ctx) => ctx.queue.submit('send email', null),
  },
  {
    name: 'an empty job name',
    code: 'INVALID_PARAMS',
    message: /job name/,
    run: (ctx) => ctx.queue.submit('', null),
  },
  {
    name: 'a job name of 129 characters',
    code: 'INVALID_PARAMS',
    message: /job name/,
    run: (ctx) => ctx.queue.submit('j'.repeat(129), null),
  },
  {
    name: 'a batch with one invalid member (nothing of it is inserted)',
    code: 'INVALID_PARAMS',
    message: /attempts/,
    run: (ctx) =>
      ctx.queue.submitMany([
        { name: 'job', payload: 1 },
        { name: 'job', payload: 2, options: { attempts: 0 } },
      ]),
  },
  // Unknown task ids.
  {
    name: 'get of an unknown id',
    code: 'NOT_FOUND',
    message: /t_0+/,
    run: (c) => c.queue.get(UNKNOWN),
  },
  { name: 'cancel of an unknown id', code: 'NOT_FOUND', run: (c) => c.queue.cancel(UNKNOWN) },
  { name: 'redrive of an unknown id', code: 'NOT_FOUND', run: (c) => c.queue.redrive(UNKNOWN) },
  { name: 'purge of an unknown id', code: 'NOT_FOUND', run: (c) => c.queue.purge(UNKNOWN) },
  { name: 'inspect of an unknown id', code: 'NOT_FOUND', run: (c) => c.queue.inspect(UNKNOWN) },
  { name: 'result of an unknown id', code: 'NOT_FOUND', run: (c) => c.queue.result(UNKNOWN) },
  {
    name: 'heartbeat of an unknown id',
    code: 'NOT_FOUND',
    run: (c) => c.store.heartbeat(UNKNOWN, c.token, 10_000, Date.now()),
  },
  // Wrong lease tokens.
  {
    name: 'heartbeat with a wrong lease token',
    code: 'LEASE_LOST',
    message: /lease/,
    run: (c) => c.store.heartbeat(c.running.id, `${c.token}-forged`, 10_000, Date.now()),
  },
  {
    name: 'settle (commit) with a wrong lease token',
    code: 'LEASE_LOST',
    run: (c) =>
      c.store.commit([
        {
          op: 'task.settle',
          id: c.running.id,
          leaseToken: 'lt_forged',
          state: 'succeeded',
          result: 'forged',
          attemptOutcome: 'succeeded',
          now: Date.now(),
        },
        {
          op: 'event',
          event: {
            session_id: c.running.session_id,
            type: 'task.succeeded',
            trace_id: c.running.trace_id,
            task_id: c.running.id,
            data: {},
          },
        },
      ]),
  },
  {
    name: 'settle (batch) with a wrong lease token',
    code: 'LEASE_LOST',
    run: async (c) => {
      const [outcome] = await c.store.settleTasks([
        {
          id: c.running.id,
          leaseToken: 'lt_forged',
          state: 'failed',
          error: { code: 'JOB_FAILED', message: 'forged' },
          attemptOutcome: 'failed',
          now: Date.now(),
          events: [
            {
              session_id: c.running.session_id,
              type: 'task.failed',
              trace_id: c.running.trace_id,
              task_id: c.running.id,
              data: {},
            },
          ],
        },
      ]);
      expect(outcome?.ok).toBe(false);
      throw outcome?.error ?? new Error('the forged settle applied');
    },
  },
  {
    name: 'a fenced progress commit with a wrong lease token',
    code: 'LEASE_LOST',
    run: (c) => c.store.commit([{ op: 'task.fence', id: c.running.id, leaseToken: 'lt_forged' }]),
  },
  // Schedules.
  {
    name: 'a schedule with an invalid cron expression',
    code: 'INVALID_PARAMS',
    message: /cron/,
    run: (c) => c.queue.schedule('nightly', { cron: 'at midnight', job: 'job' }),
  },
  {
    name: 'a schedule with an invalid job name',
    code: 'INVALID_PARAMS',
    message: /job name/,
    run: (c) => c.queue.schedule('nightly', { everyMs: 60_000, job: 'no spaces please' }),
  },
];

describe('queue bad input', () => {
  let ctx: Ctx;

  beforeEach(async () => {
    const store = await openSqliteStore({ file: join(tempDir(), 'q.db') });
    const queue = new JobQueue({
      store,
      lanes: { small: { concurrency: 1, maxDepth: 3 } },
      maxPayloadBytes: MAX_PAYLOAD,
    });
    await queue.submit('job', { seed: 1 });
    await queue.submit('job', { seed: 2 }, { lane: 'small' });
    const [claim] = await store.claimTasks({
      lanes: ['default'],
      kinds: ['job'],
      workerId: 'w1',
      limit: 1,
      leaseMs: 60_000,
      now: Date.now(),
    });
    ctx = { store, queue, running: claim!.task, token: claim!.leaseToken };
  });
  afterEach(async () => {
    await ctx.store.close();
  });
  afterAll(removeTempDirs);

  async function state(store: Store) {
    const sessions = await store.listSessions();
    let events = 0;
    for (const s of sessions) events += (await store.readEvents({ sessionId: s.id })).length;
    const tasks = await store.listTasks();
    const attempts = [];
    for (const t of tasks) attempts.push(...(await store.listAttempts(t.id)));
    return { sessions, events, tasks, attempts, schedules: await store.listSchedules() };
  }

  it.each(CASES)('$name → $code, and nothing changes', async (c) => {
    const before = await state(ctx.store);
    let caught: unknown;
    try {
      await c.run(ctx);
    } catch (error) {
      caught = error;
    }
    expect(isWardenError(caught, c.code), `expected ${c.code}, got ${String(caught)}`).toBe(true);
    const message = (caught as Error).message;
    if (c.message) expect(message).toMatch(c.message);
    expect(message).not.toMatch(/\n\s+at /); // a message, not a stack trace
    expect(await state(ctx.store)).toEqual(before);
  });

  it('the table covers every listed kind of bad input', () => {
    const codes = new Set(CASES.map((c) => c.code));
    expect([...codes].sort()).toEqual(
      ['INVALID_PARAMS', 'LEASE_LOST', 'NOT_FOUND', 'PAYLOAD_TOO_LARGE'].sort(),
    );
  });

  it('the running task is still held by its real token afterwards', async () => {
    for (const c of CASES.filter((x) => x.code === 'LEASE_LOST')) {
      await c.run(ctx).catch(() => undefined);
    }
    const expires = await ctx.store.heartbeat(ctx.running.id, ctx.token, 60_000, Date.now());
    expect(expires).toBeGreaterThan(Date.now());
    expect(await ctx.store.getTask(ctx.running.id)).toMatchObject({
      state: 'running',
      attempts: 1,
      lease_token: ctx.token,
    });
  });
});
