/**
 * Validation of parallel pipelines (pipeline-parallel.ts, through parsePipelineConfig): what
 * is refused with INVALID_PARAMS (and the exact issues), and that what is accepted loads as a
 * Warden `mode: parallel` workflow.
 */
import { describe, expect, it } from 'vitest';

import { invalidParamsOf } from '../../../test/helpers/jeeves-fixtures.ts';
import { parsePipelineConfig } from './pipeline-config.ts';
import { isParallelPipeline } from './pipeline-parallel.ts';
import { loadPipelineWorkflow } from './pipeline-workflow.ts';

function parallel(agents: object[], extra: object = {}): string {
  return JSON.stringify({ name: 'p', default_run_mode: 'parallel', agents, ...extra });
}

/** The `{path, message}` issues of the INVALID_PARAMS `input` raises. */
function issuesOf(input: string): Array<{ path: string; message: string }> {
  const error = invalidParamsOf(() => parsePipelineConfig(input));
  return (error.details as { issues: Array<{ path: string; message: string }> }).issues;
}

describe('parallel pipelines: accepted', () => {
  it.each([
    [
      "Go's own parallel tests: default_next end everywhere",
      [
        { name: 'stageA', stage_order: 1, default_next: 'end' },
        { name: 'stageB', stage_order: 2, requires: ['stageA'], default_next: 'end' },
        { name: 'stageC', stage_order: 2, requires: ['stageA'], default_next: 'end' },
        { name: 'stageD', stage_order: 3, requires: ['stageB', 'stageC'], default_next: 'end' },
      ],
    ],
    [
      'default_next chained along requires (directly or not)',
      [
        { name: 'a', default_next: 'c' }, // c waits for b, which requires a
        { name: 'b', requires: ['a'], default_next: 'c' },
        { name: 'c', after: ['b'] },
        { name: 'y', default_next: 'd' },
        { name: 'd', requires: ['b', 'y'], join_strategy: 'any' },
      ],
    ],
    [
      'unlimited edge limits, error_next end and a handler',
      [
        { name: 'a', error_next: 'fix' },
        { name: 'fix' },
        { name: 'b', error_next: 'end', after: ['a', 'fix'] },
      ],
      { edge_limits: { 'a->b': 0 } },
    ],
  ] as Array<[string, object[], object?]>)('%s', (_name, agents, extra = {}) => {
    const config = parsePipelineConfig(parallel(agents, extra));
    expect(isParallelPipeline(config)).toBe(true);
    expect(loadPipelineWorkflow(config).workflow.mode).toBe('parallel');
  });

  it('keeps sequential pipelines sequential (absent or sequential run mode)', () => {
    for (const mode of [undefined, '', 'sequential']) {
      const config = parsePipelineConfig(
        JSON.stringify({ name: 'p', default_run_mode: mode, agents: [{ name: 'a' }] }),
      );
      expect(isParallelPipeline(config)).toBe(false);
      expect(loadPipelineWorkflow(config).workflow.mode).toBeUndefined();
    }
  });
});

