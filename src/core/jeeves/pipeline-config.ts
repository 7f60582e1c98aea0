/**
 * The PipelineConfig / AgentConfig JSON of reference/jeeves-engine-api.md §3.1: the Go struct's
 * own encoding (`coreengine/config/pipeline.go`), not the proto3 JSON mapping.
 *
 * Read like Go reads it: unknown keys are ignored, `null` is the field's zero value, and a
 * value of the wrong type fails the whole config. Also accepted, because real clients sent
 * them (§3.1 "Warden:"): `allowed_tools` as an array of names, edge limits keyed
 * `from_stage`/`to_stage`, and `edge_limits` as an object `{"from->to": max_count}`.
 *
 * Validated like Go's `Validate` plus the fixes of §5: `error_next` is checked like
 * `default_next` (defect 10); the sort by `stage_order` is stable (defect 20); absent or
 * non-positive bounds take the defaults 3/10/21 and 300 s (defect 8); a route to
 * `clarification`/`confirmation` needs its resume stage (defect 11); and names Warden cannot use
 * as stage names are refused here, plainly, instead of failing later as a workflow. A parallel
 * pipeline (`default_run_mode: "parallel"`) is checked further by pipeline-parallel.ts.
 */
import { z } from 'zod';

import { deepFreeze } from '../deep-freeze.ts';
import type { JsonValue } from '../json.ts';
import { checkParams, invalidParams, type ParamIssue } from '../params.ts';
import { stageSchema } from '../workflow/schema.ts';
import { END } from '../workflow/validate.ts';
import { normaliseAllowedTools, normaliseEdgeLimits } from './config-lenient.ts';
import { decodeJsonObject } from './json-bytes.ts';
import { checkParallelPipeline, PIPELINE_RUN_MODES } from './pipeline-parallel.ts';
import {
  INTERRUPT_TARGETS,
  type InterruptTarget,
  type JeevesAgentConfig,
  type JeevesPipelineConfig,
} from './types.ts';

/** Go's `NewPipelineConfig` bounds, applied when a bound is absent or ≤ 0 (defect 8). */
export const DEFAULT_PIPELINE_BOUNDS = Object.freeze({
  max_iterations: 3,
  max_llm_calls: 10,
  max_agent_hops: 21,
  default_timeout_seconds: 300,
});

// Go decodes `null` as the zero value, so every field is nullish.
const expected = <T>(what: string, test: (v: unknown) => boolean) =>
  z.custom<T>(test, { error: `expected ${what}` }).nullish();
const goString = expected<string>('a string', (v) => typeof v === 'string');
const goInt = expected<number>('an integer', (v) => Number.isSafeInteger(v));
const goNumber = expected<number>('a number', (v) => typeof v === 'number' && Number.isFinite(v));
const goBool = expected<boolean>('true or false', (v) => typeof v === 'boolean');
const goStrings = z.array(z.string({ error: 'expected a string' }), {
  error: 'expected an array of strings',
});

const routingRuleSchema = z.object(
  { condition: goString, value: z.unknown().optional(), target: goString },
  { error: 'expected a routing rule {condition, value, target}' },
);

/** The AgentConfig keys Go reads; unknown keys are dropped. */
export const jeevesAgentConfigSchema = z.object(
  {
    name: goString,
    stage_order: goInt,
    requires: goStrings.nullish(),
    after: goStrings.nullish(),
    join_strategy: goString,
    has_llm: goBool,
    has_tools: goBool,
    has_policies: goBool,
    tool_access: goString,
    /** An object `{tool: bool}`, or (Warden) an array of names; checked by hand. */
    allowed_tools: z.unknown().optional(),
    model_role: goString,
    prompt_key: goString,
    temperature: goNumber,
    max_tokens: goInt,
    output_key: goString,
    required_output_fields: goStrings.nullish(),
    routing_rules: z.array(routingRuleSchema, { error: 'expected an array' }).nullish(),
    default_next: goString,
    error_next: goString,
    timeout_seconds: goInt,
    max_retries: goInt,
  },
  { error: 'expected an agent object' },
);

