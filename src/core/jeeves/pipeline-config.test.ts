import { describe, expect, it } from 'vitest';

import { invalidParamsOf, LINEAR_PIPELINE } from '../../../test/helpers/jeeves-fixtures.ts';
import { agentConfigJson } from './agent-config-json.ts';
import { parsePipelineConfig, pipelineStageOrder } from './pipeline-config.ts';

const json = (value: unknown) => JSON.stringify(value);
const agent = (name: string, extra: Record<string, unknown> = {}) => ({ name, ...extra });
const pipeline = (agents: unknown[], extra: Record<string, unknown> = {}) =>
  json({ name: 'p', agents, ...extra });

describe('parsePipelineConfig', () => {
  it('reads the §6 linear pipeline from bytes', () => {
    const config = parsePipelineConfig(new TextEncoder().encode(json(LINEAR_PIPELINE)));
    expect(config.name).toBe('hello');
    expect(pipelineStageOrder(config)).toEqual(['understand', 'think', 'respond']);
    expect(config.agents.map((a) => a.default_next)).toEqual(['think', 'respond', 'end']);
    expect(config.agents[1]).toMatchObject({
      has_llm: true,
      model_role: 'smart',
      output_key: 'think',
    });
    expect([config.max_iterations, config.max_llm_calls, config.max_agent_hops]).toEqual([
      3, 10, 21,
    ]);
  });

  it('defect 8: absent or non-positive bounds take 3/10/21 and 300 s; explicit ones are kept', () => {
    const absent = parsePipelineConfig(pipeline([agent('a')]));
    expect(absent).toMatchObject({
      max_iterations: 3,
      max_llm_calls: 10,
      max_agent_hops: 21,
      default_timeout_seconds: 300,
    });
    const nonPositive = parsePipelineConfig(
      pipeline([agent('a')], {
        max_iterations: 0,
        max_llm_calls: -4,
        max_agent_hops: null,
        default_timeout_seconds: 0,
      }),
    );
    expect(nonPositive).toMatchObject({
      max_iterations: 3,
      max_llm_calls: 10,
      max_agent_hops: 21,
      default_timeout_seconds: 300,
    });
    const explicit = parsePipelineConfig(
      pipeline([agent('a')], {
        max_iterations: 1,
        max_llm_calls: 2,
        max_agent_hops: 5,
        default_timeout_seconds: 9,
      }),
    );
    expect(explicit).toMatchObject({
      max_iterations: 1,
      max_llm_calls: 2,
      max_agent_hops: 5,
      default_timeout_seconds: 9,
    });
  });

  it('defect 20: sorts agents by stage_order, stably (ties keep the order given)', () => {
    const config = parsePipelineConfig(
      pipeline([
        agent('c', { stage_order: 2 }),
        agent('a'),
        agent('x', { stage_order: 1 }),
        agent('b'),
        agent('y', { stage_order: 1 }),
        agent('z', { stage_order: -1 }),
      ]),
    );
    expect(pipelineStageOrder(config)).toEqual(['z', 'a', 'b', 'x', 'y', 'c']);
  });

  it('defect 10: validates error_next like default_next', () => {
    const error = invalidParamsOf(() =>
      parsePipelineConfig(pipeline([agent('a', { error_next: 'nowhere' }), agent('b')])),
    );
    expect(error.message).toContain("agents[0].error_next: unknown target 'nowhere'");
    expect(error.message).toContain('known agents: a, b');
    for (const ok of ['b', 'end', '', null]) {
      const config = parsePipelineConfig(
        pipeline([agent('a', { error_next: ok, default_next: 'b' }), agent('b')]),
      );
      expect(config.agents[0]!.error_next).toBe(ok ?? '');
    }
  });

  it('ignores unknown keys and reads null as the zero value, like Go', () => {
    const config = parsePipelineConfig(
      json({
        name: 'p',
        unknown: { deep: true },
        default_run_mode: null,
        agents: [
          {
            name: 'a',
            generation: { top_p: 0.5 },
            output_mode: 'text',
            stage_order: null,
            temperature: null,
            routing_rules: null,
            requires: null,
          },
        ],
      }),
    );
    expect(config.agents[0]).toMatchObject({
      stage_order: 0,
      temperature: null,
      routing_rules: null,
      requires: [],
    });
    expect(config.default_run_mode).toBe('');
    expect(Object.keys(config.agents[0]!)).not.toContain('generation');
  });

  it('accepts allowed_tools as an object or as an array of names', () => {
    const config = parsePipelineConfig(
      pipeline([
        agent('a', { allowed_tools: { grep: true, rm: false } }),
        agent('b', { allowed_tools: ['grep', 'ls'] }),
        agent('c', { allowed_tools: [] }),
        agent('d'),
      ]),
    );
    expect(config.agents.map((a) => a.allowed_tools)).toEqual([
      { grep: true, rm: false },
      { grep: true, ls: true },
      {},
      null,
    ]);
  });

  it('accepts edge limits keyed from/to or from_stage/to_stage, or as an object', () => {
    const agents = [agent('a', { default_next: 'b' }), agent('b', { default_next: 'a' })];
    const array = parsePipelineConfig(
      pipeline(agents, {
        edge_limits: [
          { from: 'b', to: 'a', max_count: 2 },
          { from_stage: 'a', to_stage: 'b', max_count: 5 },
          { from: 'a', from_stage: 'a', to: 'a', max_count: 0 },
        ],
      }),
    );
    expect(array.edge_limits).toEqual([
      { from: 'b', to: 'a', max_count: 2 },
      { from: 'a', to: 'b', max_count: 5 },
      { from: 'a', to: 'a', max_count: 0 },
    ]);
    const object = parsePipelineConfig(
      pipeline(agents, { edge_limits: { 'b->a': 2, 'a->b': null } }),
    );
    expect(object.edge_limits).toEqual([
      { from: 'b', to: 'a', max_count: 2 },
      { from: 'a', to: 'b', max_count: 0 },
    ]);
  });

  it('keeps the last limit given for an edge, as Go’s map does', () => {
    const config = parsePipelineConfig(
      pipeline([agent('a'), agent('b')], {
        edge_limits: [
          { from: 'b', to: 'a', max_count: 2 },
          { from: 'b', to: 'a', max_count: 0 },
        ],
      }),
    );
    expect(config.edge_limits).toEqual([{ from: 'b', to: 'a', max_count: 0 }]);
  });

  it('returns a frozen config', () => {
    const config = parsePipelineConfig(pipeline([agent('a')]));
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.agents[0])).toBe(true);
  });
});

