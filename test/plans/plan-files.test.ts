/**
 * The plan/hooks schemas (reference/noa-kit-and-kgents.md A.4, A.5, A.8): both plan variants
 * the kit writes are read, Warden's own refusals hold, and the published JSON Schemas under
 * docs/schemas/ are exactly what `planJsonSchemas()` generates.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, describe, expect, it } from 'vitest';
import type { z } from 'zod';

import { checkFile, hooksSchema, planJsonSchemas, planSchema } from '../../src/core/plan/index.ts';
import { KitError } from '../../src/plans/kit-error.ts';
import { checkPlanFiles, writePlan } from '../../src/plans/planner-command.ts';
import { removeTempDirs, tempDir } from '../helpers/tmp.ts';

const SCHEMAS = fileURLToPath(new URL('../../docs/schemas/', import.meta.url));
const FIXTURES = fileURLToPath(new URL('../fixtures/plans/', import.meta.url));

afterAll(removeTempDirs);

/** What `planner.py` writes (reference A.3's example, trimmed). */
const pythonPlan = () => ({
  version: 1,
  source: 'sot.md',
  generated_at: '2025-10-01T22:05:55.307258Z',
  queues: [
    {
      name: 'Queue A \u2014 Workspace Bootstrapping',
      tasks: [
        { id: 'TASK-001', title: 'TASK-001', layer: 'foundation' },
        { id: 'TASK-022', title: 'TASK-022', layer: 'orchestration' },
      ],
    },
    { name: 'Queue B \u2014 Services & Monitoring', tasks: [] },
  ],
});

/** What the Rust port writes (`test_plan.json`): hooks/queue/metadata, RFC 3339 nanoseconds. */
const rustPlan = () => ({
  version: 1,
  source: './sot.md',
  generated_at: '2025-10-01T22:05:55.307258568+00:00',
  queues: [
    {
      name: 'Queue A \u2014 Workspace Bootstrapping',
      tasks: [
        {
          id: 'TASK-001',
          title: 'TASK-001',
          layer: 'foundation',
          queue: 'Queue A \u2014 Workspace Bootstrapping',
          metadata: null,
        },
      ],
      hooks: null,
    },
  ],
});

function issues(value: unknown, schema: z.ZodType<unknown> = planSchema): string[] {
  const checked = checkFile(schema, value);
  return checked.ok ? [] : checked.issues.map((i) => `${i.path}: ${i.message}`);
}

describe('planSchema accepts what the kit writes', () => {
  it('the Python variant, unchanged', () => {
    const parsed = planSchema.parse(pythonPlan());
    expect(parsed).toEqual(pythonPlan());
  });

  it('the Rust variant (hooks: null, task queue, metadata: null, nanoseconds and +00:00)', () => {
    const parsed = planSchema.parse(rustPlan());
    expect(parsed).toEqual(rustPlan());
    expect(parsed.queues[0]!.tasks[0]!.queue).toBe('Queue A \u2014 Workspace Bootstrapping');
  });

  it.each([
    '2025-10-01T22:05:55Z',
    '2025-10-01T22:05:55.307258Z',
    '2025-10-01T22:05:55.307258568+00:00',
    '2025-10-01T22:05:55+00:00',
  ])('generated_at %s', (at) => {
    expect(issues({ ...pythonPlan(), generated_at: at })).toEqual([]);
  });

  it('a missing queues as empty; unknown keys are kept, not refused', () => {
    const parsed = planSchema.parse({ version: 1, source: 'sot.md', note: 'extra' });
    expect(parsed.queues).toEqual([]);
    expect((parsed as Record<string, unknown>).note).toBe('extra');
    const queue = planSchema.parse({ version: 1, queues: [{ name: 'Queue A \u2014 X' }] });
    expect(queue.queues[0]!.tasks).toEqual([]);
  });
});

describe('planSchema refuses', () => {
  it.each([
    ['version 2', { ...pythonPlan(), version: 2 }, /version/],
    ['version "1"', { ...pythonPlan(), version: '1' }, /version/],
    ['no version', { source: 'sot.md', queues: [] }, /version/],
    ['a queue without a name', { version: 1, queues: [{ tasks: [] }] }, /queues\.?\[?0\]?\.?name/],
    ['an empty queue name', { version: 1, queues: [{ name: '', tasks: [] }] }, /name/],
    [
      'a task without an id',
      { version: 1, queues: [{ name: 'Q', tasks: [{ title: 'TASK-001' }] }] },
      /tasks\.?\[?0\]?\.?id/,
    ],
    ['an empty task id', { version: 1, queues: [{ name: 'Q', tasks: [{ id: '' }] }] }, /id/],
    ['a task id with /', { version: 1, queues: [{ name: 'Q', tasks: [{ id: 'a/b' }] }] }, /id/],
    [
      'a task id reaching out',
      { version: 1, queues: [{ name: 'Q', tasks: [{ id: '../../etc/passwd' }] }] },
      /id/,
    ],
    ['the task id ..', { version: 1, queues: [{ name: 'Q', tasks: [{ id: '..' }] }] }, /id/],
    ['a task id with \\', { version: 1, queues: [{ name: 'Q', tasks: [{ id: 'a\\b' }] }] }, /id/],
    ['a numeric task id', { version: 1, queues: [{ name: 'Q', tasks: [{ id: 1 }] }] }, /id/],
    [
      'a timestamp without a zone',
      { ...pythonPlan(), generated_at: '2025-10-01T22:05:55.307258' },
      /generated_at/,
    ],
    ['queues that are not a list', { version: 1, queues: {} }, /queues/],
    ['a plan that is a list', [pythonPlan()], /expected object/],
  ])('%s', (_label, value, where) => {
    const found = issues(value);
    expect(found.length).toBeGreaterThan(0);
    expect(found.join('\n')).toMatch(where);
  });
});

