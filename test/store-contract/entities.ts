/**
 * The Store port contract, continued: session settings updates, session deletion and API
 * tokens. Every adapter's test file runs it next to {@link storeContract}
 * (`storeEntitiesContract(name, open)`), with the same `open`.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { findChainBreak, SYSTEM_SESSION_KEY } from '../../src/core/index.ts';
import type { SessionRecord, Store, StoreOp, TokenRecord } from '../../src/store/index.ts';
import {
  allEvents,
  effectRow,
  eventOp,
  expectWardenError,
  interruptRow,
  processRow,
  sessionRow,
  T0,
  taskRow,
} from './contract.ts';

export function tokenRow(over: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id: `tok_${Math.random().toString(16).slice(2, 14)}`,
    name: 'ci',
    scopes: ['read', 'write'],
    secret_hash: 'a'.repeat(64),
    created_at: T0,
    expires_at: null,
    revoked_at: null,
    last_used_at: null,
    ...over,
  };
}

export function storeEntitiesContract(name: string, open: (file?: string) => Promise<Store>): void {
  describe(`Store contract (sessions, tokens): ${name}`, () => {
    let store: Store;
    beforeEach(async () => {
      store = await open();
    });
    afterEach(async () => {
      await store.close();
    });

    async function newSession(over: Partial<SessionRecord> = {}): Promise<SessionRecord> {
      const row = sessionRow(over);
      await store.commit([{ op: 'session.insert', row }]);
      return row;
    }

    const update = (
      id: string,
      settings: Record<string, unknown>,
      expectVersion: number,
    ): StoreOp => ({ op: 'session.update', id, settings, expectVersion, now: T0 + 5 });

    describe('session.update', () => {
      it('replaces settings and bumps the version, with its event in the same commit', async () => {
        const session = await newSession();
        expect((await store.getSession(session.id))?.version ?? 0).toBe(0);
        const [event] = await store.commit([
          update(session.id, { model: 'm2', labels: ['a'] }, 0),
          eventOp(session.id, 'session.updated', { version: 1 }),
        ]);
        const read = await store.getSession(session.id);
        expect(read).toMatchObject({ settings: { model: 'm2', labels: ['a'] }, version: 1 });
        expect(read!.updated_at).toBeGreaterThanOrEqual(T0 + 5);
        expect(read!.last_seq).toBe(1);
        expect(event).toMatchObject({ session_id: session.id, type: 'session.updated', seq: 1 });

        await store.commit([update(session.id, {}, 1)]);
        expect(await store.getSession(session.id)).toMatchObject({ settings: {}, version: 2 });
        expect((await store.listSessions())[0]).toMatchObject({ version: 2 });
      });

      it('a stale expectVersion is CONFLICT and applies nothing', async () => {
        const session = await newSession();
        await store.commit([update(session.id, { n: 1 }, 0)]);
        const error = await expectWardenError(
          store.commit([eventOp(session.id, 'session.updated'), update(session.id, { n: 2 }, 0)]),
          'CONFLICT',
        );
        expect(error.details).toMatchObject({ session_id: session.id, version: 1, expected: 0 });
        expect(await store.getSession(session.id)).toMatchObject({
          settings: { n: 1 },
          version: 1,
        });
        expect(await allEvents(store, session.id)).toEqual([]);
      });

      it('an unknown session is NOT_FOUND', async () => {
        await expectWardenError(store.commit([update('s_missing', {}, 0)]), 'NOT_FOUND');
      });
    });

    describe('deleteSession', () => {
      /** A session with finished history of every kind; returns its ids. */
      async function finishedSession() {
        const session = await newSession();
        const process = processRow(session.id, { state: 'terminated', completed_at: T0 + 1 });
        const done = taskRow(session.id, { process_id: process.pid, lane: 'del-lane' });
        const dead = taskRow(session.id, { lane: 'del-lane', max_attempts: 1 });
        const interrupt = interruptRow(session.id, {
          process_id: process.pid,
          status: 'resolved',
          response: { approved: true },
          resolved_at: T0 + 2,
        });
        await store.commit([
          { op: 'process.insert', row: process },
          { op: 'task.insert', row: done },
          { op: 'task.insert', row: dead },
          { op: 'interrupt.insert', row: interrupt },
          eventOp(session.id, 'x', { i: 1 }),
          eventOp(session.id, 'x', { i: 2 }, { process_id: process.pid }),
        ]);
        const claimed = await store.claimTasks({
          lanes: ['del-lane'],
          workerId: 'w',
          limit: 2,
          leaseMs: 30_000,
          now: T0,
        });
        expect(claimed).toHaveLength(2);
        const effectKey = `eff-${done.id}`;
        const claimOf = (id: string) => claimed.find((c) => c.task.id === id)!;
        await store.commit([
          {
            op: 'effect.insert',
            row: effectRow(effectKey, {
              owner: claimOf(done.id).leaseToken,
              task_id: done.id,
              session_id: session.id,
            }),
          },
        ]);
        await store.settleTasks([
          {
            id: done.id,
            leaseToken: claimOf(done.id).leaseToken,
            state: 'succeeded',
            attemptOutcome: 'succeeded',
            now: T0 + 3,
            events: [],
          },
          {
            id: dead.id,
            leaseToken: claimOf(dead.id).leaseToken,
            state: 'dead',
            error: { code: 'X', message: 'boom' },
            attemptOutcome: 'failed',
            now: T0 + 3,
            events: [],
          },
        ]);
        return { session, process, done, dead, interrupt, effectKey };
      }

      it('deletes a session and everything of it, with session.deleted in the system session', async () => {
        const system = await newSession({ key: SYSTEM_SESSION_KEY });
        const other = await newSession();
        const otherTask = taskRow(other.id);
        await store.commit([{ op: 'task.insert', row: otherTask }, eventOp(other.id, 'x')]);
        const { session, process, done, dead, interrupt, effectKey } = await finishedSession();
        const events = (await allEvents(store, session.id)).length;
        expect(events).toBeGreaterThanOrEqual(2);

        const counts = await store.deleteSession({
          id: session.id,
          event: { session_id: system.id, trace_id: 'tr_del' },
        });
        expect(counts).toEqual({
          events,
          processes: 1,
          tasks: 2,
          attempts: 2,
          interrupts: 1,
          effects: 1,
        });
        expect(await store.getSession(session.id)).toBeUndefined();
        expect(await store.getSessionByKey(session.key)).toBeUndefined();
        expect(await store.getProcess(process.pid)).toBeUndefined();
        expect(await store.getTask(done.id)).toBeUndefined();
        expect(await store.getTask(dead.id)).toBeUndefined();
        expect(await store.listAttempts(done.id)).toEqual([]);
        expect(await store.getInterrupt(interrupt.id)).toBeUndefined();
        expect(await store.getEffect(effectKey)).toBeUndefined();
        expect(await store.readEvents({ sessionId: session.id })).toEqual([]);
        expect(await store.countByState()).toEqual({
          processes: {},
          tasks: { queued: 1 },
        });

        const systemEvents = await allEvents(store, system.id);
        expect(systemEvents).toHaveLength(1);
        expect(systemEvents[0]).toMatchObject({
          type: 'session.deleted',
          trace_id: 'tr_del',
          data: { id: session.id, key: session.key, counts },
        });
        // Another session is untouched, and the key is free again.
        expect(await store.getTask(otherTask.id)).toMatchObject({ state: 'queued' });
        expect(await allEvents(store, other.id)).toHaveLength(1);
        const again = sessionRow({ key: session.key });
        await store.commit([{ op: 'session.insert', row: again }, eventOp(again.id, 'x')]);
        const fresh = await allEvents(store, again.id);
        expect(fresh.map((e) => e.seq)).toEqual([1]);
        expect(findChainBreak(fresh)).toBeNull();
      });

      it('deletes a long history completely (more rows than one statement takes)', async () => {
        const system = await newSession({ key: SYSTEM_SESSION_KEY });
        const session = await newSession();
        const tasks = Array.from({ length: 1_200 }, () =>
          taskRow(session.id, { state: 'canceled' }),
        );
        for (let i = 0; i < tasks.length; i += 400)
          await store.commit([
            ...tasks.slice(i, i + 400).map((row): StoreOp => ({ op: 'task.insert', row })),
            // One commit's events to one session share storage: several commits, several parts.
            ...Array.from({ length: 300 }, (_, j) => eventOp(session.id, 'x', { j })),
          ]);
        for (let i = 0; i < 700; i += 1)
          await store.commit([eventOp(session.id, 'y', { i }), eventOp(session.id, 'y')]);
        const counts = await store.deleteSession({
          id: session.id,
          event: { session_id: system.id, trace_id: 'tr_del' },
        });
        expect(counts).toMatchObject({ tasks: 1_200, events: 3 * 300 + 1_400 });
        expect(await store.listTasks({ limit: 10 })).toEqual([]);
        expect(await store.readEvents({ sessionId: session.id })).toEqual([]);
      });

      for (const [what, ops, kind] of [
        [
          'an unfinished run',
          (id: string) => [{ op: 'process.insert', row: processRow(id, { pid: `p_live_${id}` }) }],
          'processes',
        ],
        [
          'a queued task',
          (id: string) => [{ op: 'task.insert', row: taskRow(id, { id: `t_live_${id}` }) }],
          'tasks',
        ],
        [
          'a pending interrupt',
          (id: string) => [
            { op: 'interrupt.insert', row: interruptRow(id, { id: `i_live_${id}` }) },
          ],
          'interrupts',
        ],
      ] as const) {
        it(`is refused with INVALID_STATE while the session has ${what}, deleting nothing`, async () => {
          const system = await newSession({ key: SYSTEM_SESSION_KEY });
          const session = await newSession();
          await store.commit([...(ops(session.id) as StoreOp[]), eventOp(session.id, 'x')]);
          const error = await expectWardenError(
            store.deleteSession({
              id: session.id,
              event: { session_id: system.id, trace_id: 'tr_del' },
            }),
            'INVALID_STATE',
          );
          const live = (error.details as { live: Record<string, string[]> }).live;
          expect(live[kind]).toHaveLength(1);
          expect(live[kind]![0]).toContain('live_');
          expect(error.message).toContain(live[kind]![0]);
          expect(await store.getSession(session.id)).toBeDefined();
          expect(await allEvents(store, session.id)).toHaveLength(1);
          expect(await allEvents(store, system.id)).toEqual([]);
        });
      }

      it('a running task is live too', async () => {
        const system = await newSession({ key: SYSTEM_SESSION_KEY });
        const session = await newSession();
        const row = taskRow(session.id, { lane: 'live-lane' });
        await store.commit([{ op: 'task.insert', row }]);
        await store.claimTasks({
          lanes: ['live-lane'],
          workerId: 'w',
          limit: 1,
          leaseMs: 30_000,
          now: T0,
        });
        const error = await expectWardenError(
          store.deleteSession({ id: session.id, event: { session_id: system.id, trace_id: 't' } }),
          'INVALID_STATE',
        );
        expect(error.details).toMatchObject({ live: { tasks: [row.id] } });
      });

      it('the system session cannot be deleted; an unknown one is NOT_FOUND', async () => {
        const system = await newSession({ key: SYSTEM_SESSION_KEY });
        const other = await newSession();
        await expectWardenError(
          store.deleteSession({ id: system.id, event: { session_id: other.id, trace_id: 't' } }),
          'INVALID_STATE',
        );
        await expectWardenError(
          store.deleteSession({ id: other.id, event: { session_id: other.id, trace_id: 't' } }),
          'INVALID_STATE',
        );
        await expectWardenError(
          store.deleteSession({ id: 's_missing', event: { session_id: system.id, trace_id: 't' } }),
          'NOT_FOUND',
        );
        expect(await store.getSession(system.id)).toBeDefined();
        expect(await store.getSession(other.id)).toBeDefined();
      });
    });

    describe('tokens', () => {
      it('token.insert round-trips; listTokens lists every token, oldest first', async () => {
        const a = tokenRow({ created_at: T0 + 2, expires_at: T0 + 1_000 });
        const b = tokenRow({ created_at: T0 + 1, scopes: ['admin'], name: 'ops' });
        await store.commit([
          { op: 'token.insert', row: a },
          { op: 'token.insert', row: b },
        ]);
        expect(await store.getToken(a.id)).toEqual(a);
        expect(await store.listTokens()).toEqual([b, a]);
        expect(await store.getToken('tok_missing')).toBeUndefined();
        await expectWardenError(store.commit([{ op: 'token.insert', row: a }]), 'CONFLICT');
      });

      it('token.revoke is compare-and-set: once, INVALID_STATE again, NOT_FOUND when missing', async () => {
        const session = await newSession();
        const token = tokenRow();
        await store.commit([{ op: 'token.insert', row: token }]);
        await store.commit([{ op: 'token.revoke', id: token.id, now: T0 + 7 }]);
        expect(await store.getToken(token.id)).toMatchObject({ revoked_at: T0 + 7 });
        const error = await expectWardenError(
          store.commit([
            eventOp(session.id, 'token.revoked'),
            { op: 'token.revoke', id: token.id, now: T0 + 9 },
          ]),
          'INVALID_STATE',
        );
        expect(error.details).toMatchObject({ token_id: token.id, revoked_at: T0 + 7 });
        expect(await store.getToken(token.id)).toMatchObject({ revoked_at: T0 + 7 });
        expect(await allEvents(store, session.id)).toEqual([]);
        await expectWardenError(
          store.commit([{ op: 'token.revoke', id: 'tok_missing', now: T0 }]),
          'NOT_FOUND',
        );
      });

      it('token.touch records the last use', async () => {
        const token = tokenRow();
        await store.commit([{ op: 'token.insert', row: token }]);
        await store.commit([{ op: 'token.touch', id: token.id, now: T0 + 42 }]);
        expect(await store.getToken(token.id)).toEqual({ ...token, last_used_at: T0 + 42 });
      });
    });
  });
}
