/**
 * The effect journal under competing attempts (issue 6, defect 2), on a real SQLite file:
 * records are owned by an attempt and change only by compare-and-set on status and owner, so a
 * `done` is never overwritten, a retry after `failed` is reconciled after a crash, two attempts
 * racing one key (one of which lost its lease) perform the effect once, an attempt without its
 * lease cannot begin one, and every transition commits with its event. Then workflow agents:
 * model calls and `ctx.effect()` go through the journal, so a retried step neither calls the
 * provider again nor counts a completed call twice.
 *
 * Attempts are driven by hand: claim a job, let the lease expire on a ManualClock, reclaim it,
 * claim it again — the second claim is a new attempt while the first one's code still runs.
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  buildWorkflow,
  DEFAULT_LIMITS,
  type ErrorCode,
  isWardenError,
  ManualClock,
  utf8Bytes,
  WardenError,
} from '../src/core/index.ts';
import { Kernel, type KernelOptions } from '../src/kernel/index.ts';
import { EffectJournal, JobQueue } from '../src/queue/index.ts';
import { reclaimExpiredLeases } from '../src/queue/lease-reaper.ts';
import {
  AgentRegistry,
  type ModelProvider,
  ModelRegistry,
  ScriptedProvider,
  Worker,
} from '../src/runtime/index.ts';
import {
  type ClaimedTask,
  type EffectRecord,
  type EventRecord,
  openSqliteStore,
  type Store,
} from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { waitForProcess } from './helpers/wait.ts';

const LEASE_MS = 10_000;

const stores: Store[] = [];
const cleanups: Array<() => Promise<unknown>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  for (const store of stores.splice(0)) await store.close();
});
afterAll(removeTempDirs);

/** A store on a fresh file, a job queue and a clock that only moves when told. */
async function setup() {
  const clock = new ManualClock();
  const store = await openSqliteStore({ file: join(tempDir(), 'fx.db'), clock });
  stores.push(store);
  const queue = new JobQueue({ store, clock });
  const { id } = await queue.submit('charge', { amount: 5 }, { attempts: 10 });
  /** Workers declared dead (for `isDeadOwner`). */
  const dead = new Set<string>();
  const journal = new EffectJournal(store, clock, { isDeadOwner: (w) => dead.has(w) });
  const claim = async (worker: string): Promise<ClaimedTask> => {
    const [claimed] = await store.claimTasks({
      lanes: ['default'],
      kinds: ['job'],
      workerId: worker,
      limit: 1,
      leaseMs: LEASE_MS,
      now: clock.now(),
    });
    if (!claimed) throw new Error(`nothing to claim for ${worker}`);
    return claimed;
  };
  /** The current attempt's lease runs out and is reclaimed: its token is stale from now on. */
  const loseLease = async () => {
    clock.advance(LEASE_MS + 1);
    const reclaimed = await reclaimExpiredLeases(store, clock.now(), {
      isDeadOwner: () => false,
      agingMs: 0,
      random: () => 0,
    });
    expect(reclaimed).toBe(1);
  };
  return { clock, store, queue, taskId: id, dead, journal, claim, loseLease };
}

/** A promise the test resolves when it wants (an effect in flight). */
function gate<T = void>() {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

async function waitFor<T>(probe: () => Promise<T | undefined | false>, what: string): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Wraps an effect's fn to tell when it has started (begin has committed `pending` by then). */
function tracked<T>(fn: () => Promise<T>) {
  let started = false;
  return {
    fn: () => {
      started = true;
      return fn();
    },
    started: () => waitFor(() => Promise.resolve(started), 'the effect to start'),
  };
}

async function rejection(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => {
      throw new Error(`expected a rejection, got ${JSON.stringify(value)}`);
    },
    (error: unknown) => error,
  );
}

