/**
 * The Store port contract (src/store/types.ts): a vitest suite that every Store adapter must
 * pass. It tests only behaviour visible through the port (no tables, no SQL, no pragmas), so
 * the PostgreSQL adapter can run it unchanged: call `storeContract('postgres', open)` from that
 * adapter's test file.
 *
 * `open()` must return a fresh, empty, migrated store each time it is called without an
 * argument. The optional `file` is passed through for adapters that want a specific location;
 * the contract itself never passes one.
 *
 * The contract continues in entities.ts (`storeEntitiesContract`: session updates and
 * deletion, tokens): run both with the same `open`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import {
  buildWorkflow,
  DEFAULT_QUOTA,
  emptyUsage,
  type ErrorCode,
  type EventType,
  findChainBreak,
  GENESIS_HASH,
  isWardenError,
  newEnvelope,
  type TaskKind,
  type WardenError,
} from '../../src/core/index.ts';
import type {
  ClaimedTask,
  ClaimRequest,
  EffectRecord,
  EffectStatus,
  EffectTransitionTarget,
  EventRecord,
  InterruptRecord,
  NewEvent,
  ProcessRecord,
  SessionRecord,
  Store,
  StoreOp,
  TaskRecord,
} from '../../src/store/index.ts';

export interface StoreContractOptions {
  /**
   * Titles of contract tests this adapter is known to fail (a reported bug). They run as
   * `it.fails`, so the suite stays green while the bug exists and turns red once it is fixed,
   * prompting the entry's removal.
   */
  readonly expectedFailures?: readonly string[];
}

/** 2026-01-01T00:00:00Z: task and interrupt times are passed explicitly, relative to this. */
export const T0 = Date.UTC(2026, 0, 1);

let counter = 0;
function uid(prefix: string): string {
  counter += 1;
  return `${prefix}_${String(counter).padStart(8, '0')}`;
}

const WORKFLOW = buildWorkflow({ name: 'w', stages: [{ name: 'a', agent: { kind: 'noop' } }] });

export function sessionRow(over: Partial<SessionRecord> = {}): SessionRecord {
  const id = over.id ?? uid('s');
  return {
    id,
    key: `key-${id}`,
    settings: { origin: 'contract' },
    created_at: T0,
    updated_at: T0,
    last_seq: 0,
    last_hash: GENESIS_HASH,
    ...over,
  };
}

export function processRow(sessionId: string, over: Partial<ProcessRecord> = {}): ProcessRecord {
  const pid = over.pid ?? uid('p');
  return {
    pid,
    session_id: sessionId,
    user_id: 'user-1',
    parent_pid: null,
    workflow_name: WORKFLOW.workflow.name,
    workflow: WORKFLOW.workflow,
    workflow_hash: WORKFLOW.hash,
    source: null,
    state: 'ready',
    priority: 'normal',
    quota: DEFAULT_QUOTA,
    usage: emptyUsage(),
    envelope: newEnvelope({ question: 'q' }, 'a'),
    current_stage: 'a',
    terminal_reason: null,
    terminal_message: null,
    trace_id: `tr_${pid}`,
    version: 1,
    created_at: T0,
    started_at: null,
    updated_at: T0,
    completed_at: null,
    ...over,
  };
}

export function taskRow(sessionId: string, over: Partial<TaskRecord> = {}): TaskRecord {
  const id = over.id ?? uid('t');
  return {
    id,
    kind: 'job',
    name: 'job-1',
    lane: 'default',
    session_id: sessionId,
    process_id: null,
    payload: { id },
    state: 'queued',
    priority: 2,
    sort_key: T0,
    available_at: T0,
    attempts: 0,
    max_attempts: 3,
    lease_owner: null,
    lease_token: null,
    lease_expires_at: null,
    claimed_at: null,
    idempotency_key: null,
    last_error: null,
    result: null,
    trace_id: `tr_${id}`,
    options: { backoff_ms: 100, max_backoff_ms: 1_000, timeout_ms: null, poison_threshold: 3 },
    created_at: T0,
    updated_at: T0,
    ...over,
  };
}

export function interruptRow(
  sessionId: string,
  over: Partial<InterruptRecord> = {},
): InterruptRecord {
  const id = over.id ?? uid('int');
  return {
    id,
    session_id: sessionId,
    process_id: null,
    kind: 'confirmation',
    stage: 'a',
    step: 1,
    prompt: 'Proceed?',
    data: { detail: 'x' },
    status: 'pending',
    response: null,
    resolver: null,
    trace_id: `tr_${id}`,
    created_at: T0,
    expires_at: T0 + 60_000,
    resolved_at: null,
    ...over,
  };
}

export function eventOp(
  sessionId: string,
  /** Any text: the store itself stores whatever type it is given (the type system guards callers). */
  type: string,
  data: unknown = {},
  over: Partial<NewEvent> = {},
): StoreOp {
  return {
    op: 'event',
    event: { session_id: sessionId, type: type as EventType, trace_id: 'tr_e', data, ...over },
  };
}

export function effectRow(key: string, over: Partial<EffectRecord> = {}): EffectRecord {
  return {
    idempotency_key: key,
    tool: 'http.get',
    request_hash: 'req-1',
    status: 'pending',
    result_hash: null,
    result: null,
    owner: 'lt_owner_a',
    owner_worker: 'worker-a',
    task_id: null,
    session_id: null,
    error: null,
    created_at: T0,
    updated_at: T0,
    ...over,
  };
}

/** Awaits `promise`, expecting it to reject with a WardenError of `code`. */
export async function expectWardenError(
  promise: Promise<unknown>,
  code: ErrorCode,
): Promise<WardenError> {
  const outcome = await promise.then(
    (value: unknown) => ({ ok: true as const, value }),
    (error: unknown) => ({ ok: false as const, error }),
  );
  if (outcome.ok) throw new Error(`expected ${code}, but it resolved to ${String(outcome.value)}`);
  if (!isWardenError(outcome.error, code)) {
    throw new Error(`expected ${code}, got ${String(outcome.error)}`, { cause: outcome.error });
  }
  return outcome.error;
}

/** Every event of a session, in seq order. */
export async function allEvents(store: Store, sessionId: string): Promise<EventRecord[]> {
  const out: EventRecord[] = [];
  for (;;) {
    const page = await store.readEvents({ sessionId, afterSeq: out.at(-1)?.seq ?? 0 });
    if (page.length === 0) return out;
    out.push(...page);
  }
}

/** A process.update whose expectVersion never matches (CONFLICT). */
function staleUpdate(process: ProcessRecord): StoreOp {
  return {
    op: 'process.update',
    expectVersion: process.version + 100,
    row: { ...process, version: process.version + 101 },
  };
}

function nonZero(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).filter(([, n]) => n > 0));
}

