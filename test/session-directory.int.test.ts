/** SessionDirectory.patch and .delete over a real SQLite store, and its key cache. */
import { join } from 'node:path';

import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';

import { IdGenerator, ManualClock } from '../src/core/index.ts';
import { openSqliteStore, SessionDirectory, type Store } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { allEvents, expectWardenError, taskRow } from './store-contract/contract.ts';

afterAll(removeTempDirs);

describe('SessionDirectory patch and delete', () => {
  let store: Store;
  let sessions: SessionDirectory;
  beforeEach(async () => {
    store = await openSqliteStore({ file: join(tempDir(), 'w.db') });
    const clock = new ManualClock();
    sessions = new SessionDirectory(store, new IdGenerator(clock), clock);
  });
  afterEach(async () => {
    await store.close();
  });

  it('patch replaces settings with a session.updated event; a stale version is CONFLICT', async () => {
    const session = await sessions.ensure('ticket-1', { model: 'a' });
    const patched = await sessions.patch(session.id, { model: 'b' }, 0);
    expect(patched).toMatchObject({ id: session.id, settings: { model: 'b' }, version: 1 });
    expect((await sessions.ensure('ticket-1')).settings).toEqual({ model: 'b' });
    const events = await allEvents(store, session.id);
    expect(events.map((e) => e.type)).toEqual(['session.created', 'session.updated']);
    expect(events[1]!.data).toEqual({ key: 'ticket-1', settings: { model: 'b' }, version: 1 });

    await expectWardenError(sessions.patch(session.id, { model: 'c' }, 0), 'CONFLICT');
    // Without a version: compare-and-set on the one read just before.
    expect(await sessions.patch(session.id, { model: 'c' })).toMatchObject({ version: 2 });
    await expectWardenError(sessions.patch('s_missing', {}), 'NOT_FOUND');
    await expectWardenError(
      sessions.patch(session.id, [] as unknown as Record<string, unknown>),
      'INVALID_PARAMS',
    );
  });

  it('delete removes the session and its cached key: ensure makes a new one', async () => {
    const session = await sessions.ensure('ticket-2');
    expect(await sessions.ensure('ticket-2')).toBe(session); // cached
    const counts = await sessions.delete(session.id);
    expect(counts).toMatchObject({ events: 1, tasks: 0 });
    expect(await store.getSession(session.id)).toBeUndefined();
    const again = await sessions.ensure('ticket-2');
    expect(again.id).not.toBe(session.id);
    expect(await store.getSession(again.id)).toBeDefined();
    const system = await sessions.system();
    const systemEvents = await allEvents(store, system.id);
    expect(systemEvents.at(-1)).toMatchObject({
      type: 'session.deleted',
      data: { id: session.id, key: 'ticket-2', counts },
    });
  });

  it('delete refuses live work and the system session', async () => {
    const session = await sessions.ensure('ticket-3');
    const task = taskRow(session.id);
    await store.commit([{ op: 'task.insert', row: task }]);
    const error = await expectWardenError(sessions.delete(session.id), 'INVALID_STATE');
    expect(error.details).toMatchObject({ live: { tasks: [task.id] } });
    expect(await store.getSession(session.id)).toBeDefined();
    const system = await sessions.system();
    await expectWardenError(sessions.delete(system.id), 'INVALID_STATE');
  });
});
