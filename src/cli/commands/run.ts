/** `warden run` and `warden resume`. */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import {
  type LoadedWorkflow,
  parseWorkflowText,
  PRIORITIES,
  type Priority,
  WardenError,
  type WorkflowIssue,
} from '../../core/index.ts';
import { ModelRegistry } from '../../runtime/index.ts';
import { openContext } from '../context.ts';
import { driveRuns } from '../drive.ts';
import type { GlobalOptions } from '../global-options.ts';
import { printJson, printLine, style } from '../output.ts';

export interface RunOptions extends GlobalOptions {
  readonly input?: string;
  readonly session?: string;
  readonly priority?: string;
  readonly interactive?: boolean;
  readonly concurrency?: string;
  readonly allowUnreachable?: boolean;
}

/**
 * Reads and validates a workflow file as the CLI runs it: no TypeScript routing functions or
 * agents are registered, and unreachable stages are errors unless `allowUnreachable`.
 * NOT_FOUND when the file does not exist; WORKFLOW_INVALID listing every problem.
 */
export function readWorkflowFile(
  file: string,
  options: { readonly allowUnreachable?: boolean } = {},
): LoadedWorkflow {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new WardenError(
      code === 'ENOENT' ? 'NOT_FOUND' : 'INVALID_PARAMS',
      code === 'ENOENT'
        ? `workflow file ${file} does not exist; check the path (examples live in examples/)`
        : `cannot read workflow file ${file}: ${(error as Error).message}`,
      { cause: error, details: { file } },
    );
  }
  // The CLI registers no TypeScript routing functions or agents: reject workflows that need them.
  return parseWorkflowText(text, file, {
    routingFunctions: new Set(),
    agents: new Set(),
    allowUnreachable: options.allowUnreachable ?? false,
  });
}

/** Prints a loaded workflow's warnings on stderr (stdout stays the command's output). */
export function printWarnings(file: string, warnings: readonly WorkflowIssue[]): void {
  for (const w of warnings)
    process.stderr.write(`${style.yellow('warning')} ${file}: ${w.path}: ${w.message}\n`);
}

/** JSON from a flag's value, or from a file with `@path`; `flag` names it in errors. */
export function parseInput(value: string | undefined, flag = '--input'): unknown {
  if (value === undefined) return null;
  let text = value;
  if (value.startsWith('@')) {
    try {
      text = readFileSync(value.slice(1), 'utf8');
    } catch (error) {
      throw new WardenError(
        'INVALID_PARAMS',
        `${flag} ${value}: cannot read ${value.slice(1)} (${(error as NodeJS.ErrnoException).code ?? 'error'})`,
        { cause: error },
      );
    }
  }
  try {
    return JSON.parse(text) as unknown;
  } catch (error) {
    throw new WardenError(
      'INVALID_PARAMS',
      `${flag} is not valid JSON (${(error as Error).message}); pass e.g. ${flag} '{"topic": "x"}' or ${flag} @input.json`,
      {
        cause: error,
      },
    );
  }
}

export function parseConcurrency(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256)
    throw new WardenError(
      'INVALID_PARAMS',
      `--concurrency must be an integer from 1 to 256 (got ${value})`,
    );
  return n;
}

function parsePriority(value: string | undefined): Priority | undefined {
  if (value === undefined) return undefined;
  if (!(PRIORITIES as readonly string[]).includes(value)) {
    throw new WardenError(
      'INVALID_PARAMS',
      `--priority must be one of ${PRIORITIES.join(', ')} (got ${value})`,
    );
  }
  return value as Priority;
}

export async function runCommand(file: string, options: RunOptions): Promise<number> {
  // Validate everything before touching the database: bad input changes nothing.
  const workflow = readWorkflowFile(file, { allowUnreachable: options.allowUnreachable ?? false });
  printWarnings(file, workflow.warnings);
  const input = parseInput(options.input);
  const priority = parsePriority(options.priority);
  const concurrency = parseConcurrency(options.concurrency);
  if (options.session !== undefined && !/^[A-Za-z0-9_.:-]{1,128}$/.test(options.session)) {
    throw new WardenError(
      'INVALID_PARAMS',
      `--session '${options.session}' is invalid: use 1-128 letters, digits, _ . : -`,
    );
  }
  const ctx = await openContext(options);
  try {
    // A model the run could not reach is a configuration error now, before anything is written.
    new ModelRegistry(ctx.config.model).checkWorkflow(workflow.workflow);
    await ctx.kernel.recover();
    const sessionKey = options.session ?? 'main';
    // The new run's events follow the session's current head: show them all, whoever runs them.
    const head = (await ctx.store.getSessionByKey(sessionKey))?.last_seq ?? 0;
    const p = await ctx.kernel.startRun({
      workflow,
      input,
      source: resolve(file),
      ...(options.session ? { sessionKey: options.session } : {}),
      ...(priority ? { priority } : {}),
    });
    if (!options.json) {
      printLine(
        `${style.bold('▶')} ${style.bold(workflow.workflow.name)} ${style.dim(`pid ${p.pid} · session ${p.session_id} · ${ctx.config.databasePath}`)}`,
      );
    }
    return await driveRuns(ctx, [p.pid], {
      json: options.json ?? false,
      showAfterSeq: new Map([[p.pid, head]]),
      interactive: interactiveFor(options),
      ...(concurrency ? { concurrency } : {}),
    });
  } finally {
    await ctx.close();
  }
}

export async function resumeCommand(pid: string | undefined, options: RunOptions): Promise<number> {
  const concurrency = parseConcurrency(options.concurrency);
  const ctx = await openContext(options, { mustExist: true });
  try {
    const unfinished = async () =>
      (
        await ctx.store.listProcesses({
          states: ['new', 'ready', 'running', 'waiting', 'blocked'],
          limit: 10_000,
        })
      ).map((p) => p.pid);
    // Recovery itself may end runs (a step out of attempts): those are reported too.
    const before = pid ? [] : await unfinished();
    const recovered = await ctx.kernel.recover();
    let pids: string[];
    if (pid) {
      await ctx.kernel.getProcess(pid);
      pids = [pid];
    } else {
      pids = [...new Set([...before, ...(await unfinished())])];
    }
    // What happens from now on is shown: take each session's head before saying so, or a step
    // finished elsewhere between the line and the drive would go unseen.
    const showAfterSeq = new Map<string, number>();
    for (const id of pids) {
      const p = await ctx.store.getProcess(id);
      const head = p ? ((await ctx.store.getSession(p.session_id))?.last_seq ?? 0) : 0;
      showAfterSeq.set(id, head);
    }
    if (!options.json) {
      printLine(
        `${style.bold('↻')} resuming ${pids.length} run${pids.length === 1 ? '' : 's'} ${style.dim(`(reclaimed ${recovered.reclaimed} lease${recovered.reclaimed === 1 ? '' : 's'}, expired ${recovered.expired} interrupt${recovered.expired === 1 ? '' : 's'})`)}`,
      );
    }
    if (pids.length === 0) {
      if (options.json) printJson([]);
      return 0;
    }
    return await driveRuns(ctx, pids, {
      json: options.json ?? false,
      showAfterSeq,
      interactive: interactiveFor(options),
      ...(concurrency ? { concurrency } : {}),
    });
  } finally {
    await ctx.close();
  }
}

/** Ask at the terminal when stdin is a terminal, unless told otherwise (`--interactive` forces it). */
function interactiveFor(options: RunOptions): boolean {
  return options.interactive ?? process.stdin.isTTY === true;
}
