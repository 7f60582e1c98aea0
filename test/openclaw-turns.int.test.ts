/**
 * The gateway's durable turn queues (src/protocols/openclaw/turns.ts) on a real SQLite store:
 * the sweep that runs when the gateway starts frees a session whose run ended while no
 * gateway was up, and later sweeps delete queues with nothing left in them (compare-and-set);
 * a turn that waited in the queue starts with the model it asked for.
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import type { WorkflowInput } from '../src/core/index.ts';
import { buildWorkflow } from '../src/core/workflow/load.ts';
import { Kernel } from '../src/kernel/index.ts';
import { Turns } from '../src/protocols/openclaw/turns.ts';
import { openSqliteStore, type Store } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { waitFor } from './helpers/wait.ts';

const waiting: WorkflowInput = {
  name: 'waits',
  stages: [{ name: 'only', agent: { kind: 'external', config: {} } }],
};

const opened: Array<{ store: Store; turns: Turns }> = [];
afterEach(async () => {
  for (const { store, turns } of opened.splice(0)) {
    turns.stop();
    await store.close();
  }
});
afterAll(() => removeTempDirs());

async function setup() {
  const store = await openSqliteStore({ file: join(tempDir(), 't.db') });
  const kernel = new Kernel({ store });
  const turns = new Turns({
    kernel: () => kernel,
    workflow: () => {
      throw new Error('no turn starts in these tests');
    },
  });
  opened.push({ store, turns });
  return { store, kernel, turns };
}

const queueOf = (store: Store, key: string) => store.kvGet('openclaw.queue', key);

describe('turn queues', () => {
  it('the sweep at start frees a session whose active run ended while the gateway was down', async () => {
    const { store, kernel, turns } = await setup();
    const run = await kernel.startRun({ workflow: waiting, input: 'x' });
    await kernel.cancelRun(run.pid, 'ended while no gateway ran');
    const key = 'agent:main:stale';
    await store.commit([
      {
        op: 'kv.set',
        namespace: 'openclaw.runs',
        key: 'r1',
        value: { runId: 'r1', sessionKey: key, pid: run.pid, queuedAt: 1 },
        now: Date.now(),
      },
      {
        op: 'kv.set',
        namespace: 'openclaw.queue',
        key,
        value: { activeRunId: 'r1', pending: [], summaries: [] },
        now: Date.now(),
      },
    ]);
    // An interval far beyond the test: only the sweep at start can free it.
    turns.start(600_000);
    await waitFor(async () => (await turns.queueOf(key)).activeRunId === null, 5_000);
    expect((await queueOf(store, key))?.value).toMatchObject({ activeRunId: null, pending: [] });
  });

  it('a sweep deletes idle queues and keeps those with a running turn or dropped-turn summaries', async () => {
    const { store, kernel, turns } = await setup();
    const live = await kernel.startRun({ workflow: waiting, input: 'x' });
    const now = Date.now();
    const set = (key: string, value: unknown) =>
      ({ op: 'kv.set', namespace: 'openclaw.queue', key, value, now }) as const;
    await store.commit([
      set('idle', { activeRunId: null, pending: [], summaries: [] }),
      set('summarised', { activeRunId: null, pending: [], summaries: ['"lost one"'] }),
      set('running', { activeRunId: 'r-live', pending: [], summaries: [] }),
      {
        op: 'kv.set',
        namespace: 'openclaw.runs',
        key: 'r-live',
        value: { runId: 'r-live', sessionKey: 'running', pid: live.pid, queuedAt: now },
        now,
      },
    ]);
    await turns.sweep();
    expect(await queueOf(store, 'idle')).toBeNull();
    expect(await queueOf(store, 'summarised')).not.toBeNull();
    expect((await queueOf(store, 'running'))?.value).toMatchObject({ activeRunId: 'r-live' });
    // A deleted queue reads as an empty one.
    expect(await turns.queueOf('idle')).toMatchObject({ activeRunId: null, pending: [] });
  });

  it('a queued turn starts with the model its message asked for, not the default', async () => {
    const store = await openSqliteStore({ file: join(tempDir(), 't.db') });
    const kernel = new Kernel({ store });
    const asked: Array<string | undefined> = [];
    const turns = new Turns({
      kernel: () => kernel,
      workflow: (model) => {
        asked.push(model);
        return buildWorkflow(waiting);
      },
    });
    opened.push({ store, turns });
    const key = 'agent:main:models';
    const origin = { kind: 'agent', user: 'admin' } as const;
    const submit = (runId: string, model?: string) =>
      turns.submit({
        key,
        runId,
        message: runId,
        mode: 'followup',
        origin,
        ...(model ? { model } : {}),
      });
    expect(await submit('first', 'model-a')).toMatchObject({ status: 'started' });
    expect(await submit('second', 'model-b')).toMatchObject({ status: 'queued' });
    expect(await submit('third')).toMatchObject({ status: 'queued' });
    for (const runId of ['first', 'second']) {
      const pid = (await turns.lookup(runId))!.pid!;
      await kernel.cancelRun(pid, 'next');
      await turns.ended(key, runId);
    }
    expect(asked).toEqual(['model-a', 'model-b', undefined]);
    const inputs = await Promise.all(
      ['first', 'second', 'third'].map(async (runId) => {
        const run = await kernel.getProcess((await turns.lookup(runId))!.pid!);
        return (run.envelope.input as { model?: string }).model;
      }),
    );
    expect(inputs).toEqual(['model-a', 'model-b', undefined]);
  });
});
