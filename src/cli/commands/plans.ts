/**
 * `warden plan` and `warden exec` (also `warden run --plan`): the NOA task kit's `plan` and
 * `run`, with its flags, `[ok]`/`[error]`/`[warn]` lines and exit codes (reference A.2), on
 * Warden's durable queue. Kit-style failures print one `[error]` line, never a Warden envelope.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';

import { coerceError, isWardenError } from '../../core/index.ts';
import {
  flattenPlan,
  hooksSchema,
  isoMicros,
  joinPath,
  planSchema,
  type RunSummary,
  summaryStatus,
} from '../../core/plan/index.ts';
import { CommandGate } from '../../plans/command-gate.ts';
import { type ExecInputs, parseMaxWorkers, readExecInputs } from '../../plans/exec-inputs.ts';
import { executePlan } from '../../plans/executor.ts';
import { KitError } from '../../plans/kit-error.ts';
import { checkPlanFiles, nowMicros, writePlan } from '../../plans/planner-command.ts';
import { progressView } from '../../plans/progress.ts';
import { readJsonFile } from '../../plans/read-json.ts';
import {
  createRunDir,
  type ExecMarker,
  latestUnfinished,
  lockRunDir,
  readMarker,
  runsDirOf,
  sha256File,
  writeAtomic,
  writeMarker,
} from '../../plans/run-dir.ts';
import { loadPlanWorkflows } from '../../plans/workflow-agent.ts';
import { ModelRegistry, Worker } from '../../runtime/index.ts';
import { Security, securityOptionsOf } from '../../security/index.ts';
import { type CliContext, openContext } from '../context.ts';
import { EXIT } from '../exit-codes.ts';
import type { GlobalOptions } from '../global-options.ts';
import { printJson, printLine } from '../output.ts';

export interface PlanOptions extends GlobalOptions {
  readonly sot?: string;
  readonly out?: string;
  readonly check?: string;
  readonly hooks?: string;
  readonly manifest?: string;
}

function kitFailure(error: unknown, json: boolean): number {
  const kit = error instanceof KitError;
  const message = kit ? error.message : coerceError(error).message;
  if (json) printJson({ error: { code: kit ? error.code : coerceError(error).code, message } });
  process.stderr.write(`[error] ${message}\n`);
  return kit ? error.exitCode : isWardenError(error, 'INVALID_PARAMS') ? EXIT.USAGE : EXIT.ERROR;
}

export function planCommand(options: PlanOptions): Promise<number> {
  try {
    if (options.check !== undefined) {
      const checked = checkPlanFiles({
        plan: options.check,
        ...(options.hooks !== undefined ? { hooks: options.hooks } : {}),
        ...(options.manifest !== undefined ? { manifest: options.manifest } : {}),
      });
      if (options.json) printJson({ ok: true, plan: options.check, ...checked });
      else
        printLine(
          `[ok] plan valid: ${options.check} (${checked.queues} queues, ${checked.tasks} tasks)`,
        );
      return Promise.resolve(EXIT.OK);
    }
    if (options.sot === undefined || options.out === undefined)
      throw new KitError(
        'the following arguments are required: --sot, --out (or --check <plan.json>)',
        2,
      );
    const outcome = writePlan(options.sot, options.out);
    for (const w of outcome.warnings)
      process.stderr.write(`[warn] ${options.sot}:${w.line}: ${w.message}\n`);
    if (options.json)
      printJson({
        ok: true,
        out: outcome.out,
        queues: outcome.plan.queues.length,
        tasks: outcome.plan.queues.reduce((n, q) => n + q.tasks.length, 0),
        warnings: outcome.warnings,
      });
    else printLine(`[ok] plan written: ${outcome.out}`);
    return Promise.resolve(EXIT.OK);
  } catch (error) {
    return Promise.resolve(kitFailure(error, options.json ?? false));
  }
}

export interface ExecOptions extends GlobalOptions {
  readonly plan?: string;
  readonly maxWorkers?: string;
  readonly dryRun?: boolean;
  readonly resume?: string | boolean;
  readonly hooks?: string;
  readonly manifest?: string;
  readonly retries?: string;
  readonly timeout?: string;
  readonly budget?: string;
  readonly quiet?: boolean;
}

/** What a resume continues: the run directory's marker, checked against the files as they are now. */
function resumeInputs(
  options: ExecOptions,
  plan: string,
): { runDir: string; marker: ExecMarker; inputs: ExecInputs } {
  const runDir = typeof options.resume === 'string' ? options.resume : latestUnfinished(plan);
  if (runDir === null)
    throw new KitError(
      `no unfinished run of ${plan} to resume under ${runsDirOf(plan)}`,
      1,
      'NOT_FOUND',
    );
  if (existsSync(joinPath(runDir, 'run.json')))
    throw new KitError(
      `run ${runDir} has finished (its run.json exists); start a new run without --resume`,
    );
  const marker = readMarker(runDir);
  if (sha256File(plan) !== marker.plan_sha256)
    throw new KitError(
      `plan ${plan} changed since run ${runDir} started; run it again without --resume`,
    );
  const hooksNow = marker.hooks !== null ? sha256File(marker.hooks) : null;
  if (hooksNow !== marker.hooks_sha256)
    throw new KitError(
      `hooks file ${marker.hooks ?? ''} changed since run ${runDir} started; run the plan again without --resume`,
    );
  const planFile = readJsonFile(planSchema, plan, 'plan');
  const hooks = marker.hooks ? readJsonFile(hooksSchema, marker.hooks, 'hooks file') : {};
  const maxWorkers =
    options.maxWorkers !== undefined ? parseMaxWorkers(options.maxWorkers) : marker.max_workers;
  return {
    runDir,
    marker: { ...marker, max_workers: maxWorkers },
    inputs: {
      planPath: plan,
      plan: planFile,
      planSha256: marker.plan_sha256,
      hooksPath: marker.hooks,
      hooksSha256: marker.hooks_sha256,
      hooks,
      items: flattenPlan(planFile, hooks, marker.dry_run),
      maxWorkers,
      dryRun: marker.dry_run,
      retries: marker.retries,
      timeoutMs: marker.timeout_ms,
      budgetMs: marker.budget_ms,
      warnings: [],
    },
  };
}

