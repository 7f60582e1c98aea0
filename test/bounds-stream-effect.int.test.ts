/**
 * The two bounds that live with the effect journal and the model stream (issue 6, defect 8):
 *
 * - an effect whose result is over `effectResultBytes` is recorded `done` without its result
 *   (the effect happened: it must never run again) and every call with its key fails with
 *   PAYLOAD_TOO_LARGE, not retried;
 * - a model call's streamed text is recorded as `model.delta` events up to `streamedTextBytes`;
 *   past it, one last delta says `truncated: true` and nothing more is recorded.
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import { buildWorkflow, DEFAULT_LIMITS, isWardenError, utf8Bytes } from '../src/core/index.ts';
import { Kernel } from '../src/kernel/index.ts';
import { JobQueue, JobWorker } from '../src/queue/index.ts';
import { Worker } from '../src/runtime/index.ts';
import { openSqliteStore, type Store } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { waitForProcess } from './helpers/wait.ts';

const stores: Store[] = [];
const stops: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  for (const store of stores.splice(0)) await store.close();
});
afterAll(removeTempDirs);

async function open(): Promise<Store> {
  const store = await openSqliteStore({ file: join(tempDir(), 'b.db') });
  stores.push(store);
  return store;
}

describe('effect result limit', () => {
  it('an oversized effect result is done but not stored; the effect never runs again', async () => {
    const store = await open();
    const queue = new JobQueue({ store });
    const worker = new JobWorker({ queue, heartbeat: 'timer' });
    stops.push(() => worker.stop({ abort: true }));
    let runs = 0;
    const big = 'x'.repeat(DEFAULT_LIMITS.effectResultBytes + 10);
    worker.handle('big', (job) =>
      job.effect('big:1', { n: 1 }, () => {
        runs += 1;
        return big;
      }),
    );
    await worker.start();
    const { id } = await queue.submit('big', null, { attempts: 3 });
    const error = await queue.result(id, { timeoutMs: 10_000 }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(isWardenError(error, 'JOB_FAILED')).toBe(true);
    const task = await queue.get(id);
    expect(task.state).toBe('failed'); // not retried
    expect(task.last_error?.code).toBe('PAYLOAD_TOO_LARGE');
    expect(runs).toBe(1);
    const record = await store.getEffect('big:1');
    expect(record).toMatchObject({ status: 'done', result: null });
    expect(record?.result_hash).toMatch(/^[0-9a-f]{64}$/);
    expect(record?.error?.code).toBe('PAYLOAD_TOO_LARGE');
  });
});

describe('streamed text limit', () => {
  it('records at most streamedTextBytes of one call, then says it truncated', async () => {
    const store = await open();
    const kernel = new Kernel({ store });
    const worker = new Worker({ kernel, heartbeat: 'timer' });
    stops.push(async () => {
      await worker.stop({ abort: true });
      kernel.close();
    });
    await worker.start();
    const text = 'y'.repeat(DEFAULT_LIMITS.streamedTextBytes + 50_000);
    const workflow = buildWorkflow({
      name: 'stream',
      model: 'scripted',
      stages: [
        {
          name: 'talk',
          agent: { kind: 'llm', prompt: 'talk', output: 'text', script: [{ text }] },
        },
      ],
    });
    const run = await kernel.startRun({ workflow, quota: { max_output_tokens: 10_000_000 } });
    expect((await waitForProcess(kernel, run.pid)).terminal_reason).toBe('completed');
    const events = await store.readEvents({ sessionId: run.session_id, limit: 10_000 });
    const deltas = events
      .filter((e) => e.type === 'model.delta')
      .map((e) => e.data as { text: string; truncated?: boolean; limit_bytes?: number });
    const recorded = deltas.reduce((n, d) => n + utf8Bytes(d.text), 0);
    expect(recorded).toBeLessThanOrEqual(DEFAULT_LIMITS.streamedTextBytes);
    expect(recorded).toBeGreaterThan(DEFAULT_LIMITS.streamedTextBytes - 1_024);
    expect(deltas.at(-1)).toMatchObject({
      text: '',
      truncated: true,
      limit_bytes: DEFAULT_LIMITS.streamedTextBytes,
    });
    expect(deltas.filter((d) => d.truncated)).toHaveLength(1);
    // The reply itself is whole: the step output is bounded separately.
    const completed = events.find((e) => e.type === 'stage.completed');
    expect((completed?.data as { output: { text: string } }).output.text).toHaveLength(text.length);
  });
});