interface ErrorCase {
  readonly name: string;
  readonly input: string | Uint8Array;
  /** Fragments the INVALID_PARAMS message must contain. */
  readonly expect: readonly string[];
}

const ERROR_CASES: readonly ErrorCase[] = [
  {
    name: 'invalid UTF-8',
    input: new Uint8Array([0x7b, 0xff, 0x7d]),
    expect: ['pipeline_config', 'not valid UTF-8'],
  },
  { name: 'invalid JSON', input: '{"name": ', expect: ['pipeline_config', 'not valid JSON'] },
  { name: 'empty bytes', input: new Uint8Array(), expect: ['is empty; expected a JSON object'] },
  { name: 'an array', input: '[1]', expect: ['expected a JSON object (got an array of 1)'] },
  { name: 'a missing name', input: json({ agents: [agent('a')] }), expect: ['name: is required'] },
  {
    name: 'no agents',
    input: json({ name: 'p' }),
    expect: ['agents: expected at least one agent'],
  },
  {
    name: 'a wrong type',
    input: pipeline([agent('a', { stage_order: '1' })]),
    expect: ['agents[0].stage_order: expected an integer (got "1")'],
  },
  {
    name: 'a fractional int',
    input: pipeline([agent('a')], { max_iterations: 1.5 }),
    expect: ['max_iterations: expected an integer (got 1.5)'],
  },
  {
    name: 'an agent without a name',
    input: pipeline([agent('')]),
    expect: ['agents[0].name: is required'],
  },
  {
    name: 'duplicate agent names',
    input: pipeline([agent('a'), agent('b'), agent('a')]),
    expect: ["agents[2].name: duplicate agent name 'a' (also agents[0])"],
  },
  {
    name: 'a name Warden cannot use as a stage name',
    input: pipeline([agent('my agent')]),
    expect: [
      "agents[0].name: 'my agent' cannot be used as a Warden stage name",
      'rename the agent',
    ],
  },
  {
    name: 'an agent named end',
    input: pipeline([agent('end')]),
    expect: ["agents[0].name: 'end' is reserved"],
  },
  {
    name: 'an unknown routing target',
    input: pipeline([
      agent('a', { routing_rules: [{ condition: 'ok', value: true, target: 'zz' }] }),
    ]),
    expect: ["agents[0].routing_rules[0].target: unknown target 'zz'"],
  },
  {
    name: 'an empty routing target',
    input: pipeline([agent('a', { routing_rules: [{ condition: 'ok', value: true }] })]),
    expect: ["agents[0].routing_rules[0].target: unknown target ''"],
  },
  {
    name: 'an unknown default_next',
    input: pipeline([agent('a', { default_next: 'b' })]),
    expect: ["agents[0].default_next: unknown target 'b'"],
  },
  {
    name: 'a condition with a dot',
    input: pipeline([
      agent('a', { routing_rules: [{ condition: 'result.ok', value: true, target: 'end' }] }),
    ]),
    expect: ["agents[0].routing_rules[0].condition: 'result.ok' contains '.'", "agent 'a'"],
  },
  {
    name: 'an empty condition',
    input: pipeline([agent('a', { routing_rules: [{ condition: '', value: 1, target: 'end' }] })]),
    expect: ['agents[0].routing_rules[0].condition: expected the output key to test'],
  },
  {
    name: 'requires naming an unknown agent',
    input: pipeline([agent('a', { requires: ['ghost'] })]),
    expect: ["agents[0].requires[0]: unknown agent 'ghost'"],
  },
  {
    name: 'requires naming itself',
    input: pipeline([agent('a', { requires: ['a'] })]),
    expect: ["agents[0].requires[0]: agent 'a' cannot name itself"],
  },
  {
    name: 'after naming an unknown agent',
    input: pipeline([agent('a'), agent('b', { after: ['a', 'c'] })]),
    expect: ["agents[1].after[1]: unknown agent 'c'"],
  },
  {
    name: 'after naming itself',
    input: pipeline([agent('a', { after: ['a'] })]),
    expect: ["agents[0].after[0]: agent 'a' cannot name itself"],
  },
  {
    name: 'has_llm without model_role',
    input: pipeline([agent('a', { has_llm: true })]),
    expect: ["agents[0].model_role: agent 'a' has has_llm: true, so it needs a model_role"],
  },
  {
    name: 'two agents with one output key',
    input: pipeline([agent('a', { output_key: 'out' }), agent('b', { output_key: 'out' })]),
    expect: ["agents[1].output_key: output key 'out' is also agents[0]'s"],
  },
  {
    name: 'an output key Warden cannot use',
    input: pipeline([agent('a', { output_key: 'a b' })]),
    expect: ["agents[0].output_key: 'a b' cannot be used as a Warden output key"],
  },
  {
    name: 'allowed_tools of the wrong shape',
    input: pipeline([agent('a', { allowed_tools: 'grep' })]),
    expect: ['agents[0].allowed_tools: expected an object {"tool": true|false} or an array'],
  },
  {
    name: 'allowed_tools with a non-boolean',
    input: pipeline([agent('a', { allowed_tools: { grep: 'yes' } })]),
    expect: ['agents[0].allowed_tools.grep: expected true or false (got "yes")'],
  },
  {
    name: 'an edge limit naming an unknown stage',
    input: pipeline([agent('a')], { edge_limits: [{ from: 'a', to: 'b', max_count: 1 }] }),
    expect: ["edge_limits[0]: to: unknown stage 'b'"],
  },
  {
    name: 'an edge limit into end',
    input: pipeline([agent('a')], { edge_limits: { 'a->end': 1 } }),
    expect: ['edge_limits["a->end"]', "edges to 'end' are never traversed as limited edges"],
  },
  {
    name: 'an edge limit key without an arrow',
    input: pipeline([agent('a')], { edge_limits: { ab: 1 } }),
    expect: ['edge_limits["ab"]: expected a key "from->to"'],
  },
  {
    name: 'an edge limit whose two spellings disagree',
    input: pipeline([agent('a'), agent('b')], {
      edge_limits: [{ from: 'a', from_stage: 'b', to: 'a', max_count: 1 }],
    }),
    expect: ["edge_limits[0]: from 'a' and from_stage 'b' disagree"],
  },
  {
    name: 'an edge limit without from',
    input: pipeline([agent('a')], { edge_limits: [{ to: 'a', max_count: 1 }] }),
    expect: ['edge_limits[0].from: expected a stage name (from or from_stage)'],
  },
  {
    name: 'a fractional max_count',
    input: pipeline([agent('a')], { edge_limits: [{ from: 'a', to: 'a', max_count: 0.5 }] }),
    expect: ['edge_limits[0].max_count: expected an integer max_count (got 0.5)'],
  },
  {
    name: 'edge_limits of the wrong shape',
    input: pipeline([agent('a')], { edge_limits: 'a->a' }),
    expect: ['edge_limits: expected an array of {from, to, max_count} or an object'],
  },
  {
    name: 'a route to clarification without its resume stage',
    input: pipeline([
      agent('a', { routing_rules: [{ condition: 'q', value: true, target: 'clarification' }] }),
    ]),
    expect: [
      "clarification_resume_stage: agent 'a' routes to clarification, so set clarification_resume_stage",
    ],
  },
  {
    name: 'a resume stage naming an unknown agent',
    input: pipeline([agent('a', { default_next: 'confirmation' })], {
      confirmation_resume_stage: 'ghost',
    }),
    expect: ["confirmation_resume_stage: unknown agent 'ghost' (expected end or one of: a)"],
  },
  {
    name: 'an output key equal to an interrupt stage',
    input: pipeline([agent('a', { default_next: 'confirmation', output_key: 'confirmation' })], {
      confirmation_resume_stage: 'a',
    }),
    expect: [
      "agents[0].output_key: 'confirmation' is the name of the confirmation interrupt stage",
    ],
  },
];

