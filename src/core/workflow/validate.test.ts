import { describe, expect, it } from 'vitest';

import { isWardenError, type WardenError } from '../errors.ts';
import { buildWorkflow } from './load.ts';
import type { WorkflowInput } from './schema.ts';
import { workflowSchema } from './schema.ts';
import { unreachableStages, validateWorkflow } from './validate.ts';

const noop = { kind: 'noop' } as const;

function issues(raw: Omit<WorkflowInput, 'name'>, options = {}) {
  return validateWorkflow(workflowSchema.parse({ name: 'w', ...raw }), options);
}

function rejected(raw: Omit<WorkflowInput, 'name'>, options = {}): WardenError {
  try {
    buildWorkflow({ name: 'w', ...raw }, 'w.yaml', options);
  } catch (error) {
    expect(isWardenError(error, 'WORKFLOW_INVALID'), String(error)).toBe(true);
    return error as WardenError;
  }
  throw new Error('expected the workflow to be rejected');
}

describe('templates are checked at load', () => {
  const stages = (extra: Record<string, unknown>): WorkflowInput['stages'] => [
    { name: 'extract', agent: { kind: 'noop', output: { amount: 1 } }, default_next: 'pay' },
    { name: 'pay', ...extra },
  ];

  it('accepts references to every root and to existing output keys', () => {
    expect(
      issues({
        stages: stages({
          agent: {
            kind: 'llm',
            system: 'You pay {{metadata.tier}} customers. {{state.x}}',
            prompt: 'Pay {{outputs.extract.amount}}? {{input}} {{interrupt.text}}',
          },
          interrupt: { kind: 'confirmation', prompt: 'Pay {{ outputs.pay.text }}?' },
        }),
      }),
    ).toEqual([]);
  });

  it('names the path, the placeholder and the output keys that exist', () => {
    const error = rejected({
      stages: stages({
        interrupt: {
          kind: 'confirmation',
          prompt: 'Pay {{outputs.extrct.amount}} to {{payee}}?',
        },
      }),
    });
    expect((error.details as { issues: unknown }).issues).toEqual([
      {
        path: 'stages[1].interrupt.prompt',
        message:
          "{{outputs.extrct.amount}} names output key 'extrct', which no stage has (output keys: extract, pay)",
      },
      {
        path: 'stages[1].interrupt.prompt',
        message:
          "{{payee}} uses unknown root 'payee': expected one of input, outputs, state, metadata, interrupt",
      },
    ]);
    expect(error.message).toContain(
      'w.yaml: stages[1].interrupt.prompt: {{outputs.extrct.amount}}',
    );
  });

  it('counts output_key, not the stage name, as the key', () => {
    const raw = {
      stages: [
        { name: 'extract', output_key: 'facts', agent: noop, default_next: 'ask' },
        {
          name: 'ask',
          interrupt: { kind: 'checkpoint' as const, prompt: '{{outputs.extract.x}}' },
        },
      ],
    };
    expect(issues(raw).map((i) => i.message)).toEqual([
      "{{outputs.extract.x}} names output key 'extract', which no stage has (output keys: facts, ask)",
    ]);
  });

  it('checks llm prompt and system too, and an unterminated placeholder', () => {
    const found = issues({
      stages: stages({
        agent: { kind: 'llm', system: 'Be {{state.tone', prompt: 'Use {{output.text}}' },
      }),
    });
    expect(found.map((i) => [i.path, i.severity])).toEqual([
      ['stages[1].agent.prompt', 'error'],
      ['stages[1].agent.system', 'error'],
    ]);
    expect(found[1]!.message).toMatch(/^unterminated '\{\{' at character 4/);
  });
});

