/**
 * Validation of the run mode (docs/workflows.md#parallel-stages). Sequential workflows may not
 * use the parallel keys; parallel workflows may not use what only sequential runs read
 * (routing, `default_next`, `resume_next`, `start`, `edge_limits`), nor interrupts (not
 * supported in parallel mode yet), and their `requires`/`after`/`error_next` graph must name
 * existing stages and have no cycle.
 */
import { END } from './end.ts';
import { dependencyCycle, handlersOf, isParallel, requiresOf } from './parallel-graph.ts';
import type { StageSpec, Workflow } from './schema.ts';

export interface ModeProblem {
  readonly path: string;
  readonly message: string;
}

/** Every problem with the run-mode keys of `workflow`, in document order. */
export function modeProblems(workflow: Workflow): ModeProblem[] {
  return isParallel(workflow) ? parallelProblems(workflow) : sequentialProblems(workflow);
}

function sequentialProblems(workflow: Workflow): ModeProblem[] {
  const problems: ModeProblem[] = [];
  if (workflow.max_concurrent_agents !== undefined)
    problems.push({
      path: 'max_concurrent_agents',
      message: 'max_concurrent_agents needs mode: parallel',
    });
  workflow.stages.forEach((stage, i) => {
    for (const key of ['requires', 'after', 'join_strategy'] as const) {
      if (stage[key] === undefined) continue;
      problems.push({
        path: `stages[${i}].${key}`,
        message: `stage '${stage.name}': ${key} needs mode: parallel (a sequential workflow orders its stages with routing and default_next)`,
      });
    }
  });
  return problems;
}

function parallelProblems(workflow: Workflow): ModeProblem[] {
  const problems: ModeProblem[] = [];
  const names = new Set(workflow.stages.map((s) => s.name));
  const stageList = workflow.stages.map((s) => s.name).join(', ');
  const handlers = handlersOf(workflow);
  if (workflow.start !== undefined)
    problems.push({
      path: 'start',
      message:
        'start is not used in parallel mode: every stage without requires or after starts the run; remove start',
    });
  if (workflow.on_budget_exhausted === 'interrupt')
    problems.push({
      path: 'on_budget_exhausted',
      message:
        'interrupt is not supported in parallel mode (a person cannot be asked while other branches run); use terminate',
    });
  if (workflow.edge_limits.length > 0)
    problems.push({
      path: 'edge_limits',
      message: 'edge_limits are not used in parallel mode (no routing edges); remove them',
    });

  workflow.stages.forEach((stage, i) => {
    const at = `stages[${i}]`;
    const sequentialOnly: Array<[string, boolean]> = [
      ['routing', stage.routing.length > 0],
      ['default_next', stage.default_next !== undefined],
      ['resume_next', stage.resume_next !== undefined],
    ];
    for (const [key, used] of sequentialOnly) {
      if (!used) continue;
      problems.push({
        path: `${at}.${key}`,
        message: `stage '${stage.name}': ${key} is not used in parallel mode; order stages with requires and after`,
      });
    }
    if (stage.interrupt)
      problems.push({
        path: `${at}.interrupt`,
        message: `stage '${stage.name}': interrupts are not supported in parallel mode yet; use a sequential workflow for stages that ask a person`,
      });
    problems.push(...listProblems(stage, at, names, stageList));
    const required = requiresOf(stage).length;
    if (stage.join_strategy === 'any' && required < 2)
      problems.push({
        path: `${at}.join_strategy`,
        message: `stage '${stage.name}': join_strategy any needs at least two requires (it has ${required})`,
      });
    if (stage.error_next === stage.name)
      problems.push({
        path: `${at}.error_next`,
        message: `stage '${stage.name}' cannot be its own error_next in parallel mode (each stage runs once)`,
      });
    const namedBy = handlers.get(stage.name);
    if (namedBy && (stage.requires?.length || stage.after?.length))
      problems.push({
        path: at,
        message: `stage '${stage.name}' is the error_next of ${namedBy.map((n) => `'${n}'`).join(', ')}, so only that failure starts it: remove its requires and after`,
      });
  });

  const cycle = dependencyCycle(workflow);
  if (cycle) {
    const first = workflow.stages.findIndex((s) => s.name === cycle[0]);
    problems.push({
      path: `stages[${first}]`,
      message: `stages wait for each other in a cycle: ${cycle.join(' → ')} (through requires, after or error_next)`,
    });
  }
  const starts = workflow.stages.filter(
    (s) => !s.requires?.length && !s.after?.length && !handlers.has(s.name),
  );
  if (starts.length === 0)
    problems.push({
      path: 'stages',
      message:
        'a parallel workflow needs a stage without requires or after that no error_next names: the run starts with those',
    });
  return problems;
}

/** Unknown names, self-references and repeats in a stage's `requires` and `after`. */
function listProblems(
  stage: StageSpec,
  at: string,
  names: ReadonlySet<string>,
  stageList: string,
): ModeProblem[] {
  const problems: ModeProblem[] = [];
  const required = new Set(stage.requires ?? []);
  for (const key of ['requires', 'after'] as const) {
    const seen = new Set<string>();
    stage[key]?.forEach((name, j) => {
      const path = `${at}.${key}[${j}]`;
      const verb = key === 'requires' ? 'requires' : 'runs after';
      if (name === stage.name)
        problems.push({ path, message: `stage '${stage.name}' cannot wait for itself` });
      else if (!names.has(name))
        problems.push({
          path,
          message: `stage '${stage.name}' ${verb} unknown stage '${name}' (expected one of: ${stageList}${name === END ? `; '${END}' is not a stage` : ''})`,
        });
      else if (seen.has(name))
        problems.push({ path, message: `'${name}' is listed twice in ${key}` });
      else if (key === 'after' && required.has(name))
        problems.push({
          path,
          message: `'${name}' is in both requires and after of stage '${stage.name}'; keep it in one (requires: must complete; after: must finish)`,
        });
      seen.add(name);
    });
  }
  return problems;
}
