/**
 * `warden plan`: the kit's planner (byte-for-byte output, reference A.3–A.4) and
 * `warden plan --check`, which validates a plan (and hooks/manifest) against the published
 * schemas.
 */
import { mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { performance } from 'node:perf_hooks';

import {
  buildPlan,
  dirName,
  hooksSchema,
  isoMicros,
  manifestSchema,
  parseSot,
  type PlanV1,
  type PlanWarning,
  pythonJson,
} from '../core/plan/index.ts';
import { planSchema } from '../core/plan/index.ts';
import { KitError } from './kit-error.ts';
import { assertFile, readJsonFile, readUtf8 } from './read-json.ts';

export interface PlanOutcome {
  readonly out: string;
  readonly plan: PlanV1;
  readonly warnings: readonly PlanWarning[];
}

/**
 * Microseconds since the epoch (the kit's timestamps carry them): the wall clock's
 * milliseconds, with the sub-millisecond digits of the monotonic clock (which alone would drift
 * from the wall clock in a long-lived process).
 */
export function nowMicros(): number {
  return Date.now() * 1000 + (Math.floor(performance.now() * 1000) % 1000);
}

/**
 * Plans `sot` into `out`, both relative to `cwd`. KitError (exit 1) when the document cannot
 * be read or the plan written; a failed write leaves nothing behind.
 */
export function writePlan(sot: string, out: string, cwd = process.cwd()): PlanOutcome {
  const sotPath = resolve(cwd, sot);
  const outPath = resolve(cwd, out);
  assertFile(sotPath, 'sot file', sot);
  const text = readUtf8(sotPath, 'sot file', sot);
  const parsed = parseSot(text);
  const plan = buildPlan(parsed.queues, relative(cwd, sotPath), isoMicros(nowMicros()));
  const body = pythonJson(plan);
  const dir = dirName(out);
  const tmp = `${outPath}.${process.pid}.tmp`;
  try {
    // The kit calls makedirs("") for a bare file name and crashes (A.8 #5): only a real parent.
    if (dir !== '') mkdirSync(resolve(cwd, dir), { recursive: true });
    // Written whole or not at all: a crash never leaves half a plan behind.
    writeFileSync(tmp, body);
    renameSync(tmp, outPath);
  } catch (error) {
    rmSync(tmp, { force: true });
    throw new KitError(`cannot write plan ${out}: ${(error as Error).message}`);
  }
  return { out, plan, warnings: parsed.warnings };
}

export interface CheckOutcome {
  readonly queues: number;
  readonly tasks: number;
}

/** Validates a plan file (and hooks/manifest files when given); KitError naming every problem. */
export function checkPlanFiles(files: {
  plan: string;
  hooks?: string;
  manifest?: string;
}): CheckOutcome {
  assertFile(files.plan, 'plan');
  const plan = readJsonFile(planSchema, files.plan, 'plan');
  if (files.hooks !== undefined) {
    assertFile(files.hooks, 'hooks file');
    readJsonFile(hooksSchema, files.hooks, 'hooks file');
  }
  if (files.manifest !== undefined) {
    assertFile(files.manifest, 'manifest');
    readJsonFile(manifestSchema, files.manifest, 'manifest');
  }
  return {
    queues: plan.queues.length,
    tasks: plan.queues.reduce((n, q) => n + q.tasks.length, 0),
  };
}