describe('unreachable stages', () => {
  it('a pipeline without default_next is rejected, saying how to chain the stages', () => {
    const error = rejected({
      stages: [
        { name: 'draft', agent: noop },
        { name: 'edit', agent: noop },
        { name: 'summarize', agent: noop },
      ],
    });
    expect((error.details as { issues: unknown }).issues).toEqual([
      {
        path: 'stages[1]',
        message:
          "stage 'edit' is never reached: no stage routes to it. Add `default_next: edit` to stage 'draft' to run the stages in order, or remove stage 'edit'.",
      },
      {
        path: 'stages[2]',
        message:
          "stage 'summarize' is never reached: no stage routes to it. Add `default_next: summarize` to stage 'edit' to run the stages in order, or remove stage 'summarize'.",
      },
    ]);
  });

  it('follows routing next, default_next, error_next and resume_next from the start stage', () => {
    const raw: Omit<WorkflowInput, 'name'> = {
      start: 'b',
      stages: [
        { name: 'a', agent: noop },
        {
          name: 'b',
          agent: noop,
          routing: [{ when: { always: true }, next: 'c' }],
          error_next: 'd',
        },
        { name: 'c', agent: noop, default_next: 'end' },
        { name: 'd', interrupt: { kind: 'checkpoint', prompt: 'x' }, resume_next: 'a' },
      ],
    };
    expect(issues(raw)).toEqual([]);
    // Without the resume route, 'a' (before the start stage, so no in-order fix) is stranded.
    const stages = raw.stages.map((s) => (s.name === 'd' ? { ...s, resume_next: 'end' } : s));
    expect(issues({ ...raw, stages })).toEqual([
      {
        severity: 'error',
        path: 'stages[0]',
        message:
          "stage 'a' is never reached: no stage routes to it. Route to it from a stage that runs (routing `next`, `default_next`, `error_next` or `resume_next`), or remove it.",
      },
    ]);
  });

  it('says when only unreachable stages lead to a stage', () => {
    const found = unreachableStages(
      workflowSchema.parse({
        name: 'w',
        stages: [
          { name: 'a', agent: noop, default_next: 'end' },
          { name: 'b', agent: noop, default_next: 'c' },
          { name: 'c', agent: noop, default_next: 'c', max_visits: 2 },
        ],
      }),
    );
    expect(found.map((p) => p.message)).toEqual([
      "stage 'b' is never reached: no stage routes to it. Route to it from a stage that runs (routing `next`, `default_next`, `error_next` or `resume_next`), or remove it.",
      "stage 'c' is never reached: only stages that are never reached route to it ('b', 'c'). Route to it from a stage that runs (routing `next`, `default_next`, `error_next` or `resume_next`), or remove it.",
    ]);
  });

  it('a routing function on a reachable stage may go anywhere, so every stage counts', () => {
    const raw = {
      stages: [
        { name: 'a', agent: noop, default_next: 'b' },
        { name: 'b', agent: noop, routing: [{ fn: 'pick' }] },
        { name: 'c', agent: noop },
      ],
    };
    expect(issues(raw)).toEqual([]);
    // On an unreachable stage it proves nothing.
    const stranded = {
      stages: [
        { name: 'a', agent: noop },
        { name: 'b', agent: noop, routing: [{ fn: 'pick' }] },
      ],
    };
    expect(issues(stranded).map((i) => i.path)).toEqual(['stages[1]']);
  });

  it('allowUnreachable makes them warnings: the workflow loads and carries them', () => {
    const raw = {
      stages: [
        { name: 'a', agent: noop },
        { name: 'b', agent: noop, default_next: 'zz' },
      ],
    };
    // Other errors still fail the load; the warnings ride along in details.
    const error = rejected(raw, { allowUnreachable: true });
    expect(error.details).toMatchObject({
      issues: [{ path: 'stages[1].default_next' }],
      warnings: [{ path: 'stages[1]' }],
    });
    expect(error.message).not.toContain('never reached');

    const ok = buildWorkflow(
      { name: 'w', stages: [raw.stages[0]!, { name: 'b', agent: noop }] },
      'w.yaml',
      { allowUnreachable: true },
    );
    expect(ok.warnings.map((w) => [w.severity, w.path])).toEqual([['warning', 'stages[1]']]);
    expect(ok.warnings[0]!.message).toMatch(/^stage 'b' is never reached/);
    expect(buildWorkflow({ name: 'w', stages: [{ name: 'a', agent: noop }] }).warnings).toEqual([]);
  });

  it('reports nothing while start names no stage (that is its own error)', () => {
    const found = issues({
      start: 'q',
      stages: [
        { name: 'a', agent: noop },
        { name: 'b', agent: noop },
      ],
    });
    expect(found.map((i) => i.path)).toEqual(['start']);
  });
});
