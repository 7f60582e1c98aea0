/**
 * Every stored value has a size limit (DESIGN.md §2.8 and §6, "Retention"; issue 6, defect 8),
 * on a real SQLite file:
 *
 * - a job result over `maxResultBytes` (or not JSON) fails the job without retrying and is not
 *   stored, and the jobs settled in the same batch are unaffected;
 * - progress data over `maxProgressBytes` is refused with PAYLOAD_TOO_LARGE and writes nothing;
 * - a run input (or metadata) over `limits.runInputBytes` is refused at start and writes nothing;
 * - a step output over `limits.stepOutputBytes`, or a state patch over `limits.statePatchBytes`,
 *   fails the step without retrying and is recorded nowhere;
 * - an error message is truncated to 4 KiB with a marker, never refused: the failure is always
 *   recorded, on the task, its attempt and its event.
 */
import { join } from 'node:path';

import { afterAll, afterEach, describe, expect, it } from 'vitest';

import {
  buildWorkflow,
  DEFAULT_LIMITS,
  isWardenError,
  type LoadedWorkflow,
  utf8Bytes,
  type WardenError,
  type WorkflowInput,
} from '../src/core/index.ts';
import { Kernel } from '../src/kernel/index.ts';
import { JobQueue, type JobQueueOptions, JobWorker, nonRetryable } from '../src/queue/index.ts';
import { openSqliteStore, type Store, type TaskRecord } from '../src/store/index.ts';
import { removeTempDirs, tempDir } from './helpers/tmp.ts';
import { rejection } from './helpers/wait.ts';

const stores: Store[] = [];
const workers: JobWorker[] = [];
const kernels: Kernel[] = [];

afterEach(async () => {
  for (const worker of workers.splice(0)) await worker.stop({ abort: true });
  for (const kernel of kernels.splice(0)) kernel.close();
  for (const store of stores.splice(0)) await store.close();
});
afterAll(removeTempDirs);

const LIMIT = 1_024;
const ERROR_LIMIT = DEFAULT_LIMITS.errorMessageBytes;

async function open(): Promise<Store> {
  const store = await openSqliteStore({ file: join(tempDir(), 'b.db') });
  stores.push(store);
  return store;
}

async function queueWithWorker(
  options: Partial<JobQueueOptions> = {},
): Promise<{ store: Store; queue: JobQueue; worker: JobWorker }> {
  const store = await open();
  const queue = new JobQueue({ store, ...options });
  const worker = new JobWorker({ queue, heartbeat: 'timer', random: () => 0.5 });
  workers.push(worker);
  return { store, queue, worker };
}