describe('hooksSchema', () => {
  it('accepts the reference example (queue name and task id keys, cwd optional)', () => {
    const hooks = {
      'Queue A \u2014 Workspace Bootstrapping': {
        commands: [
          { cwd: '../../', cmd: ['cargo', 'metadata', '--no-deps'] },
          { cwd: '../../', cmd: ['cargo', 'check', '--workspace'] },
        ],
      },
      'TASK-022': { commands: [{ cmd: ['make', 'lint'] }] },
      'TASK-023': {},
      'TASK-024': { commands: [] },
      'TASK-025': { commands: [{}, { cmd: [] }] },
    };
    expect(hooksSchema.parse(hooks)).toEqual(hooks);
  });

  it.each([
    ['a list as an entry', { 'TASK-001': [{ cmd: ['true'] }] }],
    ['a string as an entry', { 'TASK-001': 'make lint' }],
    ['null as an entry', { 'TASK-001': null }],
    ['non-string argv', { 'TASK-001': { commands: [{ cmd: ['echo', 1] }] } }],
    ['argv as a string', { 'TASK-001': { commands: [{ cmd: 'make lint' }] } }],
    ['commands as an object', { 'TASK-001': { commands: { cmd: ['true'] } } }],
    ['a numeric cwd', { 'TASK-001': { commands: [{ cmd: ['true'], cwd: 1 }] } }],
    ['a hooks file that is a list', [{ 'TASK-001': {} }]],
  ])('refuses %s', (_label, value) => {
    expect(issues(value, hooksSchema).length).toBeGreaterThan(0);
  });
});

describe('checkPlanFiles', () => {
  it('accepts a plan warden wrote, and counts its queues and tasks', () => {
    const dir = tempDir('warden-plan-files-');
    const out = join(dir, 'plan.json');
    writePlan(join(FIXTURES, 'reference-example.sot.md'), out, FIXTURES);
    expect(checkPlanFiles({ plan: out })).toEqual({ queues: 2, tasks: 11 });
  });

  it('names the file and the place of each problem', () => {
    const dir = tempDir('warden-plan-files-');
    const plan = join(dir, 'plan.json');
    writeFileSync(
      plan,
      JSON.stringify({ version: 1, queues: [{ name: 'Q', tasks: [{ id: 'a/b' }] }] }),
    );
    expect(() => checkPlanFiles({ plan })).toThrow(KitError);
    expect(() => checkPlanFiles({ plan })).toThrow(/plan\.json.*queues.*0.*tasks.*0.*id/);
    const hooks = join(dir, 'hooks.json');
    writeFileSync(plan, JSON.stringify(rustPlan()));
    writeFileSync(hooks, JSON.stringify({ 'TASK-001': [] }));
    expect(() => checkPlanFiles({ plan, hooks })).toThrow(/hooks\.json.*TASK-001/);
    writeFileSync(hooks, '{');
    expect(() => checkPlanFiles({ plan, hooks })).toThrow(/not JSON/);
  });
});

describe('docs/schemas', () => {
  it('planJsonSchemas() names the four files', () => {
    expect(Object.keys(planJsonSchemas()).sort()).toEqual([
      'hooks.schema.json',
      'manifest.schema.json',
      'plan-v1.schema.json',
      'run.schema.json',
    ]);
  });

  // The directory is generated from planJsonSchemas(); until it exists there is nothing to compare.
  it.skipIf(!existsSync(SCHEMAS))('every file is exactly what planJsonSchemas() generates', () => {
    const generated = planJsonSchemas();
    const present = readdirSync(SCHEMAS)
      .filter((f) => f.endsWith('.json'))
      .sort();
    expect(present).toEqual(Object.keys(generated).sort());
    for (const file of present) {
      const onDisk = JSON.parse(readFileSync(join(SCHEMAS, file), 'utf8')) as unknown;
      expect(onDisk, `docs/schemas/${file} is stale: regenerate it`).toStrictEqual(
        JSON.parse(JSON.stringify(generated[file])),
      );
    }
  });
});
