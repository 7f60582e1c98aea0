/**
 * Semantic validation of a parsed workflow: names, targets, loops, limits, templates and
 * reachability. Returns every problem found (not just the first), each with a path and what
 * was expected.
 */
import { END } from './end.ts';
import { isParallel } from './parallel-graph.ts';
import type { Condition, RoutingRule, StageSpec, Workflow } from './schema.ts';
import { templateProblems } from './template.ts';
import { modeProblems } from './validate-parallel.ts';

export { END };

export const ISSUE_SEVERITIES = ['error', 'warning'] as const;
export type IssueSeverity = (typeof ISSUE_SEVERITIES)[number];

export interface WorkflowIssue {
  /** `error` makes the workflow invalid; `warning` is reported and the workflow still loads. */
  readonly severity: IssueSeverity;
  /** Path in the document, e.g. `stages[1].routing[0].next`. */
  readonly path: string;
  readonly message: string;
}

export interface ValidateOptions {
  /** Names of registered TypeScript routing functions; when given, unknown names are errors. */
  readonly routingFunctions?: ReadonlySet<string>;
  /** Names of registered TypeScript agents; when given, unknown names are errors. */
  readonly agents?: ReadonlySet<string>;
  /**
   * Report stages that can never run (see {@link unreachableStages}) as warnings instead of
   * errors. @default false
   */
  readonly allowUnreachable?: boolean;
}

/** Every problem with `workflow`: errors first (in document order of the checks), then warnings. */
export function validateWorkflow(
  workflow: Workflow,
  options: ValidateOptions = {},
): WorkflowIssue[] {
  const issues = problemsOf(workflow, options).map((p): WorkflowIssue => ({
    severity: 'error',
    ...p,
  }));
  const unreachable = unreachableStages(workflow).map((p): WorkflowIssue => ({
    severity: options.allowUnreachable ? 'warning' : 'error',
    ...p,
  }));
  return [...issues, ...unreachable].sort(
    (a, b) => Number(a.severity === 'warning') - Number(b.severity === 'warning'),
  );
}

type Problem = Omit<WorkflowIssue, 'severity'>;

function problemsOf(workflow: Workflow, options: ValidateOptions): Problem[] {
  const issues: Problem[] = [];
  const names = new Map<string, number>();
  const outputKeys = new Map<string, number>();
  const stageList = workflow.stages.map((s) => s.name).join(', ');

  workflow.stages.forEach((stage, i) => {
    const at = `stages[${i}]`;
    if (stage.name === END)
      issues.push({
        path: `${at}.name`,
        message: `'${END}' is reserved for the end of the workflow`,
      });
    const seen = names.get(stage.name);
    if (seen !== undefined) {
      issues.push({
        path: `${at}.name`,
        message: `duplicate stage name '${stage.name}' (also stages[${seen}])`,
      });
    } else names.set(stage.name, i);
    const key = stage.output_key ?? stage.name;
    const keySeen = outputKeys.get(key);
    if (keySeen !== undefined) {
      issues.push({
        path: `${at}.output_key`,
        message: `duplicate output key '${key}' (also stages[${keySeen}])`,
      });
    } else outputKeys.set(key, i);
  });

  const target = (value: string | undefined, path: string): void => {
    if (value === undefined || value === END || names.has(value)) return;
    issues.push({
      path,
      message: `unknown stage '${value}' (expected one of: ${stageList}, ${END})`,
    });
  };

  const keys: ReadonlySet<string> = new Set(outputKeys.keys());
  if (workflow.start !== undefined) target(workflow.start, 'start');
  if (workflow.start === END)
    issues.push({ path: 'start', message: `the workflow cannot start at '${END}'` });

  workflow.stages.forEach((stage, i) => {
    const at = `stages[${i}]`;
    if (!stage.agent && !stage.interrupt) {
      issues.push({ path: at, message: 'expected an agent, an interrupt, or both' });
    }
    if (stage.interrupt && !stage.agent && stage.interrupt.when) {
      issues.push({
        path: `${at}.interrupt.when`,
        message:
          'a stage without an agent always raises its interrupt; remove when, or add an agent',
      });
    }
    if (stage.interrupt && !stage.agent && stage.interrupt.prompt_from) {
      issues.push({
        path: `${at}.interrupt.prompt_from`,
        message: 'prompt_from needs an agent whose output holds the prompt',
      });
    }
    if (stage.interrupt && !stage.interrupt.prompt && !stage.interrupt.prompt_from) {
      issues.push({ path: `${at}.interrupt`, message: 'expected prompt or prompt_from' });
    }
    if (
      stage.agent?.kind === 'typescript' &&
      options.agents &&
      !options.agents.has(stage.agent.name)
    ) {
      issues.push({
        path: `${at}.agent.name`,
        message: `no TypeScript agent is registered as '${stage.agent.name}'`,
      });
    }
    stage.routing.forEach((rule: RoutingRule, r) => {
      if ('next' in rule) target(rule.next, `${at}.routing[${r}].next`);
      else if (options.routingFunctions && !options.routingFunctions.has(rule.fn)) {
        issues.push({
          path: `${at}.routing[${r}].fn`,
          message: `no routing function is registered as '${rule.fn}'`,
        });
      }
      if ('when' in rule) checkCondition(rule.when, `${at}.routing[${r}].when`, issues);
    });
    for (const [text, path] of templatesOf(stage, at)) {
      for (const problem of templateProblems(text, keys))
        issues.push({ path, message: problem.message });
    }
    target(stage.default_next, `${at}.default_next`);
    target(stage.error_next, `${at}.error_next`);
    target(stage.resume_next, `${at}.resume_next`);

    const loops = !isParallel(workflow) && stageTargets(stage).includes(stage.name);
    if (loops && stage.max_visits === undefined) {
      issues.push({
        path: `${at}.max_visits`,
        message: `stage '${stage.name}' can route to itself, so it needs max_visits (a positive integer) to bound the loop`,
      });
    }
  });

  issues.push(...modeProblems(workflow));

  workflow.edge_limits.forEach((limit, i) => {
    for (const end of ['from', 'to'] as const) {
      if (!names.has(limit[end])) {
        issues.push({
          path: `edge_limits[${i}].${end}`,
          message: `unknown stage '${limit[end]}' (expected one of: ${stageList})`,
        });
      }
    }
  });

  return issues;
}

