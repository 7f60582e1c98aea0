import { describe, expect, it } from 'vitest';

import { isWardenError, type WardenError } from '../errors.ts';
import { buildWorkflow, formatPath, parseWorkflowText } from './load.ts';

function parseError(text: string, fileName: string, options = {}): WardenError {
  try {
    parseWorkflowText(text, fileName, options);
  } catch (error) {
    expect(isWardenError(error, 'WORKFLOW_INVALID'), String(error)).toBe(true);
    return error as WardenError;
  }
  throw new Error(`expected ${fileName} to be rejected`);
}

function issuesOf(error: WardenError): { path: string; message: string }[] {
  return (error.details as { issues: { path: string; message: string }[] }).issues;
}

const ONE_STAGE = 'stages:\n  - name: a\n    agent: {kind: noop}\n';

interface Case {
  readonly name: string;
  readonly text: string;
  /** Every one of these must appear in the error message. */
  readonly expect: readonly (string | RegExp)[];
  /** A path that must appear in the structured issues. */
  readonly path?: string;
}

const CASES: readonly Case[] = [
  {
    name: 'malformed YAML',
    text: 'name: x\nstages:\n  - name: a\n   agent: {kind: noop}\n',
    expect: ['is not valid YAML', 'Sequence item without - indicator'],
    path: 'line 4, column 1',
  },
  {
    name: 'unterminated string',
    text: 'name: "x\nstages: []\n',
    expect: ['is not valid YAML', 'Missing closing', /: line \d+, column \d+: /],
  },
  {
    name: 'duplicate YAML keys',
    text: `name: x\nname: y\n${ONE_STAGE}`,
    expect: ['is not valid YAML', 'Map keys must be unique'],
    path: 'line 2, column 1',
  },
  {
    name: 'a document that is not a mapping',
    text: '- 1\n- 2\n',
    expect: ['is not a workflow', 'expected a mapping with name and stages'],
    path: '(document)',
  },
  {
    name: 'an empty document',
    text: '',
    expect: ['is not a workflow'],
    path: '(document)',
  },
  {
    name: 'an unknown top-level key',
    text: `name: x\nfoo: 1\n${ONE_STAGE}`,
    expect: ['does not match the workflow schema', 'Unrecognized key: "foo"'],
    path: '(document)',
  },
  {
    name: 'an unknown stage key',
    text: 'name: x\nstages:\n  - name: a\n    agnt: {kind: noop}\n',
    expect: ['stages[0]: Unrecognized key: "agnt"'],
    path: 'stages[0]',
  },
  {
    name: 'an unknown key in bounds',
    text: `name: x\nbounds: {max_llm_call: 3}\n${ONE_STAGE}`,
    expect: ['bounds: Unrecognized key: "max_llm_call"'],
    path: 'bounds',
  },
  {
    name: 'an unknown routing target',
    text:
      'name: x\nstages:\n  - name: a\n    agent: {kind: noop}\n  - name: b\n    agent: {kind: noop}\n' +
      '    routing:\n      - when: {field: output.v, eq: 1}\n        next: zzz\n',
    expect: ['stages[1].routing[0].next', "unknown stage 'zzz'", 'expected one of: a, b, end'],
    path: 'stages[1].routing[0].next',
  },
  {
    name: 'an unknown default_next',
    text: 'name: x\nstages:\n  - name: a\n    agent: {kind: noop}\n    default_next: nope\n',
    expect: ['stages[0].default_next', "unknown stage 'nope' (expected one of: a, end)"],
    path: 'stages[0].default_next',
  },
  {
    name: 'a self-loop via default_next without max_visits',
    text: 'name: x\nstages:\n  - name: a\n    agent: {kind: noop}\n  - name: b\n    agent: {kind: noop}\n    default_next: b\n',
    expect: ['stages[1].max_visits', "stage 'b' can route to itself"],
    path: 'stages[1].max_visits',
  },
  {
    name: 'a self-loop via routing without max_visits',
    text:
      'name: x\nstages:\n  - name: a\n    agent: {kind: noop}\n    routing:\n' +
      '      - when: {always: true}\n        next: a\n',
    expect: ['stages[0].max_visits'],
    path: 'stages[0].max_visits',
  },
  {
    name: 'a self-loop via error_next without max_visits',
    text: 'name: x\nstages:\n  - name: a\n    agent: {kind: noop}\n    error_next: a\n',
    expect: ['stages[0].max_visits'],
    path: 'stages[0].max_visits',
  },
  {
    name: 'max_llm_calls: 0',
    text: `name: x\nbounds: {max_llm_calls: 0}\n${ONE_STAGE}`,
    expect: ['bounds.max_llm_calls', 'got 0'],
    path: 'bounds.max_llm_calls',
  },
  {
    name: 'max_llm_calls: -1',
    text: `name: x\nbounds: {max_llm_calls: -1}\n${ONE_STAGE}`,
    expect: ['bounds.max_llm_calls', 'got -1'],
    path: 'bounds.max_llm_calls',
  },
  {
    name: 'a fractional bound',
    text: `name: x\nbounds: {max_iterations: 1.5}\n${ONE_STAGE}`,
    expect: ['bounds.max_iterations'],
    path: 'bounds.max_iterations',
  },
  {
    name: 'a zero timeout',
    text: `name: x\nbounds: {timeout: 0s}\n${ONE_STAGE}`,
    expect: ['bounds.timeout', 'expected a positive duration'],
    path: 'bounds.timeout',
  },
  {
    name: 'an unparseable duration',
    text: `name: x\nbounds: {timeout: 5 minutes}\n${ONE_STAGE}`,
    expect: ['bounds.timeout', 'expected a duration such as'],
    path: 'bounds.timeout',
  },
  {
    name: 'max_visits: 0',
    text: 'name: x\nstages:\n  - name: a\n    agent: {kind: noop}\n    max_visits: 0\n',
    expect: ['stages[0].max_visits'],
    path: 'stages[0].max_visits',
  },
  {
    name: 'duplicate stage names',
    text: 'name: x\nstages:\n  - name: a\n    agent: {kind: noop}\n  - name: a\n    agent: {kind: noop}\n',
    expect: ["stages[1].name: duplicate stage name 'a' (also stages[0])"],
    path: 'stages[1].name',
  },
  {
    name: 'duplicate output keys',
    text:
      'name: x\nstages:\n  - name: a\n    agent: {kind: noop}\n  - name: b\n    output_key: a\n' +
      '    agent: {kind: noop}\n',
    expect: ["stages[1].output_key: duplicate output key 'a' (also stages[0])"],
    path: 'stages[1].output_key',
  },
  {
    name: 'a field condition with two operators',
    text:
      'name: x\nstages:\n  - name: a\n    agent: {kind: noop}\n    routing:\n' +
      '      - when: {field: output.v, eq: 1, gt: 0}\n        next: end\n',
    expect: ['stages[0].routing[0].when', 'expected exactly one operator', 'got eq, gt'],
    path: 'stages[0].routing[0].when',
  },
  {
    name: 'a field condition with no operator',
    text:
      'name: x\nstages:\n  - name: a\n    agent: {kind: noop}\n    routing:\n' +
      '      - when: {field: output.v}\n        next: end\n',
    expect: ['expected exactly one operator', 'got none'],
    path: 'stages[0].routing[0].when',
  },
  {
    name: 'a field outside the routing roots',
    text:
      'name: x\nstages:\n  - name: a\n    agent: {kind: noop}\n    routing:\n' +
      '      - when: {field: secrets.key, exists: true}\n        next: end\n',
    expect: ['expected a path starting with output'],
  },
  {
    name: "a stage named 'end'",
    text: 'name: x\nstages:\n  - name: end\n    agent: {kind: noop}\n',
    expect: ["stages[0].name: 'end' is reserved"],
    path: 'stages[0].name',
  },
  {
    name: 'a stage with neither agent nor interrupt',
    text: 'name: x\nstages:\n  - name: a\n',
    expect: ['expected an agent, an interrupt, or both'],
    path: 'stages[0]',
  },
  {
    name: 'no stages',
    text: 'name: x\nstages: []\n',
    expect: ['stages: expected at least one stage'],
    path: 'stages',
  },
  {
    name: 'an unknown start stage',
    text: `name: x\nstart: q\n${ONE_STAGE}`,
    expect: ["start: unknown stage 'q'"],
    path: 'start',
  },
  {
    name: 'start at end',
    text: `name: x\nstart: end\n${ONE_STAGE}`,
    expect: ["the workflow cannot start at 'end'"],
    path: 'start',
  },
  {
    name: 'an edge limit naming an unknown stage',
    text: `name: x\nedge_limits: [{from: a, to: q, max_count: 1}]\n${ONE_STAGE}`,
    expect: ["edge_limits[0].to: unknown stage 'q' (expected one of: a)"],
    path: 'edge_limits[0].to',
  },
  {
    name: 'an unknown agent kind',
    text: 'name: x\nstages:\n  - name: a\n    agent: {kind: robot}\n',
    expect: ['stages[0].agent'],
  },
];