/** The PipelineConfig keys Go reads; unknown keys are dropped. */
export const jeevesPipelineConfigSchema = z.object({
  name: goString,
  agents: z.array(jeevesAgentConfigSchema, { error: 'expected an array of agents' }).nullish(),
  default_run_mode: goString,
  max_iterations: goInt,
  max_llm_calls: goInt,
  max_agent_hops: goInt,
  default_timeout_seconds: goInt,
  /** An array of `{from, to, max_count}`, or (Warden) an object `{"from->to": n}`; by hand. */
  edge_limits: z.unknown().optional(),
  clarification_resume_stage: goString,
  confirmation_resume_stage: goString,
  agent_review_resume_stage: goString,
});

type RawAgent = z.output<typeof jeevesAgentConfigSchema>;
type RawPipeline = z.output<typeof jeevesPipelineConfigSchema>;

const WHERE = 'pipeline_config';
const wardenStageName = stageSchema.shape.name;
const NAME_RULE =
  'Warden stage names are letters, digits, _ . - (at most 64 characters), starting with a letter or _';

/**
 * Parses and validates a pipeline config (the bytes of `InitializeSessionRequest.pipeline_config`
 * or `ExecuteRequest.pipeline_config`, or their text).
 *
 * @throws WardenError INVALID_PARAMS `pipeline_config: …` listing every problem found: invalid
 *   UTF-8 or JSON, wrong types, a missing name, duplicate or unusable agent names, unknown
 *   route targets, bad `requires`/`after`, `has_llm` without `model_role`, bad edge limits,
 *   a route to an interrupt without its resume stage, an unknown `default_run_mode`, and what a
 *   parallel pipeline cannot use (pipeline-parallel.ts).
 */
export function parsePipelineConfig(bytes: Uint8Array | string): JeevesPipelineConfig {
  const raw = checkParams(WHERE, jeevesPipelineConfigSchema, decodeJsonObject(bytes, WHERE));
  const issues: ParamIssue[] = [];
  const rawAgents = raw.agents ?? [];
  if (!raw.name) issues.push({ path: 'name', message: "is required (the pipeline's name)" });
  if (rawAgents.length === 0)
    issues.push({ path: 'agents', message: 'expected at least one agent' });

  const agents = rawAgents.map((agent, i) => normaliseAgent(agent, `agents[${i}]`, issues));
  const names = checkNames(agents, issues);
  for (const [i, agent] of agents.entries()) checkReferences(agent, `agents[${i}]`, names, issues);
  const mode = runMode(raw.default_run_mode, issues);
  // A parallel pipeline has no interrupt stages: checkParallelPipeline refuses routes to them.
  const usedInterrupts =
    mode === 'parallel' ? [] : checkInterruptTargets(raw, agents, names, issues);
  const stageNames = new Set([...names.keys(), ...usedInterrupts]);
  const edgeLimits = normaliseEdgeLimits(raw.edge_limits, stageNames, issues);
  if (mode === 'parallel') checkParallelPipeline(agents, names, edgeLimits, issues);
  if (issues.length > 0) throw invalidParams(WHERE, issues);

  // Array.prototype.sort is stable: ties keep the order given (defect 20).
  const sorted = [...agents].sort((a, b) => a.stage_order - b.stage_order);
  return deepFreeze({
    name: raw.name!,
    agents: sorted,
    default_run_mode: raw.default_run_mode ?? '',
    max_iterations: boundOrDefault(raw.max_iterations, 'max_iterations'),
    max_llm_calls: boundOrDefault(raw.max_llm_calls, 'max_llm_calls'),
    max_agent_hops: boundOrDefault(raw.max_agent_hops, 'max_agent_hops'),
    default_timeout_seconds: boundOrDefault(raw.default_timeout_seconds, 'default_timeout_seconds'),
    edge_limits: edgeLimits,
    clarification_resume_stage: raw.clarification_resume_stage ?? '',
    confirmation_resume_stage: raw.confirmation_resume_stage ?? '',
    agent_review_resume_stage: raw.agent_review_resume_stage ?? '',
  });
}

/** The agents' names in stage order: the envelope's `stage_order`. */
export function pipelineStageOrder(config: JeevesPipelineConfig): string[] {
  return config.agents.map((a) => a.name);
}

/** The interrupt targets some agent routes to (no agent has that name). */
export function interruptTargetsUsed(config: JeevesPipelineConfig): InterruptTarget[] {
  return INTERRUPT_TARGETS.filter(
    (kind) =>
      !config.agents.some((a) => a.name === kind) &&
      config.agents.some((a) => agentTargets(a).includes(kind)),
  );
}

