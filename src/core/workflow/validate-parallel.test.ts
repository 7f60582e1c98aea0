import { describe, expect, it } from 'vitest';

import { isWardenError, type WardenError } from '../errors.ts';
import { buildWorkflow } from './load.ts';
import type { WorkflowInput } from './schema.ts';

const noop = { kind: 'noop' } as const;

function issuesOf(raw: Omit<WorkflowInput, 'name'>): Array<{ path: string; message: string }> {
  try {
    buildWorkflow({ name: 'w', ...raw }, 'w.yaml');
  } catch (error) {
    expect(isWardenError(error, 'WORKFLOW_INVALID'), String(error)).toBe(true);
    return (error as WardenError).details!.issues as Array<{ path: string; message: string }>;
  }
  throw new Error('expected the workflow to be rejected');
}

const parallel = (stages: WorkflowInput['stages'], extra: Partial<WorkflowInput> = {}) => ({
  mode: 'parallel' as const,
  stages,
  ...extra,
});

describe('run mode validation', () => {
  it('a sequential workflow keeps its parsed form and hash: no mode key is written', () => {
    const raw = { name: 'w', stages: [{ name: 'a', agent: noop }] };
    const loaded = buildWorkflow(raw);
    expect('mode' in loaded.workflow).toBe(false);
    expect(buildWorkflow({ ...raw, mode: 'sequential' }).workflow.mode).toBe('sequential');
  });

  it('accepts a parallel workflow with requires, after, join_strategy, handlers and a limit', () => {
    const loaded = buildWorkflow({
      name: 'w',
      ...parallel(
        [
          { name: 'a', agent: noop, error_next: 'fallback' },
          { name: 'b', agent: noop, error_next: 'end' },
          { name: 'fallback', agent: noop },
          { name: 'merge', agent: noop, requires: ['a', 'fallback'], join_strategy: 'any' },
          { name: 'report', agent: noop, requires: ['merge'], after: ['b'] },
        ],
        { max_concurrent_agents: 2 },
      ),
    });
    expect(loaded.warnings).toEqual([]);
    expect(loaded.workflow.stages[3]!.join_strategy).toBe('any');
  });

  const cases: Array<
    [string, Omit<WorkflowInput, 'name'>, Array<{ path: string; message: string }>]
  > = [
    [
      'parallel keys in a sequential workflow',
      {
        max_concurrent_agents: 2,
        stages: [
          { name: 'a', agent: noop, default_next: 'b' },
          { name: 'b', agent: noop, requires: ['a'], after: ['a'], join_strategy: 'all' },
        ],
      },
      [
        { path: 'max_concurrent_agents', message: 'max_concurrent_agents needs mode: parallel' },
        ...(['requires', 'after', 'join_strategy'] as const).map((key) => ({
          path: `stages[1].${key}`,
          message: `stage 'b': ${key} needs mode: parallel (a sequential workflow orders its stages with routing and default_next)`,
        })),
      ],
    ],
    [
      'unknown, self, repeated and doubly listed names',
      parallel([
        { name: 'a', agent: noop },
        { name: 'b', agent: noop, requires: ['a', 'a', 'zz', 'b', 'end'], after: ['a'] },
      ]),
      [
        { path: 'stages[1].requires[1]', message: "'a' is listed twice in requires" },
        {
          path: 'stages[1].requires[2]',
          message: "stage 'b' requires unknown stage 'zz' (expected one of: a, b)",
        },
        { path: 'stages[1].requires[3]', message: "stage 'b' cannot wait for itself" },
        {
          path: 'stages[1].requires[4]',
          message:
            "stage 'b' requires unknown stage 'end' (expected one of: a, b; 'end' is not a stage)",
        },
        {
          path: 'stages[1].after[0]',
          message:
            "'a' is in both requires and after of stage 'b'; keep it in one (requires: must complete; after: must finish)",
        },
      ],
    ],
    [
      'a cycle through requires and after',
      parallel([
        { name: 'start', agent: noop },
        { name: 'x', agent: noop, requires: ['z'] },
        { name: 'y', agent: noop, after: ['x'] },
        { name: 'z', agent: noop, requires: ['y', 'start'] },
      ]),
      [
        {
          path: 'stages[1]',
          message:
            'stages wait for each other in a cycle: x → z → y → x (through requires, after or error_next)',
        },
      ],
    ],
    [
      'a cycle through a handler, and a handler with dependencies',
      parallel([
        { name: 'a', agent: noop },
        { name: 'b', agent: noop, requires: ['h'], error_next: 'h' },
        { name: 'h', agent: noop, after: ['a'] },
      ]),
      [
        {
          path: 'stages[2]',
          message:
            "stage 'h' is the error_next of 'b', so only that failure starts it: remove its requires and after",
        },
        {
          path: 'stages[1]',
          message:
            'stages wait for each other in a cycle: b → h → b (through requires, after or error_next)',
        },
      ],
    ],
    [
      'join any with one requires, and error_next naming itself',
      parallel([
        { name: 'a', agent: noop, error_next: 'a' },
        { name: 'b', agent: noop, requires: ['a'], join_strategy: 'any' },
      ]),
      [
        {
          path: 'stages[0].error_next',
          message: "stage 'a' cannot be its own error_next in parallel mode (each stage runs once)",
        },
        {
          path: 'stages[1].join_strategy',
          message: "stage 'b': join_strategy any needs at least two requires (it has 1)",
        },
        // 'a' names itself, so it is a handler: nothing is left to start the run.
        {
          path: 'stages',
          message:
            'a parallel workflow needs a stage without requires or after that no error_next names: the run starts with those',
        },
      ],
    ],
    [
      'what only sequential runs read, and interrupts',
      parallel(
        [
          {
            name: 'a',
            agent: noop,
            routing: [{ when: { always: true }, next: 'b' }],
            default_next: 'b',
            resume_next: 'b',
          },
          { name: 'b', interrupt: { kind: 'confirmation', prompt: 'ok?' } },
        ],
        {
          start: 'a',
          on_budget_exhausted: 'interrupt',
          edge_limits: [{ from: 'a', to: 'b', max_count: 1 }],
        },
      ),
      [
        {
          path: 'start',
          message:
            'start is not used in parallel mode: every stage without requires or after starts the run; remove start',
        },
        {
          path: 'on_budget_exhausted',
          message:
            'interrupt is not supported in parallel mode (a person cannot be asked while other branches run); use terminate',
        },
        {
          path: 'edge_limits',
          message: 'edge_limits are not used in parallel mode (no routing edges); remove them',
        },
        ...['routing', 'default_next', 'resume_next'].map((key) => ({
          path: `stages[0].${key}`,
          message: `stage 'a': ${key} is not used in parallel mode; order stages with requires and after`,
        })),
        {
          path: 'stages[1].interrupt',
          message:
            "stage 'b': interrupts are not supported in parallel mode yet; use a sequential workflow for stages that ask a person",
        },
      ],
    ],
  ];

  it.each(cases)('rejects %s, naming each stage and path', (_what, raw, expected) => {
    expect(issuesOf(raw)).toEqual(expected);
  });

  it('max_concurrent_agents must be a positive integer', () => {
    expect(
      issuesOf(parallel([{ name: 'a', agent: noop }], { max_concurrent_agents: 0 })),
    ).toMatchObject([{ path: 'max_concurrent_agents' }]);
  });
});