/** The stage's template texts with their paths: interrupt `prompt`, llm `prompt` and `system`. */
function templatesOf(stage: StageSpec, at: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  if (stage.interrupt?.prompt !== undefined)
    out.push([stage.interrupt.prompt, `${at}.interrupt.prompt`]);
  if (stage.agent?.kind === 'llm') {
    out.push([stage.agent.prompt, `${at}.agent.prompt`]);
    if (stage.agent.system !== undefined) out.push([stage.agent.system, `${at}.agent.system`]);
  }
  return out;
}

/** The stages a stage can hand the run to: routing targets, default, error and resume routes. */
export function stageTargets(stage: StageSpec): string[] {
  return [
    ...stage.routing.flatMap((rule) => ('next' in rule ? [rule.next] : [])),
    ...[stage.default_next, stage.error_next, stage.resume_next].filter(
      (t): t is string => t !== undefined,
    ),
  ];
}

/**
 * Stages no run can ever enter, each with what to do about it. A stage is reachable when the
 * start stage can get to it by routing `next`, `default_next`, `error_next` or `resume_next`.
 * A routing function (`fn`) may return any stage, so once a reachable stage has one, every
 * stage counts as reachable. Nothing is reported while `start` names no stage (that is an
 * error of its own).
 *
 * In parallel mode nothing is reported: stages are started by their `requires` and `after`.
 *
 * Stages do not run in file order by themselves: a stage without a matching rule and without
 * `default_next` ends the run. An unreachable stage is almost always a missing `default_next`,
 * which is why this is an error unless the caller asks for a warning.
 */
export function unreachableStages(workflow: Workflow): Problem[] {
  // Parallel mode: every stage waits for its requires/after (checked for cycles) and runs.
  if (isParallel(workflow)) return [];
  const byName = new Map(workflow.stages.map((s) => [s.name, s]));
  const start = workflow.start ?? workflow.stages[0]?.name;
  if (start === undefined || !byName.has(start)) return [];
  const reached = new Set<string>([start]);
  const queue = [start];
  for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
    const stage = byName.get(name)!;
    if (stage.routing.some((rule) => 'fn' in rule)) return [];
    for (const next of stageTargets(stage)) {
      if (next === END || reached.has(next) || !byName.has(next)) continue;
      reached.add(next);
      queue.push(next);
    }
  }
  const problems: Problem[] = [];
  workflow.stages.forEach((stage, i) => {
    if (reached.has(stage.name)) return;
    const from = workflow.stages
      .filter((s) => stageTargets(s).includes(stage.name))
      .map((s) => `'${s.name}'`);
    const why =
      from.length === 0
        ? 'no stage routes to it'
        : `only stages that are never reached route to it (${from.join(', ')})`;
    const previous = workflow.stages[i - 1];
    const fix =
      previous !== undefined &&
      previous.default_next === undefined &&
      !previous.routing.some((rule) => 'when' in rule && 'always' in rule.when)
        ? `Add \`default_next: ${stage.name}\` to stage '${previous.name}' to run the stages in order, or remove stage '${stage.name}'.`
        : `Route to it from a stage that runs (routing \`next\`, \`default_next\`, \`error_next\` or \`resume_next\`), or remove it.`;
    problems.push({
      path: `stages[${i}]`,
      message: `stage '${stage.name}' is never reached: ${why}. ${fix}`,
    });
  });
  return problems;
}

function checkCondition(condition: Condition, path: string, issues: Problem[]): void {
  if ('and' in condition)
    condition.and.forEach((c, i) => checkCondition(c, `${path}.and[${i}]`, issues));
  else if ('or' in condition)
    condition.or.forEach((c, i) => checkCondition(c, `${path}.or[${i}]`, issues));
  else if ('not' in condition) checkCondition(condition.not, `${path}.not`, issues);
  else if ('field' in condition) {
    for (const op of ['gt', 'gte', 'lt', 'lte'] as const) {
      const value = condition[op];
      if (value !== undefined && !Number.isFinite(value))
        issues.push({ path: `${path}.${op}`, message: 'expected a finite number' });
    }
  }
}