async function expectCode(promise: Promise<unknown>, code: ErrorCode): Promise<WardenError> {
  const error = await rejection(promise);
  expect(isWardenError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
  return error as WardenError;
}

async function effectEvents(store: Store, sessionId: string): Promise<EventRecord[]> {
  return (await store.readEvents({ sessionId, limit: 10_000 })).filter((e) =>
    e.type.startsWith('effect.'),
  );
}

describe('effect journal: competing attempts', () => {
  it('a failed from a losing attempt cannot overwrite the winner’s done; the next call does not run fn again', async () => {
    const { store, journal, claim, loseLease, clock, taskId } = await setup();
    const a = journal.forClaim(await claim('w-a'));
    const bank = gate();
    let charges = 0;
    // Attempt A starts the charge; its bank call hangs, and will fail (a timeout) at the end.
    const call = tracked(async () => {
      await bank.promise;
      throw new Error('timed out talking to the bank');
    });
    const late = a.effect('charge:1', { amount: 5 }, call.fn);
    await call.started();
    expect((await store.getEffect('charge:1'))?.status).toBe('pending');
    // A loses its lease; B claims the task, and once A is presumed gone takes the charge over.
    await loseLease();
    const b = journal.forClaim(await claim('w-b'));
    clock.advance(2 * LEASE_MS);
    const charge = () => {
      charges += 1;
      return { charge: `ch_${charges}` };
    };
    expect(await b.effect('charge:1', { amount: 5 }, charge)).toEqual({ charge: 'ch_1' });
    // A's bank call now fails: A must not turn B's done into failed.
    bank.open();
    expect(String(await rejection(late))).toContain('timed out talking to the bank');
    expect(await store.getEffect('charge:1')).toMatchObject({
      status: 'done',
      result: { charge: 'ch_1' },
    });
    // Any later call gets the charge back without charging again.
    expect(await b.effect('charge:1', { amount: 5 }, charge)).toEqual({ charge: 'ch_1' });
    await loseLease();
    const c = journal.forClaim(await claim('w-c'));
    expect(await c.effect('charge:1', { amount: 5 }, charge)).toEqual({ charge: 'ch_1' });
    expect(charges).toBe(1);
    expect((await store.getEffect('charge:1'))?.owner_worker).toBe('w-b');
    // A's late outcome is visible, not silent.
    const task = (await store.getTask(taskId))!;
    const superseded = (await effectEvents(store, task.session_id)).filter(
      (e) => e.type === 'effect.superseded',
    );
    expect(superseded).toHaveLength(1);
    expect(superseded[0]).toMatchObject({
      attempt: 1,
      data: { key: 'charge:1', outcome: 'failed', status: 'done', current_worker: 'w-b' },
    });
  });

  it('a retry after failed goes back to pending before running fn, so a crash during it is reconciled', async () => {
    const { store, journal, claim, loseLease, dead } = await setup();
    const a = journal.forClaim(await claim('w-a'));
    await expect(
      a.effect('email:1', { to: 'ops' }, () => {
        throw new Error('smtp down');
      }),
    ).rejects.toThrow('smtp down');
    expect((await store.getEffect('email:1'))?.status).toBe('failed');

    // Attempt B retries; it sends the mail and crashes before recording it (its fn never ends).
    await loseLease();
    const b = journal.forClaim(await claim('w-b'));
    const sent: string[] = [];
    let seenDuringRetry: EffectRecord | undefined;
    const crash = gate();
    const abandoned = b.effect('email:1', { to: 'ops' }, async () => {
      seenDuringRetry = await store.getEffect('email:1');
      sent.push('by B');
      await crash.promise;
      return 'sent by B';
    });
    await waitFor(() => Promise.resolve(sent.length === 1), 'B to send');
    expect(seenDuringRetry?.status).toBe('pending');
    expect(seenDuringRetry?.owner_worker).toBe('w-b');

    // B's process is gone. C finds the record pending under a dead owner and asks reconcile.
    dead.add('w-b');
    await loseLease();
    const c = journal.forClaim(await claim('w-c'));
    let reconciled = 0;
    const result = await c.effect(
      'email:1',
      { to: 'ops' },
      () => {
        sent.push('by C');
        return 'sent by C';
      },
      {
        reconcile: () => {
          reconciled += 1;
          return sent.includes('by B') ? 'found B’s mail' : undefined;
        },
      },
    );
    expect(result).toBe('found B’s mail');
    expect(reconciled).toBe(1);
    expect(sent).toEqual(['by B']);
    expect(await store.getEffect('email:1')).toMatchObject({
      status: 'done',
      result: 'found B’s mail',
    });
    const session = (await store.getTask(c.scope.taskId))!.session_id;
    expect(
      (await effectEvents(store, session)).map((e) => [
        e.type,
        (e.data as { error?: unknown }).error,
      ]),
    ).toEqual([
      ['effect.started', undefined],
      ['effect.failed', { code: 'JOB_FAILED', message: 'smtp down' }],
      ['effect.retried', undefined],
      ['effect.taken_over', undefined],
      ['effect.completed', undefined],
    ]);
    crash.open();
    await abandoned; // B's late done is not recorded over C's: it still gets its own result
    expect(await store.getEffect('email:1')).toMatchObject({ result: 'found B’s mail' });
  });

  it('two attempts racing one effect key, one of which lost its lease: the effect happens once', async () => {
    const { store, journal, claim, loseLease } = await setup();
    let sends = 0;
    const send = (who: string, wait?: Promise<void>) => async () => {
      sends += 1;
      await wait;
      return `sent by ${who}`;
    };
    const a = journal.forClaim(await claim('w-a'));
    const slow = gate();
    const call = tracked(send('A', slow.promise));
    const first = a.effect('notify:9', { n: 9 }, call.fn);
    await call.started();

    // A lost its lease but is alive and still sending. B (the new attempt) must not send too.
    await loseLease();
    const b = journal.forClaim(await claim('w-b'));
    const busy = await expectCode(b.effect('notify:9', { n: 9 }, send('B')), 'EFFECT_IN_PROGRESS');
    expect(busy.retryable).toBe(true);
    expect(busy.retryAfterMs).toBeGreaterThan(0);
    expect(sends).toBe(1);

    // A finishes (its done needs no lease: only ownership), and B's retry gets A's result.
    slow.open();
    expect(await first).toBe('sent by A');
    expect(await b.effect('notify:9', { n: 9 }, send('B'))).toBe('sent by A');
    expect(sends).toBe(1);
    expect(await store.getEffect('notify:9')).toMatchObject({
      status: 'done',
      owner_worker: 'w-a',
    });
  });

  it('the owner is taken over only once it is known gone: a dead worker at once, a live one after the horizon', async () => {
    const { store, journal, claim, loseLease, clock, dead, taskId } = await setup();
    const a = journal.forClaim(await claim('w-a'));
    const slow = gate();
    const call = tracked(async () => {
      await slow.promise;
      return 'by A';
    });
    const first = a.effect('k', { n: 1 }, call.fn);
    await call.started();
    await loseLease();
    const b = journal.forClaim(await claim('w-b'));
    // Just before the horizon (twice the lease since A lost it): still A's.
    clock.advance(2 * LEASE_MS - 1);
    const early = await expectCode(
      b.effect('k', { n: 1 }, () => 'by B'),
      'EFFECT_IN_PROGRESS',
    );
    expect(early.retryAfterMs).toBeLessThanOrEqual(10); // 1 ms left (floored at 10 ms)
    clock.advance(1);
    expect(await b.effect('k', { n: 1 }, () => 'by B')).toBe('by B');
    // A outlived the horizon: its result is returned to it, recorded over nothing, and reported.
    slow.open();
    expect(await first).toBe('by A');
    expect(await store.getEffect('k')).toMatchObject({ result: 'by B', owner_worker: 'w-b' });
    const session = (await store.getTask(taskId))!.session_id;
    expect(
      (await effectEvents(store, session)).map((e) => [e.type, e.attempt, e.data]),
    ).toMatchObject([
      ['effect.started', 1, { key: 'k' }],
      ['effect.taken_over', 2, { key: 'k', why: 'horizon', previous_worker: 'w-a' }],
      ['effect.completed', 2, { key: 'k', reconciled: false }],
      ['effect.superseded', 1, { key: 'k', outcome: 'done', status: 'done' }],
    ]);

    // A worker process known dead is taken over at once, without waiting for the horizon.
    const c = journal.forClaim((await loseLease(), await claim('w-c')));
    const stuck = tracked(() => new Promise<string>(() => undefined));
    void c.effect('k2', { n: 2 }, stuck.fn);
    await stuck.started();
    dead.add('w-c');
    await loseLease();
    const d = journal.forClaim(await claim('w-d'));
    expect(await d.effect('k2', { n: 2 }, () => 'by D')).toBe('by D');
  });

  it('an attempt whose lease is gone cannot begin an effect (LEASE_LOST, nothing written)', async () => {
    const { store, journal, claim, loseLease, queue, taskId } = await setup();
    const a = journal.forClaim(await claim('w-a'));
    await loseLease();
    let runs = 0;
    const fn = () => {
      runs += 1;
      return 'sent';
    };
    await expectCode(a.effect('mail:1', { n: 1 }, fn), 'LEASE_LOST');
    expect(runs).toBe(0);
    expect(await store.getEffect('mail:1')).toBeUndefined();

    // Nor can it retry a failed effect, or begin one after its task was canceled.
    const b = journal.forClaim(await claim('w-b'));
    await expect(
      b.effect('mail:2', { n: 2 }, () => {
        throw new Error('down');
      }),
    ).rejects.toThrow('down');
    await queue.cancel(taskId);
    await expectCode(b.effect('mail:2', { n: 2 }, fn), 'LEASE_LOST');
    await expectCode(b.effect('mail:3', { n: 3 }, fn), 'LEASE_LOST');
    expect(runs).toBe(0);
    expect(await store.getEffect('mail:2')).toMatchObject({ status: 'failed' });
    expect(await store.getEffect('mail:3')).toBeUndefined();
    const session = (await store.getTask(taskId))!.session_id;
    expect((await effectEvents(store, session)).map((e) => e.type)).toEqual([
      'effect.started',
      'effect.failed',
    ]);
  });

  it('every transition commits with its event, in the task’s session with its ids', async () => {
    const { store, journal, claim, loseLease, dead, taskId } = await setup();
    // For each committed effect event: the record as it is right after that commit.
    const seen: Array<{ event: EventRecord; record: Promise<EffectRecord | undefined> }> = [];
    const unsubscribe = store.onCommit((events) => {
      for (const event of events)
        if (event.type.startsWith('effect.'))
          seen.push({ event, record: store.getEffect((event.data as { key: string }).key) });
    });
    cleanups.push(() => Promise.resolve(unsubscribe()));

    const a = journal.forClaim(await claim('w-a'));
    await a.effect('ok', { n: 1 }, () => 'fine', { tool: 'mail.send' });
    await expect(
      a.effect('bad', { n: 2 }, () => {
        throw new WardenError('PROVIDER_ERROR', 'upstream 503');
      }),
    ).rejects.toThrow('upstream 503');
    const stuck = tracked(() => new Promise<string>(() => undefined));
    void a.effect('lost', { n: 3 }, stuck.fn);
    await stuck.started();
    dead.add('w-a');
    await loseLease();
    const b = journal.forClaim(await claim('w-b'));
    expect(await b.effect('bad', { n: 2 }, () => 'fine now')).toBe('fine now');
    expect(await b.effect('lost', { n: 3 }, () => 'x', { reconcile: () => 'it happened' })).toBe(
      'it happened',
    );

    const task = (await store.getTask(taskId))!;
    const rows = await Promise.all(
      seen.map(async ({ event, record }) => {
        const r = (await record)!;
        return [
          event.type,
          event.attempt,
          (event.data as { key: string }).key,
          r.status,
          r.owner_worker,
        ];
      }),
    );
    expect(rows).toEqual([
      ['effect.started', 1, 'ok', 'pending', 'w-a'],
      ['effect.completed', 1, 'ok', 'done', 'w-a'],
      ['effect.started', 1, 'bad', 'pending', 'w-a'],
      ['effect.failed', 1, 'bad', 'failed', 'w-a'],
      ['effect.started', 1, 'lost', 'pending', 'w-a'],
      ['effect.retried', 2, 'bad', 'pending', 'w-b'],
      ['effect.completed', 2, 'bad', 'done', 'w-b'],
      ['effect.taken_over', 2, 'lost', 'pending', 'w-b'],
      ['effect.completed', 2, 'lost', 'done', 'w-b'],
    ]);
    for (const { event } of seen) {
      expect(event).toMatchObject({
        session_id: task.session_id,
        task_id: task.id,
        trace_id: task.trace_id,
        process_id: task.process_id,
      });
    }
    const events = await effectEvents(store, task.session_id);
    expect(events.map((e) => e.seq)).toEqual(seen.map((s) => s.event.seq));
    expect(events[0]!.data).toMatchObject({ key: 'ok', tool: 'mail.send' });
    expect(events[3]!.data).toMatchObject({
      error: { code: 'PROVIDER_ERROR', message: 'upstream 503' },
    });
    expect(events[7]!.data).toMatchObject({ why: 'owner_dead', previous_worker: 'w-a' });
    expect(events[8]!.data).toMatchObject({ reconciled: true });
  });

  it('concurrent calls with one key in one attempt share one execution', async () => {
    const { journal, claim } = await setup();
    const a = journal.forClaim(await claim('w-a'));
    let runs = 0;
    const slow = gate();
    const fn = async () => {
      runs += 1;
      await slow.promise;
      return runs;
    };
    const both = Promise.all([a.effect('k', {}, fn), a.effect('k', {}, fn)]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    slow.open();
    expect(await both).toEqual([1, 1]);
    expect(runs).toBe(1);
  });
});

describe('effect journal: outcomes that cannot be stored as they are', () => {
  const cyclic = () => {
    const result: Record<string, unknown> = { id: 'x' };
    result.self = result;
    return result;
  };
  it.each([
    ['a cyclic result', cyclic],
    ['a BigInt result', () => ({ amount: 10n })],
  ])(
    '%s: the effect runs once, is done with INVALID_PARAMS, and every later call throws it',
    async (_what, make) => {
      const { store, journal, claim, loseLease } = await setup();
      let runs = 0;
      const fn = () => {
        runs += 1;
        return make();
      };
      const a = journal.forClaim(await claim('w-a'));
      expect((await expectCode(a.effect('odd', { n: 1 }, fn), 'INVALID_PARAMS')).retryable).toBe(
        false,
      );
      const record = await store.getEffect('odd');
      expect(record).toMatchObject({ status: 'done', result: null, result_hash: null });
      expect(record?.error?.code).toBe('INVALID_PARAMS');
      expect(record?.error?.message).toContain('not serialisable as JSON');
      // The same attempt again, then a later attempt: the same error, and no second run.
      const again = await expectCode(a.effect('odd', { n: 1 }, fn), 'INVALID_PARAMS');
      expect(again.retryable).toBe(false);
      expect(again.message).toBe(record?.error?.message);
      await loseLease();
      const b = journal.forClaim(await claim('w-b'));
      await expectCode(b.effect('odd', { n: 1 }, fn), 'INVALID_PARAMS');
      expect(runs).toBe(1);
    },
  );

  it('a failure’s message is stored and reported truncated to errorMessageBytes', async () => {
    const { store, journal, claim, taskId } = await setup();
    const a = journal.forClaim(await claim('w-a'));
    const long = 'e'.repeat(100 * 1_024);
    const thrown = await rejection(
      a.effect('loud', { n: 1 }, () => {
        throw new Error(long);
      }),
    );
    expect((thrown as Error).message).toBe(long); // the caller still gets its own error
    const stored = (await store.getEffect('loud'))!.error!;
    expect(stored.code).toBe('JOB_FAILED');
    expect(utf8Bytes(stored.message)).toBeLessThanOrEqual(DEFAULT_LIMITS.errorMessageBytes);
    expect(stored.message).toMatch(/^e+ … \(truncated, 102400 bytes\)$/);
    const session = (await store.getTask(taskId))!.session_id;
    const failed = (await effectEvents(store, session)).find((e) => e.type === 'effect.failed');
    expect((failed?.data as { error: { message: string } }).error.message).toBe(stored.message);
  });

  it('an attempt resuming its own pending record checks its lease with a read, not a write', async () => {
    const { store, journal, claim, loseLease } = await setup();
    const a = journal.forClaim(await claim('w-a'));
    let runs = 0;
    const fn = () => {
      runs += 1;
      return `sent ${runs}`;
    };
    // The first call's outcome cannot be recorded (the store is busy): the record stays ours.
    const busy = () => Promise.reject(new WardenError('STORE_BUSY', 'database is locked'));
    await expectCode(a.effect('mine', { n: 1 }, fn, { record: busy }), 'STORE_BUSY');
    expect(await store.getEffect('mine')).toMatchObject({ status: 'pending', owner_worker: 'w-a' });
    // The next call resumes it: one write transaction (its outcome), none to check the lease.
    const writes = store.writeTransactions;
    expect(await a.effect('mine', { n: 1 }, fn)).toBe('sent 2');
    expect(store.writeTransactions - writes).toBe(1);
    expect(await store.getEffect('mine')).toMatchObject({ status: 'done', result: 'sent 2' });

    // Without its lease, an attempt cannot resume its own record: LEASE_LOST, fn not run.
    await expectCode(a.effect('mine:2', { n: 2 }, fn, { record: busy }), 'STORE_BUSY');
    await loseLease();
    const before = store.writeTransactions;
    await expectCode(a.effect('mine:2', { n: 2 }, fn), 'LEASE_LOST');
    expect(store.writeTransactions).toBe(before);
    expect(runs).toBe(3);
  });
});

// ---------------------------------------------------------------------------------------------
// Workflow agents

/** The scripted provider, counting how often it is really called. */
class CountingProvider implements ModelProvider {
  readonly name = 'counting';
  calls = 0;
  readonly #inner = new ScriptedProvider();
  complete(...args: Parameters<ModelProvider['complete']>) {
    this.calls += 1;
    return this.#inner.complete(...args);
  }
}

async function workflowHarness(
  agents: AgentRegistry,
  wrap: (store: Store) => Store = (s) => s,
  options: Omit<KernelOptions, 'store'> = {},
) {
  const store = await openSqliteStore({ file: join(tempDir(), 'wf.db') });
  stores.push(store);
  const kernel = new Kernel({ ...options, store: wrap(store) });
  const provider = new CountingProvider();
  const models = new ModelRegistry('counting');
  models.register('counting', () => provider);
  const worker = new Worker({ kernel, agents, models, concurrency: 1 });
  await worker.start();
  cleanups.push(async () => {
    await worker.stop({ abort: true });
    kernel.close();
  });
  const run = (name: string) =>
    kernel.startRun({
      workflow: buildWorkflow({
        name,
        stages: [
          {
            name: 'work',
            agent: { kind: 'typescript', name },
            retry: { max_attempts: 3, backoff: 1, max_backoff: 5 },
          },
        ],
      }),
    });
  return { store, kernel, provider, run };
}

describe('effect journal: workflow agents', () => {
  it('a step retried after its model call does not call the provider again or count the call twice', async () => {
    const agents = new AgentRegistry().register('ask', async (ctx) => {
      const reply = await ctx.model([{ role: 'user', content: 'What is 2 + 2?' }]);
      // The step dies after the model answered and before it committed.
      if (ctx.attempt === 1)
        throw new WardenError('PROVIDER_ERROR', 'crashed after the model call', {
          retryable: true,
        });
      return { output: { text: reply.text, attempt: ctx.attempt }, modelCalls: 1 };
    });
    const { kernel, store, provider, run } = await workflowHarness(agents);
    const p = await run('ask');
    const done = await waitForProcess(kernel, p.pid);
    expect(done).toMatchObject({ state: 'terminated', terminal_reason: 'completed' });
    expect(done.envelope.outputs.work).toMatchObject({ attempt: 2 });
    expect(provider.calls).toBe(1);
    expect(done.usage.llm_calls).toBe(1);
    const events = await store.readEvents({ sessionId: p.session_id, processId: p.pid });
    const called = events.filter((e) => e.type === 'model.called');
    expect(called).toHaveLength(1);
    expect(done.usage.input_tokens).toBe(
      (called[0]!.data as { input_tokens: number }).input_tokens,
    );
    expect(done.usage.output_tokens).toBe(
      (called[0]!.data as { output_tokens: number }).output_tokens,
    );
    expect(events.filter((e) => e.type === 'stage.failed')).toHaveLength(1);
  });

  it('ctx.effect runs a tool once across retries of the step and counts it once', async () => {
    const outbox: string[] = [];
    const agents = new AgentRegistry().register('send', async (ctx) => {
      const receipt = await ctx.effect(
        'mail',
        { to: 'ops@example.com' },
        () => {
          outbox.push(`mail for step ${ctx.step}`);
          return { id: `m${outbox.length}` };
        },
        { tool: 'mail.send' },
      );
      if (ctx.attempt < 3)
        throw new WardenError('PROVIDER_ERROR', 'flaky after sending', { retryable: true });
      return { output: { receipt } };
    });
    const { kernel, store, run } = await workflowHarness(agents);
    const p = await run('send');
    const done = await waitForProcess(kernel, p.pid);
    expect(done).toMatchObject({ state: 'terminated', terminal_reason: 'completed' });
    expect(done.envelope.outputs.work).toEqual({ receipt: { id: 'm1' } });
    expect(outbox).toEqual(['mail for step 1']);
    expect(done.usage.tool_calls).toBe(1);
    const record = await store.getEffect(`${p.pid}:1:fx:mail`);
    expect(record).toMatchObject({ status: 'done', tool: 'mail.send', result: { id: 'm1' } });
  });

  it('a step whose effect is pending under a live earlier owner waits for it instead of failing', async () => {
    const reached = gate<string>();
    const seeded = gate();
    let toolRuns = 0;
    const agents = new AgentRegistry().register('wait', async (ctx) => {
      reached.open(ctx.pid);
      await seeded.promise;
      const receipt = await ctx.effect('mail', { to: 'ops' }, () => {
        toolRuns += 1;
        return 'sent by the step';
      });
      return { output: { receipt } };
    });
    // The kernel's store, watched: the journal reads the owner's task when it finds it busy.
    const asked = new Set<string>();
    const watch = (store: Store): Store =>
      new Proxy(store, {
        get(target, property) {
          const value: unknown = Reflect.get(target, property, target);
          if (typeof value !== 'function') return value;
          if (property === 'getTask')
            return (id: string) => {
              asked.add(id);
              return store.getTask(id);
            };
          return (value as (...args: unknown[]) => unknown).bind(target);
        },
      });
    const { kernel, store, run } = await workflowHarness(agents, watch);
    const p = await run('wait');
    expect(await reached.promise).toBe(p.pid);
    // Another attempt (a job holding a 2 s lease) began the same effect and is still sending.
    const queue = new JobQueue({ store });
    await queue.submit('other', {});
    const [claim] = await store.claimTasks({
      lanes: ['default'],
      kinds: ['job'],
      workerId: 'w-other',
      limit: 1,
      leaseMs: 2_000,
      now: Date.now(),
    });
    const sending = gate();
    const call = tracked(async () => {
      await sending.promise;
      return 'sent by the other attempt';
    });
    const other = new EffectJournal(store)
      .forClaim(claim!)
      .effect(`${p.pid}:1:fx:mail`, { to: 'ops' }, call.fn);
    await call.started();
    seeded.open();
    // The step found the effect busy (it looked at the owner's task) and waits; the owner finishes.
    await waitFor(() => Promise.resolve(asked.has(claim!.task.id)), 'the step to find it busy');
    sending.open();
    expect(await other).toBe('sent by the other attempt');
    const done = await waitForProcess(kernel, p.pid);
    expect(done).toMatchObject({ state: 'terminated', terminal_reason: 'completed' });
    expect(done.envelope.outputs.work).toEqual({ receipt: 'sent by the other attempt' });
    expect(toolRuns).toBe(0);
    const events = await store.readEvents({ sessionId: p.session_id, processId: p.pid });
    expect(events.filter((e) => e.type === 'stage.failed')).toEqual([]);
  });

  it('a step takes over at once an effect pending under an owner the kernel’s isDeadOwner says is dead', async () => {
    const reached = gate<string>();
    const seeded = gate();
    let toolRuns = 0;
    const agents = new AgentRegistry().register('takeover', async (ctx) => {
      reached.open(ctx.pid);
      await seeded.promise;
      const receipt = await ctx.effect('mail', { to: 'ops' }, () => {
        toolRuns += 1;
        return 'sent by the step';
      });
      return { output: { receipt } };
    });
    const { kernel, store, run } = await workflowHarness(agents, undefined, {
      isDeadOwner: (owner) => owner === 'w-gone',
    });
    const p = await run('takeover');
    expect(await reached.promise).toBe(p.pid);
    // Another attempt, on a worker only the kernel's rule knows is dead, began the same effect
    // under a long lease and never finished it.
    const queue = new JobQueue({ store });
    await queue.submit('other', {});
    const [claim] = await store.claimTasks({
      lanes: ['default'],
      kinds: ['job'],
      workerId: 'w-gone',
      limit: 1,
      leaseMs: 60_000,
      now: Date.now(),
    });
    const call = tracked(() => new Promise<string>(() => undefined));
    void new EffectJournal(store)
      .forClaim(claim!)
      .effect(`${p.pid}:1:fx:mail`, { to: 'ops' }, call.fn);
    await call.started();
    seeded.open();
    // Without the kernel's rule the step would wait out the 60 s lease and more.
    const done = await waitForProcess(kernel, p.pid, undefined, 5_000);
    expect(done).toMatchObject({ state: 'terminated', terminal_reason: 'completed' });
    expect(done.envelope.outputs.work).toEqual({ receipt: 'sent by the step' });
    expect(toolRuns).toBe(1);
    const events = await effectEvents(store, p.session_id);
    expect(events.find((e) => e.type === 'effect.taken_over')?.data).toMatchObject({
      why: 'owner_dead',
      previous_worker: 'w-gone',
    });
  });
});
