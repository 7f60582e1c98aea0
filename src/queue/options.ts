/**
 * Job and lane options: user input (`XxxOptions`) validated into frozen resolved values, with
 * INVALID_PARAMS naming the field and what was expected.
 */
import { z } from 'zod';

import { DEFAULT_LIMITS, formatPath, PRIORITIES, WardenError } from '../core/index.ts';

const lanePattern = /^[A-Za-z0-9_.:-]{1,64}$/;
const namePattern = /^[A-Za-z0-9_.:/-]{1,128}$/;

export const DEFAULTS = {
  lane: 'default',
  maxAttempts: 5,
  backoffMs: 1_000,
  maxBackoffMs: 300_000,
  poisonThreshold: 3,
  idempotencyWindowMs: 24 * 3_600_000,
  maxPayloadBytes: DEFAULT_LIMITS.payloadBytes,
  maxResultBytes: DEFAULT_LIMITS.resultBytes,
  maxProgressBytes: DEFAULT_LIMITS.progressBytes,
  /** Handlers one worker runs at once per lane, unless told otherwise. */
  workerConcurrency: 8,
  laneMaxDepth: 1_000_000,
  /** A schedule occurrence that cannot fire is retried after 1 s, 2 s, 4 s … at most 1 h. */
  scheduleRetryBaseMs: 1_000,
  scheduleRetryMaxMs: 3_600_000,
} as const;

export const submitOptionsSchema = z.strictObject({
  /** @default 'default' */
  lane: z
    .string()
    .regex(lanePattern, 'expected a lane name of 1-64 letters, digits, _ . : -')
    .optional(),
  /** A priority name or rank 0 (realtime) … 4 (idle). @default 'normal' */
  priority: z.union([z.enum(PRIORITIES), z.number().int().min(0).max(4)]).optional(),
  /** Run no earlier than this many milliseconds from now. */
  delayMs: z
    .number()
    .int()
    .min(0)
    .max(365 * 86_400_000)
    .optional(),
  /** Run no earlier than this time (ms since the epoch). */
  runAt: z.number().int().min(0).optional(),
  /** @default 5 */
  attempts: z.number().int().min(1).max(1_000).optional(),
  backoff: z
    .strictObject({
      baseMs: z.number().int().min(0).max(86_400_000),
      maxMs: z
        .number()
        .int()
        .min(0)
        .max(7 * 86_400_000),
    })
    .optional(),
  /** Same key within the window returns the existing task (`deduplicated: true`). */
  idempotencyKey: z.string().min(1).max(256).optional(),
  /** Session key whose event log records the task. @default 'system' */
  session: z
    .string()
    .regex(/^[A-Za-z0-9_.:-]{1,128}$/)
    .optional(),
  /** Abort the handler after this long (it then fails with TIMEOUT and is retried). */
  timeoutMs: z
    .number()
    .int()
    .min(1)
    .max(7 * 86_400_000)
    .optional(),
  /** Consecutive identical failures that dead-letter early; 0 disables. @default 3 */
  poisonThreshold: z.number().int().min(0).max(1_000).optional(),
});
export type SubmitOptions = z.input<typeof submitOptionsSchema>;

export const laneOptionsSchema = z.strictObject({
  /**
   * Most tasks of this lane running at once across EVERY worker and process on the database
   * (enforced by the store at claim time). @default no limit (each worker runs up to its own
   * concurrency, 8 by default)
   */
  concurrency: z.number().int().min(1).max(10_000).optional(),
  /** Queued tasks the lane accepts before submit answers QUEUE_FULL. @default 1_000_000 */
  maxDepth: z.number().int().min(1).optional(),
});
export type LaneOptions = z.input<typeof laneOptionsSchema>;

export function parseOrThrow<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  throw new WardenError('INVALID_PARAMS', `${what}: ${formatPath(issue.path)}: ${issue.message}`, {
    details: {
      issues: parsed.error.issues.map((i) => ({ path: formatPath(i.path), message: i.message })),
    },
  });
}

export function assertJobName(name: unknown): string {
  if (typeof name !== 'string' || !namePattern.test(name)) {
    throw new WardenError(
      'INVALID_PARAMS',
      `job name must be 1-128 letters, digits, _ . : / - (got ${JSON.stringify(name)})`,
    );
  }
  return name;
}

export function assertLaneName(lane: string): string {
  if (!lanePattern.test(lane))
    throw new WardenError(
      'INVALID_PARAMS',
      `lane '${lane}' is invalid: use 1-64 letters, digits, _ . : -`,
    );
  return lane;
}
