/**
 * Parameter schemas of the kernel's public methods (see core/params.ts): checked once at the
 * boundary, so a bad argument is INVALID_PARAMS naming it, and the subsystems behind the
 * kernel trust what they get.
 */
import { z } from 'zod';

import {
  clockParam,
  DEFAULT_QUOTA,
  emptyUsage,
  MIN_LIMIT_BYTES,
  param,
  PRIORITIES,
  type Quota,
  type RateLimits,
  type RoutingFunction,
  type Usage,
} from '../core/index.ts';
import { storeParam } from '../store/index.ts';

const plainObject = (value: unknown): boolean => {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
};

/** A key of `process_rows.session_key` and the CLI's `--session`. */
export const sessionKeyParam = param.matching(
  'a session key of 1-128 letters, digits, _ . : -',
  /^[A-Za-z0-9_.:-]{1,128}$/,
);
const laneParam = param.matching(
  'a lane name of 1-64 letters, digits, _ . : -',
  /^[A-Za-z0-9_.:-]{1,64}$/,
);
const idParam = (what: string) => param.nonEmpty(`${what} id string`, 256);

const quotaShape = Object.fromEntries(
  Object.keys(DEFAULT_QUOTA).map((key) => [key, param.int(1).optional()]),
) as Record<keyof Quota, z.ZodOptional<z.ZodType<number>>>;

const usageShape = Object.fromEntries(
  Object.keys(emptyUsage()).map((key) => [key, param.int(0).optional()]),
) as Record<keyof Usage, z.ZodOptional<z.ZodType<number>>>;

const byteLimit = param.int(
  MIN_LIMIT_BYTES,
  Number.MAX_SAFE_INTEGER,
  `an integer number of bytes of at least ${MIN_LIMIT_BYTES}`,
);

const rateLimitsParam: z.ZodType<RateLimits> = param.options(
  {
    per_minute: param.int(1),
    per_hour: param.int(1),
    per_day: param.int(1),
    burst: param.int(1),
  },
  'an object { per_minute, per_hour, per_day, burst } of positive integers',
);

const routingFunctionsParam = z.record(
  z.string(),
  param.fn<RoutingFunction>('a routing function (ctx) => string | undefined'),
  { error: 'expected an object of routing functions by name, e.g. { bySize: (ctx) => … }' },
);

export const kernelArgs = z.object({
  options: param.options(
    {
      store: storeParam,
      clock: clockParam.optional(),
      agentLane: laneParam.optional(),
      externalLane: laneParam.optional(),
      agingMs: param.int(0, 86_400_000).optional(),
      routingFunctions: routingFunctionsParam.optional(),
      rateLimits: rateLimitsParam.optional(),
      isDeadOwner: param.fn<(owner: string) => boolean>('a function (owner) => boolean').optional(),
      limits: param
        .options(
          {
            runInputBytes: byteLimit.optional(),
            stepOutputBytes: byteLimit.optional(),
            statePatchBytes: byteLimit.optional(),
          },
          'an object of size limits { runInputBytes, stepOutputBytes, statePatchBytes }',
        )
        .optional(),
    },
    'an options object { store, … } (at least the store from openSqliteStore())',
  ),
});

/** `startRun`'s fields other than the workflow (which core's resolveWorkflow checks). */
export const startRunArgs = param.options(
  {
    workflow: z.unknown().optional(),
    input: z.unknown().optional(),
    sessionKey: sessionKeyParam.optional(),
    userId: param.nonEmpty('a user id string of 1-128 characters', 128).optional(),
    priority: param.oneOf(PRIORITIES).optional(),
    quota: param.options(quotaShape, 'an object of Quota limits (max_llm_calls, …)').optional(),
    metadata: param
      .is<Record<string, unknown>>('a plain object of JSON values', plainObject)
      .optional(),
    source: param.string().optional(),
    parentPid: idParam('a process').optional(),
    usage: param.options(usageShape, 'an object of Usage counters (llm_calls, …)').optional(),
  },
  'an object { workflow, input?, sessionKey?, … }',
);

export const pidArgs = z.object({ pid: idParam('a process') });

export const cancelRunArgs = z.object({
  pid: idParam('a process'),
  message: param.string().optional(),
});

const interruptResponseParam = param.options(
  {
    approved: param.boolean().optional(),
    text: param.string().optional(),
    decision: param.string().optional(),
    data: z.unknown().optional(),
    grant: param
      .options(quotaShape, 'an object of amounts to add per limit, e.g. { max_llm_calls: 5 }')
      .optional(),
    expired: param.boolean().optional(),
  },
  'an InterruptResponse object such as { approved: true } or { text: "…" }',
);

export const resolveInterruptArgs = z.object({
  id: idParam('an interrupt'),
  response: interruptResponseParam,
  resolver: param.nonEmpty('a resolver name string', 256).optional(),
});

export const registerServiceArgs = z.object({
  info: param.options(
    {
      name: param.nonEmpty('a service name string', 256),
      type: param.nonEmpty('a service type string', 128),
      capabilities: z.array(param.string(), { error: 'expected an array of strings' }),
      maxConcurrency: param.int(1),
      health: param.oneOf(['healthy', 'degraded', 'unhealthy', 'unknown']).optional(),
      owner: param.nonEmpty('an owner id string', 512),
    },
    'a service description { name, type, capabilities, maxConcurrency, owner }',
  ),
  call: param.fn('a function (request, signal) => Promise').nullable().optional(),
});

export const serviceNameArgs = z.object({ name: param.nonEmpty('a service name string', 256) });

export const verifyLedgerArgs = z.object({
  store: storeParam,
  sessionId: idParam('a session').optional(),
});

export const subscribeArgs = z.object({
  types: z
    .array(param.string('an event type string'), {
      error: "expected an array of event types (e.g. ['process.terminated']) or null for all",
    })
    .nullable(),
  deliver: param.fn('a function (message, missed) => void'),
  capacity: param.int(1, 1_000_000).optional(),
});
