/**
 * Semantic validation of a parsed workflow: names, targets, loops and limits. Returns every
 * problem found (not just the first), each with a path and what was expected.
 */
import type { Condition, RoutingRule, Workflow } from './schema.ts';

export const END = 'end';

export interface WorkflowIssue {
  /** Path in the document, e.g. `stages[1].routing[0].next`. */
  readonly path: string;
  readonly message: string;
}

export interface ValidateOptions {
  /** Names of registered TypeScript routing functions; when given, unknown names are errors. */
  readonly routingFunctions?: ReadonlySet<string>;
  /** Names of registered TypeScript agents; when given, unknown names are errors. */
  readonly agents?: ReadonlySet<string>;
}

export function validateWorkflow(
  workflow: Workflow,
  options: ValidateOptions = {},
): WorkflowIssue[] {
  const issues: WorkflowIssue[] = [];
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
    target(stage.default_next, `${at}.default_next`);
    target(stage.error_next, `${at}.error_next`);
    target(stage.resume_next, `${at}.resume_next`);

    const selfTargets = [
      ...stage.routing.flatMap((rule) => ('next' in rule ? [rule.next] : [])),
      stage.default_next,
      stage.error_next,
      stage.resume_next,
    ];
    if (selfTargets.includes(stage.name) && stage.max_visits === undefined) {
      issues.push({
        path: `${at}.max_visits`,
        message: `stage '${stage.name}' can route to itself, so it needs max_visits (a positive integer) to bound the loop`,
      });
    }
  });

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

function checkCondition(condition: Condition, path: string, issues: WorkflowIssue[]): void {
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