async function settled(store: Store, id: string, timeoutMs = 10_000): Promise<TaskRecord> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const task = await store.getTask(id);
    if (task && task.state !== 'queued' && task.state !== 'running') return task;
    if (Date.now() > deadline)
      throw new Error(`task ${id} is still ${task?.state} after ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Everything a refused call must leave unchanged. */
async function snapshot(store: Store) {
  const sessions = await store.listSessions();
  const events = [];
  for (const s of sessions) events.push(...(await store.readEvents({ sessionId: s.id })));
  return {
    sessions,
    events,
    tasks: await store.listTasks(),
    processes: await store.listProcesses(),
  };
}

async function taskEvents(store: Store, task: TaskRecord, type: string) {
  const events = await store.readEvents({ sessionId: task.session_id, limit: 10_000 });
  return events.filter((e) => e.task_id === task.id && e.type === type);
}

describe('job results', () => {
  it('a result over maxResultBytes fails the job at once and is not stored; its batch-mates succeed', async () => {
    const { store, queue, worker } = await queueWithWorker({ maxResultBytes: LIMIT });
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    worker
      .handle('big', () => ({ blob: 'x'.repeat(LIMIT) }))
      .handle('cyclic', () => cyclic)
      .handle('small', () => ({ ok: true }))
      .handle('edge', () => 'y'.repeat(LIMIT - 2)); // exactly LIMIT bytes of JSON, quotes included
    // One submit, so the three finish together and are settled in one batch.
    const [big, cyc, small, edge] = await queue.submitMany([
      { name: 'big', payload: null, options: { attempts: 5 } },
      { name: 'cyclic', payload: null, options: { attempts: 5 } },
      { name: 'small', payload: null },
      { name: 'edge', payload: null },
    ]);
    await worker.start();

    const failed = await settled(store, big!.id);
    expect(failed).toMatchObject({ state: 'failed', attempts: 1, result: null });
    expect(failed.last_error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', retryable: false });
    expect(failed.last_error!.message).toContain("the result of job 'big' is");
    expect(failed.last_error!.message).toContain(`the limit is ${LIMIT}`);
    const [attempt] = await store.listAttempts(big!.id);
    expect(attempt).toMatchObject({ outcome: 'failed', error: { code: 'PAYLOAD_TOO_LARGE' } });
    expect(await taskEvents(store, failed, 'task.failed')).toHaveLength(1);
    expect(await taskEvents(store, failed, 'task.succeeded')).toHaveLength(0);

    // A result that is not JSON fails the same way instead of failing the whole settle batch.
    const notJson = await settled(store, cyc!.id);
    expect(notJson).toMatchObject({ state: 'failed', attempts: 1, result: null });
    expect(notJson.last_error).toMatchObject({ code: 'INVALID_PARAMS' });

    expect(await settled(store, small!.id)).toMatchObject({
      state: 'succeeded',
      result: { ok: true },
    });
    // The limit itself is allowed.
    expect(await settled(store, edge!.id)).toMatchObject({
      state: 'succeeded',
      result: 'y'.repeat(LIMIT - 2),
    });
    const rejected = await rejection(queue.result(big!.id, { timeoutMs: 1_000 }));
    expect(rejected.code).toBe('JOB_FAILED');
    expect(rejected.message).toContain('PAYLOAD_TOO_LARGE');
  });
});

describe('progress', () => {
  it('progress data over maxProgressBytes is refused with PAYLOAD_TOO_LARGE and writes no event', async () => {
    const { store, queue, worker } = await queueWithWorker({ maxProgressBytes: LIMIT });
    let refused: unknown;
    worker.handle('report', async (job) => {
      try {
        await job.progress({ log: 'z'.repeat(LIMIT) });
      } catch (error) {
        refused = error;
      }
      await job.progress({ pct: 50 });
      return 'done';
    });
    const { id } = await queue.submit('report', null);
    await worker.start();
    const task = await settled(store, id);
    expect(task.state).toBe('succeeded');
    expect(isWardenError(refused, 'PAYLOAD_TOO_LARGE')).toBe(true);
    expect((refused as WardenError).details).toEqual({
      what: "the progress data of job 'report'",
      bytes: LIMIT + 10,
      max_bytes: LIMIT,
    });
    const progress = await taskEvents(store, task, 'task.progress');
    expect(progress.map((e) => e.data)).toEqual([{ progress: { pct: 50 } }]);
  });
});

describe('error messages', () => {
  it('a huge job error message is truncated on the task, its attempt and its event, never refused', async () => {
    const { store, queue, worker } = await queueWithWorker();
    const message = 'boom '.repeat(100_000); // 500,000 bytes
    worker.handle('explode', () => {
      throw nonRetryable(message);
    });
    const { id } = await queue.submit('explode', null);
    await worker.start();
    const task = await settled(store, id);
    expect(task.state).toBe('failed');
    const stored = [
      task.last_error!.message,
      (await store.listAttempts(id))[0]!.error!.message,
      ((await taskEvents(store, task, 'task.failed'))[0]!.data as { error: { message: string } })
        .error.message,
    ];
    for (const text of stored) {
      expect(utf8Bytes(text)).toBeLessThanOrEqual(ERROR_LIMIT);
      expect(text.startsWith('boom boom ')).toBe(true);
      expect(text.endsWith('… (truncated, 500000 bytes)')).toBe(true);
    }
  });
});

function wf(stages: WorkflowInput['stages']): LoadedWorkflow {
  return buildWorkflow({ name: 'bounds', model: 'scripted', stages });
}

const oneStage = () => wf([{ name: 'one', agent: { kind: 'noop', output: {} } }]);

async function kernelOn(limits: ConstructorParameters<typeof Kernel>[0]['limits'] = {}) {
  const store = await open();
  const kernel = new Kernel({ store, limits });
  kernels.push(kernel);
  return { store, kernel };
}

/** Starts a run and claims and begins its first step, as a worker would. */
async function firstStep(kernel: Kernel, store: Store) {
  const p = await kernel.startRun({ workflow: oneStage(), sessionKey: 'bounds' });
  const [claim] = await store.claimTasks({
    lanes: ['agents'],
    kinds: ['agent_step'],
    workerId: 'w1',
    limit: 1,
    leaseMs: 60_000,
    now: kernel.clock.now(),
  });
  const step = await kernel.orchestrator.beginStep(claim!);
  return { p, claim: claim!, step: step! };
}

describe('workflow runs', () => {
  it('a run input or metadata over limits.runInputBytes is refused at start and writes nothing', async () => {
    const { store, kernel } = await kernelOn({ runInputBytes: LIMIT });
    const before = await snapshot(store);
    const input = await rejection(
      kernel.startRun({
        workflow: oneStage(),
        sessionKey: 'new-session',
        input: { text: 'x'.repeat(LIMIT) },
      }),
    );
    expect(input.code).toBe('PAYLOAD_TOO_LARGE');
    expect(input.details).toMatchObject({ what: 'the run input', max_bytes: LIMIT });
    const metadata = await rejection(
      kernel.startRun({
        workflow: oneStage(),
        sessionKey: 'new-session',
        metadata: { text: 'x'.repeat(LIMIT) },
      }),
    );
    expect(metadata.code).toBe('PAYLOAD_TOO_LARGE');
    expect(await snapshot(store)).toEqual(before);
    // Within the limit, the same run starts.
    const p = await kernel.startRun({
      workflow: oneStage(),
      sessionKey: 'new-session',
      input: { text: 'x'.repeat(100) },
    });
    expect(p.envelope.input).toEqual({ text: 'x'.repeat(100) });
  });

  it('a step output over limits.stepOutputBytes fails the step at once and is recorded nowhere', async () => {
    const { store, kernel } = await kernelOn({ stepOutputBytes: LIMIT });
    const { p, claim, step } = await firstStep(kernel, store);
    const marker = 'q'.repeat(LIMIT);
    const after = await kernel.orchestrator.completeStep(step, { output: { marker } });
    expect(after).toMatchObject({ state: 'terminated', terminal_reason: 'tool_failed_fatally' });
    const task = (await store.getTask(claim.task.id))!;
    expect(task).toMatchObject({ state: 'failed', attempts: 1 });
    expect(task.last_error).toMatchObject({ code: 'PAYLOAD_TOO_LARGE', retryable: false });
    expect(task.last_error!.message).toContain("the output of stage 'one' is");
    const events = await store.readEvents({ sessionId: p.session_id, limit: 10_000 });
    expect(events.filter((e) => e.type === 'stage.completed')).toEqual([]);
    expect(events.find((e) => e.type === 'stage.failed')?.data).toMatchObject({
      stage: 'one',
      will_retry: false,
      error: { code: 'PAYLOAD_TOO_LARGE' },
    });
    // The output is nowhere: not in the process row, not in any event.
    expect(JSON.stringify(await store.getProcess(p.pid))).not.toContain(marker);
    expect(JSON.stringify(events)).not.toContain(marker);
  });

  it('a state patch over limits.statePatchBytes fails the step the same way', async () => {
    const { store, kernel } = await kernelOn({ statePatchBytes: LIMIT });
    const { p, claim, step } = await firstStep(kernel, store);
    const marker = 's'.repeat(LIMIT);
    const after = await kernel.orchestrator.completeStep(step, {
      output: { ok: true },
      statePatch: { marker },
    });
    expect(after.state).toBe('terminated');
    expect((await store.getTask(claim.task.id))!.last_error).toMatchObject({
      code: 'PAYLOAD_TOO_LARGE',
    });
    expect(JSON.stringify(await store.getProcess(p.pid))).not.toContain(marker);
  });

  it('a step failure with a huge message is recorded, truncated, on the task, its event and the run', async () => {
    const { store, kernel } = await kernelOn();
    const { p, claim, step } = await firstStep(kernel, store);
    const message = 'é'.repeat(50_000); // 100,000 bytes
    await kernel.orchestrator.failStep(step, nonRetryable(message));
    const task = (await store.getTask(claim.task.id))!;
    const events = await store.readEvents({ sessionId: p.session_id, limit: 10_000 });
    const failed = events.find((e) => e.type === 'stage.failed')!.data as {
      error: { message: string };
    };
    const run = (await store.getProcess(p.pid))!;
    for (const text of [task.last_error!.message, failed.error.message]) {
      expect(utf8Bytes(text)).toBeLessThanOrEqual(ERROR_LIMIT);
      expect(text.endsWith('… (truncated, 100000 bytes)')).toBe(true);
    }
    expect(run.state).toBe('terminated');
    expect(utf8Bytes(run.terminal_message!)).toBeLessThan(ERROR_LIMIT + 100);
    expect(JSON.stringify(run.envelope)).not.toContain('é'.repeat(ERROR_LIMIT));
  });
});

describe('limit options', () => {
  it('are validated, naming the option', async () => {
    const store = await open();
    const bytes = 'expected an integer number of bytes of at least 256';
    expect(() => new JobQueue({ store, maxResultBytes: 0 })).toThrow(
      `new JobQueue: options.maxResultBytes: ${bytes} (got 0)`,
    );
    expect(() => new JobQueue({ store, maxProgressBytes: 1.5 })).toThrow(
      `new JobQueue: options.maxProgressBytes: ${bytes} (got 1.5)`,
    );
    expect(() => new Kernel({ store, limits: { stepOutputBytes: -1 } })).toThrow(
      `new Kernel: options.limits.stepOutputBytes: ${bytes} (got -1)`,
    );
    const queue = new JobQueue({ store });
    expect(queue.limits).toEqual({
      payloadBytes: 1_048_576,
      resultBytes: 1_048_576,
      progressBytes: 65_536,
    });
  });
});
