/**
 * Validation of a parallel pipeline (`default_run_mode: "parallel"`, §3.1): what jeeves' parallel
 * runner (`Runtime.runParallelCore`) reads, checked so that the Warden workflow built from it
 * (pipeline-workflow.ts, `mode: parallel`) always loads.
 *
 * In the parallel runner every agent runs once, as soon as its `requires` (all, or one with
 * `join_strategy: any`) completed and its `after` finished; routing is not used. So:
 *
 * - `routing_rules` are refused: a rule says "go to X when the output says so", which a run
 *   that starts every ready agent cannot honour, and silently dropping the condition would run
 *   agents the user meant to skip.
 * - `default_next` is accepted when it agrees with the graph: empty, `end`, or an agent that
 *   already waits for this one through `requires`/`after` (directly or not). Go's own parallel
 *   pipelines set `default_next: "end"` or chain `default_next` along `requires`, and the
 *   parallel runner ignores it; Warden ignores it too. A `default_next` naming an agent that
 *   does not wait for this one is refused: it asks for an order the parallel runner would not
 *   keep (both agents would start at once).
 * - `error_next`: `end` tolerates the failure (agents that list the failed one in `after` go
 *   on, agents that `require` it never run); an agent becomes a *handler* that runs only when
 *   an agent naming it fails, so it cannot have `requires`/`after` of its own, nor be its own
 *   `error_next`. (Go's parallel runner ended the run on any failure.)
 * - Interrupt targets (`clarification`/`confirmation`) are refused: Warden cannot ask a person
 *   while other branches run.
 * - Edge limits with a positive `max_count` are refused: no agent routes to another, so they
 *   would never apply.
 * - `join_strategy` must be `all` or `any` (a misspelt `any` would otherwise wait for all);
 *   the agents must not wait for each other in a cycle (Go would silently never run them).
 */
import type { ParamIssue } from '../params.ts';
import { END } from '../workflow/validate.ts';
import {
  INTERRUPT_TARGETS,
  type JeevesAgentConfig,
  type JeevesEdgeLimit,
  type JeevesPipelineConfig,
} from './types.ts';

/** The `default_run_mode` values (Go's `RunMode`); `''` is sequential. */
export const PIPELINE_RUN_MODES = ['sequential', 'parallel'] as const;

/** Most `requires` (or `after`) entries a Warden stage takes. */
export const MAX_PARALLEL_DEPENDENCIES = 64;

const JOIN_STRATEGY_VALUES: readonly string[] = ['all', 'any'];
const MODE = 'default_run_mode: parallel';

/** `list` without repeats, first occurrence kept. */
export function uniqueNames(list: readonly string[]): string[] {
  return [...new Set(list)];
}

/**
 * Every problem that keeps a parallel pipeline from running as Warden's parallel workflow
 * (see the module comment). `agents` are in the order given (paths say `agents[i]`);
 * `names` maps each valid agent name to its index.
 */
export function checkParallelPipeline(
  agents: readonly JeevesAgentConfig[],
  names: ReadonlyMap<string, number>,
  edgeLimits: readonly JeevesEdgeLimit[],
  issues: ParamIssue[],
): void {
  const waitsFor = new Map<string, string[]>();
  for (const agent of agents) waitsFor.set(agent.name, [...agent.requires, ...agent.after]);
  const handlers = new Map<string, string[]>(); // handler → the agents naming it
  agents.forEach((agent, i) => {
    checkAgent(agent, `agents[${i}]`, names, waitsFor, issues);
    const target = agent.error_next;
    if (target !== '' && target !== END && target !== agent.name && names.has(target))
      handlers.set(target, [...(handlers.get(target) ?? []), agent.name]);
  });
  for (const [handler, namedBy] of handlers) {
    const i = names.get(handler)!;
    const agent = agents[i]!;
    if (agent.requires.length === 0 && agent.after.length === 0) continue;
    issues.push({
      path: `agents[${i}]`,
      message: `agent '${handler}' is the error_next of ${namedBy.map((n) => `'${n}'`).join(', ')}, so with ${MODE} only that failure starts it: remove its requires and after`,
    });
  }
  const cycle = dependencyCycle(agents, names, handlers);
  if (cycle) {
    issues.push({
      path: `agents[${names.get(cycle[0]!)!}]`,
      message: `agents wait for each other in a cycle: ${cycle.join(' → ')} (through requires, after or error_next), so none of them could ever run`,
    });
  }
  const limiting = edgeLimits.filter((l) => l.max_count > 0);
  if (limiting.length > 0) {
    issues.push({
      path: 'edge_limits',
      message: `edge limits (${limiting.map((l) => `${l.from}->${l.to}`).join(', ')}) never apply with ${MODE}: every agent runs once and none routes to another; remove them`,
    });
  }
}

