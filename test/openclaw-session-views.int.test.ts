/**
 * `sessions.list` keeps each session's view until the session or its runs change (a stamp read
 * in one grouped query), so a Control UI asking after every `sessions.changed` does not re-read
 * every run of every session — and a change made through another store (another node) shows.
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { buildWorkflow } from '../src/core/index.ts';
import { Kernel } from '../src/kernel/index.ts';
import type { MethodCall } from '../src/protocols/openclaw/connection.ts';
import { sessionMethods } from '../src/protocols/openclaw/methods/sessions.ts';
import { openSqliteStore, type Store } from '../src/store/index.ts';
import { countingStore } from './helpers/counting-store.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';

const opened: Array<{ kernel: Kernel; store: Store }> = [];
afterEach(async () => {
  for (const { kernel, store } of opened.splice(0)) {
    kernel.close();
    await store.close();
  }
});
afterAll(removeTempDirs);

const workflow = buildWorkflow({ name: 'w', stages: [{ name: 'a', agent: { kind: 'noop' } }] });

interface Row {
  key: string;
  status?: string;
  derivedTitle?: string;
}

describe('sessions.list views', () => {
  it('rebuilds only the sessions whose runs or row changed, whichever store changed them', async () => {
    const file = join(tempDir(), 'w.db');
    const store = await openSqliteStore({ file });
    const runReads = countingStore(store, 'listProcesses');
    const kernel = new Kernel({ store: runReads.store });
    opened.push({ kernel, store });
    const handlers = sessionMethods({ turns: undefined as never, model: () => 'scripted' });
    const list = async (): Promise<Row[]> => {
      const call = {
        method: 'sessions.list',
        params: { includeDerivedTitles: true },
        services: { kernel },
        signal: new AbortController().signal,
      } as unknown as MethodCall;
      const result = (await handlers['sessions.list']!(call)) as { sessions: Row[] };
      return result.sessions.sort((a, b) => a.key.localeCompare(b.key));
    };

    const pids: Record<string, string> = {};
    for (const name of ['a', 'b', 'c'])
      pids[name] = (
        await kernel.startRun({
          workflow,
          sessionKey: `agent:main:${name}`,
          input: { message: `hello ${name}` },
        })
      ).pid;

    const first = await list();
    expect(first.map((r) => [r.key, r.status, r.derivedTitle])).toEqual([
      ['agent:main:a', 'queued', 'hello a'],
      ['agent:main:b', 'queued', 'hello b'],
      ['agent:main:c', 'queued', 'hello c'],
    ]);
    expect(runReads.calls()).toBe(3);

    // Nothing changed: the same answer, no run read.
    expect(await list()).toEqual(first);
    expect(runReads.calls()).toBe(3);

    // One run changes: only its session is read again.
    await kernel.cancelRun(pids.b!);
    const afterCancel = await list();
    expect(afterCancel.find((r) => r.key === 'agent:main:b')?.status).toBe('killed');
    expect(afterCancel.filter((r) => r.key !== 'agent:main:b')).toEqual(
      first.filter((r) => r.key !== 'agent:main:b'),
    );
    expect(runReads.calls()).toBe(4);

    // Retention deletes b's finished run without touching b's row: the run stamp shows it.
    const b = await store.getSessionByKey('agent:main:b');
    const system = await kernel.sessions.system();
    await store.prune({
      policy: { finishedBefore: Date.now() + 1_000, deadBefore: 0, eventsBefore: 0 },
      limit: 100,
      event: { session_id: system.id, trace_id: 'tr_prune' },
    });
    expect(await store.listProcesses({ sessionId: b!.id })).toEqual([]);
    expect((await store.getSessionByKey('agent:main:b'))?.updated_at).toBe(b!.updated_at);
    const afterPrune = await list();
    expect(afterPrune.find((r) => r.key === 'agent:main:b')?.status).toBeUndefined();
    expect(runReads.calls()).toBe(5);

    // Another store on the same database (another node) adds a run to c: c is read again.
    const other = await openSqliteStore({ file });
    const otherKernel = new Kernel({ store: other });
    opened.push({ kernel: otherKernel, store: other });
    await otherKernel.startRun({
      workflow,
      sessionKey: 'agent:main:c',
      input: { message: 'again c' },
    });
    const afterOther = await list();
    expect(runReads.calls()).toBe(6);
    expect(afterOther.find((r) => r.key === 'agent:main:c')?.status).toBe('queued');
    expect(afterOther.find((r) => r.key === 'agent:main:c')?.derivedTitle).toBe('hello c');

    // A session that goes away is no longer listed.
    await otherKernel.cancelRun(pids.a!);
    const a = await other.getSessionByKey('agent:main:a');
    await otherKernel.sessions.delete(a!.id);
    expect((await list()).map((r) => r.key)).toEqual(['agent:main:b', 'agent:main:c']);
  });
});