/** Every stage an agent can hand the run to: routing targets, `default_next`, `error_next`. */
export function agentTargets(agent: JeevesAgentConfig): string[] {
  return [
    ...(agent.routing_rules ?? []).map((r) => r.target),
    agent.default_next,
    agent.error_next,
  ].filter((t) => t !== '');
}

/**
 * `default_run_mode`: `''` (absent) and `sequential` run one agent at a time by routing;
 * `parallel` runs the agents as their `requires`/`after` allow (pipeline-parallel.ts). Go ran
 * any other string sequentially; Warden refuses it, because a misspelt `parallel` would
 * silently run a different pipeline.
 */
function runMode(value: string | null | undefined, issues: ParamIssue[]): string {
  const mode = value ?? '';
  if (mode !== '' && !(PIPELINE_RUN_MODES as readonly string[]).includes(mode))
    issues.push({
      path: 'default_run_mode',
      message: `'${mode}' is not a run mode (expected ${PIPELINE_RUN_MODES.join(' or ')})`,
    });
  return mode;
}

function boundOrDefault(
  value: number | null | undefined,
  key: keyof typeof DEFAULT_PIPELINE_BOUNDS,
): number {
  return value !== null && value !== undefined && value > 0 ? value : DEFAULT_PIPELINE_BOUNDS[key];
}

function normaliseAgent(raw: RawAgent, at: string, issues: ParamIssue[]): JeevesAgentConfig {
  const name = raw.name ?? '';
  return {
    name,
    stage_order: raw.stage_order ?? 0,
    requires: raw.requires ?? [],
    after: raw.after ?? [],
    join_strategy: raw.join_strategy || 'all',
    has_llm: raw.has_llm ?? false,
    has_tools: raw.has_tools ?? false,
    has_policies: raw.has_policies ?? false,
    tool_access: raw.tool_access ?? '',
    allowed_tools: normaliseAllowedTools(raw.allowed_tools, `${at}.allowed_tools`, issues),
    model_role: raw.model_role ?? '',
    prompt_key: raw.prompt_key ?? '',
    temperature: raw.temperature ?? null,
    max_tokens: raw.max_tokens ?? null,
    output_key: raw.output_key || name,
    required_output_fields: raw.required_output_fields ?? null,
    routing_rules:
      raw.routing_rules?.map((r) => ({
        condition: r.condition ?? '',
        value: (r.value ?? null) as JsonValue,
        target: r.target ?? '',
      })) ?? null,
    default_next: raw.default_next ?? '',
    error_next: raw.error_next ?? '',
    timeout_seconds: raw.timeout_seconds ?? 0,
    max_retries: raw.max_retries ?? 0,
  };
}

/** Names and output keys: present, usable as Warden names, unique. Returns name → index. */
function checkNames(
  agents: readonly JeevesAgentConfig[],
  issues: ParamIssue[],
): Map<string, number> {
  const names = new Map<string, number>();
  const outputKeys = new Map<string, number>();
  agents.forEach((agent, i) => {
    const at = `agents[${i}]`;
    if (agent.name === '') {
      issues.push({ path: `${at}.name`, message: 'is required (each agent needs a unique name)' });
      return;
    }
    if (!wardenStageName.safeParse(agent.name).success) {
      issues.push({
        path: `${at}.name`,
        message: `'${agent.name}' cannot be used as a Warden stage name: ${NAME_RULE}; rename the agent`,
      });
    } else if (agent.name === END) {
      issues.push({
        path: `${at}.name`,
        message: `'${END}' is reserved for the end of the pipeline; rename the agent`,
      });
    }
    const seen = names.get(agent.name);
    if (seen !== undefined) {
      issues.push({
        path: `${at}.name`,
        message: `duplicate agent name '${agent.name}' (also agents[${seen}])`,
      });
      if (agent.output_key === agent.name) return; // its default output key clashes too: said
    } else names.set(agent.name, i);

    if (agent.output_key !== agent.name && !wardenStageName.safeParse(agent.output_key).success) {
      issues.push({
        path: `${at}.output_key`,
        message: `'${agent.output_key}' cannot be used as a Warden output key: ${NAME_RULE}`,
      });
    }
    const keySeen = outputKeys.get(agent.output_key);
    if (keySeen !== undefined) {
      issues.push({
        path: `${at}.output_key`,
        message: `output key '${agent.output_key}' is also agents[${keySeen}]'s; each agent needs its own output_key, or one output overwrites the other`,
      });
    } else outputKeys.set(agent.output_key, i);
  });
  return names;
}