describe('parsePipelineConfig errors: every one is INVALID_PARAMS saying what is wrong', () => {
  it.each(ERROR_CASES)('$name', ({ input, expect: fragments }) => {
    const error = invalidParamsOf(() => parsePipelineConfig(input));
    expect(error.message.startsWith('pipeline_config:')).toBe(true);
    for (const fragment of fragments) expect(error.message).toContain(fragment);
  });

  it('lists every problem at once', () => {
    const error = invalidParamsOf(() =>
      parsePipelineConfig(
        json({ agents: [agent('a', { default_next: 'x' }), agent('a', { has_llm: true })] }),
      ),
    );
    const issues = (error.details as { issues: { path: string }[] }).issues.map((i) => i.path);
    expect(issues).toEqual(
      expect.arrayContaining([
        'name',
        'agents[1].name',
        'agents[0].default_next',
        'agents[1].model_role',
      ]),
    );
  });
});

describe('agentConfigJson', () => {
  // The Go struct's JSON keys in declaration order (reference §3.1 table order).
  const GO_KEYS = [
    'name',
    'stage_order',
    'requires',
    'after',
    'join_strategy',
    'has_llm',
    'has_tools',
    'has_policies',
    'tool_access',
    'allowed_tools',
    'model_role',
    'prompt_key',
    'temperature',
    'max_tokens',
    'output_key',
    'required_output_fields',
    'routing_rules',
    'default_next',
    'error_next',
    'timeout_seconds',
    'max_retries',
  ];

  it('writes every key with Go’s defaults: nulls for unset pointers, slices and maps', () => {
    const config = parsePipelineConfig(pipeline([agent('solo')]));
    const out = agentConfigJson(config.agents[0]!);
    expect(Object.keys(out)).toEqual(GO_KEYS.filter((k) => k !== 'requires' && k !== 'after'));
    expect(out).toEqual({
      name: 'solo',
      stage_order: 0,
      join_strategy: 'all',
      has_llm: false,
      has_tools: false,
      has_policies: false,
      tool_access: '',
      allowed_tools: null,
      model_role: '',
      prompt_key: '',
      temperature: null,
      max_tokens: null,
      output_key: 'solo',
      required_output_fields: null,
      routing_rules: null,
      default_next: '',
      error_next: '',
      timeout_seconds: 0,
      max_retries: 0,
    });
  });

  it('keeps what was set, in Go’s key order, with requires and after when not empty', () => {
    const config = parsePipelineConfig(
      pipeline([
        agent('a'),
        agent('b', {
          stage_order: 2,
          requires: ['a'],
          after: ['a'],
          join_strategy: 'any',
          has_llm: true,
          has_tools: true,
          has_policies: true,
          tool_access: 'read',
          allowed_tools: ['grep'],
          model_role: 'smart',
          prompt_key: 'b.prompt',
          temperature: 0.2,
          max_tokens: 512,
          output_key: 'b_out',
          required_output_fields: [],
          routing_rules: [{ condition: 'ok', target: 'a' }],
          default_next: 'end',
          error_next: 'a',
          timeout_seconds: 30,
          max_retries: 2,
          streaming_prompt_key: 'ignored',
        }),
      ]),
    );
    const out = agentConfigJson(config.agents[1]!);
    expect(Object.keys(out)).toEqual(GO_KEYS);
    expect(out).toMatchObject({
      requires: ['a'],
      after: ['a'],
      join_strategy: 'any',
      allowed_tools: { grep: true },
      temperature: 0.2,
      max_tokens: 512,
      output_key: 'b_out',
      required_output_fields: [],
      routing_rules: [{ condition: 'ok', value: null, target: 'a' }],
      error_next: 'a',
    });
    expect(JSON.parse(JSON.stringify(out))).toEqual(out);
  });
});
