/**
 * Parameter schemas of the queue's public constructors and methods (see core/params.ts). Submit
 * options and lane options have their own schemas in options.ts.
 */
import { z } from 'zod';

import { clockParam, MIN_LIMIT_BYTES, param } from '../core/index.ts';
import { storeParam } from '../store/index.ts';
import { REMOTE_OWNER_PATTERN } from './owner-liveness.ts';

const DAY_MS = 86_400_000;

const isCount = (v: unknown): boolean =>
  typeof v === 'number' && Number.isSafeInteger(v) && v >= 1 && v <= 100_000;

const plainObject = (what: string) =>
  param.is<Record<string, unknown>>(
    what,
    (v) => v !== null && typeof v === 'object' && !Array.isArray(v),
  );

const byteLimit = param.int(
  MIN_LIMIT_BYTES,
  Number.MAX_SAFE_INTEGER,
  `an integer number of bytes of at least ${MIN_LIMIT_BYTES}`,
);

const taskId = param.nonEmpty('a task id string', 256);
const jobName = param.matching(
  'a job name of 1-128 letters, digits, _ . : / -',
  /^[A-Za-z0-9_.:/-]{1,128}$/,
);
const scheduleName = param.matching(
  'a schedule name of 1-128 letters, digits, _ . : / -',
  /^[A-Za-z0-9_.:/-]{1,128}$/,
);
const deadOwner = param.fn<(owner: string) => boolean>('a function (workerId) => boolean');

export const jobQueueArgs = z.object({
  options: param.options(
    {
      store: storeParam,
      clock: clockParam.optional(),
      lanes: plainObject(
        'an object of lane options by lane name, e.g. { small: { concurrency: 1 } }',
      ).optional(),
      idempotencyWindowMs: param.int(0, 365 * DAY_MS).optional(),
      maxPayloadBytes: byteLimit.optional(),
      maxResultBytes: byteLimit.optional(),
      maxProgressBytes: byteLimit.optional(),
      agingMs: param.int(0, DAY_MS).optional(),
      fairnessQuantumMs: param.int(1, DAY_MS).optional(),
      sessions: param
        .withMethods('a SessionDirectory (kernel.sessions)', ['ensure', 'prepare', 'system'])
        .optional(),
    },
    'an options object { store, lanes?, … } (at least the store from openSqliteStore())',
  ),
});

export const taskIdArgs = z.object({ id: taskId });

export const taskIdByArgs = z.object({
  id: taskId,
  by: param.nonEmpty('a string naming who acts', 256).optional(),
});

export const cancelTaskArgs = z.object({
  id: taskId,
  reason: param.string().optional(),
});

export const resultArgs = z.object({
  id: taskId,
  options: param.options(
    { timeoutMs: param.int(0, 365 * DAY_MS).optional() },
    'an object { timeoutMs? }',
  ),
});

export const deadLettersArgs = z.object({
  options: param.options(
    {
      lane: param.nonEmpty('a lane name', 64).optional(),
      limit: param.int(1, 100_000).optional(),
    },
    'an object { lane?, limit? }',
  ),
});

export const scheduleArgs = z.object({
  name: scheduleName,
  spec: param.options(
    {
      cron: param.nonEmpty('a cron expression string such as "*/5 * * * *"', 256).optional(),
      everyMs: z.unknown().optional(),
      job: jobName,
      payload: z.unknown().optional(),
      lane: param.nonEmpty('a lane name', 64).optional(),
      options: z.unknown().optional(),
      enabled: param.boolean().optional(),
    },
    'a schedule { cron or everyMs, job, payload?, lane?, options?, enabled? }',
  ),
});

export const scheduleNameArgs = z.object({ name: scheduleName });

export const jobWorkerArgs = z.object({
  options: param.options(
    {
      queue: param.withMethods('a JobQueue (new JobQueue({ store }))', ['submit', 'ready']),
      lanes: z
        .array(param.string('a lane name'), { error: 'expected an array of lane names' })
        .optional(),
      concurrency: param
        .is<number | Record<string, number>>(
          'a positive integer, or an object of positive integers by lane name',
          (v) =>
            isCount(v) ||
            (v !== null &&
              typeof v === 'object' &&
              !Array.isArray(v) &&
              Object.values(v as Record<string, unknown>).every(isCount)),
        )
        .optional(),
      leaseMs: param.int(1, 7 * DAY_MS).optional(),
      heartbeatMs: param.int(1, 7 * DAY_MS).optional(),
      stallLimitMs: param.int(1, 7 * DAY_MS).optional(),
      heartbeat: param.oneOf(['auto', 'thread', 'timer']).optional(),
      claimBatch: param.int(1, 100_000).optional(),
      prefetch: param.int(0, 100_000).optional(),
      id: param.nonEmpty('a worker id string of 1-512 characters', 512).optional(),
      random: param.fn('a function () => number in [0, 1)').optional(),
      isDeadOwner: deadOwner.optional(),
      onError: param.fn('a function (error) => void').optional(),
    },
    'an options object { queue, lanes?, concurrency?, … }',
  ),
});

