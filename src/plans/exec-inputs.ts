/**
 * Everything `warden exec` checks before it creates anything (reference A.2, A.8 #8, #11): the
 * plan, `--max-workers`, hooks and manifest. The kit crashes on some of these after making the
 * run directory; Warden reports them first and leaves no directory behind.
 */
import { existsSync } from 'node:fs';

import {
  agentProblems,
  dirName,
  flattenPlan,
  type HooksFile,
  hooksSchema,
  joinPath,
  manifestSchema,
  type PlanFile,
  type PlanItem,
  planSchema,
} from '../core/plan/index.ts';
import { KitError } from './kit-error.ts';
import { assertFile, readJsonFile } from './read-json.ts';
import { sha256File } from './run-dir.ts';

export interface ExecFlags {
  readonly plan: string;
  readonly maxWorkers?: string;
  readonly dryRun?: boolean;
  readonly hooks?: string;
  readonly manifest?: string;
  readonly retries?: string;
  readonly timeout?: string;
  readonly budget?: string;
}

export interface ExecInputs {
  readonly planPath: string;
  readonly plan: PlanFile;
  readonly planSha256: string;
  readonly hooksPath: string | null;
  readonly hooksSha256: string | null;
  readonly hooks: HooksFile;
  readonly items: PlanItem[];
  readonly maxWorkers: number;
  readonly dryRun: boolean;
  readonly retries: number;
  readonly timeoutMs: number | null;
  readonly budgetMs: number | null;
  /** Things the kit would silently ignore (unknown keys in hooks entries). */
  readonly warnings: readonly string[];
}

const HOOK_KEYS = new Set(['commands', 'timeout', 'retries', 'agent', 'workflow', 'input']);
const COMMAND_KEYS = new Set(['cmd', 'cwd']);

/** Unknown keys in hooks entries: ignored (as the kit ignores them), but a typo is named. */
export function hookWarnings(hooks: HooksFile, file: string): string[] {
  const warnings: string[] = [];
  for (const [key, entry] of Object.entries(hooks)) {
    for (const k of Object.keys(entry))
      if (!HOOK_KEYS.has(k))
        warnings.push(
          `${file}: "${key}": unknown key "${k}" ignored (known: ${[...HOOK_KEYS].join(', ')})`,
        );
    entry.commands?.forEach((c, i) => {
      for (const k of Object.keys(c))
        if (!COMMAND_KEYS.has(k))
          warnings.push(
            `${file}: "${key}".commands[${i}]: unknown key "${k}" ignored (known: cmd, cwd)`,
          );
    });
  }
  return warnings;
}

/** `--max-workers`: an integer ≥ 1, else a usage error (exit 2) before anything exists (A.8 #11). */
export function parseMaxWorkers(value: string | undefined): number {
  if (value === undefined) return 4;
  const n = /^\s*[0-9]+\s*$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1 || n > 10_000)
    throw new KitError(`--max-workers must be an integer from 1 to 10000 (got '${value}')`, 2);
  return n;
}

function parseRetries(value: string | undefined): number {
  if (value === undefined) return 0;
  const n = /^[0-9]+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n > 100)
    throw new KitError(`--retries must be an integer from 0 to 100 (got '${value}')`, 2);
  return n;
}

/** Seconds (`30`, `1.5`) or with a unit (`500ms`, `30s`, `5m`, `1h`). */
export function parseTimeout(value: string | undefined, flag = '--timeout'): number | null {
  if (value === undefined) return null;
  const m = /^([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)?$/.exec(value.trim());
  const unit = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 }[m?.[2] ?? 's'] ?? 1_000;
  const ms = m ? Math.round(Number(m[1]) * unit) : Number.NaN;
  if (!Number.isFinite(ms) || ms < 1 || ms > 7 * 86_400_000)
    throw new KitError(
      `${flag} must be a duration like 30, 30s, 500ms or 5m, at most 7 days (got '${value}')`,
      2,
    );
  return ms;
}

/**
 * `--hooks`/`--manifest` when given (it must exist); else `./config/<name>`, then
 * `<plan dir>/../config/<name>` (the kit's layout); else none (A.8 #13).
 */
export function locateConfig(
  flag: string | undefined,
  name: string,
  planPath: string,
  what: string,
): string | null {
  if (flag !== undefined) {
    assertFile(flag, what);
    return flag;
  }
  const candidates = [
    joinPath('config', name),
    joinPath(dirName(planPath) || '.', '..', 'config', name),
  ];
  return candidates.find((c) => existsSync(c)) ?? null;
}

export function readExecInputs(flags: ExecFlags): ExecInputs {
  const maxWorkers = parseMaxWorkers(flags.maxWorkers);
  const retries = parseRetries(flags.retries);
  const timeoutMs = parseTimeout(flags.timeout);
  const budgetMs = parseTimeout(flags.budget, '--budget');
  assertFile(flags.plan, 'plan');
  const plan = readJsonFile(planSchema, flags.plan, 'plan');
  const hooksPath = locateConfig(flags.hooks, 'hooks.json', flags.plan, 'hooks file');
  const hooks = hooksPath ? readJsonFile(hooksSchema, hooksPath, 'hooks file') : {};
  const manifestPath = locateConfig(flags.manifest, 'manifest.json', flags.plan, 'manifest');
  // Loaded and never used, like the kit — but a broken one is reported, not ignored.
  if (manifestPath) readJsonFile(manifestSchema, manifestPath, 'manifest');
  const problems = agentProblems(hooks);
  if (problems.length > 0) throw new KitError(problems.join('; '));
  const dryRun = flags.dryRun ?? false;
  const items = flattenPlan(plan, hooks, dryRun);
  if (budgetMs !== null) {
    const open = items.find(
      (i) => i.agent === 'shell' && i.hook?.timeout === undefined && timeoutMs === null,
    );
    if (open)
      throw new KitError(
        `--budget needs a timeout for every hook command (${open.id} has none): give --timeout, or "timeout" in its hooks entry; each command reserves its timeout from the budget and gives back what it does not use`,
        2,
      );
  }
  return {
    planPath: flags.plan,
    plan,
    planSha256: sha256File(flags.plan),
    hooksPath,
    hooksSha256: hooksPath ? sha256File(hooksPath) : null,
    hooks,
    items,
    maxWorkers,
    dryRun,
    retries,
    timeoutMs,
    budgetMs,
    warnings: hooksPath ? hookWarnings(hooks, hooksPath) : [],
  };
}