describe('parseWorkflowText errors', () => {
  it.each(CASES)('rejects $name', (c) => {
    const fileName = `case-${c.name.replace(/[^a-z0-9]+/gi, '-')}.yaml`;
    const error = parseError(c.text, fileName);
    expect(error.code).toBe('WORKFLOW_INVALID');
    expect(error.retryable).toBe(false);
    expect(error.message).toContain(fileName);
    expect(error.message).toContain('nothing was changed');
    expect((error.details as { file: string }).file).toBe(fileName);
    for (const needle of c.expect) {
      if (typeof needle === 'string') expect(error.message).toContain(needle);
      else expect(error.message).toMatch(needle);
    }
    const issues = issuesOf(error);
    expect(issues.length).toBeGreaterThan(0);
    // Every issue line in the message names the file.
    for (const issue of issues)
      expect(error.message).toContain(`${fileName}: ${issue.path}: ${issue.message}`);
    if (c.path !== undefined) expect(issues.map((i) => i.path)).toContain(c.path);
  });

  it('defaults the file name to <workflow>', () => {
    expect(() => parseWorkflowText('name: x\nstages: []\n')).toThrow(/^<workflow> does not match/);
  });

  it('malformed YAML is rejected as a parse error, not a schema error', () => {
    const error = parseError('name: x\nstages:\n  - name: a\n   agent: {kind: noop}\n', 'bad.yaml');
    expect(error.message).toMatch(/^bad\.yaml is not valid YAML:/);
  });

  // Regression: with `prettyErrors: false` the yaml package leaves `linePos` unset, so errors
  // used to be reported at '(document)'; the loader must compute line/column itself.
  it('malformed YAML reports the line and column of the error', () => {
    const error = parseError('name: x\nstages:\n  - name: a\n   agent: {kind: noop}\n', 'bad.yaml');
    expect(error.message).toMatch(/bad\.yaml: line 4, column \d+: /);
    expect(issuesOf(error)[0]!.path).toMatch(/^line 4, column \d+$/);
  });

  it('lists every problem, not just the first', () => {
    const error = parseError(
      'name: x\nstages:\n  - name: a\n    agent: {kind: noop}\n    default_next: zz\n    error_next: a\n' +
        '  - name: a\n    agent: {kind: noop}\n',
      'many.yaml',
    );
    const paths = issuesOf(error).map((i) => i.path);
    expect(paths).toEqual(
      expect.arrayContaining([
        'stages[1].name',
        'stages[1].output_key',
        'stages[0].default_next',
        'stages[0].max_visits',
      ]),
    );
  });

  it('checks routing functions and TypeScript agents only against given registries', () => {
    const text =
      'name: x\nstages:\n  - name: a\n    agent: {kind: typescript, name: writer}\n    routing:\n' +
      '      - fn: pick\n';
    expect(() => parseWorkflowText(text, 'ts.yaml')).not.toThrow();
    const error = parseError(text, 'ts.yaml', {
      routingFunctions: new Set(['other']),
      agents: new Set(['other']),
    });
    expect(issuesOf(error)).toEqual([
      { path: 'stages[0].agent.name', message: "no TypeScript agent is registered as 'writer'" },
      { path: 'stages[0].routing[0].fn', message: "no routing function is registered as 'pick'" },
    ]);
    expect(() =>
      parseWorkflowText(text, 'ts.yaml', {
        routingFunctions: new Set(['pick']),
        agents: new Set(['writer']),
      }),
    ).not.toThrow();
  });
});