export const handleArgs = z.object({
  name: jobName,
  handler: param.fn('a handler function (job) => result'),
});

export const stopArgs = z.object({
  options: param.options({ abort: param.boolean().optional() }, 'an object { abort? }'),
});

export const effectJournalArgs = z.object({
  store: storeParam,
  clock: clockParam,
  options: param.options(
    {
      isDeadOwner: deadOwner.optional(),
      takeoverAfterMs: param.int(1, 30 * DAY_MS).optional(),
    },
    'an object { isDeadOwner?, takeoverAfterMs? }',
  ),
});

export const forClaimArgs = z.object({
  claim: z.object(
    {
      task: plainObject('the claimed task record'),
      leaseToken: param.nonEmpty('a lease token string', 256),
      attempt: param.int(1),
    },
    { error: 'expected a ClaimedTask { task, leaseToken, attempt } from a claim' },
  ),
  isDeadOwner: deadOwner.optional(),
});

export const forAttemptArgs = z.object({
  scope: param.options(
    {
      taskId,
      leaseToken: param.nonEmpty('a lease token string', 256),
      workerId: param.nonEmpty('a worker id string', 512),
      sessionId: param.nonEmpty('a session id string', 256),
      processId: param.nonEmpty('a process id string', 256).nullable(),
      traceId: param.nonEmpty('a trace id string', 256),
      attempt: param.int(1),
      leaseMs: param.int(1),
    },
    'an EffectScope { taskId, leaseToken, workerId, sessionId, processId, traceId, attempt, leaseMs }',
  ),
  isDeadOwner: deadOwner.optional(),
});

export const effectArgs = z.object({
  key: param.nonEmpty('an effect key: a non-empty string of at most 512 characters', 512),
  fn: param.fn('the effect function () => result'),
  options: param.options(
    {
      tool: param.nonEmpty('a tool name string', 256).optional(),
      reconcile: param.fn('a function () => result | undefined').optional(),
      record: param.fn('a function (ops, outcome) => Promise').optional(),
      summary: param.fn('a function (result) => object').optional(),
    },
    'an object { tool?, reconcile?, record?, summary? }',
  ),
});

export const nonRetryableArgs = z.object({
  message: param.string(),
  details: plainObject('a plain object of details').optional(),
});

export const retryAfterArgs = z.object({
  delayMs: param.int(0, 365 * DAY_MS, 'a delay in ms: an integer ≥ 0'),
  message: param.string(),
});

const leaseToken = param.nonEmpty('a lease token string (from the claim)', 256);

export const remoteWorkArgs = z.object({
  options: param.options(
    {
      queue: param.withMethods('a JobQueue (new JobQueue({ store }))', ['submit', 'ready']),
      defaultLeaseMs: param.int(100, 7 * DAY_MS).optional(),
      maxLeaseMs: param.int(100, 7 * DAY_MS).optional(),
      maxWaitMs: param.int(0, DAY_MS).optional(),
      maxClaimLimit: param.int(1, 100_000).optional(),
      random: param.fn('a function () => number in [0, 1)').optional(),
      onError: param.fn('a function (error) => void').optional(),
    },
    'an options object { queue, defaultLeaseMs?, maxLeaseMs?, maxWaitMs?, maxClaimLimit?, … }',
  ),
});

export const remoteClaimArgs = z.object({
  request: param.options(
    {
      workerId: param.matching(
        "a remote worker id 'remote/<name>/<random>' (see remoteWorkerId)",
        REMOTE_OWNER_PATTERN,
      ),
      lanes: z
        .array(param.nonEmpty('a lane name', 64), {
          error: 'expected an array of lane names',
        })
        .min(1, { error: 'expected at least one lane name' })
        .max(64, { error: 'expected at most 64 lane names' }),
      limit: param.int(1, 100_000).optional(),
      leaseMs: param.int(100, 7 * DAY_MS).optional(),
      waitMs: param.int(0, DAY_MS).optional(),
      signal: param.is<AbortSignal>('an AbortSignal', (v) => v instanceof AbortSignal).optional(),
    },
    'a claim request { workerId, lanes, limit?, leaseMs?, waitMs?, signal? }',
  ),
});

export const remoteHeartbeatArgs = z.object({
  taskId,
  leaseToken,
  leaseMs: param.int(100, 7 * DAY_MS).optional(),
});

export const remoteLeaseArgs = z.object({ taskId, leaseToken });

export const remoteFailArgs = z.object({
  taskId,
  leaseToken,
  failure: param.options(
    {
      message: param.string('a message string'),
      code: param.nonEmpty('an error code string of 1-64 characters', 64).optional(),
      retryable: param.boolean().optional(),
      retryAfterMs: param.int(0, 365 * DAY_MS, 'a delay in ms: an integer ≥ 0').optional(),
      details: plainObject('a plain object of details').optional(),
    },
    'a failure { message, code?, retryable?, retryAfterMs?, details? }',
  ),
});
