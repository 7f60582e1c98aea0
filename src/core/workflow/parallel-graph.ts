/**
 * The dependency graph of a parallel workflow, shared by validation and the machine. A stage
 * depends on its `requires` and `after` stages; a handler stage (one that some stage names as
 * its `error_next`) depends on the stages that name it, since only their failure starts it.
 */
import { END } from './end.ts';
import type { JoinStrategy, StageSpec, Workflow } from './schema.ts';

export function isParallel(workflow: Pick<Workflow, 'mode'>): boolean {
  return workflow.mode === 'parallel';
}

export function requiresOf(stage: StageSpec): readonly string[] {
  return stage.requires ?? [];
}

export function afterOf(stage: StageSpec): readonly string[] {
  return stage.after ?? [];
}

export function joinOf(stage: StageSpec): JoinStrategy {
  return stage.join_strategy ?? 'all';
}

/** Handler stages → the stages that name them as `error_next`, in stage order. */
export function handlersOf(workflow: Workflow): ReadonlyMap<string, readonly string[]> {
  const out = new Map<string, string[]>();
  for (const stage of workflow.stages) {
    const target = stage.error_next;
    if (target === undefined || target === END) continue;
    const list = out.get(target) ?? [];
    list.push(stage.name);
    out.set(target, list);
  }
  return out;
}

/** The stages a stage waits for: requires, after, and (for a handler) the stages naming it. */
export function dependenciesOf(
  stage: StageSpec,
  handlers: ReadonlyMap<string, readonly string[]>,
): string[] {
  return [...requiresOf(stage), ...afterOf(stage), ...(handlers.get(stage.name) ?? [])];
}

/**
 * A cycle of the dependency graph as a list of stage names (first = last), or null. Stages
 * are visited in stage order, so the cycle reported is the same on every call. Unknown names
 * and self-references are skipped (validation reports them on their own).
 */
export function dependencyCycle(workflow: Workflow): string[] | null {
  const handlers = handlersOf(workflow);
  const byName = new Map(workflow.stages.map((s) => [s.name, s]));
  const state = new Map<string, 'open' | 'done'>();
  const path: string[] = [];
  const visit = (name: string): string[] | null => {
    const seen = state.get(name);
    if (seen === 'done') return null;
    if (seen === 'open') return [...path.slice(path.indexOf(name)), name];
    const stage = byName.get(name);
    if (!stage) return null;
    state.set(name, 'open');
    path.push(name);
    for (const dep of dependenciesOf(stage, handlers)) {
      if (dep === name) continue; // a self-reference is reported on its own
      const cycle = visit(dep);
      if (cycle) return cycle;
    }
    path.pop();
    state.set(name, 'done');
    return null;
  };
  for (const stage of workflow.stages) {
    const cycle = visit(stage.name);
    if (cycle) return cycle;
  }
  return null;
}