export function storeContract(
  name: string,
  open: (file?: string) => Promise<Store>,
  options: StoreContractOptions = {},
): void {
  const expectedFailures = new Set(options.expectedFailures);
  const test = (title: string, fn: () => Promise<void>): void => {
    (expectedFailures.has(title) ? it.fails : it)(title, fn);
  };

  describe(`Store contract: ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    const claim = (over: Partial<ClaimRequest> = {}): Promise<ClaimedTask[]> =>
      store.claimTasks({
        lanes: ['default'],
        workerId: 'worker-1',
        limit: 1,
        leaseMs: 30_000,
        now: T0,
        ...over,
      });

    async function newSession(): Promise<SessionRecord> {
      const row = sessionRow();
      await store.commit([{ op: 'session.insert', row }]);
      return row;
    }

    /** A task inserted and claimed; returns the claim. */
    async function claimedTask(
      sessionId: string,
      over: Partial<TaskRecord> = {},
      request: Partial<ClaimRequest> = {},
    ): Promise<ClaimedTask> {
      const row = taskRow(sessionId, { lane: `lane-${uid('l')}`, ...over });
      await store.commit([{ op: 'task.insert', row }]);
      const claimed = await claim({ lanes: [row.lane], ...request });
      expect(claimed).toHaveLength(1);
      return claimed[0]!;
    }

    describe('sessions and the event log', () => {
      test('rows round-trip: session, process, task and interrupt read back as written', async () => {
        const session = sessionRow();
        const process = processRow(session.id);
        const task = taskRow(session.id, { process_id: process.pid, payload: { a: [1, 'b'] } });
        const interrupt = interruptRow(session.id, { process_id: process.pid });
        await store.commit([
          { op: 'session.insert', row: session },
          { op: 'process.insert', row: process },
          { op: 'task.insert', row: task },
          { op: 'interrupt.insert', row: interrupt },
        ]);
        expect(await store.getSession(session.id)).toEqual(session);
        expect(await store.getSessionByKey(session.key)).toEqual(session);
        expect(await store.listSessions()).toEqual([session]);
        expect(await store.getProcess(process.pid)).toEqual(process);
        expect(await store.getTask(task.id)).toEqual(task);
        expect(await store.getInterrupt(interrupt.id)).toEqual(interrupt);
        expect(await store.getSession('s_missing')).toBeUndefined();
        expect(await store.getProcess('p_missing')).toBeUndefined();
        expect(await store.getTask('t_missing')).toBeUndefined();
        expect(await store.getInterrupt('int_missing')).toBeUndefined();
      });

      test('events get seq 1..N, contiguous across commits, with a valid hash chain', async () => {
        const session = sessionRow();
        const first = await store.commit([
          { op: 'session.insert', row: session },
          ...Array.from({ length: 5 }, (_, i) => eventOp(session.id, 'test.event', { i })),
        ]);
        expect(first.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
        expect(first[0]!.prev_hash).toBe(GENESIS_HASH);
        const second = await store.commit([
          eventOp(session.id, 'test.event', { i: 5 }, { process_id: 'p_x', task_id: 't_x' }),
          eventOp(session.id, 'test.event', { i: 6 }, { attempt: 2 }),
          eventOp(session.id, 'test.event', { i: 7 }),
        ]);
        expect(second.map((e) => e.seq)).toEqual([6, 7, 8]);
        expect(second[0]!.prev_hash).toBe(first.at(-1)!.hash);

        const events = await allEvents(store, session.id);
        expect(events).toEqual([...first, ...second]);
        expect(events.map((e) => (e.data as { i: number }).i)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
        expect(events[5]).toMatchObject({ process_id: 'p_x', task_id: 't_x', attempt: null });
        expect(events[6]).toMatchObject({ process_id: null, task_id: null, attempt: 2 });
        expect(findChainBreak(events)).toBeNull();

        const head = await store.getSession(session.id);
        expect(head?.last_seq).toBe(8);
        expect(head?.last_hash).toBe(events.at(-1)!.hash);
      });

      test('events of two sessions interleaved in one commit get separate chains', async () => {
        const a = sessionRow();
        const b = sessionRow();
        const committed = await store.commit([
          { op: 'session.insert', row: a },
          { op: 'session.insert', row: b },
          eventOp(a.id, 'x', { n: 'a1' }),
          eventOp(b.id, 'x', { n: 'b1' }),
          eventOp(a.id, 'x', { n: 'a2' }),
          eventOp(b.id, 'x', { n: 'b2' }),
          eventOp(b.id, 'x', { n: 'b3' }),
        ]);
        expect(committed.map((e) => [e.session_id, e.seq])).toEqual([
          [a.id, 1],
          [b.id, 1],
          [a.id, 2],
          [b.id, 2],
          [b.id, 3],
        ]);
        await store.commit([eventOp(b.id, 'x', { n: 'b4' }), eventOp(a.id, 'x', { n: 'a3' })]);
        const eventsA = await allEvents(store, a.id);
        const eventsB = await allEvents(store, b.id);
        expect(eventsA.map((e) => (e.data as { n: string }).n)).toEqual(['a1', 'a2', 'a3']);
        expect(eventsB.map((e) => (e.data as { n: string }).n)).toEqual(['b1', 'b2', 'b3', 'b4']);
        expect(findChainBreak(eventsA)).toBeNull();
        expect(findChainBreak(eventsB)).toBeNull();
        expect((await store.getSession(a.id))?.last_seq).toBe(3);
        expect((await store.getSession(b.id))?.last_seq).toBe(4);
        expect((await store.getSession(b.id))?.last_hash).toBe(eventsB.at(-1)!.hash);
      });

      test('readEvents honours afterSeq, processId and limit', async () => {
        const session = await newSession();
        await store.commit(
          Array.from({ length: 6 }, (_, i) =>
            eventOp(session.id, 'x', { i }, { process_id: i % 2 === 0 ? 'p_even' : 'p_odd' }),
          ),
        );
        const after = await store.readEvents({ sessionId: session.id, afterSeq: 4 });
        expect(after.map((e) => e.seq)).toEqual([5, 6]);
        const even = await store.readEvents({ sessionId: session.id, processId: 'p_even' });
        expect(even.map((e) => e.seq)).toEqual([1, 3, 5]);
        const limited = await store.readEvents({ sessionId: session.id, afterSeq: 1, limit: 2 });
        expect(limited.map((e) => e.seq)).toEqual([2, 3]);
        expect(await store.readEvents({ sessionId: 's_missing' })).toEqual([]);
      });

      test('an event for an unknown session aborts the commit with NOT_FOUND', async () => {
        const session = await newSession();
        await expectWardenError(
          store.commit([eventOp(session.id, 'x'), eventOp('s_missing', 'x')]),
          'NOT_FOUND',
        );
        expect(await allEvents(store, session.id)).toEqual([]);
        expect((await store.getSession(session.id))?.last_seq).toBe(0);
      });
    });

    describe('commit is atomic', () => {
      /** Everything observable through the port for one session. */
      async function snapshot(sessionId: string) {
        return {
          session: await store.getSession(sessionId),
          sessions: await store.listSessions(),
          events: await allEvents(store, sessionId),
          processes: await store.listProcesses(),
          tasks: await store.listTasks(),
          interrupts: await store.listInterrupts(),
          counts: await store.countByState(),
        };
      }

      /** A batch that writes a bit of everything before `failing`. */
      function batchBefore(sessionId: string, failing: StoreOp): StoreOp[] {
        return [
          eventOp(sessionId, 'before.1'),
          { op: 'session.insert', row: sessionRow() },
          { op: 'process.insert', row: processRow(sessionId) },
          { op: 'task.insert', row: taskRow(sessionId) },
          { op: 'interrupt.insert', row: interruptRow(sessionId) },
          eventOp(sessionId, 'before.2'),
          failing,
          eventOp(sessionId, 'after'),
        ];
      }

      test('a failing process.update (stale expectVersion) applies nothing: CONFLICT', async () => {
        const session = await newSession();
        const process = processRow(session.id);
        await store.commit([{ op: 'process.insert', row: process }, eventOp(session.id, 'x')]);
        const before = await snapshot(session.id);
        await expectWardenError(
          store.commit(
            batchBefore(session.id, {
              op: 'process.update',
              expectVersion: 7,
              row: { ...process, state: 'running', version: 8 },
            }),
          ),
          'CONFLICT',
        );
        expect(await snapshot(session.id)).toEqual(before);
      });

      test('an update must write exactly the next version, else INVALID_PARAMS and nothing changes', async () => {
        const session = await newSession();
        const process = processRow(session.id);
        await store.commit([{ op: 'process.insert', row: process }, eventOp(session.id, 'x')]);
        const before = await snapshot(session.id);
        // Keeping the version would let every writer holding the same read win (ABA).
        for (const version of [process.version, process.version + 2, process.version - 1]) {
          const error = await expectWardenError(
            store.commit([
              eventOp(session.id, 'lost'),
              {
                op: 'process.update',
                expectVersion: process.version,
                row: { ...process, state: 'running', version },
              },
            ]),
            'INVALID_PARAMS',
          );
          expect(error.message).toMatch(/expectVersion \+ 1/);
        }
        expect(await snapshot(session.id)).toEqual(before);
      });

      test('a failing interrupt.settle (not pending) applies nothing: INVALID_STATE', async () => {
        const session = await newSession();
        const interrupt = interruptRow(session.id);
        const settle = (now: number): StoreOp => ({
          op: 'interrupt.settle',
          id: interrupt.id,
          status: 'resolved',
          response: { approved: true },
          resolver: 'alice',
          now,
        });
        await store.commit([{ op: 'interrupt.insert', row: interrupt }, settle(T0 + 1)]);
        const before = await snapshot(session.id);
        await expectWardenError(
          store.commit(batchBefore(session.id, settle(T0 + 2))),
          'INVALID_STATE',
        );
        expect(await snapshot(session.id)).toEqual(before);
        expect((await store.getInterrupt(interrupt.id))?.resolved_at).toBe(T0 + 1);
      });

      test('a failing task.settle (wrong lease token) applies nothing: LEASE_LOST', async () => {
        const session = await newSession();
        const claimed = await claimedTask(session.id);
        const before = await snapshot(session.id);
        const attemptsBefore = await store.listAttempts(claimed.task.id);
        await expectWardenError(
          store.commit(
            batchBefore(session.id, {
              op: 'task.settle',
              id: claimed.task.id,
              leaseToken: 'lt_wrong',
              state: 'succeeded',
              result: { ok: true },
              attemptOutcome: 'succeeded',
              now: T0 + 1,
            }),
          ),
          'LEASE_LOST',
        );
        expect(await snapshot(session.id)).toEqual(before);
        expect(await store.listAttempts(claimed.task.id)).toEqual(attemptsBefore);
        const task = await store.getTask(claimed.task.id);
        expect(task?.state).toBe('running');
        expect(task?.lease_token).toBe(claimed.leaseToken);
      });

      test('task.fence aborts with LEASE_LOST unless the task runs under the token', async () => {
        const session = await newSession();
        const claimed = await claimedTask(session.id);
        const before = await snapshot(session.id);
        await expectWardenError(
          store.commit(
            batchBefore(session.id, { op: 'task.fence', id: claimed.task.id, leaseToken: 'nope' }),
          ),
          'LEASE_LOST',
        );
        expect(await snapshot(session.id)).toEqual(before);
        const ok = await store.commit([
          { op: 'task.fence', id: claimed.task.id, leaseToken: claimed.leaseToken },
          eventOp(session.id, 'fenced'),
        ]);
        expect(ok).toHaveLength(1);
      });

      test('a failed commit leaves the chain head in place for the next commit', async () => {
        const session = await newSession();
        const process = processRow(session.id);
        await store.commit([{ op: 'process.insert', row: process }]);
        const first = await store.commit([eventOp(session.id, 'a'), eventOp(session.id, 'b')]);
        await expectWardenError(
          store.commit([eventOp(session.id, 'lost'), staleUpdate(process)]),
          'CONFLICT',
        );
        const next = await store.commit([eventOp(session.id, 'c')]);
        expect(next[0]!.seq).toBe(3);
        expect(next[0]!.prev_hash).toBe(first[1]!.hash);
        const events = await allEvents(store, session.id);
        expect(events.map((e) => e.type)).toEqual(['a', 'b', 'c']);
        expect(findChainBreak(events)).toBeNull();
      });

      test('ops apply in order within one commit', async () => {
        const session = sessionRow();
        const process = processRow(session.id);
        await store.commit([
          { op: 'session.insert', row: session },
          { op: 'process.insert', row: process },
          {
            op: 'process.update',
            expectVersion: 1,
            row: { ...process, state: 'running', version: 2 },
          },
          {
            op: 'process.update',
            expectVersion: 2,
            row: { ...process, state: 'terminated', version: 3, terminal_reason: 'completed' },
          },
        ]);
        expect(await store.getProcess(process.pid)).toMatchObject({
          state: 'terminated',
          version: 3,
          terminal_reason: 'completed',
        });
      });
    });

    describe('process compare-and-set', () => {
      test('an update with the current version succeeds; a stale one is CONFLICT', async () => {
        const session = await newSession();
        const process = processRow(session.id);
        await store.commit([{ op: 'process.insert', row: process }]);

        const v2: ProcessRecord = {
          ...process,
          state: 'running',
          version: 2,
          started_at: T0 + 5,
          updated_at: T0 + 5,
          usage: { ...emptyUsage(), llm_calls: 1 },
          envelope: { ...process.envelope, step: 1 },
        };
        await store.commit([{ op: 'process.update', expectVersion: 1, row: v2 }]);
        expect(await store.getProcess(process.pid)).toEqual(v2);

        const stale: ProcessRecord = { ...process, state: 'terminated', version: 2 };
        const error = await expectWardenError(
          store.commit([{ op: 'process.update', expectVersion: 1, row: stale }]),
          'CONFLICT',
        );
        expect(error.retryable).toBe(true);
        expect(await store.getProcess(process.pid)).toEqual(v2);

        const v3: ProcessRecord = { ...v2, state: 'ready', version: 3, updated_at: T0 + 9 };
        await store.commit([{ op: 'process.update', expectVersion: 2, row: v3 }]);
        expect((await store.getProcess(process.pid))?.version).toBe(3);
      });

      test('listProcesses filters by state and session', async () => {
        const a = await newSession();
        const b = await newSession();
        const p1 = processRow(a.id, { state: 'ready', created_at: T0 + 1 });
        const p2 = processRow(a.id, { state: 'running', created_at: T0 + 2 });
        const p3 = processRow(b.id, { state: 'ready', created_at: T0 + 3 });
        await store.commit([p1, p2, p3].map((row) => ({ op: 'process.insert', row })));
        const pids = (rows: ProcessRecord[]) => rows.map((p) => p.pid).sort();
        expect(pids(await store.listProcesses())).toEqual([p1.pid, p2.pid, p3.pid].sort());
        expect(pids(await store.listProcesses({ states: ['ready'] }))).toEqual(
          [p1.pid, p3.pid].sort(),
        );
        expect(pids(await store.listProcesses({ sessionId: a.id }))).toEqual(
          [p1.pid, p2.pid].sort(),
        );
        expect(await store.listProcesses({ limit: 2 })).toHaveLength(2);
      });
    });

    describe('session run stamps', () => {
      test('a session’s stamp changes when a run is created, changed or deleted, and only then', async () => {
        const a = await newSession();
        const b = await newSession();
        const stampOf = async (id: string) =>
          (await store.sessionRunStamps()).find((s) => s.session_id === id);
        expect(await stampOf(a.id)).toBeUndefined(); // no runs, no stamp

        const p1 = processRow(a.id, { created_at: T0 + 1, updated_at: T0 + 1 });
        await store.commit([{ op: 'process.insert', row: p1 }]);
        const one = await stampOf(a.id);
        expect(one).toEqual({
          session_id: a.id,
          runs: 1,
          version_sum: p1.version,
          updated_at_sum: p1.updated_at,
        });

        const p2 = processRow(a.id, { created_at: T0 + 2, updated_at: T0 + 2 });
        await store.commit([{ op: 'process.insert', row: p2 }]);
        const two = await stampOf(a.id);
        expect(two?.runs).toBe(2);

        const changed: ProcessRecord = { ...p1, state: 'running', version: 2, updated_at: T0 + 5 };
        await store.commit([{ op: 'process.update', expectVersion: 1, row: changed }]);
        const three = await stampOf(a.id);
        expect(three).not.toEqual(two);
        expect(three?.version_sum).toBe(p2.version + 2);

        // Another session's runs leave this stamp alone.
        const p3 = processRow(b.id, {
          state: 'terminated',
          completed_at: T0 + 3,
          created_at: T0 + 3,
          updated_at: T0 + 3,
        });
        await store.commit([{ op: 'process.insert', row: p3 }]);
        expect(await stampOf(a.id)).toEqual(three);
        expect((await stampOf(b.id))?.runs).toBe(1);

        const system = await newSession();
        await store.deleteSession({ id: b.id, event: { session_id: system.id, trace_id: 'tr_x' } });
        expect(await stampOf(b.id)).toBeUndefined();
        expect(await stampOf(a.id)).toEqual(three);
      });
    });

    describe('task lifecycle', () => {
      test('claim, heartbeat and settle, fenced by the lease token', async () => {
        const session = await newSession();
        const row = taskRow(session.id);
        await store.commit([{ op: 'task.insert', row }]);

        const [claimed, ...rest] = await claim({ limit: 5, leaseMs: 1_000, workerId: 'w-a' });
        expect(rest).toEqual([]);
        expect(claimed).toBeDefined();
        expect(claimed!.attempt).toBe(1);
        expect(typeof claimed!.leaseToken).toBe('string');
        expect(claimed!.leaseToken.length).toBeGreaterThanOrEqual(8);
        expect(claimed!.task).toMatchObject({
          id: row.id,
          state: 'running',
          attempts: 1,
          lease_owner: 'w-a',
          lease_token: claimed!.leaseToken,
          lease_expires_at: T0 + 1_000,
        });
        expect(await store.getTask(row.id)).toEqual(claimed!.task);
        expect(await claim({ limit: 5 })).toEqual([]);

        const token = claimed!.leaseToken;
        expect(await store.heartbeat(row.id, token, 5_000, T0 + 500)).toBe(T0 + 5_500);
        expect((await store.getTask(row.id))?.lease_expires_at).toBe(T0 + 5_500);

        await expectWardenError(store.heartbeat(row.id, 'lt_wrong', 9_000, T0 + 600), 'LEASE_LOST');
        expect((await store.getTask(row.id))?.lease_expires_at).toBe(T0 + 5_500);

        const settle = (): Promise<readonly EventRecord[]> =>
          store.commit([
            {
              op: 'task.settle',
              id: row.id,
              leaseToken: token,
              state: 'succeeded',
              result: { answer: 42 },
              attemptOutcome: 'succeeded',
              now: T0 + 700,
            },
          ]);
        await settle();
        expect(await store.getTask(row.id)).toMatchObject({
          state: 'succeeded',
          result: { answer: 42 },
          attempts: 1,
          lease_owner: null,
          lease_token: null,
          lease_expires_at: null,
        });
        await expectWardenError(settle(), 'LEASE_LOST');
        await expectWardenError(store.heartbeat(row.id, token, 1_000, T0 + 800), 'LEASE_LOST');
        expect(await claim({ limit: 5, now: T0 + 10_000 })).toEqual([]);

        expect(await store.listAttempts(row.id)).toEqual([
          {
            task_id: row.id,
            attempt: 1,
            lease_token: token,
            worker_id: 'w-a',
            started_at: T0,
            ended_at: T0 + 700,
            outcome: 'succeeded',
            error: null,
          },
        ]);
      });

      test('a heartbeat for an unknown task rejects', async () => {
        await expect(store.heartbeat('t_missing', 'lt_x', 1_000, T0)).rejects.toSatisfy(
          (e: unknown) => isWardenError(e, 'NOT_FOUND') || isWardenError(e, 'LEASE_LOST'),
        );
      });

      test('task.cancel of a running task clears the lease: the old token is LEASE_LOST', async () => {
        const session = await newSession();
        const claimed = await claimedTask(session.id);
        const id = claimed.task.id;
        await store.commit([
          {
            op: 'task.cancel',
            id,
            expectState: 'running',
            leaseToken: claimed.leaseToken,
            now: T0 + 10,
          },
        ]);
        expect(await store.getTask(id)).toMatchObject({
          state: 'canceled',
          lease_owner: null,
          lease_token: null,
          lease_expires_at: null,
        });
        await expectWardenError(
          store.heartbeat(id, claimed.leaseToken, 1_000, T0 + 20),
          'LEASE_LOST',
        );
        await expectWardenError(
          store.commit([
            {
              op: 'task.settle',
              id,
              leaseToken: claimed.leaseToken,
              state: 'succeeded',
              attemptOutcome: 'succeeded',
              now: T0 + 30,
            },
          ]),
          'LEASE_LOST',
        );
        expect((await store.getTask(id))?.state).toBe('canceled');
        expect(await store.findExpiredLeases(T0 + 1_000_000)).toEqual([]);
      });

      test('task.cancel with the running token closes the attempt as canceled', async () => {
        const session = await newSession();
        const claimed = await claimedTask(session.id);
        await store.commit([
          {
            op: 'task.cancel',
            id: claimed.task.id,
            expectState: 'running',
            leaseToken: claimed.leaseToken,
            now: T0 + 10,
          },
        ]);
        expect(await store.listAttempts(claimed.task.id)).toMatchObject([
          { attempt: 1, outcome: 'canceled', ended_at: T0 + 10 },
        ]);
      });

      test('task.cancel of a queued task prevents its claim; a cancel that lost the race is CONFLICT and writes nothing', async () => {
        const session = await newSession();
        const queued = taskRow(session.id);
        await store.commit([{ op: 'task.insert', row: queued }]);
        await store.commit([
          {
            op: 'task.cancel',
            id: queued.id,
            expectState: 'queued',
            leaseToken: null,
            now: T0 + 1,
          },
        ]);
        expect((await store.getTask(queued.id))?.state).toBe('canceled');
        expect(await claim({ limit: 10 })).toEqual([]);

        const done = await claimedTask(session.id);
        await store.commit([
          {
            op: 'task.settle',
            id: done.task.id,
            leaseToken: done.leaseToken,
            state: 'succeeded',
            result: 1,
            attemptOutcome: 'succeeded',
            now: T0 + 2,
          },
        ]);
        // The canceller read it running; it succeeded meanwhile: CAS miss, no event, no change.
        const head = (await store.getSession(session.id))!.last_seq;
        await expectWardenError(
          store.commit([
            {
              op: 'task.cancel',
              id: done.task.id,
              expectState: 'running',
              leaseToken: done.leaseToken,
              now: T0 + 3,
            },
            {
              op: 'event',
              event: { session_id: session.id, type: 'task.canceled', trace_id: 'tr', data: {} },
            },
          ]),
          'CONFLICT',
        );
        expect(await store.getTask(done.task.id)).toMatchObject({ state: 'succeeded', result: 1 });
        expect((await store.getSession(session.id))!.last_seq).toBe(head);
        expect(await store.listAttempts(done.task.id)).toMatchObject([{ outcome: 'succeeded' }]);
      });

      test('findExpiredLeases returns running tasks whose lease expired', async () => {
        const session = await newSession();
        const short = await claimedTask(session.id, {}, { leaseMs: 1_000, workerId: 'w-short' });
        const long = await claimedTask(session.id, {}, { leaseMs: 10_000, workerId: 'w-long' });
        const queued = taskRow(session.id, { lane: 'idle-lane' });
        await store.commit([{ op: 'task.insert', row: queued }]);

        expect(await store.findExpiredLeases(T0 + 500)).toEqual([]);
        const expired = await store.findExpiredLeases(T0 + 5_000);
        expect(expired.map((t) => t.id)).toEqual([short.task.id]);
        expect(expired[0]).toMatchObject({ state: 'running', lease_token: short.leaseToken });
        const both = await store.findExpiredLeases(T0 + 20_000);
        expect(both.map((t) => t.id).sort()).toEqual([short.task.id, long.task.id].sort());

        // A heartbeat moves a lease out of the expired set.
        await store.heartbeat(short.task.id, short.leaseToken, 30_000, T0 + 4_000);
        expect(await store.findExpiredLeases(T0 + 5_000)).toEqual([]);

        // Tasks of a dead owner count as expired whatever their lease says.
        const dead = await store.findExpiredLeases(T0 + 1, ['w-long']);
        expect(dead.map((t) => t.id)).toEqual([long.task.id]);
        expect((await store.listLeaseOwners()).sort()).toEqual(['w-long', 'w-short']);
      });

      test('a retried task is claimed again with attempt 2 and a fresh token', async () => {
        const session = await newSession();
        const first = await claimedTask(session.id, {}, { workerId: 'w-1' });
        const lane = first.task.lane;
        await store.commit([
          {
            op: 'task.settle',
            id: first.task.id,
            leaseToken: first.leaseToken,
            state: 'queued',
            error: { code: 'PROVIDER_ERROR', message: 'boom', retryable: true, fingerprint: 'f1' },
            availableAt: T0 + 2_000,
            attemptOutcome: 'failed',
            now: T0 + 100,
          },
        ]);
        expect(await store.getTask(first.task.id)).toMatchObject({
          state: 'queued',
          attempts: 1,
          available_at: T0 + 2_000,
          lease_token: null,
          last_error: { code: 'PROVIDER_ERROR', message: 'boom' },
        });
        expect(await claim({ lanes: [lane], now: T0 + 1_000 })).toEqual([]);
        const [second] = await claim({ lanes: [lane], now: T0 + 2_000, workerId: 'w-2' });
        expect(second?.attempt).toBe(2);
        expect(second?.task.attempts).toBe(2);
        expect(second?.leaseToken).not.toBe(first.leaseToken);
        await expectWardenError(
          store.heartbeat(first.task.id, first.leaseToken, 1_000, T0 + 2_001),
          'LEASE_LOST',
        );

        const attempts = await store.listAttempts(first.task.id);
        expect(attempts).toEqual([
          {
            task_id: first.task.id,
            attempt: 1,
            lease_token: first.leaseToken,
            worker_id: 'w-1',
            started_at: T0,
            ended_at: T0 + 100,
            outcome: 'failed',
            error: { code: 'PROVIDER_ERROR', message: 'boom', retryable: true, fingerprint: 'f1' },
          },
          {
            task_id: first.task.id,
            attempt: 2,
            lease_token: second!.leaseToken,
            worker_id: 'w-2',
            started_at: T0 + 2_000,
            ended_at: null,
            outcome: 'running',
            error: null,
          },
        ]);
        expect(await store.listAttempts('t_missing')).toEqual([]);
      });

      test('claims honour available_at', async () => {
        const session = await newSession();
        const later = taskRow(session.id, { available_at: T0 + 10_000, sort_key: T0 + 10_000 });
        await store.commit([{ op: 'task.insert', row: later }]);
        expect(await claim({ limit: 5, now: T0 })).toEqual([]);
        expect(await claim({ limit: 5, now: T0 + 9_999 })).toEqual([]);
        const claimed = await claim({ limit: 5, now: T0 + 10_000 });
        expect(claimed.map((c) => c.task.id)).toEqual([later.id]);
      });

      test('claims take the lowest sort_key first', async () => {
        const session = await newSession();
        const rows = [30, 10, 50, 20, 40].map((k) => taskRow(session.id, { sort_key: T0 + k }));
        await store.commit(rows.map((row) => ({ op: 'task.insert', row })));
        const order: number[] = [];
        for (let i = 0; i < 3; i++) {
          for (const c of await claim({ limit: 1 })) order.push(c.task.sort_key - T0);
        }
        const batch = await claim({ limit: 10 });
        order.push(...batch.map((c) => c.task.sort_key - T0));
        expect(order).toEqual([10, 20, 30, 40, 50]);
      });

      test('claims never cross lanes', async () => {
        const session = await newSession();
        const a = Array.from({ length: 3 }, () => taskRow(session.id, { lane: 'a' }));
        const b = Array.from({ length: 2 }, () => taskRow(session.id, { lane: 'b' }));
        await store.commit([...a, ...b].map((row) => ({ op: 'task.insert', row })));
        const fromA = await claim({ lanes: ['a'], limit: 10 });
        expect(fromA.map((c) => c.task.id).sort()).toEqual(a.map((t) => t.id).sort());
        expect(fromA.every((c) => c.task.lane === 'a')).toBe(true);
        expect(await claim({ lanes: ['a'], limit: 10 })).toEqual([]);
        expect(await claim({ lanes: ['c'], limit: 10 })).toEqual([]);
        const fromB = await claim({ lanes: ['b'], limit: 10 });
        expect(fromB.map((c) => c.task.id).sort()).toEqual(b.map((t) => t.id).sort());
      });

      test('a claim over several lanes respects the limit', async () => {
        const session = await newSession();
        const rows = ['a', 'a', 'b', 'b', 'c'].map((lane) => taskRow(session.id, { lane }));
        await store.commit(rows.map((row) => ({ op: 'task.insert', row })));
        const first = await claim({ lanes: ['a', 'b'], limit: 3 });
        expect(first).toHaveLength(3);
        const second = await claim({ lanes: ['a', 'b'], limit: 3 });
        expect(second).toHaveLength(1);
        const ids = [...first, ...second].map((c) => c.task.id);
        expect(new Set(ids).size).toBe(4);
        expect([...first, ...second].every((c) => c.task.lane !== 'c')).toBe(true);
      });

      test('a claim for one kind returns only tasks of that kind', async () => {
        const session = await newSession();
        const kinds: TaskKind[] = ['agent_step', 'job', 'plan_task', 'job'];
        const rows = kinds.map((kind, i) => taskRow(session.id, { kind, sort_key: T0 + i }));
        await store.commit(rows.map((row) => ({ op: 'task.insert', row })));
        const jobs = await claim({ kinds: ['job'], limit: 10 });
        expect(jobs.map((c) => c.task.id)).toEqual([rows[1]!.id, rows[3]!.id]);
        expect((await store.getTask(rows[0]!.id))?.state).toBe('queued');
      });

      test('a claim for several kinds returns only tasks of those kinds', async () => {
        const session = await newSession();
        const kinds: TaskKind[] = ['agent_step', 'job', 'plan_task'];
        const rows = kinds.map((kind, i) => taskRow(session.id, { kind, sort_key: T0 + i }));
        await store.commit(rows.map((row) => ({ op: 'task.insert', row })));
        const claimed = await claim({ kinds: ['job', 'plan_task'], limit: 10 });
        expect(claimed.map((c) => c.task.id).sort()).toEqual([rows[1]!.id, rows[2]!.id].sort());
        expect((await store.getTask(rows[0]!.id))?.state).toBe('queued');
      });

      test('listTasks filters by state, lane and process', async () => {
        const session = await newSession();
        const rows = [
          taskRow(session.id, { lane: 'a', process_id: 'p_1', created_at: T0 + 1 }),
          taskRow(session.id, { lane: 'a', created_at: T0 + 2 }),
          taskRow(session.id, { lane: 'b', process_id: 'p_1', created_at: T0 + 3 }),
        ];
        await store.commit(rows.map((row) => ({ op: 'task.insert', row })));
        await claim({ lanes: ['b'] });
        const ids = (tasks: TaskRecord[]) => tasks.map((t) => t.id).sort();
        expect(ids(await store.listTasks())).toEqual(rows.map((t) => t.id).sort());
        expect(ids(await store.listTasks({ lane: 'a' }))).toEqual(
          [rows[0]!.id, rows[1]!.id].sort(),
        );
        expect(ids(await store.listTasks({ processId: 'p_1' }))).toEqual(
          [rows[0]!.id, rows[2]!.id].sort(),
        );
        expect(ids(await store.listTasks({ states: ['running'] }))).toEqual([rows[2]!.id]);
      });
    });

    describe('interrupts', () => {
      test('a pending interrupt settles once; expired ones are found', async () => {
        const session = await newSession();
        const soon = interruptRow(session.id, { expires_at: T0 + 1_000, created_at: T0 + 1 });
        const never = interruptRow(session.id, { expires_at: null, created_at: T0 + 2 });
        await store.commit([
          { op: 'interrupt.insert', row: soon },
          { op: 'interrupt.insert', row: never },
        ]);
        expect(await store.findExpiredInterrupts(T0 + 999)).toEqual([]);
        expect((await store.findExpiredInterrupts(T0 + 1_000)).map((i) => i.id)).toEqual([soon.id]);
        expect((await store.listInterrupts({ status: 'pending' })).map((i) => i.id).sort()).toEqual(
          [soon.id, never.id].sort(),
        );

        await store.commit([
          {
            op: 'interrupt.settle',
            id: soon.id,
            status: 'resolved',
            response: { approved: true, text: 'ok' },
            resolver: 'alice',
            now: T0 + 500,
          },
        ]);
        expect(await store.getInterrupt(soon.id)).toEqual({
          ...soon,
          status: 'resolved',
          response: { approved: true, text: 'ok' },
          resolver: 'alice',
          resolved_at: T0 + 500,
        });
        expect(await store.findExpiredInterrupts(T0 + 5_000)).toEqual([]);
        await expectWardenError(
          store.commit([
            {
              op: 'interrupt.settle',
              id: soon.id,
              status: 'expired',
              response: null,
              resolver: null,
              now: T0 + 600,
            },
          ]),
          'INVALID_STATE',
        );
        expect((await store.listInterrupts({ status: 'resolved' })).map((i) => i.id)).toEqual([
          soon.id,
        ]);
      });
    });

    describe('effects', () => {
      const target = (over: Partial<EffectTransitionTarget> = {}): EffectTransitionTarget => ({
        status: 'pending',
        owner: 'lt_owner_a',
        owner_worker: 'worker-a',
        task_id: null,
        session_id: null,
        result_hash: null,
        result: null,
        error: null,
        ...over,
      });
      const transition = (
        key: string,
        from: { status: EffectStatus; owner: string | null },
        to: Partial<EffectTransitionTarget>,
        now = T0 + 10,
      ): StoreOp => ({ op: 'effect.transition', key, from, to: target(to), now });

      test('effect.insert is insert-once: an existing key aborts the commit with CONFLICT', async () => {
        const session = await newSession();
        const first = effectRow('k1', { request_hash: 'h1', session_id: session.id });
        await store.commit([{ op: 'effect.insert', row: first }]);
        expect(await store.getEffect('k1')).toEqual(first);
        const error = await expectWardenError(
          store.commit([
            eventOp(session.id, 'effect.started'),
            {
              op: 'effect.insert',
              row: effectRow('k1', { request_hash: 'h2', tool: 'other', owner: 'lt_owner_b' }),
            },
          ]),
          'CONFLICT',
        );
        expect(error.details).toMatchObject({ effect_key: 'k1', status: 'pending' });
        // Nothing of the aborted commit happened: not the record, not the event.
        expect(await store.getEffect('k1')).toEqual(first);
        expect(await allEvents(store, session.id)).toEqual([]);
        expect(await store.getEffect('k_missing')).toBeUndefined();
      });

      test('effect.transition is compare-and-set on status and owner; a done is never overwritten', async () => {
        await store.commit([{ op: 'effect.insert', row: effectRow('k1') }]);
        await store.commit([
          transition(
            'k1',
            { status: 'pending', owner: 'lt_owner_a' },
            {
              status: 'done',
              result_hash: 'rh1',
              result: { body: [1, 2] },
              task_id: 't1',
              session_id: 's1',
            },
          ),
        ]);
        const done = {
          ...effectRow('k1'),
          status: 'done',
          result_hash: 'rh1',
          result: { body: [1, 2] },
          task_id: 't1',
          session_id: 's1',
          updated_at: T0 + 10,
        };
        expect(await store.getEffect('k1')).toEqual(done);
        // A late `failed` from the same owner, or anything from another owner: rejected.
        for (const from of [
          { status: 'pending' as const, owner: 'lt_owner_a' },
          { status: 'pending' as const, owner: 'lt_owner_b' },
          { status: 'failed' as const, owner: 'lt_owner_a' },
        ]) {
          const error = await expectWardenError(
            store.commit([
              transition('k1', from, {
                status: 'failed',
                error: { code: 'JOB_FAILED', message: 'late' },
              }),
            ]),
            'INVALID_STATE',
          );
          expect(error.details).toMatchObject({ effect_key: 'k1', status: 'done' });
        }
        expect(await store.getEffect('k1')).toEqual(done);
        await expectWardenError(
          store.commit([transition('k_missing', { status: 'pending', owner: 'x' }, {})]),
          'NOT_FOUND',
        );
      });

      test('effect transitions: failed → pending, takeover of a pending record, ownerless records', async () => {
        const session = await newSession();
        await store.commit([{ op: 'effect.insert', row: effectRow('k2') }]);
        await store.commit([
          transition(
            'k2',
            { status: 'pending', owner: 'lt_owner_a' },
            { status: 'failed', error: { code: 'JOB_FAILED', message: 'smtp down' } },
          ),
        ]);
        expect(await store.getEffect('k2')).toMatchObject({
          status: 'failed',
          error: { code: 'JOB_FAILED', message: 'smtp down' },
        });
        // A retry takes the failed record back to pending, under its own owner, with its event.
        await store.commit([
          transition(
            'k2',
            { status: 'failed', owner: 'lt_owner_a' },
            { owner: 'lt_owner_b', owner_worker: 'worker-b' },
          ),
          eventOp(session.id, 'effect.retried'),
        ]);
        expect(await store.getEffect('k2')).toMatchObject({
          status: 'pending',
          owner: 'lt_owner_b',
          owner_worker: 'worker-b',
          error: null,
        });
        // The old owner can no longer finish it.
        await expectWardenError(
          store.commit([
            transition('k2', { status: 'pending', owner: 'lt_owner_a' }, { status: 'done' }),
            eventOp(session.id, 'effect.completed'),
          ]),
          'INVALID_STATE',
        );
        expect((await allEvents(store, session.id)).map((e) => e.type)).toEqual(['effect.retried']);
        // A record without owner (written before owners existed) is matched by owner null.
        await store.commit([{ op: 'effect.insert', row: effectRow('k3', { owner: null }) }]);
        await store.commit([
          transition('k3', { status: 'pending', owner: null }, { owner: 'lt_owner_c' }),
        ]);
        expect(await store.getEffect('k3')).toMatchObject({
          status: 'pending',
          owner: 'lt_owner_c',
        });
      });

      test('an effect op behind a stale task.fence changes nothing (LEASE_LOST)', async () => {
        const session = await newSession();
        const claimed = await claimedTask(session.id);
        await expectWardenError(
          store.commit([
            { op: 'task.fence', id: claimed.task.id, leaseToken: 'stale' },
            { op: 'effect.insert', row: effectRow('k4') },
            eventOp(session.id, 'effect.started'),
          ]),
          'LEASE_LOST',
        );
        expect(await store.getEffect('k4')).toBeUndefined();
        await store.commit([
          { op: 'task.fence', id: claimed.task.id, leaseToken: claimed.leaseToken },
          { op: 'effect.insert', row: effectRow('k4', { task_id: claimed.task.id }) },
        ]);
        expect(await store.getEffect('k4')).toMatchObject({ task_id: claimed.task.id });
      });
    });

    describe('commit listeners', () => {
      test('onCommit listeners hear exactly the committed events, and nothing on failure', async () => {
        const session = await newSession();
        const process = processRow(session.id);
        await store.commit([{ op: 'process.insert', row: process }]);
        const heard: EventRecord[][] = [];
        const unsubscribe = store.onCommit((events) => heard.push([...events]));

        const committed = await store.commit([
          eventOp(session.id, 'one', { n: 1 }),
          eventOp(session.id, 'two', { n: 2 }),
        ]);
        expect(heard).toEqual([committed]);
        expect(heard.flat()).toEqual(await allEvents(store, session.id));

        await expectWardenError(
          store.commit([eventOp(session.id, 'lost'), staleUpdate(process)]),
          'CONFLICT',
        );
        expect(heard.flat().map((e) => e.type)).toEqual(['one', 'two']);

        // A commit without events may or may not notify, but never with events.
        await store.commit([{ op: 'session.insert', row: sessionRow() }]);
        expect(heard.flat().map((e) => e.type)).toEqual(['one', 'two']);

        const third = await store.commit([eventOp(session.id, 'three')]);
        expect(heard.flat()).toEqual([...committed, ...third]);

        unsubscribe();
        await store.commit([eventOp(session.id, 'four')]);
        expect(heard.flat().map((e) => e.type)).toEqual(['one', 'two', 'three']);
      });

      test('a throwing listener does not fail the commit or silence other listeners', async () => {
        const session = await newSession();
        const heard: string[] = [];
        store.onCommit(() => {
          throw new Error('listener bug');
        });
        store.onCommit((events) => heard.push(...events.map((e) => e.type)));
        const committed = await store.commit([eventOp(session.id, 'x')]);
        expect(committed).toHaveLength(1);
        expect(heard).toEqual(['x']);
        expect(await allEvents(store, session.id)).toHaveLength(1);
      });
    });

    describe('counts and health', () => {
      test('countByState counts processes and tasks by state', async () => {
        expect(nonZero((await store.countByState()).processes)).toEqual({});
        expect(nonZero((await store.countByState()).tasks)).toEqual({});
        const session = await newSession();
        await store.commit([
          { op: 'process.insert', row: processRow(session.id, { state: 'ready' }) },
          { op: 'process.insert', row: processRow(session.id, { state: 'ready' }) },
          { op: 'process.insert', row: processRow(session.id, { state: 'running' }) },
          { op: 'process.insert', row: processRow(session.id, { state: 'terminated' }) },
          ...Array.from({ length: 4 }, () => ({
            op: 'task.insert' as const,
            row: taskRow(session.id),
          })),
        ]);
        const [c1, c2] = await claim({ limit: 2 });
        await store.commit([
          {
            op: 'task.settle',
            id: c1!.task.id,
            leaseToken: c1!.leaseToken,
            state: 'succeeded',
            attemptOutcome: 'succeeded',
            now: T0 + 1,
          },
        ]);
        expect(c2).toBeDefined();
        const counts = await store.countByState();
        expect(nonZero(counts.processes)).toEqual({ ready: 2, running: 1, terminated: 1 });
        expect(nonZero(counts.tasks)).toEqual({ queued: 2, running: 1, succeeded: 1 });
      });

      test('watchChanges hears a commit; health reports ok', async () => {
        let heard = 0;
        const off = store.watchChanges(() => (heard += 1));
        await newSession();
        off();
        expect(heard).toBeGreaterThan(0);
        const afterOff = heard;
        await newSession();
        expect(heard).toBe(afterOff);
        const health = await store.health(true);
        expect(health.ok).toBe(true);
        expect(health.durability).toBe(store.durability);
        expect(health.schemaVersion).toBeGreaterThanOrEqual(1);
      });

      test('pending interrupts are counted and their next expiry found', async () => {
        expect(await store.countPendingInterrupts()).toBe(0);
        expect(await store.nextInterruptExpiry()).toBeNull();
        const session = await newSession();
        const later = interruptRow(session.id, { expires_at: T0 + 9_000 });
        const sooner = interruptRow(session.id, { expires_at: T0 + 3_000 });
        await store.commit([
          { op: 'interrupt.insert', row: later },
          { op: 'interrupt.insert', row: sooner },
          { op: 'interrupt.insert', row: interruptRow(session.id, { expires_at: null }) },
          {
            op: 'interrupt.insert',
            row: interruptRow(session.id, { status: 'resolved', expires_at: T0 + 1 }),
          },
        ]);
        expect(await store.countPendingInterrupts()).toBe(3);
        expect(await store.nextInterruptExpiry()).toBe(T0 + 3_000);
        await store.commit([
          {
            op: 'interrupt.settle',
            id: sooner.id,
            status: 'expired',
            response: null,
            resolver: null,
            now: T0 + 3_000,
          },
        ]);
        expect(await store.countPendingInterrupts()).toBe(2);
        expect(await store.nextInterruptExpiry()).toBe(T0 + 9_000);
      });
    });

    describe('row limits', () => {
      test('a list or read limit that is not a positive integer is INVALID_PARAMS', async () => {
        const session = await newSession();
        await store.commit([
          { op: 'task.insert', row: taskRow(session.id) },
          { op: 'task.insert', row: taskRow(session.id) },
          eventOp(session.id, 'a'),
          eventOp(session.id, 'b'),
        ]);
        for (const limit of [0, -1, 1.5, Number.NaN]) {
          await expectWardenError(store.listTasks({ limit }), 'INVALID_PARAMS');
          await expectWardenError(store.listProcesses({ limit }), 'INVALID_PARAMS');
          await expectWardenError(store.listInterrupts({ limit }), 'INVALID_PARAMS');
          await expectWardenError(
            store.readEvents({ sessionId: session.id, limit }),
            'INVALID_PARAMS',
          );
          await expectWardenError(store.findExpiredLeases(T0, [], limit), 'INVALID_PARAMS');
        }
        expect(await store.listTasks({ limit: 1 })).toHaveLength(1);
        expect(await store.readEvents({ sessionId: session.id, limit: 1 })).toHaveLength(1);
      });

      test('prune refuses a zero or negative limit and deletes nothing', async () => {
        const session = await newSession();
        const audit = await newSession();
        const done = taskRow(session.id, { state: 'succeeded', updated_at: T0 });
        await store.commit([{ op: 'task.insert', row: done }]);
        const input = {
          policy: { finishedBefore: T0 + 10, deadBefore: T0 + 10, eventsBefore: 0 },
          event: { session_id: audit.id, trace_id: 'tr_retention' },
        };
        for (const limit of [0, -1, 0.5]) {
          await expectWardenError(store.prune({ ...input, limit }), 'INVALID_PARAMS');
          expect(await store.getTask(done.id)).toBeDefined();
        }
        expect(await store.prune({ ...input, limit: 1 })).toMatchObject({ tasks: 1 });
        expect(await store.getTask(done.id)).toBeUndefined();
      });
    });

    describe('snapshots and retention', () => {
      test('a snapshot does not see commits made after it opened', async () => {
        const session = await newSession();
        await store.commit([eventOp(session.id, 'a')]);
        const snapshot = await store.openSnapshot();
        try {
          await store.commit([eventOp(session.id, 'b')]);
          await newSession();
          expect((await snapshot.getSession(session.id))?.last_seq).toBe(1);
          expect((await snapshot.listSessions()).map((s) => s.id)).toEqual([session.id]);
          expect((await snapshot.readEvents({ sessionId: session.id })).map((e) => e.type)).toEqual(
            ['a'],
          );
        } finally {
          await snapshot.close();
        }
        expect((await store.getSession(session.id))?.last_seq).toBe(2);
      });

      test('prune deletes finished history in batches, keeps the anchor and answers REPLAY_GAP', async () => {
        const session = await newSession();
        const audit = await newSession();
        const done = await claimedTask(session.id);
        await store.commit([
          {
            op: 'task.settle',
            id: done.task.id,
            leaseToken: done.leaseToken,
            state: 'succeeded',
            attemptOutcome: 'succeeded',
            now: T0 + 1,
          },
          { op: 'task.insert', row: taskRow(session.id, { id: uid('t'), updated_at: T0 }) },
          ...Array.from({ length: 5 }, (_, i) => eventOp(session.id, 'old', { i })),
        ]);
        await store.commit([{ op: 'effect.insert', row: effectRow('fx-done') }]);
        await store.commit([
          {
            op: 'effect.transition',
            key: 'fx-done',
            from: { status: 'pending', owner: 'lt_owner_a' },
            to: {
              status: 'done',
              owner: 'lt_owner_a',
              owner_worker: 'worker-a',
              task_id: null,
              session_id: null,
              result_hash: 'h',
              result: { ok: true },
              error: null,
            },
            now: T0 + 1,
          },
        ]);
        await store.commit([{ op: 'effect.insert', row: effectRow('fx-pending') }]);
        const events = await allEvents(store, session.id);
        const policy = {
          finishedBefore: T0 + 10,
          deadBefore: T0 + 10,
          eventsBefore: Math.max(...events.map((e) => e.ts)) + 1,
        };
        expect(
          await store.hasPrunable({ finishedBefore: T0, deadBefore: T0, eventsBefore: 0 }),
        ).toBe(false);
        expect(await store.hasPrunable(policy)).toBe(true);
        // The retention.pruned events written below must be newer than the cut-off.
        while (Date.now() <= policy.eventsBefore) await new Promise((r) => setTimeout(r, 1));

        const event = { session_id: audit.id, trace_id: 'tr_retention' };
        const first = await store.prune({ policy, limit: 3, event });
        expect(first).toMatchObject({ tasks: 1, attempts: 1, effects: 1, events: 3, more: true });
        const second = await store.prune({ policy, limit: 3, event });
        expect(second).toMatchObject({ tasks: 0, events: events.length - 3, sessions: 1 });
        expect(await store.hasPrunable(policy)).toBe(false);

        expect(await store.getTask(done.task.id)).toBeUndefined();
        expect(await store.listAttempts(done.task.id)).toEqual([]);
        expect((await store.listTasks({ states: ['queued'] })).length).toBe(1);
        expect(await store.getEffect('fx-done')).toBeUndefined();
        expect(await store.getEffect('fx-pending')).toMatchObject({ status: 'pending' });

        const head = (await store.getSession(session.id))!;
        expect(head).toMatchObject({
          pruned_seq: events.length,
          pruned_hash: events.at(-1)!.hash,
          last_seq: events.length,
        });
        expect(await store.readEvents({ sessionId: session.id })).toEqual([]);
        expect(await store.readEvents({ sessionId: session.id, afterSeq: events.length })).toEqual(
          [],
        );
        const gap = await expectWardenError(
          store.readEvents({ sessionId: session.id, afterSeq: 2 }),
          'REPLAY_GAP',
        );
        expect(gap.details).toMatchObject({ oldest_seq: events.length + 1 });

        const notes = await allEvents(store, audit.id);
        expect(notes.map((e) => e.type)).toEqual(['retention.pruned', 'retention.pruned']);
        expect(notes[0]!.data).toMatchObject({ tasks: 1, effects: 1, events: 3 });
      });
    });
  });
}
