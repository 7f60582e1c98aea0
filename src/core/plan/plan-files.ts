/**
 * The kit's files as Warden reads and writes them (reference/noa-kit-and-kgents.md A.4–A.7):
 * plan v1 (Python and Rust variants), `hooks.json`, `manifest.json` and `run.json`. The schemas
 * here are the published ones (`docs/schemas/`, `warden plan --check`): one source for both.
 */
import { z } from 'zod';

import { formatPath } from '../workflow/load.ts';

/** The three timestamp forms the kit's variants write (A.4): Python with or without the fraction, Rust RFC 3339. */
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

/**
 * A task id names files in the run directory (`logs/<id>_noop_<ts>.txt`): it may not reach
 * outside it. The kit writes wherever an id points; Warden refuses such plans.
 */
const taskId = z
  .string()
  .min(1, 'a task id may not be empty')
  .max(200)
  .regex(
    /^(?!\.\.?$)[^/\\\u0000]+$/,
    'a task id may not contain / or \\ or be . or .. (it names files in the run directory)',
  );

export const planTaskSchema = z
  .looseObject({
    id: taskId,
    title: z.string().optional(),
    layer: z.string().optional(),
    /** Rust variant: the queue's name, repeated. */
    queue: z.string().optional(),
    /** Rust variant. */
    metadata: z.unknown().optional(),
  })
  .describe('A task: `{id, title, layer}` (Rust adds `queue`, `metadata`).');

export const planQueueSchema = z
  .looseObject({
    name: z.string().min(1, 'a queue needs a name'),
    tasks: z.array(planTaskSchema).default([]),
    /** Rust variant (always null there). */
    hooks: z.unknown().optional(),
  })
  .describe('A queue: `{name, tasks}` in document order (Rust adds `hooks: null`).');

export const planSchema = z
  .looseObject({
    version: z.literal(1, 'expected version 1 (plan JSON v1)'),
    source: z.string().optional(),
    generated_at: z
      .string()
      .regex(TIMESTAMP, 'expected an ISO 8601 UTC timestamp like 2025-10-01T22:05:55.307258Z')
      .optional(),
    queues: z.array(planQueueSchema).default([]),
  })
  .describe(
    'Plan JSON v1 as `warden plan` and the NOA task kit write it. Unknown keys are ignored; a missing `queues` is empty.',
  );
export type PlanFile = z.output<typeof planSchema>;

export const hookCommandSchema = z
  .looseObject({
    /** argv, run without a shell; a missing or empty cmd is skipped but uses up its number. */
    cmd: z.array(z.string()).optional(),
    /** Relative to the directory `warden exec` runs in (the kit's behaviour). */
    cwd: z.string().nullable().optional(),
  })
  .describe('One command: `{cmd: argv, cwd?}`.');

export const hookEntrySchema = z
  .looseObject({
    commands: z.array(hookCommandSchema).optional(),
    /** Warden: seconds each command of this entry may run (default: `--timeout`, else none). */
    timeout: z.number().positive().max(604_800).optional(),
    /** Warden: further tries when a command fails (default: `--retries`, else 0). */
    retries: z.number().int().min(0).max(100).optional(),
    /**
     * Warden: the agent that runs the task — `noop`, `shell` or `workflow` (default: `workflow`
     * when `workflow` is set, else `shell` when there are commands, else `noop`).
     */
    agent: z.string().min(1).optional(),
    /** Warden: a workflow file (relative to the directory `warden exec` runs in) run for the task. */
    workflow: z.string().min(1).optional(),
    /** Warden: the workflow's `input.input` (the task's id, queue and layer come beside it). */
    input: z.unknown().optional(),
  })
  .describe(
    'Hooks of a task id or an exact queue name. A task entry replaces its queue entry; `{}` falls back to the queue, `{"commands": []}` disables it.',
  );
export type HookEntry = z.output<typeof hookEntrySchema>;

export const hooksSchema = z
  .record(z.string(), hookEntrySchema)
  .describe('config/hooks.json: task ids or exact queue names → hook entries.');
export type HooksFile = z.output<typeof hooksSchema>;

export const manifestSchema = z
  .looseObject({})
  .describe(
    'config/manifest.json: "layers and default agents". The kit loads it and never uses it; Warden checks that it is a JSON object and does the same.',
  );

export const commandRecordSchema = z
  .looseObject({
    cmd: z.array(z.string()),
    cwd: z.string().nullable(),
    /** Exit code; a negative number is the signal that ended the command; null when it did not run. */
    rc: z.number().int().nullable().optional(),
    log: z.string().nullable().optional(),
    error: z.string().nullable().optional(),
  })
  .describe('One hook command as it ran.');
export type CommandRecord = z.output<typeof commandRecordSchema>;

export const taskResultSchema = z
  .looseObject({
    task: z.string(),
    queue: z.string(),
    /** Registry key (`noop`, `shell`); the Python kit writes class names (`NoOpAgent`, `ShellAgent`). */
    agent: z.string(),
    status: z.enum(['ok', 'error', 'noop']),
    evidence: z.string().nullable().optional(),
    error: z.string().nullable().optional(),
    commands: z.array(commandRecordSchema).nullable().optional(),
  })
  .describe(
    'One result per planned task, in plan order. Warden writes every key (null when unused).',
  );
export type TaskResult = z.output<typeof taskResultSchema>;

export const runSummarySchema = z
  .looseObject({
    status: z.enum(['ok', 'error']),
    started: z.string().regex(TIMESTAMP),
    ended: z.string().regex(TIMESTAMP),
    results: z.array(taskResultSchema),
  })
  .describe("runs/<ts>/run.json: the summary `warden exec` (and the kit's `run`) writes.");
export type RunSummary = z.output<typeof runSummarySchema>;

export interface FileIssue {
  readonly path: string;
  readonly message: string;
}

/** Validates a parsed JSON value; the issues name where in the file each problem is. */
export function checkFile<T>(
  schema: z.ZodType<T>,
  value: unknown,
): { ok: true; value: T } | { ok: false; issues: FileIssue[] } {
  const parsed = schema.safeParse(value);
  if (parsed.success) return { ok: true, value: parsed.data };
  return {
    ok: false,
    issues: parsed.error.issues.map((i) => ({
      path: formatPath(i.path) || '(top level)',
      message: i.message,
    })),
  };
}

/** The published JSON Schemas, by file name under docs/schemas/. */
export function planJsonSchemas(): Record<string, unknown> {
  const schema = (s: z.ZodType, id: string, title: string): unknown => ({
    $id: `https://warden.dev/schemas/${id}`,
    title,
    ...z.toJSONSchema(s, { io: 'input', unrepresentable: 'any' }),
  });
  return {
    'plan-v1.schema.json': schema(planSchema, 'plan-v1.schema.json', 'Plan JSON v1'),
    'run.schema.json': schema(runSummarySchema, 'run.schema.json', 'run.json'),
    'hooks.schema.json': schema(hooksSchema, 'hooks.schema.json', 'hooks.json'),
    'manifest.schema.json': schema(manifestSchema, 'manifest.schema.json', 'manifest.json'),
  };
}