describe('valid workflows', () => {
  const text = [
    'name: review',
    'description: a small loop',
    'bounds:',
    '  max_llm_calls: 4',
    '  timeout: 2m',
    'stages:',
    '  - name: draft',
    '    agent: {kind: llm, prompt: write, output: json}',
    '    routing:',
    '      - when: {field: output.ok, eq: true}',
    '        next: end',
    '    default_next: draft',
    '    max_visits: 3',
    '',
  ].join('\n');

  // Same content: keys reordered at every level.
  const reordered = [
    'stages:',
    '  - max_visits: 3',
    '    default_next: draft',
    '    routing:',
    '      - next: end',
    '        when: {eq: true, field: output.ok}',
    '    agent: {output: json, prompt: write, kind: llm}',
    '    name: draft',
    'bounds:',
    '  timeout: 2m',
    '  max_llm_calls: 4',
    'description: a small loop',
    'name: review',
    '',
  ].join('\n');

  it('applies defaults and converts durations', () => {
    const { workflow } = parseWorkflowText(text, 'review.yaml');
    expect(workflow.priority).toBe('normal');
    expect(workflow.on_budget_exhausted).toBe('terminate');
    expect(workflow.edge_limits).toEqual([]);
    expect(workflow.bounds).toEqual({ max_llm_calls: 4, timeout: 120_000 });
    expect(workflow.stages[0]!.agent).toEqual({ kind: 'llm', prompt: 'write', output: 'json' });
  });

  it('has a stable 64-hex hash that ignores key order and formatting', () => {
    const a = parseWorkflowText(text, 'a.yaml');
    const b = parseWorkflowText(text, 'b.yaml');
    const c = parseWorkflowText(reordered, 'c.yaml');
    const d = parseWorkflowText(JSON.stringify(a.workflow), 'd.json');
    const e = buildWorkflow(JSON.parse(JSON.stringify(a.workflow)) as unknown);
    expect(a.hash).toMatch(/^[0-9a-f]{64}$/);
    expect(b.hash).toBe(a.hash);
    expect(c.hash).toBe(a.hash);
    expect(d.hash).toBe(a.hash);
    expect(e.hash).toBe(a.hash);
    expect(c.workflow).toEqual(a.workflow);
  });

  it('a different workflow has a different hash', () => {
    const a = parseWorkflowText(text, 'a.yaml');
    const changed = parseWorkflowText(text.replace('max_visits: 3', 'max_visits: 4'), 'b.yaml');
    expect(changed.hash).not.toBe(a.hash);
  });

  it('an explicit default hashes like an omitted one', () => {
    const a = parseWorkflowText(text, 'a.yaml');
    const explicit = parseWorkflowText(
      `priority: normal\non_budget_exhausted: terminate\n${text}`,
      'b.yaml',
    );
    expect(explicit.hash).toBe(a.hash);
  });

  it('buildWorkflow rejects non-objects with WORKFLOW_INVALID', () => {
    for (const raw of [null, 42, 'name: x', [1]]) {
      let caught: unknown;
      try {
        buildWorkflow(raw, 'code.ts');
      } catch (error) {
        caught = error;
      }
      expect(isWardenError(caught, 'WORKFLOW_INVALID')).toBe(true);
      expect((caught as Error).message).toContain('code.ts is not a workflow');
    }
  });
});

describe('formatPath', () => {
  it('renders zod paths the way the messages show them', () => {
    expect(formatPath([])).toBe('(document)');
    expect(formatPath(['stages', 1, 'routing', 0, 'next'])).toBe('stages[1].routing[0].next');
    expect(formatPath(['bounds', 'max_llm_calls'])).toBe('bounds.max_llm_calls');
    expect(formatPath([0, 'a'])).toBe('[0].a');
  });
});
