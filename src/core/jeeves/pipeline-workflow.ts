/**
 * A validated jeeves pipeline as a Warden workflow: one `external` stage per agent (in stage
 * order), whose agent runs in the gRPC client and receives `config` as `Instruction.agent_config`.
 *
 * Routing (§4.7): a rule `{condition, value, target}` becomes `{when: {field:
 * 'output.<condition>', eq: value}, next: target}`. Warden's `eq` (condition.ts `jsonEqual`)
 * matches Go's equality for everything a JSON output can hold: strings exactly, booleans,
 * numbers as doubles (1 == 1.0), anything else by canonical JSON (Go's marshal sorts keys too),
 * `null` only for a key present with `null`. Two differences, both outside real outputs:
 * - a condition naming a key every object inherits (`constructor`, `toString`, `__proto__`)
 *   reads the inherited value in Warden (condition.ts reads paths with `[]`), so `value: null`
 *   matches an output without that key, and Go would not;
 * - Go decodes an unpaired surrogate escape (`"\ud800"`) as U+FFFD, so such a string equals
 *   `"\ufffd"` in Go and not in Warden.
 * A condition containing `.` cannot be written as a Warden path; the config parser rejects it.
 *
 * Routes to `clarification`/`confirmation` (defect 11) go to an interrupt-only stage of that
 * name, which raises the interrupt of that kind and continues at the config's
 * `<kind>_resume_stage` once the person answers (the answer is stored as the output
 * `<kind>`). Its prompt is the routing agent's `question` (clarification) or `message`
 * (confirmation) output field, the FlowInterrupt field each kind uses; with several routing
 * agents, their fields one per line (an agent's older output can then show too). Warden stages
 * without an agent cannot take a prompt from an output directly (validate.ts), so the prompt is
 * a template over `outputs`; it renders empty when the field is missing, and the machine then
 * uses the stage name.
 *
 * Differences the machine makes (workflow/machine.ts): every transition counts against edge
 * limits, error routes and self-edges included (defect 10); a transition to a stage at or
 * before the current one in stage order counts an iteration. So a self-loop counts iterations
 * (Go counted it as neither an edge nor an iteration, bounded by hops alone), and a return from
 * an interrupt stage (listed after the agents) to an earlier agent costs one iteration, which
 * Go's re-init resume did not.
 *
 * A parallel pipeline (`default_run_mode: "parallel"`, validated by pipeline-parallel.ts)
 * becomes a `mode: parallel` workflow (docs/workflows.md#parallel-stages): each agent a stage
 * that runs once, with its `requires`, `after` and `join_strategy`, and `error_next` (`end`
 * tolerates the failure, an agent is a handler that runs only on that failure). Normalised
 * without changing what the runner does: repeats in `requires`/`after` are dropped, an `after`
 * entry also in `requires` is dropped (requiring a stage already waits for it to finish), and
 * `join_strategy: any` with fewer than two `requires` becomes `all` (the same thing; Warden
 * refuses the former). `default_next` is not used (validation accepted only values that agree
 * with the graph), nor are `start`, the interrupt stages and edge limits (none apply). The
 * bounds are the sequential ones; each agent issued counts one hop when it is issued, so a
 * fork of n agents needs n hops left or the run ends at the fork.
 *
 * `max_concurrent_agents` stays unset (no limit): the pipeline JSON has no such key (Go's
 * `PipelineConfig` has none, and the `OrchestrationFlags` message that declares one is never
 * sent), and Go's parallel runner started every ready agent at once. Over gRPC a client is
 * handed one step at a time anyway (kernel/external-steps.ts), so a limit would only change
 * how many branches are issued, and counted, before a client takes them.
 */
import { buildWorkflow, type LoadedWorkflow } from '../workflow/load.ts';
import type { WorkflowInput } from '../workflow/schema.ts';
import { END } from '../workflow/validate.ts';
import { agentConfigJson } from './agent-config-json.ts';
import { agentTargets, interruptTargetsUsed } from './pipeline-config.ts';
import { isParallelPipeline, uniqueNames } from './pipeline-parallel.ts';
import type { InterruptTarget, JeevesAgentConfig, JeevesPipelineConfig } from './types.ts';

type StageInput = WorkflowInput['stages'][number];

export interface PipelineToWorkflowOptions {
  /**
   * The stage the run starts at (a stage of the workflow, see {@link initialStage}); the
   * first agent when absent. Ignored for a parallel pipeline: its run always starts with
   * every agent that waits for nothing (a resumed envelope's `current_stage`, and its
   * `completed_stage_set`, do not skip agents).
   */
  readonly start?: string;
}

/**
 * The Warden workflow for `config` (already validated by parsePipelineConfig). Load it with
 * {@link loadPipelineWorkflow}, or `buildWorkflow(…, { allowUnreachable: true })`: a jeeves
 * pipeline may hold agents only a resumed envelope's `current_stage` reaches.
 */
export function pipelineToWorkflow(
  config: JeevesPipelineConfig,
  options: PipelineToWorkflowOptions = {},
): WorkflowInput {
  if (isParallelPipeline(config)) return parallelWorkflow(config);
  const stages: StageInput[] = config.agents.map((agent) => agentStage(config, agent));
  for (const kind of interruptTargetsUsed(config)) stages.push(interruptStage(config, kind));
  const limits = config.edge_limits.filter((l) => l.max_count > 0);
  return {
    name: workflowName(config.name),
    description: `jeeves pipeline ${JSON.stringify(config.name)}`,
    ...(options.start === undefined ? {} : { start: options.start }),
    bounds: bounds(config),
    edge_limits: limits.map((l) => ({ from: l.from, to: l.to, max_count: l.max_count })),
    stages,
  };
}