export async function execCommand(options: ExecOptions): Promise<number> {
  const json = options.json ?? false;
  const plan = options.plan;
  if (plan === undefined)
    return kitFailure(new KitError('the following arguments are required: --plan', 2), json);
  let prepared: { runDir: string | null; marker: ExecMarker | null; inputs: ExecInputs };
  try {
    if (options.resume !== undefined && options.resume !== false) {
      if (options.maxWorkers !== undefined) parseMaxWorkers(options.maxWorkers);
      const r = resumeInputs(options, plan);
      prepared = r;
    } else prepared = { runDir: null, marker: null, inputs: readExecInputs({ ...options, plan }) };
  } catch (error) {
    return kitFailure(error, json);
  }
  const { inputs } = prepared;
  for (const w of inputs.warnings) process.stderr.write(`[warn] ${w}\n`);
  let workflows: ReturnType<typeof loadPlanWorkflows>;
  try {
    workflows = loadPlanWorkflows(inputs.items);
  } catch (error) {
    return kitFailure(error, json);
  }
  let ctx: CliContext;
  try {
    ctx = await openContext(options);
  } catch (error) {
    return kitFailure(error, json);
  }
  const { kernel, config } = ctx;
  if (prepared.marker && prepared.marker.home !== config.home) {
    await ctx.close();
    return kitFailure(
      new KitError(
        `run ${prepared.runDir ?? ''} belongs to the Warden home ${prepared.marker.home}, not ${config.home}: resume it with WARDEN_HOME=${prepared.marker.home}`,
      ),
      json,
    );
  }
  const controller = new AbortController();
  const onSignal = (): void => controller.abort();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let security: Security | null = null;
  let worker: Worker | null = null;
  let runDir = prepared.runDir;
  let created = false;
  let unlock: (() => void) | null = null;
  const view = progressView(process.stderr, (options.quiet ?? false) || json);
  try {
    const models = new ModelRegistry(config.model);
    for (const w of workflows.values()) models.checkWorkflow(w.workflow);
    if (inputs.items.some((i) => i.agent !== 'noop'))
      security = await Security.open(securityOptionsOf(config, { kernel, home: config.home }));
    if (workflows.size > 0 && security) {
      // The workflows' steps run here, beside the plan's tasks (and in any other worker).
      await kernel.recover();
      worker = new Worker({
        kernel,
        tools: security.tools,
        models,
        concurrency: config.worker.concurrency,
        leaseMs: config.worker.lease,
      });
      await worker.start();
    }
    let marker = prepared.marker;
    if (runDir === null || marker === null) {
      const startedUs = nowMicros();
      runDir = createRunDir(plan, Math.floor(startedUs / 1000));
      created = true;
      const execId = `${runDir.slice(runDir.lastIndexOf('/') + 1)}.${randomBytes(5).toString('hex')}`;
      marker = {
        version: 1,
        exec_id: execId,
        lane: `plan:${execId}`,
        session: `plan:${execId}`,
        plan,
        plan_sha256: inputs.planSha256,
        hooks: inputs.hooksPath,
        hooks_sha256: inputs.hooksSha256,
        tasks: inputs.items.length,
        max_workers: inputs.maxWorkers,
        dry_run: inputs.dryRun,
        retries: inputs.retries,
        timeout_ms: inputs.timeoutMs,
        budget_ms: inputs.budgetMs,
        started: isoMicros(startedUs),
        home: config.home,
      };
      writeMarker(runDir, marker);
    }
    unlock = lockRunDir(runDir);
    const results = await executePlan({
      kernel,
      marker,
      runDir,
      items: inputs.items,
      gate: security ? new CommandGate(security) : null,
      workflows,
      workspace: process.cwd(),
      signal: controller.signal,
      onProgress: (p) => view.update(p),
      onSubmitted: () => {
        created = false; // the run exists now: never remove it
      },
    });
    view.finish();
    if (results === 'interrupted') {
      process.stderr.write('[warn] interrupted\n');
      process.stderr.write(
        `[warn] finished tasks are kept; continue with: warden exec --plan ${plan} --resume ${runDir}\n`,
      );
      return EXIT.INTERRUPTED;
    }
    const summary: RunSummary = {
      status: summaryStatus(results),
      started: marker.started,
      ended: isoMicros(nowMicros()),
      results,
    };
    const file = joinPath(runDir, 'run.json');
    writeAtomic(file, JSON.stringify(summary, null, 2));
    if (json)
      printJson({
        status: summary.status,
        run_dir: runDir,
        run_json: file,
        tasks: results.length,
        failed: results.filter((r) => r.status === 'error').length,
      });
    else printLine(`[ok] run summary written: ${file}`);
    return summary.status === 'ok' ? EXIT.OK : 2;
  } catch (error) {
    view.finish();
    return kitFailure(error, json);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    unlock?.();
    await worker?.stop({ abort: true });
    // Nothing ran (the store refused the tasks, say): leave no half-made run directory.
    if (created && runDir !== null) rmSync(runDir, { recursive: true, force: true });
    await security?.close();
    await ctx.close();
  }
}
