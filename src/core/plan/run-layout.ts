/**
 * What `warden exec` runs and writes, decided before anything runs (reference A.5–A.8): the
 * plan flattened in plan order with each task's hook entry (task entry, else queue entry, by
 * Python truthiness), the agent it routes to, the names of its evidence files, and the records
 * `run.json` is made of, in the Rust shape (every key present) with registry keys as agents.
 */
import type { CommandRecord, HookEntry, HooksFile, PlanFile, TaskResult } from './plan-files.ts';
import { joinPath } from './python-text.ts';

/** The agents a task can route to: the kit's two, and a Warden workflow. */
export const PLAN_AGENTS = ['noop', 'shell', 'workflow'] as const;
export type PlanAgent = (typeof PLAN_AGENTS)[number];

export interface PlanItem {
  /** Position in plan order (0-based); results are written in this order. */
  readonly index: number;
  readonly id: string;
  readonly queue: string;
  readonly layer: string | null;
  /** The n-th time this id appears in the plan (1-based). */
  readonly occurrence: number;
  /** The id, or `<id>-<n>` for the n-th occurrence, n ≥ 2: names this task's files (A.8 #7). */
  readonly fileKey: string;
  /** The hook entry that applies (task entry, else queue entry), or null. */
  readonly hook: HookEntry | null;
  readonly agent: PlanAgent;
}

/** Python's truthiness of a hook value: a missing key and `{}` are false. */
function truthy(entry: HookEntry | undefined): entry is HookEntry {
  return entry !== undefined && Object.keys(entry).length > 0;
}

/** `hooks.get(task_id) or hooks.get(queue_name) or {}` (A.5). */
export function hookFor(hooks: HooksFile, id: string, queue: string): HookEntry | null {
  const own = Object.hasOwn(hooks, id) ? hooks[id] : undefined;
  if (truthy(own)) return own;
  const shared = Object.hasOwn(hooks, queue) ? hooks[queue] : undefined;
  return truthy(shared) ? shared : null;
}

/** Every task of every queue, in plan order, with its hook and agent (A.6 rules 1–2). */
export function flattenPlan(plan: PlanFile, hooks: HooksFile, dryRun: boolean): PlanItem[] {
  const seen = new Map<string, number>();
  const items: PlanItem[] = [];
  for (const queue of plan.queues)
    for (const task of queue.tasks) {
      const occurrence = (seen.get(task.id) ?? 0) + 1;
      seen.set(task.id, occurrence);
      const hook = hookFor(hooks, task.id, queue.name);
      items.push({
        index: items.length,
        id: task.id,
        queue: queue.name,
        layer: task.layer ?? null,
        occurrence,
        fileKey: occurrence === 1 ? task.id : `${task.id}-${occurrence}`,
        hook,
        agent: dryRun ? 'noop' : routeOf(hook),
      });
    }
  return items;
}

/**
 * The agent a hook entry routes to (A.6 rule 2, plus Warden's `agent`/`workflow` keys). An
 * `agent` that is none of {@link PLAN_AGENTS} is rejected before the run ({@link unknownAgents}).
 */
export function routeOf(hook: HookEntry | null): PlanAgent {
  if (hook?.agent !== undefined) return hook.agent as PlanAgent;
  if (hook?.workflow !== undefined) return 'workflow';
  return (hook?.commands?.length ?? 0) > 0 ? 'shell' : 'noop';
}

/** Problems with the hook entries' agents: an unknown name, or `workflow` without a file. */
export function agentProblems(hooks: HooksFile): string[] {
  const problems: string[] = [];
  for (const [key, entry] of Object.entries(hooks)) {
    if (entry.agent !== undefined && !(PLAN_AGENTS as readonly string[]).includes(entry.agent))
      problems.push(
        `agent not registered: ${entry.agent} (hooks entry "${key}"; known: ${PLAN_AGENTS.join(', ')})`,
      );
    else if (entry.agent === 'workflow' && entry.workflow === undefined)
      problems.push(`hooks entry "${key}" names agent workflow but no "workflow" file`);
  }
  return problems;
}

/** `logs/<key>_noop_<ts>.txt` under the run directory, joined as the kit joins paths. */
export function noopEvidencePath(runDir: string, fileKey: string, stamp: string): string {
  return joinPath(runDir, 'logs', `${fileKey}_noop_${stamp}.txt`);
}

export function noopEvidenceText(item: PlanItem, stamp: string): string {
  return `NOOP: ${item.id} in ${item.queue} at ${stamp}\n`;
}

/** `logs/<key>_workflow.json`: a workflow task's evidence (its run's pid, outcome and outputs). */
export function workflowEvidencePath(runDir: string, fileKey: string): string {
  return joinPath(runDir, 'logs', `${fileKey}_workflow.json`);
}

/** `logs/<key>_cmd<i>.log`, i counted from 1 over every spec (skipped ones too). */
export function commandLogPath(runDir: string, fileKey: string, i: number): string {
  return joinPath(runDir, 'logs', `${fileKey}_cmd${i}.log`);
}

/** The first line of a command's log: `$ ` and the argv joined by spaces. */
export function commandLogHeader(cmd: readonly string[]): string {
  return `$ ${cmd.join(' ')}\n`;
}

export function noopResult(item: PlanItem, evidence: string): TaskResult {
  return {
    task: item.id,
    queue: item.queue,
    agent: 'noop',
    status: 'noop',
    evidence,
    error: null,
    commands: null,
  };
}

export function shellResult(item: PlanItem, commands: readonly CommandRecord[]): TaskResult {
  const failed = commands.some((c) => c.rc !== 0);
  return {
    task: item.id,
    queue: item.queue,
    agent: 'shell',
    status: failed ? 'error' : 'ok',
    evidence: null,
    error: null,
    commands: [...commands],
  };
}

export function workflowResult(
  item: PlanItem,
  agent: string,
  ok: boolean,
  evidence: string,
  error: string | null,
): TaskResult {
  return {
    task: item.id,
    queue: item.queue,
    agent,
    status: ok ? 'ok' : 'error',
    evidence,
    error,
    commands: null,
  };
}

/** A task whose agent failed as a whole (the kit's exception path, with the task kept). */
export function errorResult(item: PlanItem, message: string): TaskResult {
  return {
    task: item.id,
    queue: item.queue,
    agent: item.agent,
    status: 'error',
    evidence: null,
    error: message,
    commands: null,
  };
}

/** `ok` when every result is ok or noop (an empty plan too), else `error` (A.6 rule 5). */
export function summaryStatus(results: readonly TaskResult[]): 'ok' | 'error' {
  return results.every((r) => r.status === 'ok' || r.status === 'noop') ? 'ok' : 'error';
}