/** model_role, requires/after, routing conditions and targets of one agent. */
function checkReferences(
  agent: JeevesAgentConfig,
  at: string,
  names: ReadonlyMap<string, number>,
  issues: ParamIssue[],
): void {
  if (agent.has_llm && agent.model_role === '') {
    issues.push({
      path: `${at}.model_role`,
      message: `agent '${agent.name}' has has_llm: true, so it needs a model_role`,
    });
  }
  for (const key of ['requires', 'after'] as const) {
    agent[key].forEach((dep, d) => {
      if (dep === agent.name) {
        issues.push({ path: `${at}.${key}[${d}]`, message: `agent '${dep}' cannot name itself` });
      } else if (!names.has(dep)) {
        issues.push({ path: `${at}.${key}[${d}]`, message: unknownAgent(dep, names) });
      }
    });
  }
  const target = (value: string, path: string, required: boolean): void => {
    if (value === '' && !required) return;
    if (
      value === END ||
      names.has(value) ||
      (INTERRUPT_TARGETS as readonly string[]).includes(value)
    )
      return;
    issues.push({
      path,
      message: `unknown target '${value}' (expected an agent name, ${END}, ${INTERRUPT_TARGETS.join(' or ')}; known agents: ${[...names.keys()].join(', ')})`,
    });
  };
  (agent.routing_rules ?? []).forEach((rule, r) => {
    const path = `${at}.routing_rules[${r}]`;
    if (rule.condition === '') {
      issues.push({ path: `${path}.condition`, message: 'expected the output key to test' });
    } else if (rule.condition.includes('.')) {
      issues.push({
        path: `${path}.condition`,
        message: `'${rule.condition}' contains '.', which agent '${agent.name}' cannot route on in Warden (a condition names one top-level output key, and Warden reads '.' as a path); rename that output key`,
      });
    }
    target(rule.target, `${path}.target`, true);
  });
  target(agent.default_next, `${at}.default_next`, false);
  target(agent.error_next, `${at}.error_next`, false);
}

/**
 * Each interrupt some agent routes to needs its resume stage (an agent, or `end`), and its
 * name must not also be an output key. Returns the interrupt stages the workflow will have.
 */
function checkInterruptTargets(
  raw: RawPipeline,
  agents: readonly JeevesAgentConfig[],
  names: ReadonlyMap<string, number>,
  issues: ParamIssue[],
): InterruptTarget[] {
  const used: InterruptTarget[] = [];
  for (const kind of INTERRUPT_TARGETS) {
    if (names.has(kind)) continue; // an agent of that name runs, as in Go
    const routing = agents.filter((a) => agentTargets(a).includes(kind)).map((a) => a.name);
    if (routing.length === 0) continue;
    used.push(kind);
    const key = `${kind}_resume_stage` as const;
    const resume = raw[key] ?? '';
    if (resume === '') {
      issues.push({
        path: key,
        message: `agent${routing.length > 1 ? 's' : ''} ${routing.map((n) => `'${n}'`).join(', ')} route${routing.length > 1 ? '' : 's'} to ${kind}, so set ${key} to the agent that continues after the person answers (or ${END})`,
      });
    } else if (resume !== END && !names.has(resume)) {
      issues.push({ path: key, message: unknownAgent(resume, names, true) });
    }
    const clash = agents.findIndex((a) => a.output_key === kind);
    if (clash !== -1) {
      issues.push({
        path: `agents[${clash}].output_key`,
        message: `'${kind}' is the name of the ${kind} interrupt stage, which keeps the person's answer under that key; choose another output_key`,
      });
    }
  }
  return used;
}

function unknownAgent(name: string, names: ReadonlyMap<string, number>, orEnd = false): string {
  return `unknown agent '${name}' (expected ${orEnd ? `${END} or ` : ''}one of: ${[...names.keys()].join(', ')})`;
}