describe('parallel pipelines: refused with INVALID_PARAMS naming the problem', () => {
  it('an unknown run mode (Go would have run it sequentially)', () => {
    expect(
      issuesOf(JSON.stringify({ name: 'p', default_run_mode: 'paralel', agents: [{ name: 'a' }] })),
    ).toEqual([
      {
        path: 'default_run_mode',
        message: "'paralel' is not a run mode (expected sequential or parallel)",
      },
    ]);
  });

  it('routing rules', () => {
    expect(
      issuesOf(
        parallel([
          { name: 'a', routing_rules: [{ condition: 'ok', value: true, target: 'b' }] },
          { name: 'b', requires: ['a'] },
        ]),
      ),
    ).toEqual([
      {
        path: 'agents[0].routing_rules',
        message:
          "agent 'a' has routing rules, which a pipeline with default_run_mode: parallel cannot follow (each agent runs once, as its requires and after allow); remove them, or run the pipeline sequentially",
      },
    ]);
  });

  it('a default_next the graph does not keep', () => {
    expect(issuesOf(parallel([{ name: 'a', default_next: 'b' }, { name: 'b' }]))).toEqual([
      {
        path: 'agents[0].default_next',
        message:
          "agent 'a' has default_next 'b', but with default_run_mode: parallel agents are ordered by requires and after, and 'b' does not wait for 'a' (both would start at once): add 'a' to the requires (or after) of 'b', or remove default_next",
      },
    ]);
  });

  it('routes to interrupts (default_next or error_next), without asking for resume stages', () => {
    const message = (agent: string, target: string) =>
      `agent '${agent}' routes to ${target}, but Warden cannot ask a person while other agents of a pipeline with default_run_mode: parallel run; remove the route, or run the pipeline sequentially`;
    expect(
      issuesOf(
        parallel([
          { name: 'a', default_next: 'clarification' },
          { name: 'b', error_next: 'confirmation' },
        ]),
      ),
    ).toEqual([
      { path: 'agents[0].default_next', message: message('a', 'clarification') },
      { path: 'agents[1].error_next', message: message('b', 'confirmation') },
    ]);
  });

  it('an agent that is its own error_next, or a handler with requires/after', () => {
    expect(
      issuesOf(
        parallel([
          { name: 'a', error_next: 'a' },
          { name: 'b', error_next: 'h' },
          { name: 'c', error_next: 'h' },
          { name: 'h', after: ['a'] },
        ]),
      ),
    ).toEqual([
      {
        path: 'agents[0].error_next',
        message:
          "agent 'a' cannot be its own error_next with default_run_mode: parallel (each agent runs once)",
      },
      {
        path: 'agents[3]',
        message:
          "agent 'h' is the error_next of 'b', 'c', so with default_run_mode: parallel only that failure starts it: remove its requires and after",
      },
    ]);
  });

  it('agents that wait for each other in a cycle (Go would silently never run them)', () => {
    expect(
      issuesOf(
        parallel([
          { name: 'a' },
          { name: 'b', requires: ['a', 'd'] },
          { name: 'c', after: ['b'] },
          { name: 'd', requires: ['c'] },
        ]),
      ),
    ).toEqual([
      {
        path: 'agents[1]',
        message:
          'agents wait for each other in a cycle: b → d → c → b (through requires, after or error_next), so none of them could ever run',
      },
    ]);
  });

  it('a cycle through handlers', () => {
    // Each is the other's handler: each runs only when the other failed.
    expect(
      issuesOf(
        parallel([
          { name: 'a', error_next: 'h' },
          { name: 'h', error_next: 'a' },
        ]),
      ),
    ).toEqual([
      {
        path: 'agents[0]',
        message:
          'agents wait for each other in a cycle: a → h → a (through requires, after or error_next), so none of them could ever run',
      },
    ]);
  });

  it('a join strategy other than all or any', () => {
    expect(
      issuesOf(
        parallel([
          { name: 'a' },
          { name: 'b' },
          { name: 'c', requires: ['a', 'b'], join_strategy: 'first' },
        ]),
      ),
    ).toEqual([
      {
        path: 'agents[2].join_strategy',
        message: "'first' is not a join strategy (expected all or any)",
      },
    ]);
  });

  it('edge limits that limit something', () => {
    expect(
      issuesOf(
        parallel([{ name: 'a' }, { name: 'b', requires: ['a'] }], {
          edge_limits: [
            { from: 'a', to: 'b', max_count: 2 },
            { from: 'b', to: 'a', max_count: 0 },
          ],
        }),
      ),
    ).toEqual([
      {
        path: 'edge_limits',
        message:
          'edge limits (a->b) never apply with default_run_mode: parallel: every agent runs once and none routes to another; remove them',
      },
    ]);
  });

  it('more requires than a Warden stage takes', () => {
    const many = Array.from({ length: 65 }, (_, i) => ({ name: `s${i}` }));
    expect(
      issuesOf(parallel([...many, { name: 'join', requires: many.map((a) => a.name) }])),
    ).toEqual([
      { path: 'agents[65].requires', message: "agent 'join' lists 65 agents; at most 64" },
    ]);
  });

  it('sequential pipelines keep their rules: routing and interrupt resume stages', () => {
    const sequential = JSON.stringify({
      name: 'p',
      default_run_mode: 'sequential',
      agents: [{ name: 'a', default_next: 'clarification' }],
    });
    expect(issuesOf(sequential).map((i) => i.path)).toEqual(['clarification_resume_stage']);
  });
});