/** The `mode: parallel` workflow of a parallel pipeline (see the module comment). */
function parallelWorkflow(config: JeevesPipelineConfig): WorkflowInput {
  return {
    name: workflowName(config.name),
    description: `jeeves pipeline ${JSON.stringify(config.name)} (parallel)`,
    mode: 'parallel',
    bounds: bounds(config),
    stages: config.agents.map((agent): StageInput => {
      const requires = uniqueNames(agent.requires);
      const after = uniqueNames(agent.after).filter((name) => !requires.includes(name));
      return {
        name: agent.name,
        agent: { kind: 'external', config: agentConfigJson(agent) },
        ...(requires.length > 0 ? { requires } : {}),
        ...(after.length > 0 ? { after } : {}),
        ...(agent.join_strategy === 'any' && requires.length >= 2 ? { join_strategy: 'any' } : {}),
        ...(agent.error_next === '' ? {} : { error_next: agent.error_next }),
        output_key: agent.output_key,
      };
    }),
  };
}

/**
 * {@link pipelineToWorkflow}, validated by Warden's loader (unreachable stages allowed).
 *
 * @throws WardenError WORKFLOW_INVALID if the conversion produced a workflow Warden rejects:
 *   a bug of this module, since parsePipelineConfig checks everything the loader does.
 */
export function loadPipelineWorkflow(
  config: JeevesPipelineConfig,
  options: PipelineToWorkflowOptions = {},
): LoadedWorkflow {
  return buildWorkflow(pipelineToWorkflow(config, options), `pipeline ${config.name}`, {
    allowUnreachable: true,
  });
}

/**
 * Where a session starts, from the envelope's `current_stage` (§4.7 InitializeSession): an
 * agent or `end` stays; an interrupt stage stays while its interrupt is pending, and moves to
 * its resume stage once it was answered (the client resumes with `interrupt_pending: false`
 * and `interrupt.response`, §4.6); `clarification`/`confirmation` without such a stage stays,
 * and fails as an unknown stage as in Go; anything else (`start`) is the first agent.
 */
export function initialStage(
  config: JeevesPipelineConfig,
  currentStage: string,
  interrupt: { readonly pending: boolean; readonly answered: boolean },
): string {
  if (currentStage === END || config.agents.some((a) => a.name === currentStage)) {
    return currentStage;
  }
  const kind = (interruptTargetsUsed(config) as string[]).find((k) => k === currentStage);
  if (kind !== undefined) {
    return interrupt.pending || !interrupt.answered
      ? kind
      : config[`${kind as InterruptTarget}_resume_stage`];
  }
  if (currentStage === 'clarification' || currentStage === 'confirmation') return currentStage;
  return config.agents[0]!.name;
}

function agentStage(config: JeevesPipelineConfig, agent: JeevesAgentConfig): StageInput {
  const loopsToItself = agentTargets(agent).includes(agent.name);
  return {
    name: agent.name,
    agent: { kind: 'external', config: agentConfigJson(agent) },
    routing: (agent.routing_rules ?? []).map((rule) => ({
      when: { field: `output.${rule.condition}`, eq: rule.value },
      next: rule.target,
    })),
    ...(agent.default_next === '' ? {} : { default_next: agent.default_next }),
    ...(agent.error_next === '' ? {} : { error_next: agent.error_next }),
    // Warden wants every self-loop bounded. Hops already bound it (each visit is a hop), and
    // one more than the hop bound never triggers: the run ends on a hop or iteration bound.
    ...(loopsToItself ? { max_visits: config.max_agent_hops + 1 } : {}),
    output_key: agent.output_key,
  };
}

function interruptStage(config: JeevesPipelineConfig, kind: InterruptTarget): StageInput {
  const field = kind === 'clarification' ? 'question' : 'message';
  const placeholders = config.agents
    .filter((a) => agentTargets(a).includes(kind) && /^[\w-]+$/.test(a.output_key))
    .map((a) => `{{outputs.${a.output_key}.${field}}}`);
  return {
    name: kind,
    description: `raises a ${kind} interrupt, then continues at ${config[`${kind}_resume_stage`]}`,
    interrupt: { kind, prompt: placeholders.length > 0 ? placeholders.join('\n') : kind },
    resume_next: config[`${kind}_resume_stage`],
  };
}

function bounds(config: JeevesPipelineConfig): NonNullable<WorkflowInput['bounds']> {
  return {
    max_iterations: config.max_iterations,
    max_llm_calls: config.max_llm_calls,
    max_agent_hops: config.max_agent_hops,
    timeout: runTimeoutMs(config),
  };
}

/**
 * The run's time budget: every allowed hop may use its agent's whole timeout. Go enforced no
 * run timeout; `default_timeout_seconds` and `timeout_seconds` are per-agent timeouts the
 * client applies (they reach it in `agent_config`), so the run gets what they add up to.
 */
function runTimeoutMs(config: JeevesPipelineConfig): number {
  const longest = Math.max(
    config.default_timeout_seconds,
    ...config.agents.map((a) => a.timeout_seconds),
  );
  return longest * config.max_agent_hops * 1000;
}

/** The pipeline name as a Warden workflow name (the original is kept in the description). */
function workflowName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_.-]/g, '_');
  return (/^[A-Za-z_]/.test(cleaned) ? cleaned : `_${cleaned}`).slice(0, 64);
}
