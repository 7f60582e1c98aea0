/**
 * `warden plan`: the kit's planner (byte-for-byte output, reference A.3–A.4) and
 * `warden plan --check`, which validates a plan (and hooks/manifest) against the published
 * schemas.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
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

/** Microseconds since the epoch (the kit's timestamps carry them). */
export function nowMicros(): number {
  return Math.round((performance.timeOrigin + performance.now()) * 1000);
}

/** Plans `sot` into `out`. KitError (exit 1) when the document cannot be read or the file written. */
export function writePlan(sot: string, out: string, cwd = process.cwd()): PlanOutcome {
  assertFile(sot, 'sot file');
  const text = readUtf8(sot, 'sot file');
  const parsed = parseSot(text);
  const plan = buildPlan(parsed.queues, relative(cwd, resolve(cwd, sot)), isoMicros(nowMicros()));
  const body = pythonJson(plan);
  const dir = dirName(out);
  try {
    // The kit calls makedirs("") for a bare file name and crashes (A.8 #5): only a real parent.
    if (dir !== '') mkdirSync(dir, { recursive: true });
    // Written whole or not at all: a crash never leaves half a plan behind.
    const tmp = `${out}.${process.pid}.tmp`;
    writeFileSync(tmp, body);
    renameSync(tmp, out);
  } catch (error) {
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
