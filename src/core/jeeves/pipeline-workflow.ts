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
 */
import { buildWorkflow, type LoadedWorkflow } from '../workflow/load.ts';
import type { WorkflowInput } from '../workflow/schema.ts';
import { END } from '../workflow/validate.ts';
import { agentConfigJson } from './agent-config-json.ts';
import { agentTargets, interruptTargetsUsed } from './pipeline-config.ts';
import type { InterruptTarget, JeevesAgentConfig, JeevesPipelineConfig } from './types.ts';

type StageInput = WorkflowInput['stages'][number];

export interface PipelineToWorkflowOptions {
  /**
   * The stage the run starts at (a stage of the workflow, see {@link initialStage}); the
   * first agent when absent.
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
  const stages: StageInput[] = config.agents.map((agent) => agentStage(config, agent));
  for (const kind of interruptTargetsUsed(config)) stages.push(interruptStage(config, kind));
  const limits = config.edge_limits.filter((l) => l.max_count > 0);
  return {
    name: workflowName(config.name),
    description: `jeeves pipeline ${JSON.stringify(config.name)}`,
    ...(options.start === undefined ? {} : { start: options.start }),
    bounds: {
      max_iterations: config.max_iterations,
      max_llm_calls: config.max_llm_calls,
      max_agent_hops: config.max_agent_hops,
      timeout: runTimeoutMs(config),
    },
    edge_limits: limits.map((l) => ({ from: l.from, to: l.to, max_count: l.max_count })),
    stages,
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