function checkAgent(
  agent: JeevesAgentConfig,
  at: string,
  names: ReadonlyMap<string, number>,
  waitsFor: ReadonlyMap<string, readonly string[]>,
  issues: ParamIssue[],
): void {
  const name = agent.name;
  if (!JOIN_STRATEGY_VALUES.includes(agent.join_strategy)) {
    issues.push({
      path: `${at}.join_strategy`,
      message: `'${agent.join_strategy}' is not a join strategy (expected all or any)`,
    });
  }
  for (const key of ['requires', 'after'] as const) {
    const count = uniqueNames(agent[key]).length;
    if (count > MAX_PARALLEL_DEPENDENCIES)
      issues.push({
        path: `${at}.${key}`,
        message: `agent '${name}' lists ${count} agents; at most ${MAX_PARALLEL_DEPENDENCIES}`,
      });
  }
  if ((agent.routing_rules ?? []).length > 0) {
    issues.push({
      path: `${at}.routing_rules`,
      message: `agent '${name}' has routing rules, which a pipeline with ${MODE} cannot follow (each agent runs once, as its requires and after allow); remove them, or run the pipeline sequentially`,
    });
  }
  const next = agent.default_next;
  if (isInterruptTarget(next)) {
    issues.push({ path: `${at}.default_next`, message: interruptMessage(name, next) });
  } else if (next !== '' && next !== END && names.has(next) && !waitsOn(next, name, waitsFor)) {
    issues.push({
      path: `${at}.default_next`,
      message: `agent '${name}' has default_next '${next}', but with ${MODE} agents are ordered by requires and after, and '${next}' does not wait for '${name}' (both would start at once): add '${name}' to the requires (or after) of '${next}', or remove default_next`,
    });
  }
  const onError = agent.error_next;
  if (isInterruptTarget(onError)) {
    issues.push({ path: `${at}.error_next`, message: interruptMessage(name, onError) });
  } else if (onError === name) {
    issues.push({
      path: `${at}.error_next`,
      message: `agent '${name}' cannot be its own error_next with ${MODE} (each agent runs once)`,
    });
  }
}

function isInterruptTarget(target: string): boolean {
  return (INTERRUPT_TARGETS as readonly string[]).includes(target);
}

function interruptMessage(agent: string, target: string): string {
  return `agent '${agent}' routes to ${target}, but Warden cannot ask a person while other agents of a pipeline with ${MODE} run; remove the route, or run the pipeline sequentially`;
}

/** Whether `agent` waits (through requires/after, transitively) for `on`. */
function waitsOn(
  agent: string,
  on: string,
  waitsFor: ReadonlyMap<string, readonly string[]>,
): boolean {
  const seen = new Set<string>();
  const stack = [agent];
  while (stack.length > 0) {
    for (const dep of waitsFor.get(stack.pop()!) ?? []) {
      if (dep === on) return true;
      if (!seen.has(dep)) {
        seen.add(dep);
        stack.push(dep);
      }
    }
  }
  return false;
}

/**
 * A cycle through requires, after and handler edges (a handler waits for the agents naming
 * it), as names with first = last, or null. Unknown names and self-references are skipped:
 * they are reported on their own.
 */
function dependencyCycle(
  agents: readonly JeevesAgentConfig[],
  names: ReadonlyMap<string, number>,
  handlers: ReadonlyMap<string, readonly string[]>,
): string[] | null {
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (name: string): string[] | null => {
    const seen = state.get(name);
    if (seen === 'done') return null;
    if (seen === 'open') return [...path.slice(path.indexOf(name)), name];
    const agent = agents[names.get(name)!]!;
    state.set(name, 'open');
    path.push(name);
    for (const dep of [...agent.requires, ...agent.after, ...(handlers.get(name) ?? [])]) {
      if (dep === name || !names.has(dep)) continue;
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(name, 'done');
    return null;
  };
  for (const name of names.keys()) {
    const cycle = visit(name);
    if (cycle) return cycle;
  }
  return null;
}

/** Whether the pipeline runs as jeeves' parallel runner (`default_run_mode: "parallel"`). */
export function isParallelPipeline(
  config: Pick<JeevesPipelineConfig, 'default_run_mode'>,
): boolean {
  return config.default_run_mode === 'parallel';
}
